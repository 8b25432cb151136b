"""Named benchmark suites (smoke, quick, full, paper): which datasets, method variants, protocols and seeds.

A suite is data, not code: the runner expands it into cells. Method variants are written
`name[modality]` (e.g. `simclr[inertial]`) or `name[key=value,...]` for other config overrides
(e.g. `cmc_cmkm[k=2]`); a bare method name in a suite or on the command line means every variant
of it, one per value of the method's declared `modality` choices. Protocols take variants the same way
(`paper_head[bn_mode=frozen]`): cells of their own, beside the plain protocol's.

Schedules are shortened by a `Shrink`, applied to every resolved method config (dependencies included)
and protocol config: keys named `epochs` / `*_epochs` are multiplied by `epochs_scale` (at least 1,
0 stays 0) and capped by `epochs_cap`; keys named `batch_size` / `*_batch_size` are capped by `batch_cap`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from benchmark.registry import DATASETS, METHODS, PROTOCOLS, RegistryError, unknown_name_message

_VARIANT_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[(.*)\])?\s*$")


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
    dataset_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    method_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by method name, deps too
    protocol_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by protocol name
    split: str | None = None  # None: each dataset's default split
    precision: str = "auto"  # fp32 | bf16 | auto (benchmark.hardware); --precision overrides it

    def variant_specs(self) -> list[str]:
        """The method variant specs of this suite, bare names expanded into their variants."""
        specs = list(self.methods) if self.methods is not None else METHODS.names()
        out: list[str] = []
        for s in specs:
            for v in expand_method(s):
                if v not in out:
                    out.append(v)
        return out

    def protocol_names(self) -> list[str]:
        """The protocol specs of this suite, e.g. 'knn' or 'paper_head[bn_mode=frozen]' (all when not listed)."""
        return list(self.protocols) if self.protocols is not None else PROTOCOLS.names()


# -- method variants ------------------------------------------------------------------------------
def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """'simclr[inertial]' -> ('simclr', {'modality': 'inertial'}); 'cmc_cmkm[k=2,lam=0.5]' -> overrides."""
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


def expand_method(spec: str) -> list[str]:
    """A bare method name -> one spec per declared modality choice; a variant spec -> itself (validated)."""
    name, overrides = parse_variant(spec)
    cls = method_class(name)
    if "[" in spec:
        mod = overrides.get("modality")
        allowed = getattr(cls, "choices", {}).get("modality")
        if mod is not None and allowed is not None and mod not in allowed:
            raise SuiteError(unknown_name_message(f"modality of method {name}", mod, list(allowed)))
        return [spec.strip()]
    allowed = getattr(cls, "choices", {}).get("modality")
    if allowed:
        return [f"{name}[{m}]" for m in allowed]
    return [name]


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


# -- the suites -----------------------------------------------------------------------------------
PAPER_VARIANTS = ("supervised[inertial]", "supervised[skeleton]", "supervised[all]", "simclr[inertial]",
                  "simclr[skeleton]", "cmc", "cmc_cmkm")

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            name="smoke",
            description="every method x every protocol x 2 seeds on a small synthetic set, 1-epoch schedules "
                        "(checks that everything runs end to end; the numbers mean nothing)",
            datasets=("synthetic",),
            seeds=(0, 1),
            shrink=Shrink(epochs_cap=1, batch_cap=16),
            dataset_options={"synthetic": {"n_trials": 1, "n_classes": 6}},
            method_overrides={"moco": {"queue_size": 32}, "cmc_moco": {"queue_size": 32}},
            # two budgets, so the semi-supervised curve figure is drawn (3 training clips per class here)
            protocol_overrides={"semisup": {"budgets": [1, 2]}},
        ),
        Suite(
            name="quick",
            description="the paper's method variants with the paper_head, linear, knn and retrieval protocols on "
                        "UTD-MHAD (synthetic when absent), 1 seed, schedules cut to 5% (SimCLR 15 epochs, CMC 5, "
                        "heads 5)",
            datasets=("utd_mhad",),
            methods=PAPER_VARIANTS,
            protocols=("paper_head", "linear", "knn", "retrieval"),
            seeds=(0,),
            shrink=Shrink(epochs_scale=0.05),
            fallback_dataset="synthetic",
            # used only by the fallback: 11 trials give 330 / 110 / 440 clips, the size of UTD-MHAD's xsub parts
            # (the paper batch sizes, e.g. 128 for inertial SimCLR, need more than the default 120 training clips)
            dataset_options={"synthetic": {"n_trials": 11}},
        ),
        Suite(
            name="full",
            description="every method x every protocol x 5 seeds on UTD-MHAD with the paper schedules",
            datasets=("utd_mhad",),
            seeds=(0, 1, 2, 3, 4),
        ),
        Suite(
            name="paper",
            description="the reference configuration: supervised, SimCLR, CMC and CMC-CMKM with the paper's "
                        "downstream head on UTD-MHAD, 3 seeds",
            datasets=("utd_mhad",),
            methods=PAPER_VARIANTS,
            protocols=("paper_head",),
            seeds=(0, 1, 2),
            precision="fp32",  # the reference trained in float32
        ),
    )
}


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
) -> Suite:
    """A copy of `suite` restricted (or redirected) to the given names; unknown names list the valid ones."""
    changes: dict[str, Any] = {}
    if datasets:
        changes["datasets"] = _known_names("dataset", datasets, DATASETS.names())
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
        bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or s < 0]
        if bad:
            raise SuiteError(f"seeds must be integers >= 0, got {bad}")
        changes["seeds"] = tuple(dict.fromkeys(seeds))
    if epochs_scale is not None:
        changes["shrink"] = suite.shrink.scaled(epochs_scale)
    return replace(suite, **changes)
