"""The runner: a suite -> cells and pretrain units -> cache lookup -> serial, joblib or dask execution.

A **cell** is (dataset, split, method, method config, protocol, protocol config, seed). A **pretrain unit**
is (dataset, split, method, method config, seed): every protocol of a unit reuses one checkpoint,
`<results_dir>/checkpoints/<unit key>.pt`. Units can depend on other units (CMC-CMKM's SimCLR teachers,
declared by `Method.dependencies`); a dependency is keyed by its own resolved config, so a teacher with the
same config as a benchmarked SimCLR variant is trained once and shared.

Keys are sha256 (first 16 hex digits) of canonical JSON holding the *resolved* configs, the data
fingerprint, the numerics (device type and precision) and `CODE_VERSION`, so a changed default, dataset
file or code version gives new keys and the old records are not reused. A rerun skips cells whose record
exists.

Modules: `units` (typed data: PretrainUnit, Cell, WorkUnit, RunSettings), `planner` (suite -> plan, configs
resolved once), `plan` (the Plan and its summary), `cost` (FLOPs and time estimates), `dispatch` (serial,
joblib, dask), `worker` (one work unit -> records), `execute` (seed-major dependency order, progress,
summary), `runlog` (the invocation log).
"""
from benchmark.runner.cost import format_seconds, jobs_that_start, parallel_workers, throughput
from benchmark.runner.execute import RunSummary, execute, metrics_by_cell, run, work_unit
from benchmark.runner.plan import Plan, refresh
from benchmark.runner.planner import numerics_tag, plan_suite
from benchmark.runner.units import (
    BACKENDS,
    CODE_VERSION,
    DEVICES,
    Cell,
    DatasetInfo,
    PretrainUnit,
    RunError,
    RunSettings,
    WorkUnit,
)
from benchmark.runner.worker import environment, run_work_unit

__all__ = ["BACKENDS", "CODE_VERSION", "Cell", "DEVICES", "DatasetInfo", "Plan", "PretrainUnit", "RunError",
           "RunSettings", "RunSummary", "WorkUnit", "environment", "execute", "format_seconds", "metrics_by_cell",
           "jobs_that_start", "numerics_tag", "parallel_workers", "plan_suite", "refresh", "run", "run_work_unit",
           "throughput", "work_unit"]
