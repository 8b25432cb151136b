"""`synthetic`: the embedded default dataset, a procedural twin of UTD-MHAD that needs no download.

A 20-joint Kinect-v1 skeleton (UTD-MHAD's joint order and semantics, metres) performs 10 parametric
activities (12 with `n_classes=12`) built from forward kinematics of joint angles, with per-subject limb
lengths, tempo, amplitude, posture and per-trial variation. A right-wrist IMU (acc xyz in g with gravity,
gyro xyz in deg/s, in the forearm-mounted sensor frame) is derived from the SAME motion, so the two
modalities are two views of one event. Inertial: 50 Hz over the whole clip (2-4 s); skeleton: 30 fps
over a slightly shorter window. The generator: datasets/_synthetic_motion.py (subjects, trials, noise),
datasets/_synthetic_activities.py (the classes), datasets/_synthetic_kinematics.py (body, FK, IMU).

Defaults: 8 subjects x 10 classes x 4 trials = 320 clips, generated in about 3-4 s on one CPU core.
Split `xsub` (default) mirrors UTD-MHAD: odd subjects but the last train, the last odd subject validates,
even subjects test -> train {1,3,5}, val {7}, test {2,4,6,8} = 120 / 40 / 160 clips.

Difficulty (`python -m datasets.synthetic --seeds 0 1 2`): Euclidean 1-NN on the flattened preprocessed
tensors (length 50), xsub train -> test, seeds 0 / 1 / 2: inertial 0.594 / 0.594 / 0.500, skeleton
0.713 / 0.487 / 0.644, fused 0.656 / 0.662 / 0.537; a ridge classifier on the same fused features:
0.838 / 0.781 / 0.838. Details in docs/synthetic.md.
"""
from __future__ import annotations

import argparse
from typing import Any, ClassVar

import numpy as np

from benchmark.contracts import DatasetError, DatasetPlugin, ModalitySpec, RawData, SkeletonNorm, SplitSpec
from benchmark.registry import DATASETS
from datasets import _synthetic_motion as motion


def xsub_split(n_subjects: int) -> SplitSpec:
    """UTD-style cross-subject split: odd subjects train except the last odd one (val), even ones test."""
    odd = [s for s in range(1, n_subjects + 1) if s % 2 == 1]
    even = [s for s in range(1, n_subjects + 1) if s % 2 == 0]
    return SplitSpec(train={"subject": odd[:-1]}, val={"subject": odd[-1:]}, test={"subject": even},
                     description="odd subjects train (last odd one validates), even subjects test, as UTD-MHAD")


@DATASETS.register("synthetic")
class SyntheticDataset(DatasetPlugin):
    """Generated multimodal HAR data with UTD-MHAD's shapes: 6-channel wrist IMU + 20-joint skeleton."""

    name = "synthetic"
    needs_root = False
    modalities: ClassVar[dict[str, ModalitySpec]] = {
        "inertial": ModalitySpec("inertial", 6, motion.IMU_RATE_HZ,
                                 description="right-wrist IMU: acc xyz (g, with gravity), gyro xyz (deg/s)"),
        "skeleton": ModalitySpec("skeleton", 3, motion.SKELETON_RATE_HZ, joints=len(motion.JOINT_NAMES),
                                 description="Kinect v1 20-joint skeleton, camera frame, metres"),
    }
    class_names: ClassVar[list[str]] = list(motion.CLASS_NAMES[:10])
    splits: ClassVar[dict[str, SplitSpec]] = {"xsub": xsub_split(8)}
    default_split = "xsub"
    headline_protocols = ("paper_head", "linear", "semisup[per_class=1]", "finetune")  # as UTD-MHAD, whose shapes it has
    # standing in for absent real data (e.g. `--suite full` on a fresh machine): 3 % of the paper schedules,
    # enough to exercise every method and protocol in under an hour on 2 cores
    stand_in_shrink: ClassVar[dict[str, Any]] = {"epochs_scale": 0.03}
    skeleton_norm = SkeletonNorm(anchor=2, scale_pair=(1, 2))
    how_to_obtain = "Nothing to obtain: the synthetic dataset is generated on the fly."
    version = "1"  # bump whenever the generator's output changes (invalidates cached preprocessing)
    option_defaults: ClassVar[dict[str, Any]] = {"n_subjects": 8, "n_trials": 4, "n_classes": 10, "seed": 0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        if not 4 <= o["n_subjects"] <= 64:
            raise DatasetError(f"option n_subjects of dataset 'synthetic' must be in 4..64 (the xsub split needs "
                               f"two odd and two even subjects), got {o['n_subjects']}")
        if not 1 <= o["n_trials"] <= 50:
            raise DatasetError(f"option n_trials of dataset 'synthetic' must be in 1..50, got {o['n_trials']}")
        if not 2 <= o["n_classes"] <= len(motion.CLASS_NAMES):
            raise DatasetError(f"option n_classes of dataset 'synthetic' must be in 2..{len(motion.CLASS_NAMES)} "
                               f"(classes: {', '.join(motion.CLASS_NAMES)}), got {o['n_classes']}")
        self.class_names = list(motion.CLASS_NAMES[: o["n_classes"]])
        self.splits = {"xsub": xsub_split(o["n_subjects"])}

    def looks_present(self, folder: Any) -> bool:
        """Always present: nothing is read from disk."""
        return True

    def raw_files(self, folder: Any) -> list:
        """No raw files: the cache key is the options and `version`."""
        return []

    def read(self, folder: Any = None) -> RawData:
        """Generate every clip (the folder is ignored)."""
        o = self.options
        g = motion.generate(n_subjects=o["n_subjects"], n_trials=o["n_trials"], n_classes=o["n_classes"],
                            seed=o["seed"])
        return RawData(samples={"inertial": g.inertial, "skeleton": g.skeleton}, labels=g.labels,
                       groups={"subject": g.subjects, "trial": g.trials}, ids=g.ids)


def nearest_neighbour_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                               test_y: np.ndarray) -> float:
    """Accuracy of a Euclidean 1-NN classifier: the difficulty yardstick of a dataset."""
    d = (test_x**2).sum(1)[:, None] - 2.0 * test_x @ train_x.T + (train_x**2).sum(1)[None, :]
    return float((train_y[d.argmin(1)] == test_y).mean())


def difficulty_report(seed: int = 0, split: str = "xsub", **options: Any) -> dict[str, dict[str, float]]:
    """1-NN and ridge-classifier test accuracies per modality and fused, on flattened preprocessed tensors."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    from benchmark.data import load_dataset

    data = load_dataset("synthetic", seed=seed, use_cache=False, **options)
    sp = data.split(split)
    y = data.labels.numpy()
    feats = {m: t.reshape(len(t), -1).double().numpy() for m, t in data.modalities.items()}
    # fused: each modality's block scaled to unit mean norm on train, so neither dominates the distance
    feats["fused"] = np.concatenate(
        [f / np.linalg.norm(f[sp.train], axis=1).mean() for f in (feats["inertial"], feats["skeleton"])], axis=1)
    out: dict[str, dict[str, float]] = {}
    for m, f in feats.items():
        knn = nearest_neighbour_accuracy(f[sp.train], y[sp.train], f[sp.test], y[sp.test])
        sc = StandardScaler().fit(f[sp.train])
        ridge = RidgeClassifierCV(alphas=np.logspace(-1, 4, 11)).fit(sc.transform(f[sp.train]), y[sp.train])
        out[m] = {"1nn": knn, "ridge": float(ridge.score(sc.transform(f[sp.test]), y[sp.test]))}
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the difficulty report (the numbers quoted in docs/synthetic.md)."""
    ap = argparse.ArgumentParser(description="Difficulty of the synthetic dataset: 1-NN and ridge accuracies.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-classes", type=int, default=10)
    args = ap.parse_args(argv)
    for seed in args.seeds:
        rep = difficulty_report(seed, n_classes=args.n_classes)
        print(f"seed {seed}: " + "  ".join(f"{m}: 1-NN {r['1nn']:.3f} ridge {r['ridge']:.3f}" for m, r in rep.items()))


if __name__ == "__main__":
    DATASETS.remove("synthetic")  # `python -m` runs a copy named __main__; let the plugin loader register the module
    main()
