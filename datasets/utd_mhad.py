"""UTD-MHAD (Chen, Jafari, Kehtarnavaz, ICIP 2015): wrist inertial sensor + Kinect v1 skeleton, 27 actions.

Raw layout under `<data root>/utd_mhad/` (the official archives Inertial.zip and Skeleton.zip, unpacked):

    Inertial/a{A}_s{S}_t{T}_inertial.mat   variable `d_iner`, (T, 6): acc xyz in g, gyro xyz in deg/s, 50 Hz
    Skeleton/a{A}_s{S}_t{T}_skeleton.mat   variable `d_skel`, (20, 3, T): 20 joints x (x, y, z) in m, ~30 fps

A = action 1..27 (label A-1), S = subject 1..8, T = trial 1..4; 27*8*4 = 864 clips of which a8_s1_t4,
a23_s6_t4 and a27_s8_t4 were never recorded, so a complete copy has 861 pairs. Other files in the two
folders (e.g. Skeleton_joint_order.txt, .DS_Store) are ignored.

Skeleton normalisation (reference, spec 4.1) uses 0-based rows of `d_skel`: anchor 2 = spine, scale pair
(1, 2) = shoulder_center to spine. The Kinect v1 joint order (Skeleton_joint_order.txt, 1-based there):
head, shoulder_center, spine, hip_center, left shoulder/elbow/wrist/hand, right shoulder/elbow/wrist/hand,
left hip/knee/ankle/foot, right hip/knee/ankle/foot.

Splits:
- `xsub` (reference, default): train subjects {1,3,5}, val {7}, test {2,4,6,8} -> 323 / 108 / 430 clips.
- `xsub_6v2`: the "subjects 1-6 vs 7-8" protocol. Validation must be subject-disjoint from training, so
  subject 6 (the last of 1-6, mirroring the reference's choice of its last odd subject 7) is held out for
  validation: train {1..5}, val {6}, test {7,8} -> 539 / 107 / 215 clips.
"""
from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.io

from benchmark.contracts import DatasetError, DatasetPlugin, ModalitySpec, RawData, SkeletonNorm, SplitSpec
from benchmark.registry import DATASETS

ACTIONS = [
    "swipe_left",        # a1  right arm swipe to the left
    "swipe_right",       # a2  right arm swipe to the right
    "wave",              # a3  right hand wave
    "clap",              # a4  two hand front clap
    "throw",             # a5  right arm throw
    "arm_cross",         # a6  cross arms in the chest
    "basketball_shoot",  # a7  basketball shooting
    "draw_x",            # a8  right hand draw x
    "draw_circle_CW",    # a9  right hand draw circle (clockwise)
    "draw_circle_CCW",   # a10 right hand draw circle (counter clockwise)
    "draw_triangle",     # a11 draw triangle
    "bowling",           # a12 bowling (right hand)
    "boxing",            # a13 front boxing
    "baseball_swing",    # a14 baseball swing from right
    "tennis_swing",      # a15 tennis right hand forehand swing
    "arm_curl",          # a16 arm curl (two arms)
    "tennis_serve",      # a17 tennis serve
    "push",              # a18 two hand push
    "knock",             # a19 right hand knock on door
    "catch",             # a20 right hand catch an object
    "pickup_throw",      # a21 right hand pick up and throw
    "jog",               # a22 jogging in place
    "walk",              # a23 walking in place
    "sit2stand",         # a24 sit to stand
    "stand2sit",         # a25 stand to sit
    "lunge",             # a26 forward lunge (left foot forward)
    "squat",             # a27 squat (two arms stretch out)
]

# modality -> (sub-folder, file-name suffix, .mat variable)
_FILES = {
    "inertial": ("Inertial", "inertial", "d_iner"),
    "skeleton": ("Skeleton", "skeleton", "d_skel"),
}
_NAME_RE = {m: re.compile(rf"^a(\d+)_s(\d+)_t(\d+)_{suffix}\.mat$") for m, (_, suffix, _) in _FILES.items()}
ClipKey = tuple[int, int, int]  # (action, subject, trial)


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line, for one-paragraph error messages."""
    return " ".join(str(exc).split())


def clip_id(key: ClipKey) -> str:
    """'a1_s2_t2' for (1, 2, 2)."""
    return f"a{key[0]}_s{key[1]}_t{key[2]}"


# Rotating subject folds (`xsub_fold1`..`xsub_fold4`, family `xsub_folds`): fold k tests subjects 2k-1 and 2k,
# validates on the next subject (cyclically) and trains on the other five; every subject is tested exactly once.
SUBJECT_FOLDS = tuple(
    ([2 * k - 1, 2 * k], 2 * k % 8 + 1, [s for s in range(1, 9) if s not in (2 * k - 1, 2 * k, 2 * k % 8 + 1)])
    for k in range(1, 5))


@DATASETS.register("utd_mhad")
class UTDMHAD(DatasetPlugin):
    """UTD-MHAD inertial + skeleton clips read from the original .mat files."""

    name = "utd_mhad"
    folder_name = "utd_mhad"
    modalities = {
        "inertial": ModalitySpec("inertial", channels=6, rate_hz=50.0,
                                 description="wrist IMU: accelerometer xyz (g), gyroscope xyz (deg/s)"),
        "skeleton": ModalitySpec("skeleton", channels=3, rate_hz=30.0, joints=20,
                                 description="Kinect v1 skeleton, 20 joints, xyz (m)"),
    }
    class_names = ACTIONS
    splits = {
        "xsub": SplitSpec(train={"subject": [1, 3, 5]}, val={"subject": [7]}, test={"subject": [2, 4, 6, 8]},
                          description="reference cross-subject split: odd subjects train (7 for validation), "
                                      "even subjects test"),
        "xsub_6v2": SplitSpec(train={"subject": [1, 2, 3, 4, 5]}, val={"subject": [6]},
                              test={"subject": [7, 8]},
                              description="subjects 1-6 vs 7-8; subject 6 held out for validation"),
        "sicl_reference": SplitSpec(train={"subject": [1, 3, 5, 7]}, val={"subject": [1, 3, 5, 7]},
                                    test={"subject": [2, 4, 6, 8]}, disjoint_val=False, val_overlaps_train=True,
                                    description="SICL's split (olivesgatech/SICL): train and validate on subjects "
                                                "1, 3, 5, 7 (the same clips: validation is NOT subject-independent "
                                                "and selects on training data), test on 2, 4, 6, 8"),
        **{f"xsub_fold{k}": SplitSpec(train={"subject": train}, val={"subject": [val]}, test={"subject": test},
                                      family="xsub_folds",
                                      description=f"rotating subject fold {k} of 4: test {test}, validate on "
                                                  f"{val}, train on {train}")
           for k, (test, val, train) in enumerate(SUBJECT_FOLDS, start=1)},
    }
    default_split = "xsub"
    headline_protocols = ("paper_head", "linear", "semisup[per_class=1]", "finetune")
    skeleton_norm = SkeletonNorm(anchor=2, scale_pair=(1, 2))  # spine; shoulder_center-spine distance
    version = "1"
    option_defaults: ClassVar[dict[str, Any]] = {
        "skip_bad": False,          # skip (and list) unreadable clips instead of failing
        "require_complete": True,   # fail if clips beyond the 3 known-missing ones are absent
    }

    num_subjects: ClassVar[int] = 8
    num_trials: ClassVar[int] = 4
    expected_missing: ClassVar[frozenset[str]] = frozenset({"a8_s1_t4", "a23_s6_t4", "a27_s8_t4"})
    # official archives (the UTD-MHAD page links them); `download(url=...)` overrides the base location
    archive_base_url: ClassVar[str] = "http://www.utdallas.edu/~kehtar/UTD-MAD/"
    archive_names: ClassVar[dict[str, str]] = {"inertial": "Inertial.zip", "skeleton": "Skeleton.zip"}
    archive_sha256: ClassVar[dict[str, str]] = {}  # not published; archives are verified by structure instead
    archive_expected_files: ClassVar[int | None] = 861  # matching .mat files per archive; None: any number
    how_to_obtain = (
        "Get it with `python run_all.py --download utd_mhad` (fetches Inertial.zip and Skeleton.zip linked from "
        "https://personal.utdallas.edu/~kehtar/UTD-MHAD.html), or unpack those two archives yourself so that "
        "<data root>/utd_mhad/Inertial and <data root>/utd_mhad/Skeleton hold the .mat files; then point "
        "--data-root or $MMHAR_DATA at <data root>."
    )

    # -- files ----------------------------------------------------------------------------------
    def looks_present(self, folder: Path) -> bool:
        """True when `folder` has Inertial/ and Skeleton/ and at least one inertial clip."""
        inertial = folder / _FILES["inertial"][0]
        return (folder / _FILES["skeleton"][0]).is_dir() and inertial.is_dir() and any(
            _NAME_RE["inertial"].match(p.name) for p in inertial.iterdir()
        )

    def why_absent(self, folder: Path) -> str:
        """Which of Inertial/ and Skeleton/ is missing, a file, or without clips."""
        for m, (sub, suffix, _) in _FILES.items():
            d = folder / sub
            if d.is_file():
                return f"{d} is a file, not a folder"
            if not d.is_dir():
                if (folder / sub.lower()).is_dir():
                    return f"{folder / sub.lower()} must be named {sub} (case matters)"
                continue
            if m == "inertial" and not any(_NAME_RE[m].match(p.name) for p in d.iterdir()):
                return f"{d} holds no clip named like a1_s1_t1_{suffix}.mat"
        return ""

    def raw_files(self, folder: Path) -> list[Path]:
        """Every clip file (both modalities) that `read` uses."""
        return sorted(p for files in self._scan(folder).values() for p in files.values())

    def _scan(self, folder: Path) -> dict[str, dict[ClipKey, Path]]:
        """Clip key -> file, per modality; files not named like clips are ignored."""
        found: dict[str, dict[ClipKey, Path]] = {}
        for m, (sub, _, _) in _FILES.items():
            d = Path(folder) / sub
            if not d.is_dir():
                raise DatasetError(f"utd_mhad: folder {d} is missing. {self.how_to_obtain}")
            files: dict[ClipKey, Path] = {}
            for p in d.iterdir():
                hit = _NAME_RE[m].match(p.name)
                if hit is None or not p.is_file():
                    continue
                key = (int(hit[1]), int(hit[2]), int(hit[3]))
                for what, value, top in (("action", key[0], len(ACTIONS)), ("subject", key[1], self.num_subjects),
                                         ("trial", key[2], self.num_trials)):
                    if not 1 <= value <= top:
                        raise DatasetError(f"utd_mhad: {p} names {what} {value}, but UTD-MHAD has {what}s 1-{top}; "
                                           f"remove or rename the file.")
                if key in files:  # e.g. a1_s1_t1 and a01_s1_t1
                    raise DatasetError(f"utd_mhad: {p} and {files[key]} are the same clip {clip_id(key)}; "
                                       f"remove one of them.")
                files[key] = p
            found[m] = files
        return found

    # -- reading --------------------------------------------------------------------------------
    def read(self, folder: Path | None) -> RawData:
        """Read every clip pair; raise DatasetError naming the file at fault (or skip it with skip_bad=True)."""
        if folder is None:
            raise DatasetError("utd_mhad needs a data folder to read from")
        folder = Path(folder)
        found = self._scan(folder)
        skip = bool(self.options["skip_bad"])
        skipped: list[str] = []
        keys = sorted(set(found["inertial"]) | set(found["skeleton"]))
        if self.options["require_complete"]:
            self._check_complete(folder, keys)
        samples: dict[str, list[np.ndarray]] = {"inertial": [], "skeleton": []}
        kept: list[ClipKey] = []
        for key in keys:
            try:
                arrays = {m: self._read_file(m, found[m].get(key), key, folder) for m in _FILES}
            except DatasetError as exc:
                if not skip:
                    raise
                skipped.append(str(exc))
                continue
            for m, a in arrays.items():
                samples[m].append(a)
            kept.append(key)
        if not kept:
            raise DatasetError(f"utd_mhad: no usable clip pairs under {folder}. {self.how_to_obtain}")
        ks = np.asarray(kept, dtype=np.int64).reshape(-1, 3)
        return RawData(
            samples=samples,
            labels=ks[:, 0] - 1,
            groups={"subject": ks[:, 1], "trial": ks[:, 2]},
            ids=[clip_id(k) for k in kept],
            skipped=skipped,
        )

    def _check_complete(self, folder: Path, present: list[ClipKey]) -> None:
        """Fail if clips other than the three known-missing ones are absent from both folders."""
        have = set(present)
        absent = [
            clip_id((a, s, t))
            for a in range(1, len(ACTIONS) + 1)
            for s in range(1, self.num_subjects + 1)
            for t in range(1, self.num_trials + 1)
            if (a, s, t) not in have and clip_id((a, s, t)) not in self.expected_missing
        ]
        if absent:
            shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
            raise DatasetError(
                f"utd_mhad: the copy under {folder} is incomplete: {len(absent)} clip(s) are in neither Inertial/ "
                f"nor Skeleton/ ({shown}). Download it again (`python run_all.py --download utd_mhad` into an "
                f"empty data root), or pass require_complete=False to load only the clips present."
            )

    def _read_file(self, modality: str, path: Path | None, key: ClipKey, folder: Path) -> np.ndarray:
        """One clip's array in the harness layout: inertial (T, 6), skeleton (T, 20, 3)."""
        sub, suffix, var = _FILES[modality]
        if path is None:
            other = next(m for m in _FILES if m != modality)
            have = f"{_FILES[other][0]}/{clip_id(key)}_{_FILES[other][1]}.mat"
            raise DatasetError(
                f"utd_mhad: {folder / sub / f'{clip_id(key)}_{suffix}.mat'} is missing, but its counterpart "
                f"{have} exists. Restore the file from the original archive, delete the counterpart, or run "
                f"with --datasets 'utd_mhad[skip_bad=true]' to skip this clip."
            )
        fix = ("Replace it with the file from the original archive, or run with --datasets 'utd_mhad[skip_bad=true]' "
               "to skip this clip.")
        try:
            content = scipy.io.loadmat(str(path))
        except Exception as exc:  # scipy raises many types for damaged files
            raise DatasetError(f"utd_mhad: {path} is not a readable .mat file ({_one_line(exc)}). {fix}") from exc
        if var not in content:
            names = sorted(k for k in content if not k.startswith("__"))
            raise DatasetError(f"utd_mhad: {path} has no variable {var!r} (it holds {names}). {fix}")
        x = content[var]
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number):
            raise DatasetError(f"utd_mhad: variable {var!r} in {path} is not a numeric array. {fix}")
        if modality == "inertial":
            ok = x.ndim == 2 and x.shape[1] == 6 and x.shape[0] >= 2
            want = "(T, 6) with T >= 2"
        else:
            ok = x.ndim == 3 and x.shape[:2] == (20, 3) and x.shape[2] >= 2
            want = "(20, 3, T) with T >= 2"
        if not ok:
            raise DatasetError(f"utd_mhad: {var!r} in {path} has shape {x.shape}, expected {want}. {fix}")
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"utd_mhad: {var!r} in {path} contains NaN or infinite values. {fix}")
        x = x.astype(np.float64, copy=False)
        return x if modality == "inertial" else np.ascontiguousarray(x.transpose(2, 0, 1))

    # -- download -------------------------------------------------------------------------------
    def archive_urls(self, url: str | None = None) -> dict[str, str]:
        """Modality -> archive URL; `url` replaces the base location (an http(s)/file URL or a local folder)."""
        base = url or self.archive_base_url
        if "://" not in base and Path(base).is_dir():
            base = Path(base).resolve().as_uri()
        base = base if base.endswith("/") else base + "/"
        return {m: base + name for m, name in self.archive_names.items()}

    def download(self, root: Path, url: str | None = None) -> Path:
        """Fetch Inertial.zip and Skeleton.zip, verify them and install `root/utd_mhad` all at once."""
        from benchmark.download import fetch, staging

        target = Path(root) / self.folder_name
        if target.exists():
            if self.looks_present(target):
                return target
            raise DatasetError(f"utd_mhad: {target} exists but does not hold the dataset; remove it and "
                               f"download again.")
        with staging(target) as (stage, scratch):
            for m, archive_url in self.archive_urls(url).items():
                archive = fetch(archive_url, scratch / self.archive_names[m], sha256=self.archive_sha256.get(m))
                self.unpack_archive(archive, stage, m)
            self.validate_download(stage)
        return target

    def unpack_archive(self, archive: Path, dest: Path, modality: str) -> int:
        """Extract the clip files of one archive into `dest/<Inertial|Skeleton>/`; return how many."""
        sub = _FILES[modality][0]
        out_dir = dest / sub
        out_dir.mkdir(parents=True, exist_ok=True)
        broken = (f"Delete it and download again; if the archive on the server itself is damaged, fetch it "
                  f"by hand from {self.archive_base_url}.")
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise DatasetError(f"utd_mhad: archive {archive} is corrupt (CRC error in {bad}). {broken}")
                members = [i for i in zf.infolist()
                           if not i.is_dir() and "__MACOSX" not in i.filename
                           and _NAME_RE[modality].match(Path(i.filename).name)]
                names = [Path(i.filename).name for i in members]
                if len(set(names)) != len(names):
                    raise DatasetError(f"utd_mhad: archive {archive} holds the same clip file twice. {broken}")
                want = self.archive_expected_files
                if not members or (want is not None and len(members) != want):
                    raise DatasetError(
                        f"utd_mhad: archive {archive} holds {len(members)} {sub} clip files, expected "
                        f"{want if want is not None else 'at least one'}. {broken}"
                    )
                for info, name in zip(members, names):  # flat extraction by base name: no path traversal
                    (out_dir / name).write_bytes(zf.read(info))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
            raise DatasetError(f"utd_mhad: archive {archive} is not a valid zip file, probably truncated "
                               f"({_one_line(exc)}). {broken}") from exc
        return len(members)

    def validate_download(self, folder: Path) -> None:
        """Every clip pairs up and loads (strictly): a download that fails here is not installed."""
        raw = type(self)(skip_bad=False, require_complete=False).read(folder)
        want = self.archive_expected_files
        if want is not None and len(raw.ids) != want:
            raise DatasetError(f"utd_mhad: the download gives {len(raw.ids)} clip pairs, expected {want}.")
