"""The layout the reference's `datasets/mmact_raw_preprocessing.py` writes (razzu/cmc-cmkm), read as it is.

    Inertial/a{A}_s{S}_t{T}_ses{E}_sc{C}.csv   headerless, 12 float columns at 50 Hz (phone acc, watch acc,
                                               gyroscope, orientation; xyz each)
    Skeleton/a{A}_s{S}_t{T}_ses{E}_sc{C}.npy   (17, 2, F): COCO keypoints x (x, y) pixels x frames of camera 1

A = reference activity id, S = subject, T = trial (numbered per modality by the reference, so clips pair on
(A, S, C, E)), E = session, C = scene. Files whose names do not follow the pattern are ignored.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from datasets._mmact_classes import REFERENCE_IDS, UNUSED_REFERENCE_ID
from datasets._mmact_clips import ClipKey, ClipProblem, Entry, Found, describe_key

INERTIAL_CHANNELS = 12
POSE_JOINTS, POSE_DIMS = 17, 2
SUBFOLDER = {"inertial": "Inertial", "skeleton": "Skeleton"}
_EXT = {"inertial": ".csv", "skeleton": ".npy"}
_NAME_RE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_ses(\d+)_sc(\d+)$")
_FIX = ("Regenerate the file with the reference preprocessing, or run with --datasets 'mmact[skip_bad=true]' to skip "
        "this clip.")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def looks_present(folder: Path) -> bool:
    """True when `folder` has Inertial/ and Skeleton/ and at least one inertial clip."""
    inertial = folder / SUBFOLDER["inertial"]
    return (folder / SUBFOLDER["skeleton"]).is_dir() and inertial.is_dir() and any(
        p.suffix == ".csv" and _NAME_RE.match(p.stem) for p in inertial.iterdir())


def read_csv(path: Path) -> np.ndarray:
    """The (T, 12) rows of one headerless CSV, every row (the plugin drops the first one by default)."""
    try:
        x = pd.read_csv(path, header=None, dtype=np.float64, engine="c").to_numpy()
    except pd.errors.EmptyDataError:
        return np.zeros((0, INERTIAL_CHANNELS))
    except (ValueError, pd.errors.ParserError, OSError, UnicodeDecodeError) as exc:
        raise ClipProblem(f"mmact: {path} is not a numeric headerless CSV ({_one_line(exc)}). {_FIX}",
                          "malformed") from exc
    if x.ndim != 2 or x.shape[1] != INERTIAL_CHANNELS:
        raise ClipProblem(f"mmact: {path} has {x.shape[1] if x.ndim == 2 else '?'} columns, expected "
                          f"{INERTIAL_CHANNELS} (phone acc, watch acc, gyro, orientation). {_FIX}", "malformed")
    return x


def read_npy(path: Path) -> np.ndarray:
    """A (F, 17, 2) float array from a (17, 2, F) .npy file."""
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ClipProblem(f"mmact: {path} is not a readable .npy array ({_one_line(exc)}). {_FIX}",
                          "malformed") from exc
    if not np.issubdtype(x.dtype, np.number):
        raise ClipProblem(f"mmact: {path} holds {x.dtype} values, expected numbers. {_FIX}", "malformed")
    if x.ndim != 3 or x.shape[:2] != (POSE_JOINTS, POSE_DIMS):
        raise ClipProblem(f"mmact: {path} has shape {x.shape}, expected ({POSE_JOINTS}, {POSE_DIMS}, F). {_FIX}",
                          "malformed")
    return np.ascontiguousarray(x.astype(np.float64, copy=False).transpose(2, 0, 1))


def scan(folder: Path) -> Found:
    """Every clip file of both modalities under `folder` (nothing is read yet)."""
    found = Found("preprocessed")
    loaders = {"inertial": read_csv, "skeleton": read_npy}
    for m, sub in SUBFOLDER.items():
        d = Path(folder) / sub
        files: dict[ClipKey, list[tuple[Path, int]]] = {}
        for p in sorted(d.iterdir()) if d.is_dir() else []:
            hit = _NAME_RE.match(p.stem)
            if p.suffix != _EXT[m] or hit is None or not p.is_file():
                continue
            rid, subject, trial, session, scene = (int(g) for g in hit.groups())
            if rid not in REFERENCE_IDS:
                why = ("id 24 is never produced by the reference preprocessing (its duplicate 'using_phone' is "
                       "id 34)" if rid == UNUSED_REFERENCE_ID else "valid ids are 1-36")
                found.bad.append(ClipProblem(f"mmact: {p} has activity id {rid}: {why}. Remove or rename the file.",
                                             "malformed"))
                continue
            files.setdefault((rid, subject, scene, session), []).append((p, trial))
        for key in sorted(files):
            entries = files[key]
            if len(entries) > 1:
                found.duplicates.append(
                    f"mmact: {' and '.join(str(p) for p, _ in entries)} are all {describe_key(key)}, so they cannot "
                    f"be paired unambiguously; the clip is dropped, as the reference's pairing drops it")
                continue
            path, trial = entries[0]
            found.files.append(path)
            found.modality(m)[key] = Entry(path, trial, lambda p=path, f=loaders[m]: f(p))
    return found
