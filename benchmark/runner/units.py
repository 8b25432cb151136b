"""The runner's typed data: pretrain units, cells, what planning learnt about a dataset, and the work unit
handed to a worker. Keys are sha256 (first 16 hex digits) of canonical JSON (`unit_key`, `cell_key`).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark import store
from benchmark.contracts.method import DataInfo

# Bump when stored results change meaning: every key changes and all cells are recomputed. Keys also hold the
# hashes of the code that produces the numbers (benchmark.codehash); this is the override for anything else.
# 3: fast CPU kernels (cheap dropout masks, fused feed-forward block) change the CPU random stream.
CODE_VERSION = "3"
BACKENDS = ("local", "joblib", "dask")
DEVICES = ("auto", "cpu", "cuda")


class RunError(RuntimeError):
    """A run could not be planned or executed; the message says what to change."""


def key_of(obj: Any) -> str:
    """The 16-hex-digit sha256 of an object's canonical JSON."""
    return hashlib.sha256(store.canonical_json(obj).encode()).hexdigest()[:16]


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
    code: dict[str, str] = field(default_factory=dict)  # harness / method / dataset code hashes (benchmark.codehash)

    def describe(self) -> dict[str, Any]:
        """The record's `cell` object."""
        return {"dataset": self.dataset, "split": self.split, "method": self.method, "variant": self.variant,
                "method_cfg": self.method_cfg, "protocol": self.protocol, "protocol_cfg": self.protocol_cfg,
                "protocol_variant": self.protocol_variant, "seed": self.seed}


@dataclass
class DatasetInfo:
    """What planning learnt about one dataset: its fingerprint, split sizes and what methods may know of it."""

    name: str
    options: dict[str, Any]
    split: str
    fingerprint: str
    sizes: dict[str, int]
    data: DataInfo  # shapes, modality kinds, classes, declared training profile, train size
    root: str | None

    @property
    def layouts(self) -> dict[str, str]:
        return self.data.kinds

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.data.shapes

    @property
    def main_metric(self) -> str:
        return self.data.training.main_metric_key




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
    command: str | None = None  # the command line, for the results folder's invocation log
    merge: bool = False  # allow a run of another suite into a folder holding a suite's records
    marks: dict[str, Any] = field(default_factory=dict)  # further JSON files the run writes under the lock

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
class WorkUnit:
    """Everything a worker needs for one pretrain unit and its cells (plain, picklable data)."""

    unit: str  # the key of the unit to pretrain or load
    units: dict[str, PretrainUnit]  # the unit and its dependency chain
    cells: list[Cell]
    results_dir: str
    data_root: str | None
    device: str
    threads: int
    precision: str
    fail_fast: bool
    registrations: list[tuple[str, str, str, str]]  # (kind, name, module, qualname) of every plugin used
    env: dict[str, str] = field(default_factory=dict)
    suite: str | None = None  # the suite of the run (stored in each record)
    owner: str | None = None  # `atomic.owner_tag()` of the dispatching run: its workers stop when it is gone

    @property
    def pretrain(self) -> PretrainUnit:
        return self.units[self.unit]


def cell_label(c: Cell | dict[str, Any]) -> str:
    """'dataset variant protocol_variant seed N' (progress lines and failure lists)."""
    d = asdict(c) if isinstance(c, Cell) else c
    return f"{d['dataset']} {d['variant']} {d['protocol_variant']} seed {d['seed']}"
