"""Contract checks every plugin passes, in the spirit of scikit-learn's estimator checks.

`check_method(cls)`, `check_dataset(cls)` and `check_protocol(cls)` exercise a plugin class against its
contract (benchmark.contracts, benchmark.protocols.base) on small generated data and raise `ContractError`
listing every problem found. The tests run them over the whole registry, so a new plugin is checked without
editing a list; plugin authors can run them on their own plugins:

    from benchmark.checks import check_method
    check_method(MyMethod)                       # or: python -m benchmark.checks my_plugin.py
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.config import ConfigError
from benchmark.contracts.dataset import (
    MODALITY_KINDS,
    DataNotFoundError,
    DatasetPlugin,
    ModalitySpec,
    SplitSpec,
    TrainingProfile,
)
from benchmark.contracts.method import KINDS, DataInfo, Dependency, Method
from benchmark.registry import DATASETS, METHODS, PROTOCOLS

TINY_SHAPES = {"inertial": (6, 50), "skeleton": (3, 50, 20)}


class ContractError(AssertionError):
    """A plugin breaks its contract; the message lists every problem found."""


class _Problems:
    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[str] = []

    def check(self, ok: bool, msg: str) -> bool:
        if not ok:
            self.items.append(msg)
        return ok

    def attempt(self, label: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # a contract check reports, it does not stop at the first failure
            self.items.append(f"{label}: {type(exc).__name__}: {exc}")
            return None

    def raise_if_any(self) -> None:
        if self.items:
            raise ContractError(f"{self.what} breaks its contract:\n  - " + "\n  - ".join(self.items))


# -- tiny generated data ---------------------------------------------------------------------------------------
def tiny_data(kinds: dict[str, str] | None = None, n_per_class: int = 8, n_classes: int = 3, seed: int = 0,
              training: TrainingProfile | None = None) -> Any:
    """Small learnable multimodal data in memory (per modality: {name: kind}), split train/val/test by subject."""
    from benchmark.data import MultimodalData

    kinds = kinds or {k: k for k in MODALITY_KINDS}
    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    labels = np.repeat(np.arange(n_classes), n_per_class)
    subjects = np.tile(np.arange(1, n_per_class + 1), n_classes)
    mods = {}
    for m, kind in kinds.items():
        shape = TINY_SHAPES[kind]
        x = rng.normal(size=(n, *shape)).astype(np.float32)
        x[:, 0] += labels.reshape(-1, *[1] * (len(shape) - 1)).astype(np.float32)  # class signal
        mods[m] = torch.from_numpy(x)
    specs = {m: vars(ModalitySpec(k, TINY_SHAPES[k][0], 50.0, TINY_SHAPES[k][2] if k == "skeleton" else None))
             for m, k in kinds.items()}
    split = SplitSpec(train={"subject": [1, 2, 3, 4]}, val={"subject": [5, 6]}, test={"subject": [7, 8]})
    meta = {"fingerprint": f"tiny:{seed}", "splits": {"s": split.describe()}, "default_split": "s",
            "training": training or TrainingProfile(), "main_metric": "accuracy", "modality_specs": specs,
            "length": 50, "skipped": [], "folder": None, "options": {}}
    return MultimodalData("tiny", mods, torch.from_numpy(labels), {"subject": subjects},
                          [f"c{i}" for i in range(n)], [f"class{c}" for c in range(n_classes)], meta)


def _tiny_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    """Overrides that make a resolved config train in a moment: the suites' Shrink (1 epoch, batches of at
    most 8) plus small key queues."""
    from benchmark.suites import Shrink

    out = Shrink(epochs_cap=1, batch_cap=8).overrides(cfg)
    queue = cfg.get("queue_size")
    if isinstance(queue, int) and not isinstance(queue, bool) and queue > 16:
        out["queue_size"] = 16
    return out


def _tiny_pretrain(name: str, data: Any, overrides: dict[str, Any], info: DataInfo) -> Any:
    """A dependency trained for one short epoch (so that a method's teachers exist)."""
    from benchmark.pretrain import pretrain

    cfg = METHODS.get(name).resolve_config(info, overrides)
    return pretrain(name, data, data.split(), {**overrides, **_tiny_cfg(cfg)}, 0, device="cpu", quiet=True)


# -- methods ---------------------------------------------------------------------------------------------------
def check_method(cls: type[Method], data: Any = None) -> None:
    """Declarations, config resolution, dependencies, one training step and the evaluation hand-off."""
    from benchmark.pretrain import build_method, pretrain

    p = _Problems(f"method plugin {getattr(cls, 'name', cls)!r}")
    if not p.check(isinstance(cls, type) and issubclass(cls, Method), "must subclass benchmark.contracts.Method"):
        p.raise_if_any()
    p.check(isinstance(getattr(cls, "name", None), str) and bool(cls.name), "needs a non-empty `name`")
    p.check(getattr(cls, "kind", None) in KINDS, f"`kind` must be one of {KINDS}, got {getattr(cls, 'kind', None)!r}")
    p.check(isinstance(cls.n_views, int) and cls.n_views >= 0, f"`n_views` must be an int >= 0, got {cls.n_views!r}")
    p.check(cls.kind == "supervised" or cls.n_views >= 1 or cls.all_defaults().get("epochs") == 0,
            "self-supervised methods need n_views >= 1 (only a method that never trains may have none)")
    for key in cls.choices:
        p.check(key in cls.all_defaults(), f"choices names {key!r}, which is not a config key")
    for kind in cls.modality_defaults:
        p.check(kind in MODALITY_KINDS, f"modality_defaults key {kind!r} is not a modality kind {MODALITY_KINDS}")
    data = data if data is not None else tiny_data()
    info = DataInfo.from_data(data, data.split())
    why = cls.applicability(info)
    if not p.check(why is None, f"does not apply to data with one modality of each kind: {why}"):
        p.raise_if_any()
    try:
        cls.resolve_config(info, {"__no_such_key__": 1})
        p.check(False, "resolve_config accepted an unknown key")
    except ConfigError as exc:
        p.check("__no_such_key__" in str(exc), f"the unknown-key error does not name the key: {exc}")
    except Exception as exc:
        p.check(False, f"an unknown key raised {type(exc).__name__}, not ConfigError: {exc}")
    options = cls.modality_options(info) or (None,)
    for mod in options:
        ov = {"modality": mod} if mod is not None else {}
        label = f"{cls.name}[{mod}]" if mod else cls.name
        cfg = p.attempt(f"{label}: resolve_config", lambda: cls.resolve_config(info, ov))
        if cfg is None:
            continue
        p.check(cls.resolve_config(info, cfg) == cfg, f"{label}: resolving a resolved config changes it")
        deps = p.attempt(f"{label}: dependencies", lambda: cls.dependencies(cfg, info))
        for d in deps or []:
            p.check(isinstance(d, Dependency), f"{label}: dependencies must be Dependency objects, got {d!r}")
            p.check(isinstance(d, Dependency) and d.method in METHODS,
                    f"{label}: dependency {getattr(d, 'method', d)!r} is not a registered method")
        tiny = {**ov, **_tiny_cfg(cfg)}
        torch.manual_seed(0)
        trained = {d.key: _tiny_pretrain(d.method, data, d.overrides, info) for d in deps or []
                   if isinstance(d, Dependency) and d.method in METHODS}
        pre = p.attempt(f"{label}: pretrain 1 epoch on tiny data",
                        lambda: pretrain(cls.name, data, data.split(), tiny, 0, device="cpu", deps=trained or None,
                                         quiet=True))
        if pre is None:
            continue
        hist = pre.history
        finite = bool(hist) and all(math.isfinite(h.get("train_loss", float("nan"))) for h in hist)
        p.check(finite or (not hist and pre.cfg.get("epochs") == 0),
                f"{label}: training gave no finite train_loss ({hist[:1]})")
        encs = pre.encoders()
        p.check(bool(encs) and set(encs) <= set(info.shapes), f"{label}: encoders() must map data modalities "
                                                              f"to modules, got {sorted(encs)}")
        for m, enc in encs.items():
            p.check(isinstance(enc, nn.Module), f"{label}: encoders()[{m!r}] is not an nn.Module")
            out = p.attempt(f"{label}: encoder {m} forward", lambda: enc.eval()(data.modalities[m][:4]))
            p.check(out is None or (out.shape[0] == 4 and bool(torch.isfinite(out).all())),
                    f"{label}: encoder {m} must return [B, ...] finite features")
        if cls.kind == "supervised":
            x = {m: t[:4] for m, t in data.modalities.items()}
            logits = p.attempt(f"{label}: classify", lambda: pre.method.eval().classify(x))
            p.check(logits is None or tuple(logits.shape) == (4, info.num_classes),
                    f"{label}: classify must return [B, num_classes] logits")
        rebuilt = p.attempt(f"{label}: rebuild from the resolved config",
                            lambda: build_method(cls.name, info, pre.cfg))
        if rebuilt is not None:
            p.attempt(f"{label}: strict state-dict round trip",
                      lambda: rebuilt.load_state_dict(pre.method.state_dict(), strict=True))
    p.raise_if_any()


# -- datasets --------------------------------------------------------------------------------------------------
def check_dataset(cls: type[DatasetPlugin], root: str | None = None, load: bool = True, **options: Any) -> list[str]:
    """Declarations (modalities, classes, splits, training profile) and, where its files are found (or it
    generates them), the loaded data: shapes, labels, splits and their disjointness. Returns notes on what was
    not checked (the raw files not found)."""
    from benchmark.augment import REFERENCE_PIPELINES, Augmenter
    from benchmark.data import load_dataset

    p = _Problems(f"dataset plugin {getattr(cls, 'name', cls)!r}")
    if not p.check(isinstance(cls, type) and issubclass(cls, DatasetPlugin),
                   "must subclass benchmark.contracts.DatasetPlugin"):
        p.raise_if_any()
    mods = getattr(cls, "modalities", None)
    p.check(isinstance(mods, dict) and bool(mods) and all(isinstance(s, ModalitySpec) for s in mods.values()),
            "`modalities` must be a non-empty {name: ModalitySpec} dict")
    names = list(getattr(cls, "class_names", []) or [])
    p.check(bool(names) and len(set(names)) == len(names), "`class_names` must be a non-empty list of unique names")
    splits = getattr(cls, "splits", None)
    p.check(isinstance(splits, dict) and bool(splits) and all(isinstance(s, SplitSpec) for s in splits.values()),
            "`splits` must be a non-empty {name: SplitSpec} dict")
    p.check(isinstance(splits, dict) and getattr(cls, "default_split", None) in (splits or {}),
            f"`default_split` {getattr(cls, 'default_split', None)!r} is not one of the splits")
    declared = getattr(cls, "training", None)
    tr = declared if isinstance(declared, TrainingProfile) else TrainingProfile()
    if p.check(isinstance(declared, TrainingProfile), "`training` must be a TrainingProfile"):
        _check_profile(p, tr, mods or {}, REFERENCE_PIPELINES, Augmenter)
    heads = getattr(cls, "headline_protocols", ())
    p.check(isinstance(heads, (tuple, list)) and all(isinstance(h, str) and h for h in heads),
            f"`headline_protocols` must be a tuple of protocol variant names (e.g. ('linear',)), got {heads!r}")
    shrink = getattr(cls, "stand_in_shrink", {})
    p.check(isinstance(shrink, dict) and set(shrink) <= {"epochs_scale", "epochs_cap", "batch_cap"},
            f"`stand_in_shrink` must be a dict with keys among epochs_scale, epochs_cap, batch_cap, got {shrink!r}")
    plugin = p.attempt("instantiate with default options", lambda: cls(**options))
    if plugin is None or not load:
        p.raise_if_any()
        return []
    try:
        data = load_dataset(cls.name, root, use_cache=False, **options)
    except DataNotFoundError:
        p.raise_if_any()  # declarations only: the raw files are not here
        from benchmark.data import resolve_root

        return [f"dataset plugin {cls.name!r}: data not found under {resolve_root(root).absolute()}: shape and value checks "
                f"skipped (pass --data-root DIR or set $MMHAR_DATA)"]
    except Exception as exc:
        p.check(False, f"load_dataset failed: {type(exc).__name__}: {exc}")
        p.raise_if_any()
        return []
    n = len(data)
    p.check(n > 0, "read() returned no samples")
    for m, spec in (mods or {}).items():
        t = data.modalities.get(m)
        if t is None:
            p.check(False, f"modality {m!r} missing from the loaded data")
            continue
        want = (n, spec.channels, tr.length) + ((spec.joints,) if spec.kind == "skeleton" else ())
        p.check(tuple(t.shape) == want, f"modality {m!r}: shape {tuple(t.shape)}, declared {want}")
        p.check(bool(torch.isfinite(t).all()), f"modality {m!r} holds non-finite values")
    labels = data.labels.numpy()
    p.check(labels.min() >= 0 and labels.max() < len(names), "labels must be 0-based indices into class_names")
    for s in splits or {}:
        sp = p.attempt(f"split {s!r}", lambda: data.split(s))
        if sp is None:
            continue
        p.check(len(sp.train) > 0 and len(sp.test) > 0, f"split {s!r}: empty train or test part")
        missing = sorted(set(range(len(names))) - set(labels[sp.train].tolist()))
        p.check(not missing, f"split {s!r}: classes {missing[:5]} have no training clip")
    p.raise_if_any()
    return []


def _check_profile(p: _Problems, tr: TrainingProfile, mods: dict[str, ModalitySpec], pipelines: dict[str, Any],
                   augmenter: type) -> None:
    for sel, values in tr.method_defaults.items():
        name = sel.split("[", 1)[0]
        if sel == "*" or name in KINDS or name not in METHODS:
            continue  # generic selectors, or a method that is not installed here
        valid = set(METHODS.get(name).all_defaults())
        bad = sorted(set(values) - valid)
        p.check(not bad, f"training.method_defaults[{sel!r}] has unknown key(s) {bad} for method {name!r}")
    for key, ops in tr.augmentations.items():
        kind = mods[key].kind if key in mods else key if key in pipelines else None
        if kind is not None:
            p.attempt(f"training.augmentations[{key!r}]", lambda: augmenter(kind, "reference", ops))
        else:  # a pipeline a method names (e.g. 'supervised_skeleton'): its ops must be known ones
            known = {o.name for k in pipelines for o in pipelines[k]}
            p.check(set(ops) <= known, f"training.augmentations[{key!r}] names unknown ops "
                                       f"{sorted(set(ops) - known)}; known: {sorted(known)}")


# -- protocols -------------------------------------------------------------------------------------------------
class _CheckEncoders(Method):
    """A tiny multimodal method used to run protocols in `check_protocol` (never registered)."""

    name = "check_encoders"
    kind = "multimodal"
    n_views = 1

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: Any = None) -> None:
        super().__init__(info, cfg, deps)
        self.enc = nn.ModuleDict({m: nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), 8))
                                  for m, s in info.shapes.items()})
        self.proj = nn.ModuleDict({m: nn.Linear(8, 4) for m in info.shapes})

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return sum(e(batch["views"][0][m]).pow(2).mean() for m, e in self.enc.items())  # type: ignore[return-value]

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.enc)

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.proj)


def check_protocol(cls: Any, data: Any = None) -> None:
    """Declarations, config resolution and expansion, and one run on a tiny encoder that returns metrics."""
    from benchmark.pretrain import Pretrained
    from benchmark.protocols.base import EvalResult, Protocol
    from benchmark.runner.planner import expand_protocol

    p = _Problems(f"protocol plugin {getattr(cls, 'name', cls)!r}")
    if not p.check(isinstance(cls, type) and issubclass(cls, Protocol), "must subclass benchmark.protocols.base."
                                                                         "Protocol"):
        p.raise_if_any()
    p.check(set(cls.kinds) <= set(KINDS) and bool(cls.kinds), f"`kinds` must be a non-empty subset of {KINDS}")
    cfg = p.attempt("resolve_config({})", lambda: cls.resolve_config({}))
    try:
        cls.resolve_config({"__no_such_key__": 1})
        p.check(False, "resolve_config accepted an unknown key")
    except ConfigError as exc:
        p.check("__no_such_key__" in str(exc), f"the unknown-key error does not name the key: {exc}")
    except Exception as exc:
        p.check(False, f"an unknown key raised {type(exc).__name__}, not ConfigError: {exc}")
    if cfg is None:
        p.raise_if_any()
    data = data if data is not None else tiny_data()
    split = data.split()
    info = DataInfo.from_data(data, split)
    expanded = p.attempt("expand", lambda: expand_protocol(cls, {**cfg, **_tiny_cfg(cfg)}, info)) or []
    p.check(bool(expanded) and all(isinstance(c, dict) for c in expanded), "expand must return a list of configs")
    if "multimodal" in cls.kinds and expanded:
        torch.manual_seed(0)
        method = _CheckEncoders(info, _CheckEncoders.resolve_config(info, {})).eval()
        pre = Pretrained("check_encoders", "check_encoders", method, method.cfg, 0)
        run_cfg = dict(expanded[0])
        if "subsets_dir" in run_cfg:
            run_cfg["subsets_dir"] = None
        result = p.attempt("run on tiny data", lambda: cls().run(pre, data, split, run_cfg, 0, device="cpu"))
        if result is not None and p.check(isinstance(result, EvalResult), "run must return an EvalResult"):
            bad = [k for k, v in result.metrics.items() if not isinstance(v, (int, float)) or not math.isfinite(v)]
            p.check(bool(result.metrics) and not bad, f"metrics must be a non-empty flat dict of finite numbers "
                                                      f"(bad: {bad[:5]})")
    p.raise_if_any()


# -- command line ----------------------------------------------------------------------------------------------
def check_registered(names: Iterable[str] | None = None, root: str | None = None,
                     notes: list[str] | None = None) -> list[str]:
    """Run every check on the registered plugins (or those named); return the failure messages. What could not
    be checked (a dataset's data not found under `root`) is appended to `notes`."""
    from benchmark.plugins import load_plugins

    load_plugins()
    failures = []
    for registry, check in ((METHODS, check_method), (DATASETS, check_dataset), (PROTOCOLS, check_protocol)):
        for name in registry.names():
            if names and name not in names:
                continue
            try:
                skipped = check_dataset(registry.get(name), root) if check is check_dataset else check(registry.get(name))
            except ContractError as exc:
                failures.append(str(exc))
                continue
            if notes is not None and skipped:
                notes.extend(skipped)
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.checks", description=__doc__.split("\n")[0])
    ap.add_argument("plugins", nargs="*", help="plugin files (.py) to load first; their plugins are checked")
    ap.add_argument("--only", nargs="*", default=None, help="plugin names to check (default: all registered)")
    ap.add_argument("--data-root", default=None, help="where datasets' raw files are (default: $MMHAR_DATA, ./data)")
    args = ap.parse_args(argv)
    from benchmark.plugins import add_plugin_files, load_plugins

    load_plugins()
    before = set(METHODS.names()) | set(DATASETS.names()) | set(PROTOCOLS.names())
    if args.plugins:
        add_plugin_files(args.plugins)
    new = (set(METHODS.names()) | set(DATASETS.names()) | set(PROTOCOLS.names())) - before
    notes: list[str] = []
    failures = check_registered(args.only or (sorted(new) if args.plugins else None), args.data_root, notes)
    for f in failures:
        print(f, file=sys.stderr)
    for note in notes:
        print(note)
    if failures:
        print(f"{len(failures)} plugin(s) failed their contract checks")
    else:
        print("declarations passed; data not found: shape and value checks skipped" if notes
              else "all contract checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
