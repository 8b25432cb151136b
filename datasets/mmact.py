"""MMAct trimmed clips (Kong et al., ICCV 2019): smartphone/smartwatch inertial + 2-D pose, 35 actions.

MMAct is licensed on request, so nothing is downloaded. Under `<data root>/mmact/` the plugin reads either
- the official trimmed release (`_mmact_release`): the archives `acc_phone_clip.tar.gz`,
  `acc_watch_clip.tar.gz`, `gyro_clip.tar.gz`, `orientation_clip.tar.gz` and the challenge pose archive
  `trimmed_pose.zip`, packed (extracted there on first use, safely and atomically: `_mmact_archive`) or
  already extracted; preprocessed here exactly as razzu/cmc-cmkm `datasets/mmact_raw_preprocessing.py`
  does (spec 4.2); or
- that script's output, `Inertial/*.csv` + `Skeleton/*.npy` (`_mmact_preprocessed`).
Option `layout`: 'auto' (the release when any part of it is there, else the preprocessed folders),
'release' or 'preprocessed'. Both give identical arrays for the same clips.

Clips pair on (action, subject, scene, session), as the reference does; the `trial` group and the clip id
(`a{A}_s{S}_t{T}_ses{E}_sc{C}`) come from the inertial side. Labels: `_mmact_classes` (35 classes; the
reference's unused id 24 is an error in a preprocessed folder).

Faithful defaults, each with a switch:
- `drop_first_row=True`: the reference reader lets pandas take each inertial CSV's first row as a header,
  so its clips lack that row (on 300-500-row signals about 7-9 % of the signal's std after resampling);
  False keeps every row. The same row is dropped from a clip read from the release.
- `strict=False`, the reference's tolerance: a one-row inertial clip or a one-frame pose clip is kept (it
  resamples to a constant); a clip the harness cannot use (no row left, NaN or infinite values, a single
  100 Hz sample) is skipped. `strict=True` makes those an error, and duplicates too.
- What the reference drops silently or with a print (incomplete sensor sets, empty series, pose clips with
  no person, unpaired clips, several files for one clip) is dropped here too and always listed in
  `RawData.skipped`, which the harness prints. `drop_unpaired=False` makes an unpaired clip an error;
  `skip_bad=True` skips (and lists) malformed files instead of stopping.
- `round_decimals=6`: a clip read from the release is rounded as the reference's CSV stores it (None: full
  precision).
When the pairs cover all 20 subjects and 4 scenes, the counts the reference's tests state are checked
(`_mmact_counts`) and every difference is printed as a warning.

Splits (spec 5.1):
- `xsub` (reference, default): train subjects 1-12, val 13-15, test 17-20; subject 16 unused, as in the
  reference (4,847 / 1,315 / 1,795 pairs on the full release; 403 pairs unused).
- `xsub_all`: every non-test subject used, with a subject-disjoint validation set: train 1-14, val 15-16,
  test 17-20 (14 / 2 / 4 subjects). Not the third-party 16-vs-4 protocol (that is `xsub_16v4`).
- `xsub_16v4`: the 16-vs-4 protocol of third-party MMAct loaders: train on subjects 1-16, test 17-20; the
  validation part is a stratified 10 % of every class's train clips (seed 0), so validation shares subjects
  with training (model selection is not subject-independent; `xsub_all` is the subject-disjoint variant).
- `xscene` (reference): train scenes {1,3,4} x subjects 1-16, val scenes {1,3,4} x subjects 17-20, test
  scene 2 x all subjects (4,732 / 1,264 / 2,364). Disjoint on scene between train and test; val shares
  scenes with train by design.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.contracts import (
    DatasetError,
    DatasetPlugin,
    ModalitySpec,
    RawData,
    SplitSpec,
    TrainingProfile,
)
from benchmark.registry import DATASETS
from datasets import _mmact_preprocessed as preprocessed
from datasets import _mmact_release as release
from datasets._mmact_archive import POSE_ARCHIVE, POSE_FOLDER, SENSOR_ARCHIVES, extract_release
from datasets._mmact_classes import (  # noqa: F401  (re-exported: the class dictionary lives there)
    CLASS_NAMES,
    LABEL_OF_REFERENCE_ID,
    REFERENCE_IDS,
    UNUSED_REFERENCE_ID,
)
from datasets._mmact_clips import ClipKey, ClipProblem, Found, clip_id, describe_key
from datasets._mmact_counts import count_differences, looks_full, release_counts

INERTIAL_CHANNELS = preprocessed.INERTIAL_CHANNELS
POSE_JOINTS, POSE_DIMS = preprocessed.POSE_JOINTS, preprocessed.POSE_DIMS
MODALITIES = ("inertial", "skeleton")
LAYOUTS = ("auto", "release", "preprocessed")


def _subjects(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@DATASETS.register("mmact")
class MMAct(DatasetPlugin):
    """MMAct inertial (12 channels) + 2-D pose clips, from the official release or the reference's output."""

    name = "mmact"
    folder_name = "mmact"
    modalities = {
        "inertial": ModalitySpec("inertial", channels=INERTIAL_CHANNELS, rate_hz=50.0,
                                 description="phone acc, watch acc, gyroscope, orientation (xyz each)",
                                 vectors=((0, 1, 2), (3, 4, 5), (6, 7, 8))),  # orientation angles are no vector
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
                              description="train subjects 1-14, validate on 15-16 (subject-disjoint), test 17-20"),
        "xsub_16v4": SplitSpec(train={"subject": _subjects(1, 16)}, test={"subject": _subjects(17, 20)},
                               val_fraction=0.1, val_seed=0, disjoint_val=False,
                               description="16-vs-4: train subjects 1-16, test 17-20; validation = a stratified "
                                           "10 % of the train clips (shares subjects with training)"),
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
    version = "2"
    option_defaults: ClassVar[dict[str, Any]] = {
        "layout": "auto",          # auto | release | preprocessed
        "drop_first_row": True,    # reference: pandas takes each inertial CSV's first row as a header
        "strict": False,           # reference tolerance; True: short/unusable clips and duplicates are errors
        "skip_bad": False,         # skip (and list) malformed files instead of failing
        "drop_unpaired": True,     # reference behaviour: keep complete pairs only (the others are listed)
        "round_decimals": 6,       # release clips rounded as the reference's CSV stores them; None: full precision
    }
    how_to_obtain = (
        "MMAct is licensed on request from its authors (https://mmact19.github.io/2019/). Put the trimmed sensor "
        "archives acc_phone_clip.tar.gz, acc_watch_clip.tar.gz, gyro_clip.tar.gz, orientation_clip.tar.gz and the "
        "challenge pose archive trimmed_pose.zip (packed or extracted) in <data root>/mmact/, or the Inertial/ "
        "and Skeleton/ folders written by the reference's datasets/mmact_raw_preprocessing.py; then point "
        "--data-root or $MMHAR_DATA at <data root>."
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["layout"] not in LAYOUTS:
            raise DatasetError(f"mmact: option layout={self.options['layout']!r} is not known; use one of "
                               f"{', '.join(LAYOUTS)}")
        dec = self.options["round_decimals"]
        if dec is not None and (isinstance(dec, bool) or not isinstance(dec, int) or not 0 <= dec <= 17):
            raise DatasetError(f"mmact: option round_decimals={dec!r} must be an integer 0-17 or None")

    # -- files ----------------------------------------------------------------------------------
    @staticmethod
    def _release_parts(folder: Path) -> dict[str, bool]:
        """Which of the five release parts are under `folder`, packed or extracted."""
        extracted = release.present(folder)
        parts = {s: extracted[s] or (folder / a).is_file() for s, a in SENSOR_ARCHIVES.items()}
        parts[POSE_FOLDER] = extracted[POSE_FOLDER] or (folder / POSE_ARCHIVE).is_file()
        return parts

    def _layout(self, folder: Path) -> str:
        chosen = self.options["layout"]
        if chosen != "auto":
            return chosen
        return "release" if any(self._release_parts(folder).values()) else "preprocessed"

    def looks_present(self, folder: Path) -> bool:
        """True when `folder` holds any part of the release, or the reference's preprocessed folders."""
        if not folder.is_dir():
            return False
        return any(self._release_parts(folder).values()) or preprocessed.looks_present(folder)

    def _scan(self, folder: Path) -> Found:
        """Extract what is still packed (release layout), then list every clip without reading it."""
        folder = Path(folder)
        if self._layout(folder) == "preprocessed":
            for sub in preprocessed.SUBFOLDER.values():
                if not (folder / sub).is_dir():
                    raise DatasetError(f"mmact: folder {folder / sub} is missing. {self.how_to_obtain}")
            return preprocessed.scan(folder)
        missing = [SENSOR_ARCHIVES.get(p, POSE_ARCHIVE) for p, ok in self._release_parts(folder).items() if not ok]
        if missing:
            raise DatasetError(f"mmact: {folder} holds only part of the MMAct release: {', '.join(missing)} "
                               f"(packed or extracted) is missing. Add it from the release you received.")
        extract_release(folder)
        return release.scan(folder, self.options["round_decimals"])

    def raw_files(self, folder: Path) -> list[Path]:
        """Every file the clips are read from (archives are extracted first; the extracted files count)."""
        return sorted(self._scan(folder).files)

    # -- reading --------------------------------------------------------------------------------
    def _fail(self, problem: ClipProblem) -> bool:
        """Whether a clip problem stops the load under the current options (else the clip is skipped)."""
        if problem.kind == "dropped" or self.options["skip_bad"]:
            return False
        return problem.kind == "malformed" or bool(self.options["strict"])

    def _strict_fix(self) -> str:
        return ("Repair or remove the file, or run with --datasets 'mmact[strict=false]' (the reference's tolerance) "
                "to skip or keep such clips, or 'mmact[skip_bad=true]' to skip and list them.")

    def _finish(self, modality: str, path: Path, x: np.ndarray) -> np.ndarray:
        """Apply the options to one clip in the reference's preprocessed form; ClipProblem when unusable."""
        strict = bool(self.options["strict"])
        if modality == "inertial":
            if self.options["drop_first_row"]:
                x = x[1:]
            what, n = "rows", x.shape[0]
            if n == 0:
                raise ClipProblem(f"mmact: {path}: no inertial rows left"
                                  + (" after dropping the first (drop_first_row=True)"
                                     if self.options["drop_first_row"] else ""), "unusable")
        else:
            what, n = "frames", x.shape[0]
            if n == 0 or not np.any(x):
                raise ClipProblem(f"mmact: {path}: no person detected in any frame (all zeros; the reference "
                                  f"preprocessing writes no file for it)", "dropped")
        if not np.all(np.isfinite(x)):
            raise ClipProblem(f"mmact: {path} contains NaN or infinite values", "unusable")
        if strict and n < 2:
            raise ClipProblem(f"mmact: {path} has {n} {what}, fewer than 2 (strict=True)", "unusable")
        return np.ascontiguousarray(x, dtype=np.float64)

    def read(self, folder: Path | None) -> RawData:
        """Read every complete clip pair; raise DatasetError naming the file at fault (see the options)."""
        if folder is None:
            raise DatasetError("mmact needs a data folder to read from")
        folder = Path(folder)
        found = self._scan(folder)
        skipped: list[str] = []
        for problem in found.bad:
            if self._fail(problem):
                raise problem
            skipped.append(str(problem))
        for message in found.duplicates:
            if self.options["strict"] and not self.options["skip_bad"]:
                raise DatasetError(f"{message}. {self._strict_fix()}")
            skipped.append(message)
        skipped += found.dropped
        arrays: dict[str, dict[ClipKey, np.ndarray]] = {m: {} for m in MODALITIES}
        counted: dict[str, set[ClipKey]] = {m: set() for m in MODALITIES}  # clips the reference has a file for
        for m in MODALITIES:
            for key, entry in found.modality(m).items():
                try:
                    arrays[m][key] = self._finish(m, entry.path, entry.load())
                except ClipProblem as problem:
                    if self._fail(problem) and problem.kind == "malformed":
                        raise
                    if self._fail(problem):
                        raise DatasetError(f"{problem}. {self._strict_fix()}") from None
                    skipped.append(str(problem))
                    if problem.kind == "dropped":
                        continue
                counted[m].add(key)
        keys = sorted(set(found.inertial) | set(found.skeleton))
        pairs: list[ClipKey] = []
        for key in keys:
            lonely = [m for m in MODALITIES if key not in found.modality(m)]
            if lonely:
                have = found.modality(next(m for m in MODALITIES if m not in lonely))[key].path
                msg = f"mmact: {have} has no {lonely[0]} counterpart ({describe_key(key)})"
                if not self.options["drop_unpaired"]:
                    raise DatasetError(msg + ". Restore the missing file, or load with drop_unpaired=True (the "
                                             "reference's behaviour) to skip unpaired clips.")
                skipped.append(msg)
                continue
            if all(key in arrays[m] for m in MODALITIES):
                pairs.append(key)
                continue
            for m in MODALITIES:
                if key in arrays[m]:
                    other = next(o for o in MODALITIES if o != m)
                    skipped.append(f"mmact: {found.modality(m)[key].path}: dropped, its {other} counterpart was "
                                   f"skipped (listed above)")
        if not pairs:
            raise DatasetError(f"mmact: no usable clip pairs under {folder}. {self.how_to_obtain}")
        self._check_counts(folder, counted, [k for k in keys if all(k in counted[m] for m in MODALITIES)])
        trials = [found.inertial[k].trial for k in pairs]
        cols = np.asarray([(LABEL_OF_REFERENCE_ID[k[0]], k[1], k[2], k[3], t) for k, t in zip(pairs, trials)],
                          dtype=np.int64)
        return RawData(
            samples={m: [arrays[m][k] for k in pairs] for m in MODALITIES},
            labels=cols[:, 0],
            groups={"subject": cols[:, 1], "scene": cols[:, 2], "session": cols[:, 3], "trial": cols[:, 4]},
            ids=[clip_id(k, t) for k, t in zip(pairs, trials)],
            skipped=skipped,
        )

    def _check_counts(self, folder: Path, counted: dict[str, set[ClipKey]], pairs: list[ClipKey]) -> None:
        """Warn, naming each difference, when a full-looking release does not give the reference's counts."""
        if not looks_full(pairs):
            return
        diffs = count_differences(release_counts(counted["inertial"], counted["skeleton"], pairs, self.splits))
        if diffs:
            _warn(f"mmact: the data under {folder} covers all 20 subjects and 4 scenes but its counts differ from "
                  f"those the reference's tests state: {'; '.join(diffs)}. Check that every archive is complete "
                  f"(or that the preprocessed folders came from the full release).")
