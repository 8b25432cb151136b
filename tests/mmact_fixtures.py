"""Generated MMAct fixtures: a small release in the official trimmed layout, and the reference's output for it.

`make_release` draws the content in memory: for every (subject, scene, session, action) four sensor streams
(`timestamp,x,y,z`; accelerometers at 100 Hz around gravity, 9.8 m/s^2; gyroscope in rad/s and orientation
angles in degrees at 50 Hz) and cam1/cam2 pose JSONs (COCO 17 x (x, y, confidence) in a 1920 x 1080 frame,
sometimes a second person, frames with nobody detected written as zeros). With `defects=True` it also has
what real releases have: a missing sensor file, an empty sensor file, a pose clip without sensors and one
without a pose, a pose clip with nobody in it, shuffled timestamps, capitalised action names.

`write_release` writes it extracted, `pack_release` as the five archives; `write_preprocessed` writes what
razzu/cmc-cmkm `datasets/mmact_raw_preprocessing.py` makes of it, computed here independently from the
in-memory content (the rules of that script, in test code), as the oracle the plugin's release reader must
match bit for bit.
"""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal

from datasets._mmact_classes import reference_id_of_file

SOURCES = ("acc_phone_clip", "acc_watch_clip", "gyro_clip", "orientation_clip")
RATE = {"acc_phone_clip": 100, "acc_watch_clip": 100, "gyro_clip": 50, "orientation_clip": 50}
ACTIONS = ("carrying", "Walking", "using_phone", "carrying_light", "Talking_on_phone")
SensorKey = tuple[int, int, int, str]  # subject, scene, session, action file stem (as written)
PoseKey = tuple[int, int, int, int, str]  # subject, cam, scene, session, action file stem


@dataclass
class Release:
    """The generated content: sensor tables (n, 4) and pose frames, by where they are written."""

    sensors: dict[SensorKey, dict[str, np.ndarray]] = field(default_factory=dict)
    poses: dict[PoseKey, dict[str, dict[str, list[float]]]] = field(default_factory=dict)


def _sensor(rng: np.random.Generator, source: str, seconds: float, t0: int, shuffle: bool) -> np.ndarray:
    n = max(2, int(round(seconds * RATE[source])) + int(rng.integers(-3, 4)))
    t = np.arange(n) / RATE[source]
    if source.startswith("acc"):
        g = rng.normal(size=3)
        g *= 9.80665 / np.linalg.norm(g)
        xyz = g + 1.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2.5) * t)[:, None] * rng.normal(size=3) \
            + rng.normal(scale=0.15, size=(n, 3))
    elif source == "gyro_clip":
        xyz = 1.2 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t)[:, None] * rng.normal(size=3) \
            + rng.normal(scale=0.05, size=(n, 3))
    else:  # azimuth 0-360, pitch -180..180, roll -90..90 (degrees)
        base = np.array([rng.uniform(0, 360), rng.uniform(-60, 60), rng.uniform(-45, 45)])
        xyz = base + np.cumsum(rng.normal(scale=0.8, size=(n, 3)), axis=0)
        xyz[:, 0] %= 360
        xyz[:, 1] = np.clip(xyz[:, 1], -180, 180)
        xyz[:, 2] = np.clip(xyz[:, 2], -90, 90)
    ts = t0 + np.round(t * 1000).astype(np.int64)
    if shuffle:
        ts = rng.permutation(ts)  # the reference never reads timestamps: row order is what counts
    return np.column_stack([ts.astype(np.float64), xyz])


def _person(rng: np.random.Generator, centre: np.ndarray) -> list[float]:
    xy = centre + rng.normal(scale=60, size=(17, 2))
    xy = np.clip(xy, 0, [1919, 1079])
    conf = rng.uniform(0.2, 1.0, size=(17, 1))
    return [round(float(v), 3) for v in np.hstack([xy, conf]).ravel()]


def _pose(rng: np.random.Generator, frames: int, second_person: bool, zero_frames: bool,
          nobody: bool = False) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    centre = np.array([rng.uniform(400, 1500), rng.uniform(300, 800)])
    for f in range(frames):
        centre = centre + rng.normal(scale=5, size=2)
        if nobody or (zero_frames and f % 7 == 3):
            out[str(f)] = {"person1": [0.0] * 51}  # not detected: the release stores zeros
            continue
        frame = {"person1": _person(rng, centre)}
        if second_person:
            frame["person2"] = _person(rng, centre + 300) if f % 3 else []
        out[str(f)] = frame
    return out


def make_release(subjects: tuple[int, ...] = (1, 2, 17), scenes: tuple[int, ...] = (1, 2),
                 sessions: tuple[int, ...] = (1, 2), actions: tuple[str, ...] = ACTIONS, seed: int = 0,
                 defects: bool = True) -> Release:
    """A small release: every (subject, scene, session, action) clip, with the defects described above."""
    rng = np.random.default_rng(seed)
    rel = Release()
    for s in subjects:
        for sc in scenes:
            for ses in sessions:
                for a in actions:
                    seconds = float(rng.uniform(1.2, 2.4))
                    t0 = 1_544_000_000_000 + int(rng.integers(0, 10**9))
                    shuffle = defects and (s + sc + ses) % 3 == 0
                    rel.sensors[(s, sc, ses, a)] = {src: _sensor(rng, src, seconds, t0, shuffle) for src in SOURCES}
                    frames = int(round(seconds * 30)) + int(rng.integers(-2, 3))
                    for cam in (1, 2):
                        rel.poses[(s, cam, sc, ses, a)] = _pose(rng, frames, second_person=a == "carrying",
                                                                zero_frames=defects)
    if defects:
        s0, sc0, ses0 = subjects[0], scenes[0], sessions[0]
        del rel.sensors[(s0, sc0, ses0, actions[1])]["gyro_clip"]  # incomplete sensor set: dropped
        rel.sensors[(s0, sc0, ses0, actions[2])]["orientation_clip"] = np.zeros((0, 4))  # empty file: dropped
        del rel.poses[(s0, 1, sc0, ses0, actions[3])]  # inertial without pose: unpaired
        del rel.sensors[(s0, scenes[-1], ses0, actions[3])]  # pose without sensors: unpaired
        rel.poses[(s0, 1, scenes[-1], ses0, actions[4])] = _pose(rng, 30, False, False, nobody=True)  # dropped
    return rel


# -- writing the release ---------------------------------------------------------------------------------------
def sensor_path(folder: Path, source: str, key: SensorKey) -> Path:
    s, sc, ses, a = key
    return folder / source / f"subject{s}" / f"scene{sc}" / f"session{ses}" / f"{a}.csv"


def pose_path(folder: Path, key: PoseKey) -> Path:
    s, cam, sc, ses, a = key
    return folder / "pose" / "cross_view" / "trainval" / f"subject{s}" / f"cam{cam}" / f"scene{sc}" / \
        f"session{ses}" / f"{a}.json"


def write_release(rel: Release, folder: Path) -> Path:
    """The release extracted under `folder`: headerless `timestamp,x,y,z` CSVs and pose JSONs."""
    for key, streams in rel.sensors.items():
        for source, table in streams.items():
            path = sensor_path(folder, source, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{int(r[0])},{float(r[1])!r},{float(r[2])!r},{float(r[3])!r}\n" for r in table))
    for key, frames in rel.poses.items():
        path = pose_path(folder, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(frames))
    return folder


def pack_release(extracted: Path, dest: Path) -> Path:
    """The five release archives of an extracted release, in `dest` (each sensor archive holds `<source>/`)."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        with tarfile.open(dest / f"{source}.tar.gz", "w:gz") as tf:
            tf.add(extracted / source, arcname=source)
    with zipfile.ZipFile(dest / "trimmed_pose.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((extracted / "pose").rglob("*")):
            zf.write(path, path.relative_to(extracted).as_posix())
    return dest


# -- the reference's output (the oracle) -----------------------------------------------------------------------
def write_preprocessed(rel: Release, dest: Path) -> Path:
    """`Inertial/*.csv` and `Skeleton/*.npy` as the reference preprocessing writes them for `rel`."""
    (dest / "Inertial").mkdir(parents=True, exist_ok=True)
    (dest / "Skeleton").mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    for s, sc, ses, a in rel.sensors:
        groups.setdefault((s, reference_id_of_file(a)), []).append((sc, ses, a))
    for (s, rid), members in sorted(groups.items()):
        for trial, (sc, ses, a) in enumerate(sorted(members), start=1):
            streams = rel.sensors[(s, sc, ses, a)]
            if len(streams) != 4 or any(len(t) == 0 for t in streams.values()):
                continue
            xyz = {src: streams[src][:, 1:] for src in SOURCES}
            for src in ("acc_phone_clip", "acc_watch_clip"):
                xyz[src] = scipy.signal.resample(xyz[src], len(xyz[src]) // 2)
            n = min(len(v) for v in xyz.values())
            table = np.concatenate([xyz[src][:n] for src in SOURCES], axis=1)
            pd.DataFrame(table).to_csv(dest / "Inertial" / f"a{rid}_s{s}_t{trial}_ses{ses}_sc{sc}.csv",
                                       header=None, index=None, float_format="%.6f")
    cam1 = sorted((s, reference_id_of_file(a), sc, ses, a) for (s, cam, sc, ses, a) in rel.poses if cam == 1)
    counter: dict[tuple[int, int], int] = {}
    for s, rid, sc, ses, a in cam1:
        trial = counter[(s, rid)] = counter.get((s, rid), 0) + 1
        frames = rel.poses[(s, 1, sc, ses, a)]
        arr = np.zeros((17, 2, len(frames)))
        for i, frame in enumerate(frames.values()):
            person = frame["person2"] if frame.get("person2") else frame["person1"]
            arr[:, :, i] = np.asarray(person).reshape(17, 3)[:, :2]
        if arr.sum() == 0:
            continue
        np.save(dest / "Skeleton" / f"a{rid}_s{s}_t{trial}_ses{ses}_sc{sc}", arr)
    return dest


# -- hand-made archives --------------------------------------------------------------------------------------
def write_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A tar.gz holding `files` (member name -> content) and symbolic `links` (member name -> target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """A zip holding `files` (member name -> content; names are written as given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path
