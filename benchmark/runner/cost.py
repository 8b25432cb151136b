"""Cost of a plan: forward FLOPs per clip, FLOP rates calibrated on past records, and the wall-time estimate."""
from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import store
from benchmark.runner.units import DatasetInfo

if TYPE_CHECKING:
    from benchmark.runner.plan import Plan

# Rough forward FLOPs per sample of the reference backbones on UTD-MHAD shapes (spec 9), scaled by shape.
_FWD_FLOPS = {"inertial": (108.5e6, 50, 1), "skeleton": (91.6e6, 50, 20)}
_DEFAULT_FLOPS_PER_S = {"cpu": 20e9, "cuda": 2e12}  # used when no past timings exist


def format_seconds(s: float) -> str:
    """'1h02m', '3m05s', '12s'."""
    s = max(0.0, float(s))
    if s >= 3600:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    if s >= 60:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{s:.0f}s"


def fwd_flops(info: DatasetInfo, modalities: list[str]) -> float:
    """Forward FLOPs per clip of the encoders of `modalities` on the dataset's shapes (estimate)."""
    return clip_flops(info.layouts, info.shapes, modalities)


def clip_flops(kinds: Mapping[str, str], shapes: Mapping[str, tuple[int, ...]], modalities: list[str]) -> float:
    """Forward FLOPs per clip of the reference encoders of `modalities`, given each one's kind and (C, T[, J])."""
    total = 0.0
    for m in modalities:
        base, t_ref, j_ref = _FWD_FLOPS.get(kinds.get(m, "inertial"), _FWD_FLOPS["inertial"])
        shape = shapes.get(m, ())
        t = shape[1] if len(shape) > 1 else t_ref
        j = shape[2] if len(shape) > 2 else j_ref
        total += base * (t / t_ref) * (j / j_ref)
    return total


def used_modalities(info: DatasetInfo, cfg: Mapping[str, Any]) -> list[str]:
    mod = cfg.get("modality")
    return [mod] if mod in info.shapes else list(info.shapes)


def parallel_workers(device: str, jobs: int, threads: int) -> int:
    """Work units that really run at once: --jobs, on a CPU at most its cores / --threads."""
    if str(device).startswith("cuda"):
        return max(1, jobs)
    return max(1, min(jobs, (os.cpu_count() or 1) // max(1, threads)))


def jobs_that_start(jobs: int, units: int, backend: str = "local", scheduler: str | None = None) -> int:
    """Worker processes a run starts: --jobs, at most one per work unit to run (an outside dask scheduler's
    cluster is its own)."""
    if backend == "dask" and scheduler:
        return jobs
    return max(1, min(jobs, units))


def _records(results_dir: Path, records: Mapping[str, dict[str, Any]] | None) -> Mapping[str, dict[str, Any]]:
    """The valid records of `results_dir`, unless the caller has scanned them already."""
    return records if records is not None else store.scan_records(results_dir)[0]


def throughput(results_dir: Path, device: str,
               records: Mapping[str, dict[str, Any]] | None = None) -> tuple[float, float, str]:
    """FLOP/s of pretraining and of protocols, calibrated on past records of this results folder when present."""
    dev = store.device_type(device)
    default = _DEFAULT_FLOPS_PER_S.get(dev, _DEFAULT_FLOPS_PER_S["cpu"])  # any device but CUDA: the CPU rate
    records = _records(results_dir, records)
    pre_f = pre_s = pro_f = pro_s = 0.0
    seen: set[str] = set()
    for r in records.values():
        est, t = r.get("estimate") or {}, r.get("timings") or {}
        if store.device_type(r.get("device")) != dev or not est:
            continue
        key = (r.get("pretrain") or {}).get("key")
        if not t.get("pretrain_cached") and key and key not in seen and t.get("pretrain_s"):
            seen.add(key)
            pre_f += est.get("pretrain_flops", 0.0)
            pre_s += t["pretrain_s"]
        if t.get("protocol_s"):
            pro_f += est.get("protocol_flops", 0.0)
            pro_s += t["protocol_s"]
    if pre_s > 0 and pro_s > 0:
        return pre_f / pre_s, pro_f / pro_s, f"rates from {len(records)} past records"
    if pre_s > 0:
        return pre_f / pre_s, pre_f / pre_s, f"rates from {len(records)} past records"
    return default, default, f"rough FLOP estimate at {default / 1e9:.0f} GFLOP/s"




def _config_id(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def unit_config(u: Any) -> str:
    """A pretraining unit's configuration without its seed (units of other seeds share it)."""
    return _config_id(u.dataset, u.split, u.variant, u.resolved)


def cell_config(c: Any, u: Any) -> str:
    """A cell's configuration without its seed."""
    return _config_id(unit_config(u), c.protocol_variant, c.protocol_resolved)


def past_timings(results_dir: Path, numerics: str, records: Mapping[str, dict[str, Any]] | None = None
                 ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds that past records of this folder with the same numerics (device type and precision) took, by
    seed-free configuration: ({unit config: [pretraining s]}, {cell config: [protocol s]})."""
    records = _records(results_dir, records)
    units: dict[str, list[float]] = {}
    cells: dict[str, list[float]] = {}
    seen: set[str] = set()
    for r in records.values():
        t, c, pre = r.get("timings") or {}, r.get("cell") or {}, r.get("pretrain") or {}
        if store.record_numerics(r, missing_precision="fp32") != numerics or not c:
            continue
        uid = _config_id(c.get("dataset"), c.get("split"), c.get("variant"), pre.get("method_resolved"))
        ukey = str(pre.get("key"))
        if not t.get("pretrain_cached") and t.get("pretrain_s") and ukey not in seen:
            seen.add(ukey)
            units.setdefault(uid, []).append(float(t["pretrain_s"]))
        if t.get("protocol_s") is not None:
            cid = _config_id(uid, c.get("protocol_variant"), r.get("protocol_resolved"))
            cells.setdefault(cid, []).append(float(t["protocol_s"]))
    return units, cells


def _record_folders(results_dir: Path) -> list[Path]:
    """This results folder and the folders beside it (and one level below them) that hold records."""
    root = Path(results_dir).resolve().parent
    found = {Path(results_dir).resolve()}
    for pattern in (f"*/{store.RECORDS_DIR}", f"*/*/{store.RECORDS_DIR}"):
        found.update(p.parent for p in root.glob(pattern) if p.is_dir())
    return sorted(found)


def protocol_factors(results_dir: Path, device: str, precision: str | None = None,
                     records: Mapping[str, dict[str, Any]] | None = None) -> dict[str, float]:
    """How fast each protocol variant (and protocol) ran per planned FLOP relative to the pretraining of its own
    unit, on this device type: the median over the records of this folder and the folders beside it, those of
    `precision` where they have the protocol (bf16 speeds pretraining up more than evaluation). A cell
    estimated from its unit's measured step rate takes `flops / (rate * factor)`; protocols that train small
    heads with a validation pass every epoch run well below a pretraining step's FLOP rate. `records`: this
    folder's own, where the caller has scanned them."""
    dev = store.device_type(device)
    own = Path(results_dir).resolve()
    ratios: dict[str, list[float]] = {}
    same: dict[str, list[float]] = {}  # records of `precision` only
    for folder in _record_folders(results_dir):
        unit_rate: dict[str, float] = {}
        rows = []
        for r in _records(folder, records if folder == own else None).values():
            if store.device_type(r.get("device")) != dev:
                continue
            t, est, c = r.get("timings") or {}, r.get("estimate") or {}, r.get("cell") or {}
            ukey = str((r.get("pretrain") or {}).get("key"))
            if not t.get("pretrain_cached") and t.get("pretrain_s") and est.get("pretrain_flops"):
                unit_rate[ukey] = est["pretrain_flops"] / t["pretrain_s"]
            if t.get("protocol_s") and est.get("protocol_flops") and c:
                rows.append((ukey, c.get("protocol_variant"), c.get("protocol"), r.get("precision", "fp32"),
                             est["protocol_flops"] / t["protocol_s"]))
        for ukey, variant, protocol, prec, rate in rows:
            if unit_rate.get(ukey):
                for name in {variant, protocol} - {None}:
                    ratios.setdefault(str(name), []).append(rate / unit_rate[ukey])
                    if prec == precision:
                        same.setdefault(str(name), []).append(rate / unit_rate[ukey])
    return {k: statistics.median(v) for k, v in {**ratios, **same}.items()}


def estimate_seconds(plan: "Plan", device: str, workers: int = 1,
                     step_times: Mapping[str, float] | None = None) -> tuple[float, str]:
    """Estimated wall time of the remaining work on `workers` parallel work units, and the rate's source.

    `step_times` ({unit key: seconds per training step}, `rates.measure_step_times`) time the units measured
    on this machine; other units use FLOP rates from past records (timed inside their worker), else a rough
    default. The work divides by the number of workers, but never below the longest single unit.
    """
    per_unit, source = unit_seconds(plan, device, step_times)
    return wall_seconds(per_unit.values(), workers), source


def wall_seconds(unit_secs: Any, workers: int) -> float:
    """Wall time of work units (each: its pretraining, then its cells) spread over `workers`."""
    secs = list(unit_secs)
    return max(sum(secs) / max(1, workers), max(secs, default=0.0))


def estimate_by_dataset(plan: "Plan", device: str, workers: int = 1,
                        step_times: Mapping[str, float] | None = None) -> dict[str, float]:
    """{dataset: estimated wall time of its remaining work} (each dataset as if it ran alone)."""
    per_unit, _ = unit_seconds(plan, device, step_times)
    groups: dict[str, list[float]] = {}
    for k, secs in per_unit.items():
        groups.setdefault(plan.units[k].dataset, []).append(secs)
    return {d: wall_seconds(v, workers) for d, v in groups.items()}


def unit_seconds(plan: "Plan", device: str, step_times: Mapping[str, float] | None = None
                 ) -> tuple[dict[str, float], str]:
    """{unit key: seconds of its pretraining and its remaining cells} and the rates' source."""
    from benchmark import rates

    records = store.scan_records(plan.results_dir)[0]  # read once for the three calibrations below
    rate_pre, rate_proto, source = throughput(plan.results_dir, device, records)
    past_units, past_cells = past_timings(plan.results_dir, plan.numerics, records)
    step_times = dict(step_times or {})
    per_unit: dict[str, float] = {}
    unit_rate: dict[str, float] = {}
    n_past = [0, 0]
    for k in plan.needed_units():
        u = plan.units[k]
        if k in plan.cached:
            per_unit[k] = 0.0
        elif unit_config(u) in past_units:  # the same configuration, trained for another seed
            per_unit[k] = statistics.median(past_units[unit_config(u)])
            n_past[0] += 1
        elif k in step_times and plan.dataset_of(u.dataset, u.split) is not None:
            sizes = plan.dataset_of(u.dataset, u.split).sizes  # type: ignore[union-attr]
            per_unit[k] = rates.unit_seconds(u, sizes, step_times[k])
            unit_rate[k] = rates.flop_rate(u, sizes, step_times[k])
        else:
            per_unit[k] = u.flops / rate_pre
    factors = protocol_factors(plan.results_dir, device, plan.precision, records) if unit_rate else {}
    n_factored = 0
    for c in plan.todo:
        past = past_cells.get(cell_config(c, plan.units[c.pretrain_key]))
        if past:
            secs = statistics.median(past)
            n_past[1] += 1
        elif c.pretrain_key in unit_rate:
            factor = factors.get(c.protocol_variant, factors.get(c.protocol))
            n_factored += factor is not None
            secs = c.flops / (unit_rate[c.pretrain_key] * (factor or 1.0))
        else:
            secs = c.flops / rate_proto
        per_unit[c.pretrain_key] = per_unit.get(c.pretrain_key, 0.0) + secs
    if step_times:
        source = f"step times measured on this machine for {len(step_times)} unit(s); others: {source}"
    if n_factored:
        source += (f"; {n_factored} cell(s) at their unit's step rate x their protocol's speed relative to "
                   f"pretraining in past records")
    if any(n_past):
        source = (f"{n_past[0]} unit(s) and {n_past[1]} cell(s) timed by past records of the same configuration "
                  f"(another seed); {source}")
    # one unit (its pretraining, then its cells) runs in one worker: the longest bounds the wall time
    return per_unit, source

