"""The official trimmed MMAct release, extracted, read with the reference's preprocessing rules.

Layout (each archive extracted into the dataset folder; `_mmact_archive` does that from the archives):

    acc_phone_clip/subjectN/sceneN/sessionN/<action>.csv     100 Hz, rows `timestamp,x,y,z`, no header
    acc_watch_clip/...   (100 Hz)   gyro_clip/...   (50 Hz)   orientation_clip/...   (50 Hz)
    pose/cross_view/trainval/subjectN/camK/sceneN/sessionN/<action>.json
        {frame: {"person1": [17 x (x, y, confidence)], "person2": [...]?}, ...}

The rules of razzu/cmc-cmkm `datasets/mmact_raw_preprocessing.py`, re-implemented (facts, not code):
- action = file name up to its first dot, lower-cased, through the reference's class dictionary;
- a clip needs all four sensor files; a sensor file with no rows drops the clip (the reference prints and
  skips both); rows are taken in file order (timestamps are not read, so shuffled timestamps change nothing);
- both accelerometers go 100 -> 50 Hz by FFT resampling to floor(n / 2) samples (scipy.signal.resample),
  then all four streams are cut to the shortest and concatenated: phone acc, watch acc, gyro, orientation;
- the values are rounded as the reference's CSV stores them (`%.6f`, read back with pandas' parser), so the
  result equals its preprocessed file bit for bit (option round_decimals=None keeps full precision);
- inertial trial = rank of (scene, session) among the sensor folders of that (subject, action), 1-based,
  counted before any clip is dropped, as the reference numbers its files;
- pose: cam1 only; per frame (in file order) "person2" when present and non-empty, else "person1";
  confidence dropped; a frame with neither person is all zeros (the reference script would stop there);
  a clip whose every frame is zero is dropped.
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import resample as fft_resample

from datasets._mmact_archive import POSE_FOLDER, SENSOR_SOURCES
from datasets._mmact_classes import CLASS_NAMES, reference_id_of_file
from datasets._mmact_clips import ClipKey, ClipProblem, Entry, Found, describe_key

POSE_ROOT = (POSE_FOLDER, "cross_view", "trainval")
ACC_SOURCES = ("acc_phone_clip", "acc_watch_clip")  # recorded at 100 Hz, brought to 50 Hz
POSE_JOINTS, POSE_VALUES = 17, 3  # COCO keypoints x (x, y, confidence)
_NUM = {what: re.compile(rf"^{what}(\d+)$", re.IGNORECASE) for what in ("subject", "scene", "session", "cam")}
_FIX = "Restore the file from the original archive, or run with --datasets 'mmact[skip_bad=true]' to skip this clip."


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _number(what: str, part: str) -> int | None:
    hit = _NUM[what].match(part)
    return int(hit[1]) if hit else None


def _walk(root: Path, suffix: str) -> list[Path]:
    """Every file under `root` ending in `suffix` (case-sensitive, as the reference filters), sorted."""
    out = []
    for dirpath, _, names in os.walk(root):
        out += [Path(dirpath) / n for n in names if os.path.splitext(n)[1] == suffix]
    return sorted(out)


def _action(path: Path) -> int | ClipProblem:
    rid = reference_id_of_file(path.name)
    if rid is None:
        return ClipProblem(f"mmact: {path} is named after no MMAct action ({path.name.split('.')[0].lower()!r} is "
                           f"not one of {', '.join(CLASS_NAMES)}). Rename or remove it, or run with --datasets "
                           f"'mmact[skip_bad=true]'.",
                           "malformed")
    return rid


def present(folder: Path) -> dict[str, bool]:
    """Which release folders exist under `folder` (sources and pose)."""
    out = {s: (folder / s).is_dir() for s in SENSOR_SOURCES}
    out[POSE_FOLDER] = folder.joinpath(*POSE_ROOT).is_dir()
    return out


# -- inertial -------------------------------------------------------------------------------------------------
def _read_sensor_csv(path: Path) -> np.ndarray:
    """(n, 3) x, y, z of one headerless `timestamp,x,y,z` file (an empty file gives n = 0)."""
    try:
        table = pd.read_csv(path, header=None, engine="c")
    except pd.errors.EmptyDataError:
        return np.zeros((0, 3))
    except (ValueError, pd.errors.ParserError, OSError, UnicodeDecodeError) as exc:
        raise ClipProblem(f"mmact: {path} is not a readable `timestamp,x,y,z` CSV ({_one_line(exc)}). {_FIX}",
                          "malformed") from exc
    if table.shape[1] != 4:
        raise ClipProblem(f"mmact: {path} has {table.shape[1]} columns, expected 4 (timestamp, x, y, z). {_FIX}",
                          "malformed")
    try:
        return table.iloc[:, 1:].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ClipProblem(f"mmact: {path} has non-numeric x, y or z values ({_one_line(exc)}); the release has no "
                          f"header row. {_FIX}", "malformed") from exc


def as_stored(x: np.ndarray, decimals: int | None) -> np.ndarray:
    """`x` as the reference's CSV stores it: printed with `decimals` places and parsed back as our reader
    parses that CSV (None: unchanged)."""
    if decimals is None or x.shape[0] == 0:
        return x
    buf = io.StringIO()
    np.savetxt(buf, x, fmt=f"%.{decimals}f", delimiter=",")
    buf.seek(0)
    return pd.read_csv(buf, header=None, dtype=np.float64, engine="c").to_numpy()


def sensor_clip(paths: dict[str, Path], decimals: int | None) -> np.ndarray:
    """The (T, 12) 50 Hz clip of one (subject, action, scene, session) from its four sensor files."""
    streams = {}
    for source in SENSOR_SOURCES:
        x = _read_sensor_csv(paths[source])
        if x.shape[0] == 0:
            raise ClipProblem(f"mmact: {paths[source]}: empty time series (the reference skips the clip)", "dropped")
        if source in ACC_SOURCES:
            if x.shape[0] < 2:
                raise ClipProblem(f"mmact: {paths[source]}: a single 100 Hz sample cannot be brought to 50 Hz "
                                  f"(the reference script stops with an error here)", "unusable")
            x = fft_resample(x, x.shape[0] // 2)
        streams[source] = x
    shortest = min(x.shape[0] for x in streams.values())
    return as_stored(np.concatenate([streams[s][:shortest] for s in SENSOR_SOURCES], axis=1), decimals)


def _scan_sensors(folder: Path, found: Found, decimals: int | None) -> None:
    files: dict[ClipKey, dict[str, list[Path]]] = {}
    for source in SENSOR_SOURCES:
        for path in _walk(folder / source, ".csv"):
            parts = path.relative_to(folder / source).parts
            nums = [_number(w, p) for w, p in zip(("subject", "scene", "session"), parts[-4:-1])] \
                if len(parts) >= 4 else [None]
            if None in nums:
                found.dropped.append(f"mmact: {path}: not in the {source}/subjectN/sceneN/sessionN/<action>.csv "
                                     f"layout; ignored")
                continue
            rid = _action(path)
            if isinstance(rid, ClipProblem):
                found.bad.append(rid)
                continue
            subject, scene, session = (int(n) for n in nums)  # type: ignore[arg-type]
            files.setdefault((rid, subject, scene, session), {}).setdefault(source, []).append(path)
    sessions: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for rid, subject, scene, session in files:
        sessions.setdefault((subject, rid), []).append((scene, session))
    trial = {(rid, subject, *sc): i for (subject, rid), scs in sessions.items()
             for i, sc in enumerate(sorted(scs), start=1)}
    for key in sorted(files):
        by_source = files[key]
        many = {s: p for s, p in by_source.items() if len(p) > 1}
        if many:
            shown = "; ".join(", ".join(str(p) for p in ps) for ps in many.values())
            found.duplicates.append(f"mmact: several sensor files for {describe_key(key)} ({shown}); the clip is "
                                    f"dropped, as the reference drops it")
            continue
        missing = [s for s in SENSOR_SOURCES if s not in by_source]
        if missing:
            some = next(iter(by_source.values()))[0]
            found.dropped.append(f"mmact: {some}: not all sensor sources present (no {', '.join(missing)} file for "
                                 f"{describe_key(key)}; the reference skips the clip)")
            continue
        paths = {s: by_source[s][0] for s in SENSOR_SOURCES}
        found.files += paths.values()
        found.inertial[key] = Entry(paths[SENSOR_SOURCES[0]], trial[key],
                                    lambda paths=paths: sensor_clip(paths, decimals))


# -- pose -----------------------------------------------------------------------------------------------------
def _frame_keypoints(path: Path, frame: str, value: object) -> np.ndarray:
    """(17, 2) keypoints of the person the reference picks in one frame; zeros when nobody was detected."""
    if not isinstance(value, dict):
        raise ClipProblem(f"mmact: {path} frame {frame!r} is {type(value).__name__}, expected an object "
                          f"{{'person1': [...], ...}}. {_FIX}", "malformed")
    person = value.get("person2") or value.get("person1")
    if not person:
        return np.zeros((POSE_JOINTS, 2))
    try:
        arr = np.asarray(person, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ClipProblem(f"mmact: {path} frame {frame!r} holds non-numeric keypoints ({_one_line(exc)}). {_FIX}",
                          "malformed") from exc
    if arr.size != POSE_JOINTS * POSE_VALUES:
        raise ClipProblem(f"mmact: {path} frame {frame!r} has {arr.size} keypoint values, expected "
                          f"{POSE_JOINTS * POSE_VALUES} (17 joints x (x, y, confidence)). {_FIX}", "malformed")
    return arr.reshape(POSE_JOINTS, POSE_VALUES)[:, :2]


def pose_clip(path: Path) -> np.ndarray:
    """The (F, 17, 2) pose clip of one cam1 JSON file, frames in file order."""
    try:
        with open(path, encoding="utf-8") as fh:
            frames = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ClipProblem(f"mmact: {path} is not a readable JSON file ({_one_line(exc)}). {_FIX}",
                          "malformed") from exc
    if not isinstance(frames, dict):
        raise ClipProblem(f"mmact: {path} holds a JSON {type(frames).__name__}, expected an object of frames "
                          f"{{frame: {{'person1': [...]}}}}. {_FIX}", "malformed")
    if not frames:
        return np.zeros((0, POSE_JOINTS, 2))
    return np.stack([_frame_keypoints(path, k, v) for k, v in frames.items()])


def _scan_poses(folder: Path, found: Found) -> None:
    root = folder.joinpath(*POSE_ROOT)
    files: dict[ClipKey, list[Path]] = {}
    for path in _walk(root, ".json"):
        parts = path.relative_to(root).parts
        nums = [_number(w, p) for w, p in zip(("subject", "cam", "scene", "session"), parts[-5:-1])] \
            if len(parts) >= 5 else [None]
        if None in nums:
            found.dropped.append(f"mmact: {path}: not in the pose/cross_view/trainval/subjectN/camK/sceneN/sessionN/"
                                 f"<action>.json layout; ignored")
            continue
        if nums[1] != 1:  # the reference uses camera 1 only
            continue
        rid = _action(path)
        if isinstance(rid, ClipProblem):
            found.bad.append(rid)
            continue
        subject, _, scene, session = (int(n) for n in nums)  # type: ignore[arg-type]
        files.setdefault((rid, subject, scene, session), []).append(path)
    for key in sorted(files):
        paths = files[key]
        if len(paths) > 1:
            found.duplicates.append(f"mmact: several cam1 pose files for {describe_key(key)} "
                                    f"({', '.join(map(str, paths))}); the clip is dropped, as the reference's "
                                    f"pairing drops it")
            continue
        found.files.append(paths[0])
        found.skeleton[key] = Entry(paths[0], 0, lambda p=paths[0]: pose_clip(p))


def scan(folder: Path, decimals: int | None = 6) -> Found:
    """Every clip of the extracted release under `folder` (nothing is read yet)."""
    found = Found("release")
    _scan_sensors(folder, found, decimals)
    _scan_poses(folder, found)
    return found
