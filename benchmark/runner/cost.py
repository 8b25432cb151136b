"""Cost of a plan: forward FLOPs per clip, FLOP rates calibrated on past records, and the wall-time estimate."""
from __future__ import annotations

import os
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
    total = 0.0
    for m in modalities:
        base, t_ref, j_ref = _FWD_FLOPS.get(info.layouts.get(m, "inertial"), _FWD_FLOPS["inertial"])
        shape = info.shapes.get(m, ())
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


def throughput(results_dir: Path, device: str) -> tuple[float, float, str]:
    """FLOP/s of pretraining and of protocols, calibrated on past records of this results folder when present."""
    dev = "cuda" if str(device).startswith("cuda") else "cpu"
    default = _DEFAULT_FLOPS_PER_S[dev]
    records, _ = store.scan_records(results_dir)
    pre_f = pre_s = pro_f = pro_s = 0.0
    seen: set[str] = set()
    for r in records.values():
        est, t = r.get("estimate") or {}, r.get("timings") or {}
        if not str(r.get("device", "")).startswith(dev) or not est:
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




def estimate_seconds(plan: "Plan", device: str, workers: int = 1,
                     step_times: Mapping[str, float] | None = None) -> tuple[float, str]:
    """Estimated wall time of the remaining work on `workers` parallel work units, and the rate's source.

    `step_times` ({unit key: seconds per training step}, `rates.measure_step_times`) time the units measured
    on this machine; other units use FLOP rates from past records (timed inside their worker), else a rough
    default. The work divides by the number of workers, but never below the longest single unit.
    """
    from benchmark import rates

    rate_pre, rate_proto, source = throughput(plan.results_dir, device)
    step_times = dict(step_times or {})
    per_unit: dict[str, float] = {}
    unit_rate: dict[str, float] = {}
    for k in plan.needed_units():
        u = plan.units[k]
        if k in plan.cached:
            per_unit[k] = 0.0
        elif k in step_times and plan.dataset_of(u.dataset, u.split) is not None:
            sizes = plan.dataset_of(u.dataset, u.split).sizes  # type: ignore[union-attr]
            per_unit[k] = rates.unit_seconds(u, sizes, step_times[k])
            unit_rate[k] = rates.flop_rate(u, sizes, step_times[k])
        else:
            per_unit[k] = u.flops / rate_pre
    for c in plan.todo:
        per_unit[c.pretrain_key] = per_unit.get(c.pretrain_key, 0.0) + c.flops / (
            unit_rate.get(c.pretrain_key) or rate_proto)
    if step_times:
        source = f"step times measured on this machine for {len(step_times)} unit(s); others: {source}"
    # one unit (its pretraining, then its cells) runs in one worker: the longest bounds the wall time
    return max(sum(per_unit.values()) / max(1, workers), max(per_unit.values(), default=0.0)), source

