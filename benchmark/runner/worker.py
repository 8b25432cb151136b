"""The worker: one work unit -> load the data, pretrain or load the unit's checkpoint (and its dependencies'),
run its cells and write one record per cell. Runs in-process, in a joblib worker or in a dask worker, with a
fixed number of torch threads and the planned precision, so every backend writes the same records.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmark import store
from benchmark.contracts.method import DataInfo
from benchmark.registry import DATASETS, METHODS, PROTOCOLS
from benchmark.runner.units import CODE_VERSION, Cell, WorkUnit, cell_label

_DATA_CACHE: dict[tuple, Any] = {}


@contextmanager
def environment(env: Mapping[str, str], threads: int, precision: str = "fp32") -> Iterator[None]:
    from benchmark.hardware import training_numerics

    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with training_numerics(threads, precision):
            yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ensure_registered(registrations: list[tuple[str, str, str, str]]) -> None:
    """Register plugins that a worker process has not imported (e.g. defined in a test module)."""
    registries = {"dataset": DATASETS, "method": METHODS, "protocol": PROTOCOLS}
    for kind, name, module, qualname in registrations:
        reg = registries[kind]
        if name in reg:
            continue
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if name not in reg:  # importing the module may have registered it
            reg.add(name, obj)


def _load_data(name: str, options: dict[str, Any], root: str | None, device: Any) -> Any:
    from benchmark.data import load_dataset

    key = (name, store.canonical_json(options), root, str(device), os.environ.get("MMHAR_CACHE"))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # keep one dataset in memory per worker
        _DATA_CACHE[key] = load_dataset(name, root, **options).to(device)
    return _DATA_CACHE[key]


def _count(module: Any, trainable: bool) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable))


class _Units:
    """Obtains Pretrained objects of a work unit's chain: load a checkpoint, or pretrain, save and reload."""

    def __init__(self, work: WorkUnit, data: Any, device: Any) -> None:
        self.work, self.data, self.device = work, data, device
        self.info = DataInfo.from_data(data, data.split(work.pretrain.split))
        self.results_dir = Path(work.results_dir)
        self.memo: dict[str, Any] = {}
        self.trained: dict[str, float] = {}  # unit key -> seconds spent pretraining it here

    def get(self, key: str) -> Any:
        from benchmark.pretrain import load_checkpoint, pretrain, save_checkpoint

        if key in self.memo:
            return self.memo[key]
        u = self.work.units[key]
        deps = {dk: self.get(uk) for dk, uk in u.deps.items()}
        path = store.checkpoint_path(self.results_dir, key)
        pre = None
        if path.is_file():
            try:
                pre = load_checkpoint(path, self.info, deps=deps or None, device=self.device)
            except Exception as exc:  # a truncated or stale checkpoint is retrained, not trusted
                print(f"warning: checkpoint {path} cannot be loaded ({exc!r}); retraining it", file=sys.stderr)
                pre = None
        if pre is None:
            split = self.data.split(u.split)
            what = f"{u.variant} seed {u.seed} on {u.dataset}/{u.split}"
            if os.environ.get("MMHAR_UNIT_LINES") == "1":
                print(f"pretraining {what} ({u.resolved.get('epochs', '?')} epochs) started", file=sys.stderr,
                      flush=True)
            # the config resolved at planning (resolving it again is the identity)
            trained = pretrain(u.method, self.data, split, u.resolved, u.seed, device=self.device,
                               deps=deps or None, quiet=True)
            self.trained[key] = float(getattr(trained, "seconds", 0.0))
            print(f"pretrained {what} in {self.trained[key] / 60:.1f} min", file=sys.stderr, flush=True)
            save_checkpoint(trained, path)
            del trained
            pre = load_checkpoint(path, self.info, deps=deps or None, device=self.device)
        self.memo[key] = pre
        return pre


OWNER_POLL_S = 5.0
_WATCHED: set[str] = set()


def watch_owner(owner: str | None) -> None:
    """In a worker process, exit once the run that dispatched the work is gone (killed outright).

    Why: joblib's loky workers outlive a SIGKILLed parent and finish their unit, training on for up to an hour
    beside the run that resumes. Nothing is lost by exiting: records and checkpoints are written atomically,
    and the resumed run recomputes what was in flight. In the dispatching process itself this does nothing.
    """
    from benchmark.atomic import owner_gone, owner_tag

    if not owner or owner == owner_tag() or owner in _WATCHED:
        return
    _WATCHED.add(owner)

    def poll() -> None:
        while not owner_gone(owner):
            time.sleep(OWNER_POLL_S)
        os._exit(3)

    threading.Thread(target=poll, name="mmhar-owner-watch", daemon=True).start()


def run_work_unit(work: WorkUnit, on_cell: Callable[[str, dict[str, Any]], None] | None = None,
                  ) -> tuple[str, list[dict[str, Any]], str | None]:
    """Pretrain (or load) one unit and run its cells, writing one record per cell; return the outcomes.

    Runs in the calling process (serial), a joblib worker or a dask worker. An exception in one cell is
    recorded as that cell's failure (unless fail_fast); a failed pretraining fails all the unit's cells.
    """
    import torch

    from benchmark.engine import resolve_device
    from benchmark.protocols.features import FeatureCache, sharing_features

    ensure_registered([tuple(r) for r in work.registrations])  # type: ignore[misc]
    watch_owner(work.owner)
    outcomes: list[dict[str, Any]] = []
    with environment(work.env, work.threads, work.precision):
        device = resolve_device(work.device)
        unit = work.pretrain
        results_dir = Path(work.results_dir)
        ckpt_existed = store.checkpoint_path(results_dir, work.unit).is_file()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        try:
            data = _load_data(unit.dataset, unit.dataset_options, work.data_root, device)
            units = _Units(work, data, device)
            pre = units.get(work.unit)
        except Exception:
            if work.fail_fast:
                raise
            err = traceback.format_exc()
            return work.unit, [{"key": c.key, "label": cell_label(c), "error": err, "flops": c.flops}
                               for c in work.cells], err
        load_s = time.perf_counter() - t0
        pretrain_s = units.trained.get(work.unit, float(getattr(pre, "seconds", 0.0) or 0.0))
        split = data.split(unit.split)
        params = {"trainable": _count(pre.method, True),
                  "encoders": {m: _count(e, False) for m, e in pre.encoders().items()}}
        health = _health(pre, data, split)
        features = FeatureCache(pre.encoders())  # encode once: every cell of the unit shares frozen features
        for c in work.cells:
            t1 = time.perf_counter()
            try:
                with sharing_features(features):
                    result = _evaluate(c, pre, data, split, device)
                protocol_s = time.perf_counter() - t1
                timings = {"pretrain_s": round(pretrain_s, 3), "pretrain_cached": ckpt_existed,
                           "load_s": round(load_s if ckpt_existed else load_s - pretrain_s, 3),
                           "protocol_s": round(protocol_s, 3),
                           "total_s": round(protocol_s + (0.0 if ckpt_existed else pretrain_s), 3)}
                rec = build_record(work, c, result, timings, params, device, data, split, health)
                store.write_record(results_dir, rec)
                outcomes.append({"key": c.key, "label": cell_label(c), "metrics": rec["metrics"],
                                 "seconds": protocol_s, "flops": c.flops})
            except Exception:
                if work.fail_fast:
                    raise
                outcomes.append({"key": c.key, "label": cell_label(c), "error": traceback.format_exc(),
                                 "seconds": time.perf_counter() - t1, "flops": c.flops})
            if on_cell is not None:
                on_cell(work.unit, outcomes[-1])
    return work.unit, outcomes, None


def _health(pre: Any, data: Any, split: Any) -> dict[str, Any] | None:
    """The collapse monitors of each frozen encoder on the split's training clips (None when they fail)."""
    from benchmark.health import encoder_health, training_clips

    idx = training_clips(split)
    if idx.numel() < 2:
        return None
    try:
        return {m: encoder_health(e, data.modalities[m][idx.to(data.modalities[m].device)])
                for m, e in sorted(pre.encoders().items())}
    except Exception as exc:  # a monitor must never fail a cell
        print(f"warning: feature health of {pre.variant} not computed ({exc!r})", file=sys.stderr)
        return None


def _evaluate(c: Cell, pre: Any, data: Any, split: Any, device: Any) -> Any:
    from benchmark.engine import seed_everything

    protocol = PROTOCOLS.get(c.protocol)()
    seed_everything(c.seed)
    return protocol.run(pre, data, split, dict(c.protocol_resolved), c.seed, device=device)


def test_predictions(result: Any, data: Any, split: Any) -> dict[str, Any] | None:
    """Per-clip test predictions: clip ids, every group (subject, ...), true and predicted labels (and for retrieval
    each query's average precision, "ap"), in the order of the split's test part (None when the protocol gave no
    predictions of the whole test part)."""
    pred = getattr(result, "predictions", None)
    test = [int(i) for i in split.test]
    if pred is None or len(pred) != len(test):
        return None
    labels = data.labels.cpu().numpy()
    out = {"ids": [data.ids[i] for i in test], "groups": {g: [int(v[i]) for i in test] for g, v in data.groups.items()},
           "y_true": [int(labels[i]) for i in test], "y_pred": [int(v) for v in pred]}
    ap = getattr(result, "query_ap", None)
    if ap is not None and len(ap) == len(test):
        out["ap"] = list(ap)
    return out


def build_record(work: WorkUnit, c: Cell, result: Any, timings: dict[str, Any], params: dict[str, Any],
                 device: Any, data: Any, split: Any = None, health: dict[str, Any] | None = None,
                 ) -> dict[str, Any]:
    """The record of one evaluated cell (schema: benchmark.store)."""
    from benchmark.hardware import cpu_info

    unit = work.pretrain
    training = data.meta.get("training")
    return store.make_record(
        key=c.key, cell=c.describe(),
        metrics=result.metrics, per_class=result.per_class, artifacts=result.artifacts,
        timings=timings, params=params, peak_memory=store.peak_memory_mb(device), device=str(device),
        data_fingerprint=c.data_fingerprint, code_version=CODE_VERSION,
        extra={
            "pretrain": {"key": work.unit, "method_resolved": unit.resolved, "deps": unit.deps},
            "dataset_options": unit.dataset_options,
            "protocol_resolved": c.protocol_resolved,
            "estimate": {"pretrain_flops": unit.flops, "protocol_flops": c.flops},
            "threads": work.threads,
            "precision": work.precision,
            "cpu": cpu_info(),
            "main_metric": training.main_metric_key if training is not None else "accuracy",
            "training_profile": training.describe() if training is not None else None,
            "test_predictions": test_predictions(result, data, split) if split is not None else None,
            "feature_health": health,
            "code": dict(c.code),
            "suite": work.suite,
        },
    )
