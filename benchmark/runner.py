"""The runner: a suite -> cells and pretrain units -> cache lookup -> serial, joblib or dask execution.

A **cell** is (dataset, split, method, method config, protocol, protocol config, seed). A **pretrain unit**
is (dataset, split, method, method config, seed): every protocol of a unit reuses one checkpoint,
`<results_dir>/checkpoints/<unit key>.pt`. Units can depend on other units (CMC-CMKM's SimCLR teachers,
declared by `Method.dependencies`); a dependency is keyed by its own resolved config, so a teacher with the
same config as a benchmarked SimCLR variant is trained once and shared.

Keys are sha256 (first 16 hex digits) of canonical JSON holding the *resolved* configs, the data
fingerprint and `CODE_VERSION`, so a changed default, dataset file or code version gives new keys and
the old records are not reused. A rerun skips cells whose record exists; a killed run loses at most the
cells in flight (records and checkpoints are written atomically).

Work is dispatched in *work units*: one pretrain unit with its cells to do. Units are run in stages by
dependency depth (teachers first), so no checkpoint is trained twice concurrently. Every work unit seeds
everything from the cell's seed, runs with a fixed number of torch threads (`RunSettings.threads`, default 1:
CPU results depend on the thread count, so it must not follow --jobs) and evaluates the checkpoint as
reloaded from disk, so serial, joblib and dask runs, and interrupted-then-resumed runs, give the same
records. Parallelism comes from running work units side by side (--jobs), not from threads inside one.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from benchmark import store
from benchmark.registry import DATASETS, METHODS, PROTOCOLS
from benchmark.suites import Suite, SuiteError, parse_protocol, parse_variant

# Bump when stored results change meaning: every key changes and all cells are recomputed.
# 3: fast CPU kernels (cheap dropout masks, fused feed-forward block) change the CPU random stream.
CODE_VERSION = "3"
BACKENDS = ("local", "joblib", "dask")
DEVICES = ("auto", "cpu", "cuda")

# Rough forward FLOPs per sample of the reference backbones on UTD-MHAD shapes (spec 9), scaled by shape.
_FWD_FLOPS = {"inertial": (108.5e6, 50, 1), "skeleton": (91.6e6, 50, 20)}
_DEFAULT_FLOPS_PER_S = {"cpu": 20e9, "cuda": 2e12}  # used when no past timings exist


class RunError(RuntimeError):
    """A run could not be planned or executed; the message says what to change."""


# -- plan -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PretrainUnit:
    """One pretraining job: its key, what it trains, and the units it depends on ({dependency key: unit key})."""

    key: str
    dataset: str
    dataset_options: dict[str, Any]
    split: str
    method: str
    variant: str
    overrides: dict[str, Any]
    resolved: dict[str, Any]
    seed: int
    deps: dict[str, str]
    flops: float


@dataclass(frozen=True)
class Cell:
    """One evaluation: a protocol configuration applied to a pretrain unit with a seed."""

    key: str
    pretrain_key: str
    dataset: str
    split: str
    method: str
    variant: str
    method_cfg: dict[str, Any]
    protocol: str
    protocol_cfg: dict[str, Any]  # overrides only (what the record shows)
    protocol_resolved: dict[str, Any]  # what the protocol runs with
    protocol_variant: str
    seed: int
    data_fingerprint: str
    flops: float

    def describe(self) -> dict[str, Any]:
        """The record's `cell` object."""
        return {"dataset": self.dataset, "split": self.split, "method": self.method, "variant": self.variant,
                "method_cfg": self.method_cfg, "protocol": self.protocol, "protocol_cfg": self.protocol_cfg,
                "protocol_variant": self.protocol_variant, "seed": self.seed}


@dataclass
class DatasetInfo:
    """What planning learnt about one dataset: its fingerprint, profile and split sizes."""

    name: str
    options: dict[str, Any]
    split: str
    fingerprint: str
    profile: str
    sizes: dict[str, int]
    layouts: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    root: str | None


@dataclass
class Plan:
    """Everything a run will do, and what is already done."""

    suite: str
    results_dir: Path
    cells: list[Cell]
    units: dict[str, PretrainUnit]  # in dependency order (dependencies first)
    datasets: dict[str, DatasetInfo]
    done: set[str] = field(default_factory=set)  # cell keys with a valid record
    cached: set[str] = field(default_factory=set)  # unit keys with a checkpoint
    corrupt: list[str] = field(default_factory=list)  # messages about corrupt records (to recompute)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (variant, protocol, why) not applicable
    messages: list[str] = field(default_factory=list)
    numerics: str = "cpu-fp32"  # device type and resolved precision of every key, e.g. 'cpu-bf16'

    @property
    def precision(self) -> str:
        """The resolved training precision ('fp32' or 'bf16') the plan's keys were made for."""
        return self.numerics.rsplit("-", 1)[-1]

    @property
    def todo(self) -> list[Cell]:
        return [c for c in self.cells if c.key not in self.done]

    def needed_units(self) -> list[str]:
        """Units to run: those with cells to do, plus the missing checkpoints they depend on (dependency order)."""
        need: set[str] = set()

        def add_deps(key: str) -> None:
            for dep in self.units[key].deps.values():
                if dep not in self.cached and dep not in need:
                    need.add(dep)
                    add_deps(dep)

        for c in self.todo:
            if c.pretrain_key not in need:
                need.add(c.pretrain_key)
                add_deps(c.pretrain_key)
        return [k for k in self.units if k in need]

    def depth(self, key: str) -> int:
        """Longest dependency chain below a unit (0 for units without dependencies)."""
        deps = self.units[key].deps.values()
        return 0 if not deps else 1 + max(self.depth(d) for d in deps)

    def stages(self) -> list[list[str]]:
        """Needed units grouped by dependency depth: each stage only needs checkpoints of earlier stages."""
        by_depth: dict[int, list[str]] = {}
        for k in self.needed_units():
            by_depth.setdefault(self.depth(k), []).append(k)
        return [by_depth[d] for d in sorted(by_depth)]

    def estimate_seconds(self, device: str, workers: int = 1,
                         step_times: Mapping[str, float] | None = None) -> tuple[float, str]:
        """Estimated wall time of the remaining work on `workers` parallel work units, and the rate's source.

        `step_times` ({unit key: seconds per training step}, `rates.measure_step_times`) time the units measured
        on this machine; other units use FLOP rates from past records (timed inside their worker), else a rough
        default. The work divides by the number of workers, but never below the longest single unit.
        """
        from benchmark import rates

        rate_pre, rate_proto, source = throughput(self.results_dir, device)
        step_times = dict(step_times or {})
        per_unit: dict[str, float] = {}
        unit_rate: dict[str, float] = {}
        for k in self.needed_units():
            u = self.units[k]
            if k in self.cached:
                per_unit[k] = 0.0
            elif k in step_times and u.dataset in self.datasets:
                sizes = self.datasets[u.dataset].sizes
                per_unit[k] = rates.unit_seconds(u, sizes, step_times[k])
                unit_rate[k] = rates.flop_rate(u, sizes, step_times[k])
            else:
                per_unit[k] = u.flops / rate_pre
        for c in self.todo:
            per_unit[c.pretrain_key] = per_unit.get(c.pretrain_key, 0.0) + c.flops / (
                unit_rate.get(c.pretrain_key) or rate_proto)
        if step_times:
            source = f"step times measured on this machine for {len(step_times)} unit(s); others: {source}"
        # one unit (its pretraining, then its cells) runs in one worker: the longest bounds the wall time
        return max(sum(per_unit.values()) / max(1, workers), max(per_unit.values(), default=0.0)), source

    def summary(self, device: str = "cpu", detail: bool = False, workers: int = 1,
                step_times: Mapping[str, float] | None = None) -> str:
        """A human-readable description of the plan (what --dry-run prints), timed for `workers` work units."""
        lines = [f"suite {self.suite}: results in {self.results_dir}"]
        for d in self.datasets.values():
            sizes = " / ".join(f"{v} {k}" for k, v in d.sizes.items())
            opts = f" {d.options}" if d.options else ""
            lines.append(f"  dataset {d.name}{opts}, split {d.split}: {sizes} clips (profile {d.profile})")
        todo = self.todo
        needed = self.needed_units()
        to_train = [k for k in needed if k not in self.cached]
        with_cells = {c.pretrain_key for c in self.cells}
        lines.append(f"  cells: {len(self.cells)} total, {len(self.done & {c.key for c in self.cells})} done, "
                     f"{len(todo)} to run")
        lines.append(f"  pretrain units: {len(self.units)} ({len(self.units) - len(with_cells)} only as "
                     f"dependencies); {len(self.cached & set(self.units))} checkpoints cached, "
                     f"{len(to_train)} to train, {len(needed) - len(to_train)} to load")
        if self.skipped:
            pairs = sorted({f"{v} x {p}" for v, p, _ in self.skipped})
            lines.append(f"  not applicable (protocol does not evaluate the method's kind): {', '.join(pairs)}")
        for m in self.corrupt:
            lines.append(f"  corrupt record: {m}")
        lines.extend(f"  {m}" for m in self.messages if m.startswith("warning:"))
        secs, source = self.estimate_seconds(device, workers, step_times)
        flops = sum(self.units[k].flops for k in to_train) + sum(c.flops for c in todo)
        on = f"{device} ({self.numerics})" + (f" with {workers} parallel work units" if workers > 1 else "")
        lines.append(f"  estimated cost left: {flops / 1e12:.1f} TFLOP, about {format_seconds(secs)} on {on} "
                     f"({source})")
        lines.append(self.table())
        if detail:
            for c in todo:
                lines.append(f"  todo {c.key} {c.dataset} {c.variant} {c.protocol_variant} seed {c.seed}")
        return "\n".join(lines)


    def table(self) -> str:
        """Cells to run / total per method variant (rows) and protocol (columns; variants and seeds summed)."""
        from tabulate import tabulate

        protocols = list(dict.fromkeys(c.protocol for c in self.cells))
        counts: dict[str, dict[str, list[int]]] = {}
        for c in self.cells:
            n = counts.setdefault(c.variant, {}).setdefault(c.protocol, [0, 0])
            n[0] += c.key not in self.done
            n[1] += 1
        rows = [[v] + [f"{by_p[p][0]}/{by_p[p][1]}" if p in by_p else "-" for p in protocols]
                for v, by_p in counts.items()]
        return "cells to run / total:\n" + tabulate(rows, headers=["method variant", *protocols], tablefmt="simple")


def format_seconds(s: float) -> str:
    """'1h02m', '3m05s', '12s'."""
    s = max(0.0, float(s))
    if s >= 3600:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    if s >= 60:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{s:.0f}s"


def _hash(obj: Any) -> str:
    return hashlib.sha256(store.canonical_json(obj).encode()).hexdigest()[:16]


def _fwd_flops(info: DatasetInfo, modalities: list[str]) -> float:
    total = 0.0
    for m in modalities:
        base, t_ref, j_ref = _FWD_FLOPS.get(info.layouts.get(m, "inertial"), _FWD_FLOPS["inertial"])
        shape = info.shapes.get(m, ())
        t = shape[1] if len(shape) > 1 else t_ref
        j = shape[2] if len(shape) > 2 else j_ref
        total += base * (t / t_ref) * (j / j_ref)
    return total


def _used_modalities(info: DatasetInfo, cfg: Mapping[str, Any]) -> list[str]:
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


def _dataset_info(name: str, options: dict[str, Any], split: str | None, root: str | None) -> tuple[DatasetInfo, Any]:
    from benchmark.data import load_dataset, resolve_root

    plugin = DATASETS.get(name)
    data = load_dataset(name, root, **options)
    split_name = split or data.meta["default_split"]
    sp = data.split(split_name)
    info = DatasetInfo(
        name=name, options=dict(options), split=split_name, fingerprint=data.fingerprint,
        profile=data.meta["profile"], sizes={p: int(len(sp.part(p))) for p in ("train", "val", "test")},
        layouts={m: s["layout"] for m, s in data.meta["modality_specs"].items()},
        shapes={m: tuple(int(d) for d in t.shape[1:]) for m, t in data.modalities.items()},
        root=str(resolve_root(root)) if plugin.needs_root else None,
    )
    return info, data


def _protocol_variant(pcls: Any, cfg: dict[str, Any], siblings: list[dict[str, Any]],
                     chosen: dict[str, Any] | None = None) -> str:
    """The protocol's own variant name, or name[k=v] over the keys in which the expanded configs differ,
    followed by the overrides of a protocol variant spec (`chosen`, e.g. bn_mode=frozen)."""
    name = pcls.variant_name(cfg) if hasattr(pcls, "variant_name") else pcls.name
    if name == pcls.name and len(siblings) > 1:
        keys = sorted(k for k in cfg if any(s.get(k) != cfg[k] for s in siblings))
        name = f"{pcls.name}[{','.join(f'{k}={cfg[k]}' for k in keys)}]"
    if not chosen:
        return name
    extra = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(chosen.items()))
    return f"{name[:-1]},{extra}]" if name.endswith("]") else f"{name}[{extra}]"


def numerics_tag(device: Any = "auto", precision: str | None = None) -> str:
    """Device type and resolved precision that results depend on, e.g. 'cpu-bf16' (part of every key)."""
    from benchmark.engine import resolve_device
    from benchmark.hardware import numerics, resolve_precision

    dev = resolve_device(device)
    return numerics(dev, resolve_precision(precision, dev))


class _Planner:
    """Builds units and cells for one dataset (keys depend on its fingerprint, profile and numerics)."""

    def __init__(self, suite: Suite, info: DatasetInfo, numerics: str = "cpu-fp32") -> None:
        self.suite, self.info, self.numerics = suite, info, numerics
        self.units: dict[str, PretrainUnit] = {}
        self.warnings: list[str] = []

    def unit(self, method: str, overrides: dict[str, Any], seed: int, variant: str | None = None) -> PretrainUnit:
        cls = METHODS.get(method)
        ov = {**self.suite.method_overrides.get(method, {}), **overrides}
        resolved = cls.resolve_config(self.info.profile, ov)
        ov.update(self.suite.shrink.overrides(resolved))
        resolved = cls.resolve_config(self.info.profile, ov)
        deps = {d.key: self.unit(d.method, dict(d.overrides), seed).key for d in cls.dependencies(resolved)}
        key = _hash({"kind": "pretrain", "dataset": self.info.name, "dataset_options": self.info.options,
                     "split": self.info.split, "method": method, "cfg": resolved, "deps": deps, "seed": seed,
                     "fingerprint": self.info.fingerprint, "code_version": CODE_VERSION,
                     "numerics": self.numerics})
        if key in self.units:
            return self.units[key]
        views = max(1, int(getattr(cls, "n_views", 1) or 0))
        n = self.info.sizes
        epochs = int(resolved.get("epochs", 1) or 0)
        fwd = _fwd_flops(self.info, _used_modalities(self.info, resolved))
        flops = epochs * (3 * views * n["train"] + n["val"]) * fwd
        unit = PretrainUnit(key=key, dataset=self.info.name, dataset_options=self.info.options, split=self.info.split,
                            method=method, variant=variant or cls.variant_name(resolved), overrides=ov,
                            resolved=resolved, seed=seed, deps=deps, flops=flops)
        self.units[key] = unit  # after its dependencies: dict order is dependency order
        batch = resolved.get("batch_size")
        if isinstance(batch, int) and batch > n["train"]:
            self.warnings.append(f"{unit.variant} on {self.info.name}: batch_size {batch} exceeds the "
                                 f"{n['train']} training clips of split {self.info.split}; its pretraining will "
                                 f"fail unless the batch size is lowered")
        return unit

    def cells(self, spec: str, seed: int, skipped: list[tuple[str, str, str]]) -> list[Cell]:
        method, overrides = parse_variant(spec)
        cls = METHODS.get(method)
        probe = cls.resolve_config(self.info.profile, {**self.suite.method_overrides.get(method, {}), **overrides})
        variant = spec.strip() if any(k != "modality" for k in overrides) else cls.variant_name(probe)
        unit = self.unit(method, overrides, seed, variant)
        out = []
        for spec in self.suite.protocol_names():
            protocol, chosen = parse_protocol(spec)
            pcls = PROTOCOLS.get(protocol)
            applies = pcls.applies_to(cls.kind) if hasattr(pcls, "applies_to") else cls.kind in pcls.kinds
            if not applies:
                skipped.append((variant, protocol, f"kind {cls.kind}"))
                continue
            base = {**self.suite.protocol_overrides.get(protocol, {}), **chosen}
            base.update(self.suite.shrink.overrides(pcls.resolve_config(base)))
            resolved = pcls.resolve_config(base)
            defaults = pcls.resolve_config({})
            expanded = _expand(pcls, resolved, self.info.profile)
            for cfg in expanded:
                shown = {k: v for k, v in cfg.items() if k in base or k not in defaults or defaults[k] != v}
                key = _hash({"kind": "cell", "pretrain": unit.key, "protocol": protocol, "cfg": cfg, "seed": seed,
                             "fingerprint": self.info.fingerprint, "code_version": CODE_VERSION,
                             "numerics": self.numerics})
                if any(c.key == key for c in out):  # a protocol variant that restates the defaults
                    continue
                n = self.info.sizes
                p_epochs = int(cfg.get("epochs", 1) or 1)
                fwd = _fwd_flops(self.info, _used_modalities(self.info, unit.resolved))
                flops = (p_epochs * n["train"] + n["val"] + n["test"]) * fwd
                out.append(Cell(key=key, pretrain_key=unit.key, dataset=self.info.name, split=self.info.split,
                                method=method, variant=variant, method_cfg=unit.overrides, protocol=protocol,
                                protocol_cfg=shown, protocol_resolved=cfg,
                                protocol_variant=_protocol_variant(pcls, cfg, expanded, chosen), seed=seed,
                                data_fingerprint=self.info.fingerprint, flops=flops))
        return out


def _expand(pcls: Any, cfg: dict[str, Any], profile: str) -> list[dict[str, Any]]:
    """The protocol's cells for one config (`expand(cfg, profile)`, or `expand(cfg)` for older protocols)."""
    if len(inspect.signature(pcls.expand).parameters) >= 2:
        return list(pcls.expand(cfg, profile))
    return list(pcls.expand(cfg))


def _how_to_get(name: str) -> str:
    """One line on how to make a dataset available (download where the plugin can fetch it)."""
    from datasets.base import DatasetPlugin

    cls = DATASETS.get(name)
    if getattr(cls, "download", None) is not DatasetPlugin.download:
        return (f"To get {name}: python run_all.py --download {name} [--data-root DIR], or point --data-root / "
                f"$MMHAR_DATA at a folder that holds it.")
    return f"{name} cannot be downloaded automatically: point --data-root / $MMHAR_DATA at a folder that holds it."


def plan_suite(suite: Suite, results_dir: Path, *, data_root: str | None = None,
               log: Callable[[str], None] = lambda s: None, device: Any = "auto",
               precision: str | None = None) -> Plan:
    """Expand a suite into cells and pretrain units, and look up what the results folder already holds.

    Keys include the device type and the resolved precision (`numerics_tag(device, precision)`; `precision`
    None takes the suite's): CPU-fp32, CPU-bf16 and CUDA-bf16 results never stand in for each other.
    """
    from datasets.base import DataNotFoundError

    results_dir = Path(results_dir)
    infos: dict[str, DatasetInfo] = {}
    messages: list[str] = []
    for name in suite.datasets:
        try:
            info, _ = _dataset_info(name, dict(suite.dataset_options.get(name, {})), suite.split, data_root)
        except DataNotFoundError as exc:
            hint = _how_to_get(name)
            if not suite.fallback_dataset or suite.fallback_dataset == name:
                raise RunError(f"{exc}\n{hint}") from exc
            fb = suite.fallback_dataset
            msg = f"{exc}\n{hint}\n-> the {suite.name} suite runs on {fb} instead of {name} for now."
            messages.append(msg)
            log(msg)
            if fb in infos:
                continue
            info, _ = _dataset_info(fb, dict(suite.dataset_options.get(fb, {})), suite.split, data_root)
        infos[info.name] = info
    cells: list[Cell] = []
    units: dict[str, PretrainUnit] = {}
    skipped: list[tuple[str, str, str]] = []
    specs = suite.variant_specs()
    numerics = numerics_tag(device, precision or suite.precision)
    for info in infos.values():
        planner = _Planner(suite, info, numerics)
        for spec in specs:
            for seed in suite.seeds:
                cells.extend(planner.cells(spec, seed, skipped))
        for k, u in planner.units.items():
            units.setdefault(k, u)
        for w in planner.warnings:
            messages.append(f"warning: {w}")
            log(f"warning: {w}")
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise SuiteError("the suite lists the same cell twice (duplicate method variants?)")
    plan = Plan(suite=suite.name, results_dir=results_dir, cells=cells, units=units, datasets=infos,
                skipped=sorted(set(skipped)), messages=messages, numerics=numerics)
    refresh(plan)
    return plan


def refresh(plan: Plan) -> None:
    """Re-read which cells have records and which units have checkpoints."""
    records, bad = store.scan_records(plan.results_dir)
    plan.done = set(records)
    plan.corrupt = [str(e) for e in bad]
    plan.cached = {k for k in plan.units if store.checkpoint_path(plan.results_dir, k).is_file()}


# -- execution ------------------------------------------------------------------------------------
@dataclass
class RunSettings:
    """How to execute a plan (none of this enters the keys)."""

    device: str = "auto"
    jobs: int = 1
    backend: str = "local"  # local: in-process when jobs == 1, joblib otherwise
    scheduler: str | None = None  # dask scheduler address; None starts a local cluster
    threads: int = 1  # torch threads per work unit: fixed, so results do not depend on jobs or backend
    quiet: bool = False
    fail_fast: bool = False
    data_root: str | None = None
    precision: str | None = None  # fp32 | bf16 | auto; None: the suite's default

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise RunError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise RunError(f"jobs must be an integer >= 1, got {self.jobs!r}")
        if self.scheduler and self.backend != "dask":
            raise RunError("--scheduler only applies to --backend dask")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise RunError(f"threads must be an integer >= 1, got {self.threads!r}")
        from benchmark.hardware import PRECISIONS

        if self.precision is not None and self.precision not in PRECISIONS:
            raise RunError(f"unknown precision {self.precision!r}; choose {', '.join(PRECISIONS)}")


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


def _payload(plan: Plan, unit_key: str, cells: list[Cell], settings: RunSettings) -> dict[str, Any]:
    """Everything a worker needs for one work unit (plain, picklable data)."""
    chain: dict[str, dict[str, Any]] = {}

    def collect(k: str) -> None:
        u = plan.units[k]
        chain[k] = asdict(u)
        for d in u.deps.values():
            collect(d)

    collect(unit_key)
    unit = plan.units[unit_key]
    regs = [_registration("dataset", unit.dataset, DATASETS.get(unit.dataset))]
    regs += [_registration("method", u["method"], METHODS.get(u["method"])) for u in chain.values()]
    regs += [_registration("protocol", c.protocol, PROTOCOLS.get(c.protocol)) for c in cells]
    env = {k: os.environ[k] for k in ("MMHAR_CACHE", "MMHAR_DATA", "MMHAR_PLUGINS", "MMHAR_MALLOC_TUNE")
           if k in os.environ}
    env["MMHAR_RESULTS"] = str(plan.results_dir.resolve())
    env["MMHAR_QUIET"] = "1"
    return {
        "unit": unit_key,
        "units": chain,
        "cells": [asdict(c) for c in cells],
        "results_dir": str(plan.results_dir.resolve()),
        "data_root": plan.datasets[unit.dataset].root if unit.dataset in plan.datasets else settings.data_root,
        "device": settings.device,
        "threads": settings.threads,
        "precision": plan.precision,
        "fail_fast": settings.fail_fast,
        "registrations": sorted(set(regs)),
        "env": env,
    }


def execute(plan: Plan, settings: RunSettings, *, log: Callable[[str], None] | None = None) -> RunSummary:
    """Run every cell of the plan that has no record yet; return a summary (failures are listed, not raised)."""
    if log is None:
        log = (lambda s: None) if settings.quiet else _stderr
    removed = store.clean_temp_files(plan.results_dir)
    for p in removed:
        log(f"removed temporary file left by an interrupted run: {p}")
    _set_aside_corrupt(plan, log)
    refresh(plan)
    todo = plan.todo
    summary = RunSummary(total=len(plan.cells), done_before=len(plan.cells) - len(todo), removed_temp=removed)
    if not todo:
        log(f"all {len(plan.cells)} cells already have records in {plan.results_dir}; nothing to run")
        return summary
    by_unit: dict[str, list[Cell]] = {}
    for c in todo:
        by_unit.setdefault(c.pretrain_key, []).append(c)
    total_cost = sum(plan.units[k].flops for k in plan.needed_units() if k not in plan.cached) + \
        sum(c.flops for c in todo)
    progress = _Progress(len(todo), total_cost, log)
    log(f"running {len(todo)} of {len(plan.cells)} cells ({len(plan.needed_units())} pretrain units) on "
        f"{settings.device} ({plan.numerics}) with backend {settings.backend}, jobs {settings.jobs}")
    failed_units: set[str] = set()
    t0 = time.perf_counter()
    reported: set[str] = set()
    charged: set[str] = set()

    def cell_done(unit_key: str, o: dict[str, Any]) -> None:
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
            failed_units.add(unit_key)
        for o in outcomes:
            cell_done(unit_key, o)
        if unit_key not in charged:
            charged.add(unit_key)
            progress.add_cost(plan.units[unit_key].flops if unit_key not in plan.cached else 0.0)

    stages = plan.stages()
    for stage in stages:
        payloads = []
        for k in stage:
            dead = [d for d in _all_deps(plan, k) if d in failed_units]
            cells = by_unit.get(k, [])
            if dead:
                failed_units.add(k)
                why = f"dependency {plan.units[dead[0]].variant} (pretrain unit {dead[0]}) failed"
                handle(k, [{"label": _label(c), "error": why, "key": c.key} for c in cells], None)
                continue
            payloads.append(_payload(plan, k, cells, settings))
        for unit_key, outcomes, err in _dispatch(payloads, settings, cell_done):
            handle(unit_key, outcomes, err)
    summary.seconds = time.perf_counter() - t0
    refresh(plan)
    log(f"finished: {summary.completed} cells computed, {len(summary.failed)} failed, {summary.done_before} were "
        f"already done ({format_seconds(summary.seconds)})")
    for label, err in summary.failed:
        log(f"FAILED {label}: {err.strip().splitlines()[-1] if err.strip() else err}")
    return summary


def _set_aside_corrupt(plan: Plan, log: Callable[[str], None]) -> None:
    """Report corrupt records and rename them to `*.json.corrupt` (kept for inspection; the cell is recomputed)."""
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
    """Cells done / total and an estimated time left (cost-weighted), as log lines."""

    def __init__(self, n: int, cost: float, log: Callable[[str], None]) -> None:
        self.n, self.cost, self.log = n, max(cost, 1.0), log
        self.done, self.cost_done, self.t0 = 0, 0.0, time.perf_counter()

    def add_cost(self, cost: float) -> None:
        self.cost_done += cost

    def cell_done(self, o: dict[str, Any]) -> None:
        self.done += 1
        self.cost_done += o.get("flops", 0.0)
        elapsed = time.perf_counter() - self.t0
        frac = min(1.0, self.cost_done / self.cost)
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        status = "FAILED" if o.get("error") else _metric_text(o.get("metrics", {}))
        self.log(f"[{self.done}/{self.n}] {o['label']}: {status} ({o.get('seconds', 0.0):.1f}s) "
                 f"- elapsed {format_seconds(elapsed)}, left ~{format_seconds(eta) if eta == eta else '?'}")


def _metric_text(metrics: Mapping[str, float]) -> str:
    keys = [k for k in ("accuracy", "f1_macro") if k in metrics]
    return ", ".join(f"{k} {100 * metrics[k]:.1f}%" for k in keys) or "done"


def _label(c: Cell | Mapping[str, Any]) -> str:
    d = asdict(c) if isinstance(c, Cell) else c
    return f"{d['dataset']} {d['variant']} {d['protocol_variant']} seed {d['seed']}"


def _dispatch(payloads: list[dict[str, Any]], settings: RunSettings,
              on_cell: Callable[[str, dict[str, Any]], None] | None = None,
              ) -> Iterator[tuple[str, list[dict], str | None]]:
    """Run payloads with the chosen backend, yielding (unit key, cell outcomes, unit error) as they finish.

    In-process runs also report each cell to `on_cell` as soon as it is stored.
    """
    if not payloads:
        return
    if settings.backend == "dask":
        yield from _dispatch_dask(payloads, settings)
    elif settings.backend == "joblib" or settings.jobs > 1:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=settings.jobs, backend="loky", return_as="generator_unordered")
        yield from par(delayed(run_work_unit)(p) for p in payloads)
    else:
        for p in payloads:
            yield run_work_unit(p, on_cell=on_cell)


def _dispatch_dask(payloads: list[dict[str, Any]], settings: RunSettings) -> Iterator[tuple[str, list[dict], str | None]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise RunError("--backend dask needs dask.distributed: pip install 'dask[distributed]'") from exc
    cluster = None
    if settings.scheduler:
        client = Client(settings.scheduler, timeout="30s")
    else:
        cluster = LocalCluster(n_workers=settings.jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(run_work_unit, payloads, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# -- the worker -----------------------------------------------------------------------------------
_DATA_CACHE: dict[tuple, Any] = {}


@contextmanager
def _environment(env: Mapping[str, str], threads: int, precision: str = "fp32") -> Iterator[None]:
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


def _ensure_registered(registrations: list[tuple[str, str, str, str]]) -> None:
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

    def __init__(self, payload: dict[str, Any], data: Any, device: Any) -> None:
        from methods.base import DataInfo

        self.p, self.data, self.device = payload, data, device
        self.info = DataInfo.from_data(data)
        self.results_dir = Path(payload["results_dir"])
        self.memo: dict[str, Any] = {}
        self.trained: dict[str, float] = {}  # unit key -> seconds spent pretraining it here

    def get(self, key: str) -> Any:
        from benchmark.pretrain import load_checkpoint, pretrain, save_checkpoint

        if key in self.memo:
            return self.memo[key]
        u = self.p["units"][key]
        deps = {dk: self.get(uk) for dk, uk in u["deps"].items()}
        path = store.checkpoint_path(self.results_dir, key)
        pre = None
        if path.is_file():
            try:
                pre = load_checkpoint(path, self.info, deps=deps or None, device=self.device)
            except Exception as exc:  # a truncated or stale checkpoint is retrained, not trusted
                print(f"warning: checkpoint {path} cannot be loaded ({exc!r}); retraining it", file=sys.stderr)
                pre = None
        if pre is None:
            split = self.data.split(u["split"])
            trained = pretrain(u["method"], self.data, split, u["overrides"], u["seed"], device=self.device,
                               deps=deps or None, quiet=True)
            self.trained[key] = float(getattr(trained, "seconds", 0.0))
            save_checkpoint(trained, path)
            del trained
            pre = load_checkpoint(path, self.info, deps=deps or None, device=self.device)
        self.memo[key] = pre
        return pre


def run_work_unit(payload: dict[str, Any], on_cell: Callable[[str, dict[str, Any]], None] | None = None,
                  ) -> tuple[str, list[dict[str, Any]], str | None]:
    """Pretrain (or load) one unit and run its cells, writing one record per cell; return the outcomes.

    Runs in the calling process (serial), a joblib worker or a dask worker. An exception in one cell is
    recorded as that cell's failure (unless fail_fast); a failed pretraining fails all the unit's cells.
    """
    import torch

    from benchmark.engine import resolve_device, seed_everything
    from benchmark.hardware import cpu_info

    _ensure_registered([tuple(r) for r in payload["registrations"]])
    cells = payload["cells"]
    outcomes: list[dict[str, Any]] = []
    precision = payload.get("precision", "fp32")
    with _environment(payload["env"], payload["threads"], precision):
        device = resolve_device(payload["device"])
        unit = payload["units"][payload["unit"]]
        results_dir = Path(payload["results_dir"])
        ckpt_existed = store.checkpoint_path(results_dir, payload["unit"]).is_file()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        try:
            data = _load_data(unit["dataset"], unit["dataset_options"], payload["data_root"], device)
            units = _Units(payload, data, device)
            pre = units.get(payload["unit"])
        except Exception:
            if payload["fail_fast"]:
                raise
            err = traceback.format_exc()
            return payload["unit"], [{"key": c["key"], "label": _label(c), "error": err, "flops": c["flops"]}
                                     for c in cells], err
        load_s = time.perf_counter() - t0
        pretrain_s = units.trained.get(payload["unit"], float(getattr(pre, "seconds", 0.0) or 0.0))
        split = data.split(unit["split"])
        params = {"trainable": _count(pre.method, True),
                  "encoders": {m: _count(e, False) for m, e in pre.encoders().items()}}
        for c in cells:
            t1 = time.perf_counter()
            try:
                protocol = PROTOCOLS.get(c["protocol"])()
                seed_everything(c["seed"])
                result = protocol.run(pre, data, split, dict(c["protocol_resolved"]), c["seed"], device=device)
                protocol_s = time.perf_counter() - t1
                cached = ckpt_existed
                rec = store.make_record(
                    key=c["key"],
                    cell=Cell(**c).describe(),
                    metrics=result.metrics, per_class=result.per_class, artifacts=result.artifacts,
                    timings={"pretrain_s": round(pretrain_s, 3), "pretrain_cached": cached,
                             "load_s": round(load_s if cached else load_s - pretrain_s, 3),
                             "protocol_s": round(protocol_s, 3),
                             "total_s": round(protocol_s + (0.0 if cached else pretrain_s), 3)},
                    params=params,
                    peak_memory=store.peak_memory_mb(device),
                    device=str(device),
                    data_fingerprint=c["data_fingerprint"],
                    code_version=CODE_VERSION,
                    extra={
                        "pretrain": {"key": payload["unit"], "method_resolved": unit["resolved"],
                                     "deps": unit["deps"]},
                        "dataset_options": unit["dataset_options"],
                        "protocol_resolved": c["protocol_resolved"],
                        "estimate": {"pretrain_flops": unit["flops"], "protocol_flops": c["flops"]},
                        "threads": payload["threads"],
                        "precision": precision,
                        "cpu": cpu_info(),
                    },
                )
                store.write_record(results_dir, rec)
                outcomes.append({"key": c["key"], "label": _label(c), "metrics": rec["metrics"],
                                 "seconds": protocol_s, "flops": c["flops"]})
            except Exception:
                if payload["fail_fast"]:
                    raise
                outcomes.append({"key": c["key"], "label": _label(c), "error": traceback.format_exc(),
                                 "seconds": time.perf_counter() - t1, "flops": c["flops"]})
            if on_cell is not None:
                on_cell(payload["unit"], outcomes[-1])
    return payload["unit"], outcomes, None


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


__all__ = ["CODE_VERSION", "Cell", "Plan", "PretrainUnit", "RunError", "RunSettings", "RunSummary", "execute",
           "metrics_by_cell", "plan_suite", "refresh", "run", "run_work_unit"]
