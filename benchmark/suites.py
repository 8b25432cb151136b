"""Named benchmark suites (smoke, quick, full, paper): which datasets, method variants, protocols and seeds.

A suite is data, not code (`benchmark/suites.json`): the runner expands it into cells. Method variants are
written `name[modality]` (e.g. `name[inertial]`) or `name[key=value,...]` for other config overrides
(e.g. `name[k=2]`); a bare method name in a suite or on the command line means every variant of it on each
dataset, one per modality the dataset offers it (`Method.modality_options`). Protocols take variants the same way
(`paper_head[bn_mode=frozen]`): cells of their own, beside the plain protocol's.

Schedules are shortened by a `Shrink`, applied to every resolved method config (dependencies included)
and protocol config: keys named `epochs` / `*_epochs` are multiplied by `epochs_scale` (at least 1,
0 stays 0) and capped by `epochs_cap`; keys named `batch_size` / `*_batch_size` are capped by `batch_cap`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.contracts.dataset import MODALITY_KINDS
from benchmark.contracts.method import DataInfo
from benchmark.registry import DATASETS, METHODS, PROTOCOLS, RegistryError, unknown_name_message

# What a method's variants are listed against when no dataset is given: one modality per kind, named after it.
_KIND_NAMED_DATA = DataInfo(shapes={k: () for k in MODALITY_KINDS}, kinds={k: k for k in MODALITY_KINDS},
                            num_classes=2)
_VARIANT_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[(.*)\])?\s*$")


MAX_SEED = 2**31 - 1  # numpy and torch seed every generator from it


class SuiteError(ValueError):
    """An unknown suite, dataset, method variant or protocol; the message lists the valid choices."""


@dataclass(frozen=True)
class Shrink:
    """How a suite shortens the paper schedules (see the module docstring)."""

    epochs_scale: float = 1.0
    epochs_cap: int | None = None
    batch_cap: int | None = None

    def overrides(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        """The overrides that shorten the schedule of a resolved config (only keys it changes)."""
        out: dict[str, Any] = {}
        for k, v in resolved.items():
            if isinstance(v, bool) or not isinstance(v, int):
                continue
            if k == "epochs" or k.endswith("_epochs"):
                new = v if v <= 0 else max(1, int(round(v * self.epochs_scale)))
                if self.epochs_cap is not None and new > 0:
                    new = min(new, self.epochs_cap)
            elif (k == "batch_size" or k.endswith("_batch_size")) and self.batch_cap is not None:
                new = min(v, self.batch_cap)
            else:
                continue
            if new != v:
                out[k] = new
        return out

    def scaled(self, factor: float) -> "Shrink":
        """This shrink with its epoch scale multiplied by `factor` (the command line's --epochs-scale)."""
        if not factor > 0:
            raise SuiteError(f"epochs scale must be a positive number, got {factor!r}")
        return replace(self, epochs_scale=self.epochs_scale * factor)

    def shorter(self, other: Mapping[str, Any]) -> "Shrink":
        """This shrink combined with another's fields (e.g. a dataset's `stand_in_shrink`): the shorter of each."""
        try:
            o = Shrink(**dict(other))
        except TypeError as exc:
            raise SuiteError(f"stand_in_shrink {dict(other)!r}: {exc}; valid keys: epochs_scale, epochs_cap, "
                             f"batch_cap") from None

        def low(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else min(a, b)

        return Shrink(min(self.epochs_scale, o.epochs_scale), low(self.epochs_cap, o.epochs_cap),
                      low(self.batch_cap, o.batch_cap))

    def describe(self) -> str:
        parts = [f"epochs x{self.epochs_scale:g}"]
        if self.epochs_cap is not None:
            parts.append(f"epochs <= {self.epochs_cap}")
        if self.batch_cap is not None:
            parts.append(f"batch <= {self.batch_cap}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Suite:
    """A named selection of datasets x method variants x protocols x seeds, with shortened schedules."""

    name: str
    description: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...] | None = None  # variant specs; None: every registered method's variants
    protocols: tuple[str, ...] | None = None  # None: every registered protocol
    seeds: tuple[int, ...] = (0,)
    shrink: Shrink = field(default_factory=Shrink)
    fallback_dataset: str | None = None  # used (with a message) when a listed dataset's raw files are absent
    skip_missing: bool = False  # datasets whose raw files are absent are skipped with a one-line message
    dataset_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    method_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by method name, deps too
    protocol_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by protocol name
    split: str | None = None  # None: each dataset's default split
    precision: str = "auto"  # fp32 | bf16 | auto (benchmark.hardware); --precision overrides it

    def method_specs(self) -> list[str]:
        """The method entries of this suite as written (every registered method when not listed); the planner
        expands bare names into the variants each dataset offers."""
        return list(self.methods) if self.methods is not None else METHODS.names()

    def variant_specs(self) -> list[str]:
        """The method variant specs of this suite on data with one modality of each kind (see expand_method)."""
        out: list[str] = []
        for s in self.method_specs():
            for v in expand_method(s):
                if v not in out:
                    out.append(v)
        return out

    def protocol_names(self) -> list[str]:
        """The protocol specs of this suite, e.g. 'knn' or 'paper_head[bn_mode=frozen]' (all when not listed)."""
        return list(self.protocols) if self.protocols is not None else PROTOCOLS.names()


# -- method variants ------------------------------------------------------------------------------
def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """'name[inertial]' -> ('name', {'modality': 'inertial'}); 'name[k=2,lam=0.5]' -> ('name', overrides)."""
    m = _VARIANT_RE.match(spec)
    if not m:
        raise SuiteError(f"cannot parse method variant {spec!r}; write name, name[modality] or name[key=value,...]")
    name, inner = m.group(1), m.group(2)
    overrides: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in (inner or "").split(","))):
        if "=" in item:
            k, v = (s.strip() for s in item.split("=", 1))
            try:
                overrides[k] = json.loads(v)
            except json.JSONDecodeError:
                overrides[k] = v
        else:
            overrides["modality"] = item
    return name, overrides


def method_class(name: str) -> Any:
    """The registered method class, or a SuiteError listing the known methods."""
    try:
        return METHODS.get(name)
    except RegistryError as exc:
        raise SuiteError(str(exc)) from None


def expand_method(spec: str, info: DataInfo | None = None) -> list[str]:
    """A bare method name -> one spec per modality the method can take on `info`'s data (default: data with
    one modality of each kind, named after it); a variant spec -> itself. Modalities are checked at planning,
    against each dataset's own."""
    name, _ = parse_variant(spec)
    cls = method_class(name)
    if "[" in spec:
        return [spec.strip()]
    options = cls.modality_options(info or _KIND_NAMED_DATA)
    return [f"{name}[{m}]" for m in options] if options else [name]


def parse_protocol(spec: str) -> tuple[str, dict[str, Any]]:
    """'paper_head[bn_mode=frozen]' -> ('paper_head', {'bn_mode': 'frozen'}); the overrides are validated.

    A protocol variant runs the protocol with these config values on top of the suite's own overrides, as
    cells of their own (their keys, records and leaderboard tables differ from the plain protocol's).
    """
    name, overrides = parse_variant(spec)
    inner = spec.split("[", 1)[1].rstrip().rstrip("]") if "[" in spec else ""
    if any("=" not in item for item in inner.split(",") if item.strip()):  # protocols have no modality shorthand
        raise SuiteError(f"protocol variant {spec!r}: write name[key=value,...], e.g. paper_head[bn_mode=frozen]")
    if name not in PROTOCOLS:
        raise SuiteError(unknown_name_message("protocol", spec, PROTOCOLS.names()))
    try:
        PROTOCOLS.get(name).resolve_config(overrides)
    except ValueError as exc:
        raise SuiteError(f"protocol variant {spec!r}: {exc}") from None
    return name, overrides


def all_variant_specs() -> list[str]:
    """Every variant of every registered method."""
    return [v for name in METHODS.names() for v in expand_method(name)]


# -- the suites (benchmark/suites.json) ------------------------------------------------------------
SUITES_FILE = Path(__file__).with_name("suites.json")
_SUITE_KEYS = {"name", "description", "datasets", "methods", "protocols", "seeds", "shrink", "fallback_dataset",
               "skip_missing", "dataset_options", "method_overrides", "protocol_overrides", "split", "precision", "comments"}


def load_suites(path: Path = SUITES_FILE) -> tuple[dict[str, Suite], tuple[str, ...]]:
    """The suites declared in `path` and the paper's method variants; a malformed file is a SuiteError naming it."""
    try:
        doc = json.loads(path.read_text())
        variants = tuple(doc["paper_variants"])
        out: dict[str, Suite] = {}
        for entry in doc["suites"]:
            unknown = sorted(set(entry) - _SUITE_KEYS)
            if unknown:
                raise SuiteError(f"{path}: suite {entry.get('name')!r} has unknown key(s) {unknown}")
            fields = {k: v for k, v in entry.items() if k != "comments"}
            for k in ("datasets", "protocols", "seeds"):
                if k in fields:
                    fields[k] = tuple(fields[k])
            if "methods" in fields:
                fields["methods"] = variants if fields["methods"] == "paper_variants" else tuple(fields["methods"])
            fields["shrink"] = Shrink(**fields.get("shrink", {}))
            out[entry["name"]] = Suite(**fields)
        return out, variants
    except SuiteError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"cannot read the suite definitions {path}: {exc!r}") from exc


SUITES, PAPER_VARIANTS = load_suites()


def get_suite(name: str) -> Suite:
    """The suite called `name`, or a SuiteError listing the suites."""
    if name not in SUITES:
        raise SuiteError(unknown_name_message("suite", name, sorted(SUITES)))
    return SUITES[name]


def _known_names(kind: str, names: Sequence[str], known: list[str]) -> tuple[str, ...]:
    """`names` without duplicates, in order; an unknown one raises SuiteError listing the known ones."""
    for name in names:
        if name not in known:
            raise SuiteError(unknown_name_message(kind, name, known))
    return tuple(dict.fromkeys(names))


def narrow(
    suite: Suite,
    *,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    epochs_scale: float | None = None,
    split: str | None = None,
) -> Suite:
    """A copy of `suite` restricted (or redirected) to the given names; unknown names list the valid ones."""
    changes: dict[str, Any] = {}
    if datasets:
        chosen: list[str] = []
        options = {k: dict(v) for k, v in suite.dataset_options.items()}
        for spec in datasets:  # 'utd_mhad[skip_bad=true]': the dataset with these options
            name, opts = parse_variant(spec)
            if "modality" in opts:
                raise SuiteError(f"dataset {spec!r}: write name[option=value,...], e.g. utd_mhad[skip_bad=true]")
            chosen.append(name)
            if opts:
                _known_names("dataset", [name], DATASETS.names())
                merged = {**options.get(name, {}), **opts}
                try:
                    DATASETS.get(name)(**merged)
                except ValueError as exc:
                    raise SuiteError(f"dataset {spec!r}: {exc}") from None
                options[name] = merged
        changes["datasets"] = _known_names("dataset", chosen, DATASETS.names())
        changes["dataset_options"] = options
    if methods:
        valid = sorted(set(METHODS.names()) | set(all_variant_specs()))
        for m in methods:
            name, _ = parse_variant(m)
            if name not in METHODS:
                raise SuiteError(unknown_name_message("method", m, valid))
            expand_method(m)  # validates the modality
        changes["methods"] = tuple(dict.fromkeys(m.strip() for m in methods))
    if protocols:
        for p in protocols:
            parse_protocol(p)  # a known protocol, and overrides it accepts
        changes["protocols"] = tuple(dict.fromkeys(p.strip() for p in protocols))
    if seeds:
        bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SEED]
        if bad:
            raise SuiteError(f"seeds must be integers from 0 to {MAX_SEED}, got {bad}")
        changes["seeds"] = tuple(dict.fromkeys(seeds))
    if epochs_scale is not None:
        changes["shrink"] = suite.shrink.scaled(epochs_scale)
    if split:
        names = {n for d in changes.get("datasets", suite.datasets) for n, spec in DATASETS.get(d).splits.items()
                 for n in (n, getattr(spec, "family", None)) if n}
        if split not in names:
            raise SuiteError(unknown_name_message("split", split, sorted(names)))
        changes["split"] = split
    return replace(suite, **changes)
