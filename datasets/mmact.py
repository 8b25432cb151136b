"""MMAct trimmed clips (Kong et al., ICCV 2019): smartphone/smartwatch inertial + 2-D pose, 35 actions.

MMAct is licensed on request, so this plugin reads the layout written by the reference's raw preprocessing
(razzu/cmc-cmkm `datasets/mmact_raw_preprocessing.py`, spec 4.2) and never downloads anything.
Layout under `<data root>/mmact/`:

    Inertial/a{A}_s{S}_t{T}_ses{E}_sc{C}.csv
        headerless comma-separated text, one row per time step at 50 Hz, exactly 12 float columns:
        phone accelerometer xyz, watch accelerometer xyz, gyroscope xyz, orientation xyz (both accelerometers
        FFT-resampled 100 -> 50 Hz, all four sources cut to the shortest).
    Skeleton/a{A}_s{S}_t{T}_ses{E}_sc{C}.npy
        numpy array (17, 2, F): 17 COCO keypoints x (x, y) pixel coordinates x F frames of camera 1
        (confidence dropped; all-zero clips were dropped by the preprocessing).

A = the reference's activity id, S = subject 1-20, T = trial, E = session, C = scene 1-4. Trial numbers
are assigned independently per modality by the reference, so clips are paired on (A, S, C, E), as the
reference does; the `trial` group is taken from the inertial file name. Files whose names do not follow
the pattern are ignored.

Labels: the reference's `ACTIVITY_DICT` lists `using_phone` twice (ids 24 and 34); Python keeps 34, so id 24
never occurs and the reference trains a 36-way head with a repeated class name. Here the 35 real classes
are numbered contiguously: reference id i -> label i-1 for i <= 23, and i-2 for i >= 25 (so `using_phone`,
id 34, is label 32). A file with id 24 (or outside 1-36) is an error.

Differences from the reference reader, both deliberate: all CSV rows are read (the reference's
`pd.read_csv` default takes the first data row as a header and drops it: one 50 Hz sample, negligible
after resampling to 50), and clips whose counterpart is missing are listed in `RawData.skipped`
instead of vanishing (option `drop_unpaired`; the reference keeps only complete pairs, 8360 of them).

Splits (spec 5.1):
- `xsub` (reference, default): train subjects 1-12, val 13-15, test 17-20; subject 16 unused, as in the
  reference.
- `xsub_all`: the common 16-vs-4 protocol with a validation set: validation must be subject-disjoint from
  both training and the test subjects 17-20, so the last two of the 16 non-test subjects (15, 16) validate
  and 1-14 train (14 / 2 / 4 subjects).
- `xscene` (reference): train scenes {1,3,4} x subjects 1-16, val scenes {1,3,4} x subjects 17-20, test
  scene 2 x all subjects. Disjoint on scene between train and test; val shares scenes with train by design.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from benchmark.contracts import DatasetError, DatasetPlugin, ModalitySpec, RawData, SplitSpec, TrainingProfile
from benchmark.registry import DATASETS

# the reference's ACTIVITY_DICT, id -> name, without the overwritten duplicate (24: using_phone)
REFERENCE_IDS: dict[int, str] = {
    1: "carrying", 2: "checking_time", 3: "closing", 4: "crouching", 5: "entering", 6: "exiting",
    7: "fall", 8: "jumping", 9: "kicking", 10: "loitering", 11: "looking_around", 12: "opening",
    13: "picking_up", 14: "pointing", 15: "pulling", 16: "pushing", 17: "running", 18: "setting_down",
    19: "standing", 20: "talking", 21: "talking_on_phone", 22: "throwing", 23: "transferring_object",
    25: "walking", 26: "waving_hand", 27: "drinking", 28: "pocket_in", 29: "pocket_out", 30: "sitting",
    31: "sitting_down", 32: "standing_up", 33: "using_pc", 34: "using_phone", 35: "carrying_heavy",
    36: "carrying_light",
}
UNUSED_REFERENCE_ID = 24
LABEL_OF_REFERENCE_ID: dict[int, int] = {rid: i for i, rid in enumerate(sorted(REFERENCE_IDS))}
CLASS_NAMES = [REFERENCE_IDS[rid] for rid in sorted(REFERENCE_IDS)]

INERTIAL_CHANNELS = 12
POSE_JOINTS, POSE_DIMS = 17, 2
_SUBFOLDER = {"inertial": "Inertial", "skeleton": "Skeleton"}
_EXT = {"inertial": ".csv", "skeleton": ".npy"}
_NAME_RE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_ses(\d+)_sc(\d+)$")
PairKey = tuple[int, int, int, int]  # (reference id, subject, scene, session)


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line, for one-paragraph error messages."""
    return " ".join(str(exc).split())


def _subjects(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


@DATASETS.register("mmact")
class MMAct(DatasetPlugin):
    """MMAct inertial (12 channels) + 2-D pose clips in the reference's preprocessed layout."""

    name = "mmact"
    folder_name = "mmact"
    modalities = {
        "inertial": ModalitySpec("inertial", channels=INERTIAL_CHANNELS, rate_hz=50.0,
                                 description="phone acc, watch acc, gyroscope, orientation (xyz each)"),
        "skeleton": ModalitySpec("skeleton", channels=POSE_DIMS, rate_hz=30.0, joints=POSE_JOINTS,
                                 description="COCO 17 keypoints, 2-D pixel coordinates, camera 1"),
    }
    class_names = CLASS_NAMES
    splits = {
        "xsub": SplitSpec(train={"subject": _subjects(1, 12)}, val={"subject": _subjects(13, 15)},
                          test={"subject": _subjects(17, 20)},
                          description="reference cross-subject split (subject 16 unused)"),
        "xsub_all": SplitSpec(train={"subject": _subjects(1, 14)}, val={"subject": [15, 16]},
                              test={"subject": _subjects(17, 20)},
                              description="subjects 1-16 vs 17-20; 15 and 16 held out for validation"),
        "xscene": SplitSpec(train={"scene": [1, 3, 4], "subject": _subjects(1, 16)},
                            val={"scene": [1, 3, 4], "subject": _subjects(17, 20)},
                            test={"scene": [2]}, disjoint_on="scene", disjoint_val=False,
                            description="reference cross-scene split: scene 2 is the test scene"),
    }
    default_split = "xsub"
    # The reference's MMAct settings (configs/*/mmact*.yaml): batch sizes, temperatures, MoCo queue, CMKM
    # gamma/scale, supervised schedule, augmentation YAMLs; macro-F1 is the main metric (spec 5.2).
    training = TrainingProfile(
        method_defaults={
            "simclr[inertial]": {"batch_size": 64, "temperature": 0.2},
            "simclr[skeleton]": {"batch_size": 128, "temperature": 0.2},
            "moco": {"queue_size": 4096, "ema_momentum": 0.999},
            "moco[inertial]": {"batch_size": 64},
            "moco[skeleton]": {"batch_size": 128},
            "cmc": {"batch_size": 128},
            "cmc_moco": {"batch_size": 128, "queue_size": 4096, "ema_momentum": 0.999},
            "cmc_cmkm": {"batch_size": 128, "pruning_threshold": 0.7, "weighting_scale": 0.05},
            "supervised[skeleton]": {"epochs": 200},
        },
        augmentations={
            "inertial": {"jittering": {"apply": False}, "rotation": {"apply": True},
                         "permutation": {"apply": False, "max_segments": 5}, "channel_shuffle": {"apply": False}},
            "skeleton": {"crop_and_resize": {"min_p": 0.7, "max_p": 0.8}, "rotation": {"start": -15, "end": 15}},
            "supervised_skeleton": {"rotation": {"apply": False}},  # the supervised configs do not rotate 2-D poses
        },
        semisup_budget_type="fraction",
        main_metric="f1",
    )
    skeleton_norm = None  # the reference uses raw pixel coordinates
    version = "1"
    option_defaults: ClassVar[dict[str, Any]] = {
        "skip_bad": False,       # skip (and list) malformed clips instead of failing
        "drop_unpaired": True,   # reference behaviour: keep complete pairs only (the others are listed)
    }
    how_to_obtain = (
        "MMAct is licensed on request (https://mmact19.github.io/2019/). Convert the trimmed sensor and pose "
        "archives with the reference's datasets/mmact_raw_preprocessing.py (razzu/cmc-cmkm) and put its output "
        "folders Inertial/ and Skeleton/ under <data root>/mmact/."
    )

    # -- files ----------------------------------------------------------------------------------
    def looks_present(self, folder: Path) -> bool:
        """True when `folder` has Inertial/ and Skeleton/ and at least one inertial clip."""
        inertial = folder / _SUBFOLDER["inertial"]
        return (folder / _SUBFOLDER["skeleton"]).is_dir() and inertial.is_dir() and any(
            p.suffix == ".csv" and _NAME_RE.match(p.stem) for p in inertial.iterdir()
        )

    def raw_files(self, folder: Path) -> list[Path]:
        """Every clip file (both modalities) found under `folder`."""
        return sorted(p for files in self._scan(folder).values() for p, _ in files.values())

    def _scan(self, folder: Path) -> dict[str, dict[PairKey, tuple[Path, int]]]:
        """Pair key -> (file, trial), per modality; files not named like clips are ignored."""
        found: dict[str, dict[PairKey, tuple[Path, int]]] = {}
        for m, sub in _SUBFOLDER.items():
            d = Path(folder) / sub
            if not d.is_dir():
                raise DatasetError(f"mmact: folder {d} is missing. {self.how_to_obtain}")
            files: dict[PairKey, tuple[Path, int]] = {}
            for p in d.iterdir():
                hit = _NAME_RE.match(p.stem)
                if p.suffix != _EXT[m] or hit is None or not p.is_file():
                    continue
                rid, subject, trial, session, scene = (int(g) for g in hit.groups())
                if rid not in REFERENCE_IDS:
                    why = ("id 24 is never produced by the reference preprocessing (its duplicate "
                           "'using_phone' is id 34)" if rid == UNUSED_REFERENCE_ID else "valid ids are 1-36")
                    raise DatasetError(f"mmact: {p} has activity id {rid}: {why}. Remove or rename the file.")
                key = (rid, subject, scene, session)
                if key in files:
                    raise DatasetError(
                        f"mmact: {p} and {files[key][0]} are both action {rid}, subject {subject}, scene {scene}, "
                        f"session {session}, so they cannot be paired unambiguously; remove one of them."
                    )
                files[key] = (p, trial)
            found[m] = files
        return found

    # -- reading --------------------------------------------------------------------------------
    def read(self, folder: Path | None) -> RawData:
        """Read every complete clip pair; raise DatasetError naming the file at fault unless told to skip."""
        if folder is None:
            raise DatasetError("mmact needs a data folder to read from")
        folder = Path(folder)
        found = self._scan(folder)
        skipped: list[str] = []
        keys = sorted(set(found["inertial"]) | set(found["skeleton"]))
        samples: dict[str, list[np.ndarray]] = {"inertial": [], "skeleton": []}
        meta: list[tuple[int, int, int, int, int]] = []  # label, subject, scene, session, trial
        ids: list[str] = []
        for key in keys:
            lonely = [m for m in _SUBFOLDER if key not in found[m]]
            if lonely:
                have = next(m for m in _SUBFOLDER if key in found[m])
                path = found[have][key][0]
                msg = (f"mmact: {path} has no {lonely[0]} counterpart (no {_SUBFOLDER[lonely[0]]}/ file for action "
                       f"{key[0]}, subject {key[1]}, scene {key[2]}, session {key[3]})")
                if self.options["drop_unpaired"]:
                    skipped.append(msg)
                    continue
                raise DatasetError(msg + ". Restore the missing file, or load with drop_unpaired=True "
                                         "(the reference's behaviour) to skip unpaired clips.")
            try:
                arrays = {"inertial": self._read_inertial(found["inertial"][key][0]),
                          "skeleton": self._read_pose(found["skeleton"][key][0])}
            except DatasetError as exc:
                if not self.options["skip_bad"]:
                    raise
                skipped.append(str(exc))
                continue
            for m, a in arrays.items():
                samples[m].append(a)
            path, trial = found["inertial"][key]
            meta.append((LABEL_OF_REFERENCE_ID[key[0]], key[1], key[2], key[3], trial))
            ids.append(path.stem)
        if not ids:
            raise DatasetError(f"mmact: no usable clip pairs under {folder}. {self.how_to_obtain}")
        cols = np.asarray(meta, dtype=np.int64)
        return RawData(
            samples=samples,
            labels=cols[:, 0],
            groups={"subject": cols[:, 1], "scene": cols[:, 2], "session": cols[:, 3], "trial": cols[:, 4]},
            ids=ids,
            skipped=skipped,
        )

    @staticmethod
    def _fix() -> str:
        return "Regenerate the file with the reference preprocessing, or load with skip_bad=True to skip this clip."

    def _read_inertial(self, path: Path) -> np.ndarray:
        """A (T, 12) float array from a headerless CSV."""
        try:
            x = pd.read_csv(path, header=None, dtype=np.float64, engine="c").to_numpy()
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
            raise DatasetError(
                f"mmact: {path} is not a numeric headerless CSV ({_one_line(exc)}). {self._fix()}"
            ) from exc
        if x.ndim != 2 or x.shape[1] != INERTIAL_CHANNELS:
            raise DatasetError(f"mmact: {path} has {x.shape[1] if x.ndim == 2 else '?'} columns, expected "
                               f"{INERTIAL_CHANNELS} (phone acc, watch acc, gyro, orientation). {self._fix()}")
        if x.shape[0] < 2:
            raise DatasetError(f"mmact: {path} has {x.shape[0]} rows, expected at least 2. {self._fix()}")
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"mmact: {path} contains NaN, empty or infinite values. {self._fix()}")
        return x

    def _read_pose(self, path: Path) -> np.ndarray:
        """A (F, 17, 2) float array from a (17, 2, F) .npy file."""
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DatasetError(
                f"mmact: {path} is not a readable .npy array ({_one_line(exc)}). {self._fix()}"
            ) from exc
        if not np.issubdtype(x.dtype, np.number):
            raise DatasetError(f"mmact: {path} holds {x.dtype} values, expected numbers. {self._fix()}")
        if x.ndim != 3 or x.shape[:2] != (POSE_JOINTS, POSE_DIMS) or x.shape[2] < 2:
            raise DatasetError(f"mmact: {path} has shape {x.shape}, expected ({POSE_JOINTS}, {POSE_DIMS}, F) "
                               f"with F >= 2. {self._fix()}")
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"mmact: {path} contains NaN or infinite values. {self._fix()}")
        if not np.any(x):
            raise DatasetError(f"mmact: {path} is all zeros (no person detected). {self._fix()}")
        return np.ascontiguousarray(x.astype(np.float64, copy=False).transpose(2, 0, 1))
