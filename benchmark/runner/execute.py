"""Execution of a plan: work units seed by seed, each once its dependencies are done; progress lines, a summary.

Every work unit seeds everything from the cell's seed, runs with a fixed number of torch threads
(`RunSettings.threads`: CPU results depend on it, so it must not follow --jobs) and evaluates the checkpoint
as reloaded from disk, so serial, joblib and dask runs, and interrupted-then-resumed runs, give the same
records. A killed run loses at most the cells in flight (records and checkpoints are written atomically).
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark import store
from benchmark.atomic import owner_tag
from benchmark.registry import DATASETS, METHODS, PROTOCOLS
from benchmark.runner import stop
from benchmark.runner.cost import format_seconds, jobs_that_start
from benchmark.runner.dispatch import dispatch_graph
from benchmark.runner.folder_mark import check_suite, mark_folder
from benchmark.runner.plan import Plan, refresh
from benchmark.runner.planner import plan_suite
from benchmark.runner.runlog import RunLog
from benchmark.runner.units import Cell, RunError, RunSettings, WorkUnit, cell_label
from benchmark.suites import Suite


@dataclass
class RunSummary:
    """What `execute` did."""

    total: int
    done_before: int
    completed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell description, error)
    seconds: float = 0.0
    removed_temp: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _registration(kind: str, name: str, obj: Any) -> tuple[str, str, str, str]:
    return (kind, name, obj.__module__, obj.__qualname__)


EPOCH_LINE_S = 60.0


def work_unit(plan: Plan, unit_key: str, cells: list[Cell], settings: RunSettings) -> WorkUnit:
    """Everything a worker needs for one pretrain unit and its cells."""
    chain: dict[str, Any] = {}

    def collect(k: str) -> None:
        u = plan.units[k]
        chain[k] = u
        for d in u.deps.values():
            collect(d)

    collect(unit_key)
    unit = plan.units[unit_key]
    regs = [_registration("dataset", unit.dataset, DATASETS.get(unit.dataset))]
    regs += [_registration("method", u.method, METHODS.get(u.method)) for u in chain.values()]
    regs += [_registration("protocol", c.protocol, PROTOCOLS.get(c.protocol)) for c in cells]
    env = {k: os.environ[k] for k in ("MMHAR_CACHE", "MMHAR_DATA", "MMHAR_PLUGINS", "MMHAR_MALLOC_TUNE")
           if k in os.environ}
    env["MMHAR_RESULTS"] = str(plan.results_dir.resolve())
    env["MMHAR_QUIET"] = "1"
    if not settings.quiet:  # workers: a line when a unit starts, and epoch lines for fits longer than a minute
        env.update(MMHAR_PROGRESS_S=str(EPOCH_LINE_S), MMHAR_UNIT_LINES="1")
    return WorkUnit(
        unit=unit_key, units=chain, cells=list(cells), results_dir=str(plan.results_dir.resolve()),
        data_root=getattr(plan.dataset_of(unit.dataset, unit.split), "root", None) or settings.data_root,
        device=settings.device, threads=settings.threads, precision=plan.precision, fail_fast=settings.fail_fast,
        registrations=sorted(set(regs)), env=env, owner=owner_tag(), suite=plan.suite,
    )


def execute(plan: Plan, settings: RunSettings, *, log: Callable[[str], None] | None = None) -> RunSummary:
    """Run every cell of the plan that has no record yet; return a summary (failures are listed, not raised).

    The results folder is locked for the run (`runner.lock`): a second run into it stops with a RunError.
    """
    from benchmark.runner.lock import results_lock

    with results_lock(plan.results_dir):
        refused = check_suite(plan.results_dir, plan.suite, settings.merge)
        if refused:
            raise RunError(refused)
        from benchmark.runner.dispatch import end_started_pool

        pooled = settings.backend != "dask" and (settings.jobs > 1 or settings.backend == "joblib")
        try:
            summary = _execute(plan, settings, log=log)
        except BaseException:  # a stop anywhere (even after the last unit): no worker outlives the lock
            if pooled:
                end_started_pool()
            raise
        if pooled:
            end_started_pool(graceful=True)  # idle workers end too: a stop while they wind down is not a crash
        return summary


def _execute(plan: Plan, settings: RunSettings, *, log: Callable[[str], None] | None = None) -> RunSummary:
    if log is None:
        log = (lambda s: None) if settings.quiet else _stderr
    removed = store.clean_temp_files(plan.results_dir)
    for p in removed:
        log(f"removed temporary file left by an interrupted run: {p}")
    _set_aside_corrupt(plan, log)
    refresh(plan)
    conflict = plan.numerics_conflict()
    if conflict:
        raise RunError(conflict)
    mark_folder(plan.results_dir, plan.suite, plan.numerics, settings.merge)
    for name, content in settings.marks.items():  # e.g. baselines.json of a --baselines run
        store.atomic_write_json(plan.results_dir / name, content)
    for what, n in sorted(plan.code_changed.items()):
        log(f"code changed: {n} cell(s) have records of other code ({what}); recomputing them")
    todo = plan.todo
    summary = RunSummary(total=len(plan.cells), done_before=len(plan.cells) - len(todo), removed_temp=removed)
    if not todo:
        log(f"all {len(plan.cells)} cells already have records in {plan.results_dir}; nothing to run")
        return summary
    units = len(plan.needed_units())
    jobs = jobs_that_start(settings.jobs, units, settings.backend, settings.scheduler)
    if jobs < settings.jobs:
        log(f"note: {settings.jobs} jobs capped at {jobs}: only {units} work unit(s) to run")
        settings = replace(settings, jobs=jobs)
    by_unit: dict[str, list[Cell]] = {}
    for c in todo:
        by_unit.setdefault(c.pretrain_key, []).append(c)
    total_cost = sum(plan.units[k].flops for k in plan.needed_units() if k not in plan.cached) + \
        sum(c.flops for c in todo)
    log(f"running {len(todo)} of {len(plan.cells)} cells ({len(plan.needed_units())} pretrain units) on "
        f"{settings.device} ({plan.numerics}) with backend {settings.backend}, jobs {settings.jobs}")
    progress = _Progress(len(todo), total_cost, log, plan.estimate_seconds(settings.device, max(1, settings.jobs))[0],
                         bar=not settings.quiet)
    failed_units: dict[str, str] = {}  # unit key -> its error
    t0 = time.perf_counter()
    reported: set[str] = set()
    charged: set[str] = set()

    def cell_done(unit_key: str, o: dict[str, Any]) -> None:
        stop.check()  # a stop whose KeyboardInterrupt was swallowed somewhere still ends the run here
        if o["key"] in reported:
            return
        reported.add(o["key"])
        if unit_key not in charged:  # the unit's pretraining is over once its first cell is
            charged.add(unit_key)
            progress.add_cost(plan.units[unit_key].flops if unit_key not in plan.cached else 0.0)
        if o.get("error"):
            summary.failed.append((o["label"], o["error"]))
        else:
            summary.completed += 1
        progress.cell_done(o)

    def handle(unit_key: str, outcomes: list[dict[str, Any]], unit_error: str | None) -> None:
        if unit_error:
            failed_units[unit_key] = unit_error
        for o in outcomes:
            cell_done(unit_key, o)
        if unit_key not in charged:
            charged.add(unit_key)
            progress.add_cost(plan.units[unit_key].flops if unit_key not in plan.cached else 0.0)

    git = store.git_info()
    runlog = RunLog(plan.results_dir)
    runlog.start(cells_todo=len(todo), cells_total=len(plan.cells), units=len(plan.needed_units()),
                 device=settings.device, numerics=plan.numerics, jobs=settings.jobs, threads=settings.threads,
                 backend=settings.backend, commit=git.get("commit"), dirty=git.get("dirty"),
                 command=settings.command)
    try:
        _run_graph(plan, settings, by_unit, failed_units, handle, cell_done)
    except BaseException:
        # cells whose unit was still running have records but were not reported yet: count what is stored
        stored = sum(store.record_path(plan.results_dir, c.key).exists() for c in todo)
        runlog.end("interrupted", completed=max(summary.completed, stored), failed=len(summary.failed))
        raise
    runlog.end("failed" if summary.failed else "done", completed=summary.completed, failed=len(summary.failed))
    summary.seconds = time.perf_counter() - t0
    refresh(plan)
    log(f"finished: {summary.completed} cells computed, {len(summary.failed)} failed, {summary.done_before} were "
        f"already done ({format_seconds(summary.seconds)})")
    for label, err in summary.failed:
        log(f"FAILED {label}: {_last_line(err)}")
    return summary


def _run_graph(plan: Plan, settings: RunSettings, by_unit: dict[str, list[Cell]], failed_units: dict[str, str],
               handle: Callable[[str, list[dict[str, Any]], str | None], None],
               cell_done: Callable[[str, dict[str, Any]], None]) -> None:
    """Dispatch the work units seed by seed, each once its dependencies are done; a unit whose dependency
    failed fails without running."""
    needed = plan.needed_units()
    index = {k: i for i, k in enumerate(needed)}
    order = sorted(needed, key=lambda k: (plan.units[k].seed, plan.depth(k), index[k]))
    deps = {k: {d for d in _all_deps(plan, k) if d in index} for k in needed}

    def payload_for(k: str) -> WorkUnit | None:
        cells = by_unit.get(k, [])
        dead = [d for d in _all_deps(plan, k) if d in failed_units]
        if dead:
            why = (f"dependency {plan.units[dead[0]].variant} (pretrain unit {dead[0]}) failed: "
                   f"{_last_line(failed_units[dead[0]])}")
            failed_units[k] = why
            handle(k, [{"label": cell_label(c), "error": why, "key": c.key} for c in cells], None)
            return None
        return work_unit(plan, k, cells, settings)

    units = dispatch_graph(order, deps, payload_for, settings, cell_done)
    try:
        for unit_key, outcomes, err in units:
            handle(unit_key, outcomes, err)
    finally:
        units.close()  # now, not when the traceback is freed: the workers end while the folder is still locked


def _set_aside_corrupt(plan: Plan, log: Callable[[str], None]) -> None:
    """Report corrupt records and rename them to `*.json.corrupt`, and records whose content does not match their
    key to `*.json.foreign` (kept for inspection; the cell is recomputed)."""
    for msg in plan.foreign:
        key = msg.split(" does not match", 1)[0].removeprefix("record ")
        log(f"warning: {msg}")
        f = Path(key)
        if f.is_file():
            os.replace(f, f.with_name(f.name + ".foreign"))
    if not plan.corrupt:
        return
    for f in sorted((plan.results_dir / store.RECORDS_DIR).glob("*.json")):
        try:
            store.read_record(f)
        except store.CorruptRecordError as exc:
            log(f"warning: {exc}")
            os.replace(f, f.with_name(f.name + ".corrupt"))


def _all_deps(plan: Plan, key: str) -> list[str]:
    out = []
    for d in plan.units[key].deps.values():
        out.append(d)
        out.extend(_all_deps(plan, d))
    return out


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Progress:
    """Cells done / total with a time left, as a tqdm bar (the cells' lines above it) or, quiet, as nothing: a
    quiet run keeps the one line per pretraining unit its workers print.

    Time left blends the plan's estimate (what --dry-run says) with the rate seen so far, trusting the
    observed rate more as the done share of the cost grows: a run's first minutes (loading data, the first
    units' pretraining, whose cells report later) no longer promise hours for a short run.
    """

    def __init__(self, n: int, cost: float, log: Callable[[str], None], estimate_s: float = math.nan,
                 bar: bool = False) -> None:
        self.n, self.cost, self.log = n, max(cost, 1.0), log
        self.done, self.cost_done, self.t0 = 0, 0.0, time.perf_counter()
        self.estimate_s = estimate_s
        self.bar = None
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n, unit="cell", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} cells [{elapsed}{postfix}]")
            self.bar.set_postfix_str(f"~{format_seconds(estimate_s)} left (estimate)" if estimate_s == estimate_s
                                     else "")

    def add_cost(self, cost: float) -> None:
        self.cost_done += cost

    def left(self, elapsed: float) -> float:
        """Seconds left: the plan's estimate at first, the observed cost rate as the run goes on."""
        frac = min(1.0, self.cost_done / self.cost)
        observed = elapsed * (1 - frac) / frac if frac > 0 else math.nan
        prior = max(0.0, self.estimate_s - elapsed) if self.estimate_s == self.estimate_s else math.nan
        if prior != prior:
            return observed
        if observed != observed:
            return prior
        return frac * observed + (1 - frac) * prior

    def cell_done(self, o: dict[str, Any]) -> None:
        self.done += 1
        self.cost_done += o.get("flops", 0.0)
        elapsed = time.perf_counter() - self.t0
        eta = self.left(elapsed)
        status = "FAILED" if o.get("error") else _metric_text(o.get("metrics", {}))
        line = (f"[{self.done}/{self.n}] {o['label']}: {status} ({o.get('seconds', 0.0):.1f}s) "
                f"- elapsed {format_seconds(elapsed)}, left ~{format_seconds(eta) if eta == eta else '?'}")
        if self.bar is None:
            self.log(line)
            return
        self.bar.write(line, file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix_str(f"~{format_seconds(eta)} left" if eta == eta else "")
        if self.done >= self.n:
            self.bar.close()


def _metric_text(metrics: Mapping[str, float]) -> str:
    keys = [k for k in ("accuracy", "f1_macro") if k in metrics]
    return ", ".join(f"{k} {100 * metrics[k]:.1f}%" for k in keys) or "done"


def _last_line(err: str) -> str:
    """The last line of a traceback: the exception and its message."""
    return err.strip().splitlines()[-1] if err.strip() else err


def run(suite: Suite, results_dir: Path, settings: RunSettings, *, log: Callable[[str], None] | None = None) -> RunSummary:
    """Plan and execute a suite (the programmatic entry point behind `run_all.py`)."""
    logger = (lambda s: None) if settings.quiet else (log or _stderr)
    plan = plan_suite(suite, results_dir, data_root=settings.data_root, log=logger, device=settings.device,
                      precision=settings.precision)
    return execute(plan, settings, log=logger)


def metrics_by_cell(results_dir: Path) -> dict[tuple, dict[str, float]]:
    """{(dataset, split, variant, protocol_variant, seed): metrics} of a results folder (for comparisons)."""
    records, _ = store.scan_records(results_dir)
    out = {}
    for r in records.values():
        c = r["cell"]
        out[(c["dataset"], c["split"], c["variant"], c["protocol_variant"], c["seed"])] = r["metrics"]
    return out
