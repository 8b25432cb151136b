"""Measured training-step times for the dry-run's estimate, cached per machine, precision and method config.

Why: a FLOP count divided by a fixed rate was off by 3-10x (the methods run at 20-75 % of the matmul rate,
and bf16 changes it again). `measure_step_times` times a few real training steps (the fast path, the plan's
precision, the run's thread count, 2 warm-up steps, the median of 3) of every method configuration a plan
pretrains, on the plan's data, and caches each step time in `<cache>/step_times.json` under a key of the CPU
model and flags, torch version, device type, precision, threads, method, resolved config and data shapes.
A unit then takes epochs x (train steps + validation batches / 3) step times; a protocol cell's FLOPs run at
the rate of its unit's method.
"""
from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import store
from benchmark.hardware import cpu_info, training_numerics

CACHE_FILE = "step_times.json"
_SCHEDULE_ONLY = ("epochs", "scheduler", "monitor", "monitor_mode", "plateau_factor", "plateau_patience",
                  "early_stop", "early_stop_mode", "early_stop_patience", "select", "select_mode")


def _cache_path() -> Path:
    from benchmark.data import cache_dir

    return cache_dir() / CACHE_FILE


def _read_cache(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError, TypeError):
        return {}  # absent or unreadable: measure again


def rate_key(method: str, resolved: dict[str, Any], shapes: dict[str, Any], device: str, precision: str,
             threads: int) -> str:
    """The cache key of one method configuration's step time on this machine."""
    cpu = cpu_info()
    cfg = {k: v for k, v in resolved.items() if k not in _SCHEDULE_ONLY}
    blob = store.canonical_json({"cpu": cpu["model"], "flags": cpu["flags"], "torch": torch.__version__,
                                 "device": device, "precision": precision, "threads": threads, "method": method,
                                 "cfg": cfg, "shapes": {k: list(v) for k, v in shapes.items()}})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _time_steps(method: str, overrides: dict[str, Any], data: Any, device: torch.device, steps: int = 3) -> float:
    from benchmark.bench import _Runner

    runner = _Runner(method, overrides, data, np.arange(len(data)), device)
    for _ in range(2):
        runner.step(runner.batch())
    times, _ = runner.timed(steps)
    return float(statistics.median(times))


def measure_step_times(plan: Any, device: str = "cpu", threads: int = 1, data_root: str | None = None,
                       log: Callable[[str], None] = lambda s: None) -> dict[str, float]:
    """{pretrain unit key: seconds per training step} for the units of `plan` left to train (cached)."""
    from benchmark.data import load_dataset
    from benchmark.engine import resolve_device

    dev = resolve_device(device)
    path = _cache_path()
    cache = _read_cache(path)
    out: dict[str, float] = {}
    todo = [k for k in plan.needed_units() if k not in plan.cached]
    measured = 0
    loaded: dict[str, Any] = {}  # one load per dataset and options, not per unit
    with training_numerics(threads, plan.precision):
        for k in todo:
            u = plan.units[k]
            info = plan.dataset_of(u.dataset, u.split)
            if info is None:
                continue
            if not int(u.resolved.get("epochs", 1) or 0):
                continue  # never trains (e.g. a random-init floor): nothing to time
            key = rate_key(u.method, u.resolved, info.shapes, dev.type, plan.precision, threads)
            if key not in cache:
                try:
                    ident = store.canonical_json([u.dataset, u.dataset_options])
                    if ident not in loaded:
                        loaded[ident] = load_dataset(u.dataset, data_root or info.root, **u.dataset_options)
                    log(f"measuring the training step of {u.variant} ({plan.numerics}, {threads} thread(s))")
                    cache[key] = _time_steps(u.method, dict(u.overrides), loaded[ident], dev)
                    measured += 1
                except Exception as exc:  # an estimate must not stop a dry-run: fall back to the FLOP rate
                    log(f"could not time {u.variant}: {exc}; its estimate uses the FLOP rate")
                    continue
            out[k] = cache[key]
    if measured:
        try:
            store.atomic_write_text(path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass  # a read-only cache only costs a re-measurement next time
    return out


def unit_seconds(unit: Any, sizes: dict[str, int], step_s: float) -> float:
    """Pretraining time of `unit`: epochs x (full training batches + validation batches at 1/3 of a step)."""
    batch = max(1, int(unit.resolved.get("batch_size", 64) or 64))
    epochs = int(unit.resolved.get("epochs", 1) or 0)
    train_steps = max(1, sizes["train"] // batch)
    val_steps = -(-sizes["val"] // batch) if sizes["val"] else 0
    return epochs * (train_steps + val_steps / 3) * step_s


def flop_rate(unit: Any, sizes: dict[str, int], step_s: float) -> float:
    """The FLOP/s of the unit's method in the planner's FLOP model (for its protocol cells)."""
    secs = unit_seconds(unit, sizes, step_s)
    return unit.flops / secs if secs > 0 else 0.0


__all__ = ["CACHE_FILE", "flop_rate", "measure_step_times", "rate_key", "unit_seconds"]
