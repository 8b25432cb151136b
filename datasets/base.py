"""The dataset plugin contract: what a dataset declares and how it reads its raw files.

A dataset plugin returns raw numpy arrays per sample; the harness (`benchmark.data`) does the
resampling, skeleton normalisation, standardisation, caching and tensors.

Raw sample layouts handed to the harness:
- inertial: float array (T, C) at the modality's rate;
- skeleton: float array (T, J, C) at the modality's rate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np


class DatasetError(ValueError):
    """Bad or missing raw data; the message names the file or folder and says what to do."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """The dataset's raw files are not under the data root."""


@dataclass(frozen=True)
class ModalitySpec:
    """One modality as stored: `layout` is 'inertial' (T, C) or 'skeleton' (T, J, C)."""

    layout: str
    channels: int
    rate_hz: float
    joints: int | None = None
    description: str = ""


@dataclass(frozen=True)
class SkeletonNorm:
    """Reference skeleton normalisation: recentre on `anchor` at frame 0, divide by |p[a]-p[b]| at frame 0."""

    anchor: int
    scale_pair: tuple[int, int]


@dataclass(frozen=True)
class SplitSpec:
    """A named split: each part is a filter {group key: allowed values}; all keys must match.

    `disjoint_on` is the group key (e.g. 'subject' or 'scene') whose values must not be shared
    between the train part and the test part.
    """

    train: Mapping[str, Sequence[int]]
    val: Mapping[str, Sequence[int]]
    test: Mapping[str, Sequence[int]]
    disjoint_on: str = "subject"
    description: str = ""


@dataclass
class RawData:
    """What `DatasetPlugin.read` returns: aligned raw samples, 0-based labels and grouping keys."""

    samples: dict[str, list[np.ndarray]]
    labels: np.ndarray
    groups: dict[str, np.ndarray]  # 'subject' required; e.g. 'trial', 'scene', 'session'
    ids: list[str]
    skipped: list[str] = field(default_factory=list)  # "file: reason", only with an explicit skip option

    def __post_init__(self) -> None:
        n = len(self.ids)
        for m, arrs in self.samples.items():
            if len(arrs) != n:
                raise DatasetError(f"modality {m!r} has {len(arrs)} samples but there are {n} ids")
        if len(self.labels) != n:
            raise DatasetError(f"{len(self.labels)} labels for {n} samples")
        if "subject" not in self.groups:
            raise DatasetError("RawData.groups must contain 'subject'")
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
    profile: ClassVar[str]  # hyperparameter / augmentation profile: 'utd_mhad' or 'mmact'
    main_metric: ClassVar[str] = "accuracy"
    skeleton_norm: ClassVar[SkeletonNorm | None] = None
    how_to_obtain: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when reading logic changes: invalidates caches
    option_defaults: ClassVar[dict[str, Any]] = {}  # dataset-specific read options

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_defaults))
        if unknown:
            raise DatasetError(
                f"unknown option(s) {unknown} for dataset {self.name!r}; valid: {sorted(self.option_defaults) or 'none'}"
            )
        self.options = {**self.option_defaults, **options}
        for k, v in self.options.items():
            want = type(self.option_defaults[k])
            if self.option_defaults[k] is not None and not isinstance(v, want):
                raise DatasetError(f"option {k!r} of dataset {self.name!r} must be {want.__name__}, got {v!r}")

    # -- files ----------------------------------------------------------------------------------
    def find(self, root: Path) -> Path:
        """The folder holding this dataset's raw files under `root`, or a DataNotFoundError saying how to get it."""
        for cand in (root / self.folder_name, root):
            if self.looks_present(cand):
                return cand
        raise DataNotFoundError(
            f"{self.name}: no raw data found under {root} (looked in {root / self.folder_name} and {root}). "
            f"{self.how_to_obtain}"
        )

    def looks_present(self, folder: Path) -> bool:
        """Cheap check that `folder` holds this dataset's layout."""
        raise NotImplementedError

    def raw_files(self, folder: Path) -> list[Path]:
        """Every raw file that `read` uses (for the cache fingerprint)."""
        raise NotImplementedError

    def read(self, folder: Path | None) -> RawData:
        """Read (or generate) every sample; raise DatasetError naming the file on bad input."""
        raise NotImplementedError

    def download(self, root: Path, url: str | None = None) -> Path:
        """Fetch the raw data into `root`; datasets that cannot be fetched explain why."""
        raise DatasetError(f"{self.name} cannot be downloaded automatically. {self.how_to_obtain}")
