"""Planning: a suite -> cells and pretrain units for every dataset, with configs resolved once, inapplicable
pairs listed (never failed), and batch sizes checked against the training set before anything runs.

A bare method name stands for one variant per modality the dataset offers it (`Method.modality_options`);
a method that cannot run on a dataset (missing modality kind, too few modalities) is listed as not
applicable, as is a (method kind, protocol) pair the protocol does not evaluate. A batch size above a
split's training clips is capped to the training set (one full batch per epoch), recorded in the unit's
overrides and reported as a planning message.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.codehash import harness_hash, plugin_hash
from benchmark.contracts.dataset import DataNotFoundError, DatasetPlugin
from benchmark.contracts.method import DataInfo
from benchmark.registry import DATASETS, METHODS, PROTOCOLS
from benchmark.runner.cost import fwd_flops, used_modalities
from benchmark.runner.plan import Plan, refresh
from benchmark.runner.units import CODE_VERSION, Cell, DatasetInfo, PretrainUnit, RunError, key_of
from benchmark.suites import Suite, SuiteError, parse_protocol, parse_variant


def expand_split(dataset: str, split: str | None) -> list[str | None]:
    """The splits a suite's `split` stands for on `dataset`: itself, or every split of the family it names
    (e.g. 'xsub_folds' -> xsub_fold1..4); None: the dataset's default split."""
    if split is None:
        return [None]
    specs = DATASETS.get(dataset).splits
    if split in specs:
        return [split]
    family = [name for name, spec in specs.items() if getattr(spec, "family", None) == split]
    return list(family) or [split]  # an unknown name: loading reports the valid splits


def dataset_info(name: str, options: dict[str, Any], split: str | None, root: str | None) -> DatasetInfo:
    """Load dataset `name` (cached) and describe it for planning."""
    from benchmark.data import load_dataset, resolve_root

    plugin = DATASETS.get(name)
    data = load_dataset(name, root, **options)
    split_name = split or data.meta["default_split"]
    sp = data.split(split_name)
    return DatasetInfo(
        name=name, options=dict(options), split=split_name, fingerprint=data.fingerprint,
        sizes={p: int(len(sp.part(p))) for p in ("train", "val", "test")},
        data=DataInfo.from_data(data, sp),
        root=str(resolve_root(root)) if plugin.needs_root else None,
    )


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


def slow_bf16_warning(numerics: str) -> str | None:
    """A warning when bf16 is asked for on a CPU without native bf16 (its matmuls are emulated), else None."""
    from benchmark.hardware import cpu_info

    if numerics != "cpu-bf16" or cpu_info()["native_bf16"]:
        return None
    return (f"warning: bf16 on a CPU without native bf16 ({cpu_info()['model']}: no avx512_bf16 or amx_bf16); "
            "its matrix products are emulated, measured at 0.7 GFLOP/s against 120 in fp32 on an AVX2 AMD EPYC, "
            "so this run will be very slow. Use --precision fp32 (or auto) here, or run bf16 on a CPU that has it.")


class Planner:
    """Builds units and cells for one dataset (keys depend on its fingerprint, the configs and numerics)."""

    def __init__(self, suite: Suite, info: DatasetInfo, numerics: str = "cpu-fp32",
                 fixed_protocols: list[dict[str, Any]] | None = None) -> None:
        self.suite, self.info, self.numerics = suite, info, numerics
        self.fixed_protocols = fixed_protocols  # protocol cells to use instead of the suite's (see plan_suite)
        self.units: dict[str, PretrainUnit] = {}
        self.messages: list[str] = []
        self.harness = harness_hash()
        self.dataset_code = plugin_hash(DATASETS.get(info.name))
        self._method_code: dict[str, str] = {}

    def code(self, method: str) -> dict[str, str]:
        """The code hashes behind a method's cells on this dataset (benchmark.codehash; hashed once per plan)."""
        if method not in self._method_code:
            self._method_code[method] = plugin_hash(METHODS.get(method))
        return {"harness": self.harness, "method": self._method_code[method], "dataset": self.dataset_code}

    def resolve(self, method: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(overrides, resolved config) of a method on this dataset: the suite's overrides and shrink applied,
        the batch size capped to the training set."""
        cls = METHODS.get(method)
        info = self.info.data
        ov = {**self.suite.method_overrides.get(method, {}), **overrides}
        resolved = cls.resolve_config(info, ov)
        ov.update(self.suite.shrink.overrides(resolved))
        resolved = cls.resolve_config(info, ov)
        batch, n_train = resolved.get("batch_size"), self.info.sizes["train"]
        if isinstance(batch, int) and not isinstance(batch, bool) and batch > n_train > 0:
            ov["batch_size"] = n_train
            resolved = cls.resolve_config(info, ov)
            self.messages.append(f"note: {cls.variant_name(resolved)} on {self.info.name}: batch_size {batch} "
                                 f"exceeds the {n_train} training clips of split {self.info.split}; capped to "
                                 f"{n_train} (recorded in the cell's method config)")
        return ov, resolved

    def unit(self, method: str, overrides: dict[str, Any], seed: int, variant: str | None = None) -> PretrainUnit:
        cls = METHODS.get(method)
        ov, resolved = self.resolve(method, overrides)
        deps = {d.key: self.unit(d.method, dict(d.overrides), seed).key
                for d in cls.dependencies(resolved, self.info.data)}
        key = key_of({"kind": "pretrain", "dataset": self.info.name, "dataset_options": self.info.options,
                      "split": self.info.split, "method": method, "cfg": resolved, "deps": deps, "seed": seed,
                      "fingerprint": self.info.fingerprint, "code_version": CODE_VERSION,
                      "numerics": self.numerics, "code": self.code(method)})
        if key in self.units:
            return self.units[key]
        views = max(1, int(getattr(cls, "n_views", 1) or 0))
        n = self.info.sizes
        epochs = int(resolved.get("epochs", 1) or 0)
        fwd = fwd_flops(self.info, used_modalities(self.info, resolved))
        flops = epochs * (3 * views * n["train"] + n["val"]) * fwd
        unit = PretrainUnit(key=key, dataset=self.info.name, dataset_options=self.info.options, split=self.info.split,
                            method=method, variant=variant or cls.variant_name(resolved), overrides=ov,
                            resolved=resolved, seed=seed, deps=deps, flops=flops)
        self.units[key] = unit  # after its dependencies: dict order is dependency order
        return unit

    def _protocol_base(self, pcls: Any, protocol: str, chosen: dict[str, Any]) -> dict[str, Any]:
        """The protocol's config overrides in this suite: its own, a variant spec's (`chosen`), the shrink."""
        base = {**self.suite.protocol_overrides.get(protocol, {}), **chosen}
        base.update(self.suite.shrink.overrides(pcls.resolve_config(base)))
        return base

    def variants(self, spec: str, skipped: list[tuple[str, str, str]]) -> list[str]:
        """The variant specs a suite entry stands for on this dataset (inapplicable ones go to `skipped`)."""
        method, overrides = parse_variant(spec)
        cls = METHODS.get(method)
        why = cls.applicability(self.info.data)
        if why:
            skipped.append((spec.strip(), "*", f"not on {self.info.name}: {why}"))
            return []
        options = cls.modality_options(self.info.data)
        if "[" not in spec:
            return [f"{method}[{m}]" for m in options] if options else [method]
        mod = overrides.get("modality")
        if mod is not None and mod not in options:
            skipped.append((spec.strip(), "*", f"{self.info.name} has no usable modality {mod!r} "
                                               f"(choices: {', '.join(options) or 'none'})"))
            return []
        return [spec.strip()]

    def cells(self, spec: str, seed: int, skipped: list[tuple[str, str, str]]) -> list[Cell]:
        method, overrides = parse_variant(spec)
        cls = METHODS.get(method)
        _, probe = self.resolve(method, overrides)
        variant = spec.strip() if any(k != "modality" for k in overrides) else cls.variant_name(probe)
        unit = self.unit(method, overrides, seed, variant)
        out: list[Cell] = []
        if self.fixed_protocols is not None:  # given protocol cells (a baseline folder's), taken as they are
            for p in self.fixed_protocols:
                pcls = PROTOCOLS.get(p["protocol"])
                if not (pcls.applies_to(cls.kind) if hasattr(pcls, "applies_to") else cls.kind in pcls.kinds):
                    skipped.append((variant, p["protocol"], f"kind {cls.kind}"))
                    continue
                self._add_cell(out, unit, method, variant, p["protocol"], p["protocol_resolved"], p["protocol_cfg"],
                               p["protocol_variant"], seed)
            return out
        for pspec in self.suite.protocol_names():
            protocol, chosen = parse_protocol(pspec)
            pcls = PROTOCOLS.get(protocol)
            applies = pcls.applies_to(cls.kind) if hasattr(pcls, "applies_to") else cls.kind in pcls.kinds
            if not applies:
                skipped.append((variant, protocol, f"kind {cls.kind}"))
                continue
            base = self._protocol_base(pcls, protocol, chosen)
            resolved = pcls.resolve_config(base)
            defaults = pcls.resolve_config({})
            expanded = expand_protocol(pcls, resolved, self.info.data)
            plain_base = self._protocol_base(pcls, protocol, {}) if chosen else base  # the plain protocol's
            plain = expand_protocol(pcls, pcls.resolve_config(plain_base), self.info.data) if chosen else []
            for cfg in expanded:
                restated = cfg in plain  # a variant spec naming cells of the plain protocol gets their label
                given = plain_base if restated else base
                shown = {k: v for k, v in cfg.items() if k in given or k not in defaults or defaults[k] != v}
                self._add_cell(out, unit, method, variant, protocol, cfg, shown,
                               _protocol_variant(pcls, cfg, plain) if restated
                               else _protocol_variant(pcls, cfg, expanded, chosen), seed)
        return out

    def _add_cell(self, out: list[Cell], unit: PretrainUnit, method: str, variant: str, protocol: str,
                  cfg: dict[str, Any], shown: dict[str, Any], protocol_variant: str, seed: int) -> None:
        """Append the cell of (unit, protocol config, seed) to `out`, unless a cell with its key is there."""
        key = key_of({"kind": "cell", "pretrain": unit.key, "protocol": protocol, "cfg": cfg, "seed": seed,
                      "fingerprint": self.info.fingerprint, "code_version": CODE_VERSION,
                      "numerics": self.numerics})
        if any(c.key == key for c in out):  # a protocol variant that restates the defaults
            return
        n = self.info.sizes
        p_epochs = int(cfg.get("epochs", 1) or 1)
        fwd = fwd_flops(self.info, used_modalities(self.info, unit.resolved))
        flops = (p_epochs * n["train"] + n["val"] + n["test"]) * fwd
        out.append(Cell(key=key, pretrain_key=unit.key, dataset=self.info.name, split=self.info.split,
                        method=method, variant=variant, method_cfg=unit.overrides, protocol=protocol,
                        protocol_cfg=shown, protocol_resolved=cfg, protocol_variant=protocol_variant, seed=seed,
                        data_fingerprint=self.info.fingerprint, flops=flops, code=self.code(method)))


def expand_protocol(pcls: Any, cfg: dict[str, Any], info: DataInfo) -> list[dict[str, Any]]:
    """The protocol's cells for one config (`expand(cfg, info)`, or `expand(cfg)` for older protocols)."""
    if len(inspect.signature(pcls.expand).parameters) >= 2:
        return list(pcls.expand(cfg, info))
    return list(pcls.expand(cfg))


def how_to_get(name: str) -> str:
    """One line on how to make a dataset available (download where the plugin can fetch it)."""
    cls = DATASETS.get(name)
    if downloadable(name):
        return (f"To get {name}: python run_all.py --download {name} [--data-root DIR], or point --data-root / "
                f"$MMHAR_DATA at a folder that holds it.")
    obtain = (getattr(cls, "how_to_obtain", "") or "").strip()
    return f"{name} cannot be downloaded automatically. " + (
        obtain or "Point --data-root / $MMHAR_DATA at a folder that holds it.")


def downloadable(name: str) -> bool:
    """Whether dataset `name`'s plugin can fetch its raw files (`--download`)."""
    return getattr(DATASETS.get(name), "download", None) is not DatasetPlugin.download


def _stand_in(suite: Suite) -> Suite:
    """The suite as run on its fallback dataset: schedules shortened by the dataset's `stand_in_shrink` too."""
    declared = getattr(DATASETS.get(suite.fallback_dataset), "stand_in_shrink", None) if suite.fallback_dataset else None
    return replace(suite, shrink=suite.shrink.shorter(declared)) if declared else suite


def plan_suite(suite: Suite, results_dir: Path, *, data_root: str | None = None,
               log: Callable[[str], None] = lambda s: None, device: Any = "auto",
               precision: str | None = None, strict_methods: Sequence[str] = (),
               protocol_cells: Callable[[DatasetInfo], list[dict[str, Any]] | None] | None = None,
               warn: Callable[[str], None] | None = None) -> Plan:
    """Expand a suite into cells and pretrain units, and look up what the results folder already holds.

    A method entry that applies to none of the suite's datasets is listed as not applicable, unless it is
    in `strict_methods` (what the user named on the command line): then it is a SuiteError saying why.

    `warn` (default `log`) gets what must be seen even when quiet: a dataset skipped, a fall-back dataset.

    Keys include the device type and the resolved precision (`numerics_tag(device, precision)`; `precision`
    None takes the suite's): CPU-fp32, CPU-bf16 and CUDA-bf16 results never stand in for each other.

    `protocol_cells(info)`, where given, returns the protocol cells of a dataset (dicts with protocol,
    protocol_cfg, protocol_variant and protocol_resolved, e.g. a baseline folder's) to use instead of the suite's.
    """
    results_dir = Path(results_dir)
    warn = warn or log
    infos: dict[str, DatasetInfo] = {}
    messages: list[str] = []
    stand_ins: set[str] = set()  # fallback datasets planned in place of absent real data
    skips: list[str] = []

    def add_fallback() -> None:
        fb = suite.fallback_dataset
        assert fb is not None
        fb_split = suite.split if suite.split in DATASETS.get(fb).splits else None
        info = dataset_info(fb, dict(suite.dataset_options.get(fb, {})), fb_split, data_root)
        infos[info.name] = info
        stand_ins.add(info.name)

    for name in suite.datasets:
        splits = expand_split(name, suite.split)
        for split in splits:
            try:
                info = dataset_info(name, dict(suite.dataset_options.get(name, {})), split, data_root)
            except DataNotFoundError as exc:
                hint = how_to_get(name)
                if suite.skip_missing:
                    skips.append(f"skipped {name}: its raw files are not there. {' '.join(hint.split())}")
                    break
                if not suite.fallback_dataset or suite.fallback_dataset == name:
                    raise RunError(f"{exc}\n{hint}") from exc
                fb = suite.fallback_dataset
                msg = f"{exc}\n{hint}\n-> the {suite.name} suite runs on {fb} instead of {name} for now."
                messages.append(msg)
                warn(msg)
                if fb not in infos:
                    add_fallback()
                break
            infos[info.name if len(splits) == 1 else f"{info.name}/{info.split}"] = info
    if not infos and suite.skip_missing and suite.fallback_dataset and suite.fallback_dataset not in suite.datasets:
        add_fallback()  # none of the real datasets is here: the stand-in runs, and says so first
        fetchable = [d for d in suite.datasets if downloadable(d)]
        how = (f"python run_all.py --download {fetchable[0]} (then run this again)" if fetchable
               else "python run_all.py --list says how to get each dataset")
        first = (f"NO REAL DATA HERE: the {suite.name} suite runs on the generated {suite.fallback_dataset} dataset "
                 f"at its stand-in schedule ({_stand_in(suite).shrink.describe()}); its numbers only show that everything "
                 f"runs. For the real benchmark: {how}.")
        messages.append(first)
        warn(first)
    for msg in skips:
        messages.append(msg)
        warn(msg)
    if not infos:
        raise RunError(f"suite {suite.name}: none of its datasets ({', '.join(suite.datasets)}) has data here; "
                       + " ".join(messages))
    cells: list[Cell] = []
    units: dict[str, PretrainUnit] = {}
    skipped: list[tuple[str, str, str]] = []
    specs = suite.method_specs()
    numerics = numerics_tag(device, precision or suite.precision)
    slow = slow_bf16_warning(numerics)
    if slow:
        messages.append(slow)
        log(slow)
    for info in infos.values():
        planner = Planner(_stand_in(suite) if info.name in stand_ins else suite, info, numerics,
                          protocol_cells(info) if protocol_cells else None)
        variants = list(dict.fromkeys(v for spec in specs for v in planner.variants(spec, skipped)))
        for spec in variants:
            for seed in suite.seeds:
                cells.extend(planner.cells(spec, seed, skipped))
        for k, u in planner.units.items():
            units.setdefault(k, u)
        for m in dict.fromkeys(planner.messages):
            messages.append(m)
            log(m)
    planned = {c.variant for c in cells} | {c.method for c in cells}
    for spec in strict_methods:
        name = spec.strip()
        if name not in planned and not any(c.variant.startswith(f"{name}[") for c in cells):
            why = "; ".join(w.replace("not on ", "", 1) for v, p, w in skipped if v == name and p == "*")
            raise SuiteError(f"{name} applies to no dataset of the suite: {why or 'no cells'}")
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise SuiteError("the suite lists the same cell twice (duplicate method variants?)")
    plan = Plan(suite=suite.name, results_dir=results_dir, cells=cells, units=units, datasets=infos,
                skipped=sorted(set(skipped)), messages=messages, numerics=numerics,
                auto_precision=(precision or suite.precision or "auto") == "auto")
    refresh(plan)
    return plan
