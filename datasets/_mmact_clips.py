"""What the two MMAct layout readers hand to the plugin: clip entries per modality, with lazy loaders.

Both readers (the official release, `_mmact_release`; the reference's preprocessed folders,
`_mmact_preprocessed`) produce arrays in the reference's preprocessed form: inertial (T, 12) at 50 Hz as its
CSV holds it (first row included), pose (F, 17, 2) pixel coordinates of camera 1. The plugin applies the
options (first-row drop, strictness), pairs the modalities and lists what it skipped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.contracts import DatasetError

ClipKey = tuple[int, int, int, int]  # (reference id, subject, scene, session): what the reference pairs on
PROBLEM_KINDS = ("dropped", "unusable", "malformed")


class ClipProblem(DatasetError):
    """One clip that cannot be used as it is. `kind`:
    - 'dropped': the reference preprocessing writes no file for it (empty series, no person in any frame);
    - 'unusable': our harness cannot use it (no rows left, NaN or infinite values, one 100 Hz sample);
    - 'malformed': an unreadable file or one in an unexpected format."""

    def __init__(self, message: str, kind: str) -> None:
        if kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown clip problem kind {kind!r}")
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Entry:
    """One modality's clip: the file that names it, the trial number its layout gives it, and its loader."""

    path: Path
    trial: int
    load: Callable[[], np.ndarray]


@dataclass
class Found:
    """A layout's clips per modality, plus what its scan already set aside."""

    layout: str
    inertial: dict[ClipKey, Entry] = field(default_factory=dict)
    skeleton: dict[ClipKey, Entry] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)  # one message per key held by several files (excluded)
    dropped: list[str] = field(default_factory=list)  # "file: reason", clips the reference writes no file for
    bad: list[ClipProblem] = field(default_factory=list)  # malformed names (e.g. an action outside the dictionary)
    files: list[Path] = field(default_factory=list)  # every file the loaders read (for the cache fingerprint)

    def modality(self, name: str) -> dict[ClipKey, Entry]:
        return self.inertial if name == "inertial" else self.skeleton


def clip_id(key: ClipKey, trial: int) -> str:
    """The reference's file stem, e.g. 'a10_s13_t13_ses3_sc4'."""
    rid, subject, scene, session = key
    return f"a{rid}_s{subject}_t{trial}_ses{session}_sc{scene}"


def describe_key(key: ClipKey) -> str:
    return f"action {key[0]}, subject {key[1]}, scene {key[2]}, session {key[3]}"
