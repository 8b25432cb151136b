"""The dataset plugin contract: what a dataset declares and how it reads its raw files.

A dataset plugin returns raw numpy arrays per sample; the harness (`benchmark.data`) does the resampling,
skeleton normalisation, standardisation, caching and tensors. Everything in which datasets differ is
declared here as data: modalities (a free name and a kind), class names, splits, and the training profile
(`TrainingProfile`: per-method defaults, augmentation overrides, semi-supervised budgets, main metric,
preprocessing length). The harness never branches on a dataset's name.

Raw sample layouts handed to the harness, by modality kind:
- inertial: float array (T, C) at the modality's rate;
- skeleton: float array (T, J, C) at the modality's rate.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.config import ConfigError, resolve

MODALITY_KINDS = ("inertial", "skeleton")
BUDGET_TYPES = ("per_class", "fraction")
# inertial augmentation ops (benchmark.augment) that treat channel triplets as 3-D vectors: they take the
# triplets a modality declares (`ModalitySpec.vectors`) as their `vectors` parameter
VECTOR_OPS = ("rotation", "channel_shuffle")
DEFAULT_BUDGETS: dict[str, tuple[float, ...]] = {"per_class": (1, 2, 3, 5, 8),
                                                 "fraction": (0.01, 0.05, 0.1, 0.25, 0.5)}


class DatasetError(ValueError):
    """Bad or missing raw data; the message names the file or folder and says what to do."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """The dataset's raw files are not under the data root."""


@dataclass(frozen=True)
class ModalitySpec:
    """One modality as stored. Its name is free (the key in `DatasetPlugin.modalities`); its `kind` picks the
    encoder and augmentations: 'inertial' (T, C) or 'skeleton' (T, J, C).

    `vectors` (inertial only): the channel index triplets that are 3-D vectors (an accelerometer's or a
    gyroscope's xyz), the only channels the vector ops of the `intended` augmentation layout (3-D rotation,
    axis shuffle) touch; channels in no triplet (e.g. orientation angles) are left alone. None: every
    consecutive triplet is a vector (the channel count must then be a multiple of 3).
    """

    kind: str
    channels: int
    rate_hz: float
    joints: int | None = None
    description: str = ""
    vectors: tuple[tuple[int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in MODALITY_KINDS:
            raise DatasetError(f"ModalitySpec kind {self.kind!r} is not known; use one of {MODALITY_KINDS}")
        if self.kind == "skeleton" and not self.joints:
            raise DatasetError("a skeleton ModalitySpec needs `joints` (the number of joints per frame)")
        if self.vectors is not None:
            if self.kind != "inertial":
                raise DatasetError(f"ModalitySpec vectors are declared for inertial modalities only, not "
                                   f"{self.kind!r}")
            flat = [c for group in self.vectors for c in group]
            if (any(len(group) != 3 for group in self.vectors) or len(set(flat)) != len(flat)
                    or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < self.channels
                           for c in flat)):
                raise DatasetError(f"ModalitySpec vectors {self.vectors!r}: give triplets of distinct channel "
                                   f"indices in 0..{self.channels - 1}, each channel in at most one triplet")
            object.__setattr__(self, "vectors", tuple(tuple(group) for group in self.vectors))

    @property
    def layout(self) -> str:
        """The kind under its older name."""
        return self.kind


@dataclass(frozen=True)
class SkeletonNorm:
    """Reference skeleton normalisation: recentre on `anchor` at frame 0, divide by |p[a]-p[b]| at frame 0."""

    anchor: int
    scale_pair: tuple[int, int]


@dataclass(frozen=True)
class SplitSpec:
    """A named split: each part is a filter {group key: allowed values}; all keys must match.

    - Group splits (e.g. cross-subject): give `train`, `val` and `test` filters; `disjoint_on` names the group
      whose values must not be shared between train and test (and between train and val).
    - Predefined splits (train/test fixed by the files): give `train` and `test` filters on the group that
      records the file's part (e.g. {'part': [0]}), leave `val` empty and set `val_fraction`: that share of
      every class's train clips (at least one clip of a class with two or more) becomes the validation part,
      drawn with `val_seed` (recorded with the split).
    `disjoint_on=None` checks no group (only that the parts share no clip).
    `val_overlaps_train=True` allows validation clips that are also training clips (a published protocol that
    validates on its training subjects, e.g. SICL's); its description must say so. Test stays disjoint.
    `family` names a group of splits that together form one protocol (e.g. rotating subject folds): the report
    aggregates a family's splits as one result, each split a fold.
    """

    train: Mapping[str, Sequence[int]]
    val: Mapping[str, Sequence[int]] = field(default_factory=dict)
    test: Mapping[str, Sequence[int]] = field(default_factory=dict)
    disjoint_on: str | None = "subject"
    description: str = ""
    val_fraction: float | None = None
    val_seed: int = 0
    disjoint_val: bool = True  # keep the `disjoint_on` group apart between train and val as well
    val_overlaps_train: bool = False
    family: str | None = None

    def __post_init__(self) -> None:
        if self.val_fraction is not None:
            if self.val:
                raise DatasetError("a SplitSpec carves its validation part from train (val_fraction) or filters it "
                                   "(val), not both")
            if not 0.0 < float(self.val_fraction) < 1.0:
                raise DatasetError(f"SplitSpec.val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if not self.test:
            raise DatasetError("a SplitSpec needs a test filter")
        if self.val_overlaps_train and self.disjoint_val:
            raise DatasetError("a SplitSpec with val_overlaps_train=True must set disjoint_val=False (its validation "
                               "part shares the training groups)")

    def groups_used(self) -> set[str]:
        """Every group key the split reads."""
        keys = {k for part in (self.train, self.val, self.test) for k in part}
        return keys | ({self.disjoint_on} if self.disjoint_on else set())

    def describe(self) -> dict[str, Any]:
        return {"train": dict(self.train), "val": dict(self.val), "test": dict(self.test),
                "disjoint_on": self.disjoint_on, "description": self.description,
                "val_fraction": self.val_fraction, "val_seed": self.val_seed, "disjoint_val": self.disjoint_val,
                "val_overlaps_train": self.val_overlaps_train, "family": self.family}


@dataclass(frozen=True)
class TrainingProfile:
    """How methods train on a dataset, declared by the dataset (every field has a generic default).

    - `method_defaults`: {selector: config overrides} applied over a method's own defaults, from the least to
      the most specific selector: '*' (every method), a method kind ('unimodal', 'multimodal', 'supervised'),
      a method name ('my_method'), a method on one modality ('my_method[skeleton]', by modality name or kind).
      Keys are checked against each method's config when it is resolved.
    - `augmentations`: {modality name or kind, or a pipeline a method names: {op: {'apply'|'probability'|param:
      value}}} over the reference pipelines of `benchmark.augment` (the UTD-MHAD reference values).
    - `semisup_budget_type` and `semisup_budgets`: the label budgets the `semisup` protocol runs by default
      (budgets above what the train part holds are dropped at planning).
    - `main_metric`: the metric tables rank by and models are selected on ('accuracy' or 'f1').
    - `length`: frames every clip is resampled to.
    """

    method_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    augmentations: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    semisup_budget_type: str = "per_class"
    semisup_budgets: Sequence[float] | None = None
    main_metric: str = "accuracy"
    length: int = 50

    def __post_init__(self) -> None:
        if self.semisup_budget_type not in BUDGET_TYPES:
            raise DatasetError(f"TrainingProfile.semisup_budget_type {self.semisup_budget_type!r}: use one of "
                               f"{BUDGET_TYPES}")
        if str(self.main_metric).lower() not in ("accuracy", "acc", "f1", "f1_macro"):
            raise DatasetError(f"TrainingProfile.main_metric {self.main_metric!r}: use 'accuracy' or 'f1'")
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < 2:
            raise DatasetError(f"TrainingProfile.length must be an integer >= 2, got {self.length!r}")
        for sel, values in self.method_defaults.items():
            if not isinstance(values, Mapping):
                raise DatasetError(f"TrainingProfile.method_defaults[{sel!r}] must be a dict of config keys")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "training profile") -> "TrainingProfile":
        """A profile from plain data; an unknown key is an error naming it."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DatasetError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**dict(values))

    def budgets(self) -> tuple[float, ...]:
        """The default semi-supervised budgets (declared, else the generic ones of the budget type)."""
        return tuple(self.semisup_budgets) if self.semisup_budgets else DEFAULT_BUDGETS[self.semisup_budget_type]

    @property
    def main_metric_key(self) -> str:
        """The metric name records use: 'accuracy' or 'f1_macro'."""
        return "f1_macro" if str(self.main_metric).lower() in ("f1", "f1_macro") else "accuracy"

    def describe(self) -> dict[str, Any]:
        """Plain JSON data (stored in records)."""
        out = asdict(self)
        out["semisup_budgets"] = list(self.budgets())
        return out

    def is_generic(self) -> bool:
        """Whether this profile declares nothing beyond the generic defaults (old keys stay valid for it)."""
        return self.describe() == TrainingProfile().describe()

    def with_vectors(self, specs: Mapping[str, Any]) -> "TrainingProfile":
        """This profile with every modality's declared `ModalitySpec.vectors` passed to the augmentation ops that
        treat channel triplets as 3-D vectors (`VECTOR_OPS`); the same object when no modality declares any.
        `specs` maps modality names to ModalitySpecs or their `vars()` dicts (as `MultimodalData.meta` holds)."""
        augmentations: dict[str, Any] = {k: dict(v) for k, v in self.augmentations.items()}
        changed = False
        for name, spec in specs.items():
            vectors = spec.get("vectors") if isinstance(spec, Mapping) else getattr(spec, "vectors", None)
            if vectors is None:
                continue
            entry = {op: dict(cfg) for op, cfg in augmentations.get(name, {}).items()}
            for op in VECTOR_OPS:
                entry[op] = {**entry.get(op, {}), "vectors": [list(group) for group in vectors]}
            augmentations[name] = entry
            changed = True
        return replace(self, augmentations=augmentations) if changed else self

    def selectors(self, method: str, kind: str, modality: str | None, modality_kind: str | None) -> list[str]:
        """The method_defaults selectors that apply to a configured method, least specific first."""
        out = ["*", kind, method]
        for m in dict.fromkeys(x for x in (modality_kind, modality) if x):
            out.append(f"{method}[{m}]")
        return [s for s in out if s in self.method_defaults]


@dataclass
class RawData:
    """What `DatasetPlugin.read` returns: aligned raw samples, 0-based labels and grouping keys."""

    samples: dict[str, list[np.ndarray]]
    labels: np.ndarray
    groups: dict[str, np.ndarray]  # optional keys, e.g. 'subject', 'trial', 'scene', 'part'
    ids: list[str]
    skipped: list[str] = field(default_factory=list)  # "file: reason", only with an explicit skip option

    def __post_init__(self) -> None:
        n = len(self.ids)
        for m, arrs in self.samples.items():
            if len(arrs) != n:
                raise DatasetError(f"modality {m!r} has {len(arrs)} samples but there are {n} ids")
        if len(self.labels) != n:
            raise DatasetError(f"{len(self.labels)} labels for {n} samples")
        for k, v in self.groups.items():
            if len(v) != n:
                raise DatasetError(f"group {k!r} has {len(v)} entries for {n} samples")


class DatasetPlugin:
    """Base class of dataset plugins. Subclass, fill the class attributes, register with DATASETS."""

    name: ClassVar[str]
    folder_name: ClassVar[str] = ""  # sub-folder of the data root holding the raw files
    needs_root: ClassVar[bool] = True  # False for generated datasets
    modalities: ClassVar[dict[str, ModalitySpec]]
    class_names: ClassVar[list[str]]
    splits: ClassVar[dict[str, SplitSpec]]
    default_split: ClassVar[str]
    training: ClassVar[TrainingProfile] = TrainingProfile()
    main_metric: ClassVar[str] = "accuracy"  # kept equal to training.main_metric (set either)
    skeleton_norm: ClassVar[SkeletonNorm | None] = None
    how_to_obtain: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when reading logic changes: invalidates caches
    option_defaults: ClassVar[dict[str, Any]] = {}  # dataset-specific read options
    # The protocol variants (table names, e.g. 'paper_head', 'semisup[per_class=1]') the report summarises first,
    # in this order; presentation only (not part of any key). Empty: every table is summarised alike.
    headline_protocols: ClassVar[tuple[str, ...]] = ()
    # How suites shorten their schedules when this dataset stands in for absent real data (a suite's fallback):
    # Shrink fields (epochs_scale, epochs_cap, batch_cap), combined with the suite's own by taking the shorter.
    # A plugin attribute, not part of the TrainingProfile, whose description is part of every data key.
    stand_in_shrink: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        try:
            self.options = resolve(self.name, self.option_defaults, [("", options)], what=f"dataset {self.name!r}",
                                   allow_none=True, noun="option")
        except ConfigError as exc:
            raise DatasetError(str(exc)) from None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "profile" in cls.__dict__:
            raise TypeError(f"dataset plugin {cls.__qualname__}: the 'profile' attribute is gone; declare what "
                            f"differs as `training = TrainingProfile(...)` (benchmark.contracts; the generic defaults "
                            f"are the reference's UTD-MHAD settings)")
        if isinstance(cls.__dict__.get("main_metric"), str) and "training" not in cls.__dict__:
            cls.training = replace(cls.training, main_metric=cls.__dict__["main_metric"])
        cls.main_metric = cls.training.main_metric

    # -- files ----------------------------------------------------------------------------------
    def find(self, root: Path) -> Path:
        """The folder holding this dataset's raw files under `root`, or a DataNotFoundError saying how to get it."""
        for cand in (root / self.folder_name, root):
            if self.looks_present(cand):
                return cand
        why = next((w for cand in dict.fromkeys((root / self.folder_name, root)) if cand.is_dir()
                    for w in [self.why_absent(cand)] if w), "")
        raise DataNotFoundError(
            f"{self.name}: no raw data found under {root} (looked in {root / self.folder_name} and {root})"
            + (f": {why}" if why else "") + f". {self.how_to_obtain}"
        )

    def looks_present(self, folder: Path) -> bool:
        """Cheap check that `folder` holds this dataset's layout."""
        raise NotImplementedError

    def why_absent(self, folder: Path) -> str:
        """Optional: what in `folder` stops `looks_present` (e.g. 'Skeleton is a file, not a folder'); '' if unknown."""
        return ""

    def raw_files(self, folder: Path) -> list[Path]:
        """Every raw file that `read` uses (for the cache fingerprint)."""
        raise NotImplementedError

    def read(self, folder: Path | None) -> RawData:
        """Read (or generate) every sample; raise DatasetError naming the file on bad input."""
        raise NotImplementedError

    def download(self, root: Path, url: str | None = None) -> Path:
        """Fetch the raw data into `root`; datasets that cannot be fetched explain why."""
        raise DatasetError(f"{self.name} cannot be downloaded automatically. {self.how_to_obtain}")
