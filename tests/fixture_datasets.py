"""Generated dataset plugins with the shapes the contract must fit beyond UTD-MHAD and MMAct.

- `fx_acc_only`: one inertial modality named 'acc', a predefined train/test split with a stratified
  validation carve-out, no subject ids at all;
- `fx_two_imus`: two inertial modalities named freely ('wrist', 'ankle'), cross-subject split and a family of
  two subject folds ('folds');
- `fx_three`: three modalities ('wrist' and 'ankle' inertial, 'body' skeleton), its own training profile.

They are registered only inside tests (`registered()`), so other tests never see them.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmark.contracts import DatasetPlugin, ModalitySpec, RawData, SkeletonNorm, SplitSpec, TrainingProfile
from benchmark.registry import DATASETS

N_CLASSES, PER_CLASS, SUBJECTS = 4, 12, 6


def _signal(rng: np.random.Generator, label: int, t: int, channels: int) -> np.ndarray:
    """A noisy class-specific oscillation (T, C)."""
    time = np.linspace(0, 2 * np.pi, t)[:, None]
    base = np.sin((label + 1) * time + np.arange(channels)[None, :])
    return (base + 0.3 * rng.normal(size=(t, channels))).astype(np.float32)


def _clips(seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    subjects = np.tile(np.arange(1, SUBJECTS + 1), N_CLASSES * PER_CLASS // SUBJECTS)
    return labels, subjects


class _Generated(DatasetPlugin):
    needs_root = False
    class_names = [f"activity{i}" for i in range(N_CLASSES)]
    how_to_obtain = "Generated on the fly."

    def looks_present(self, folder: Path) -> bool:
        return True

    def raw_files(self, folder: Path) -> list[Path]:
        return []


class AccOnly(_Generated):
    """Inertial only, predefined split (part 0 train, part 1 test), validation carved from train, no subjects."""

    name = "fx_acc_only"
    modalities = {"acc": ModalitySpec("inertial", channels=3, rate_hz=25.0)}
    splits = {"predefined": SplitSpec(train={"part": [0]}, test={"part": [1]}, val_fraction=0.25,
                                      disjoint_on=None, description="the files' own train/test lists")}
    default_split = "predefined"
    training = TrainingProfile(length=40, method_defaults={"*": {"batch_size": 16}})

    def read(self, folder: Path | None) -> RawData:
        rng = np.random.default_rng(1)
        labels, _ = _clips(1)
        part = (np.arange(len(labels)) % 3 == 2).astype(int)  # a third of every class is test
        acc = [_signal(rng, int(y), 60, 3) for y in labels]
        return RawData(samples={"acc": acc}, labels=labels, groups={"part": part},
                       ids=[f"clip{i}" for i in range(len(labels))])


class TwoImus(_Generated):
    """Two inertial modalities named freely, cross-subject split."""

    name = "fx_two_imus"
    modalities = {"wrist": ModalitySpec("inertial", channels=6, rate_hz=50.0),
                  "ankle": ModalitySpec("inertial", channels=3, rate_hz=30.0)}
    splits = {"xsub": SplitSpec(train={"subject": [1, 2, 3, 4]}, val={"subject": [5]}, test={"subject": [6]}),
              # a family of two folds that test disjoint subjects (together every subject but none twice)
              "fold1": SplitSpec(train={"subject": [1, 2, 3]}, val={"subject": [4]}, test={"subject": [5, 6]},
                                 family="folds"),
              "fold2": SplitSpec(train={"subject": [4, 5, 6]}, val={"subject": [3]}, test={"subject": [1, 2]},
                                 family="folds")}
    default_split = "xsub"

    def read(self, folder: Path | None) -> RawData:
        rng = np.random.default_rng(2)
        labels, subjects = _clips(2)
        return RawData(samples={"wrist": [_signal(rng, int(y), 80, 6) for y in labels],
                                "ankle": [_signal(rng, int(y), 50, 3) for y in labels]},
                       labels=labels, groups={"subject": subjects}, ids=[f"clip{i}" for i in range(len(labels))])


class Three(_Generated):
    """Three modalities: two inertial, one skeleton; its own training profile."""

    name = "fx_three"
    modalities = {"wrist": ModalitySpec("inertial", channels=6, rate_hz=50.0),
                  "ankle": ModalitySpec("inertial", channels=6, rate_hz=50.0),
                  "body": ModalitySpec("skeleton", channels=3, rate_hz=30.0, joints=5)}
    splits = {"xsub": SplitSpec(train={"subject": [1, 2, 3, 4]}, val={"subject": [5]}, test={"subject": [6]})}
    default_split = "xsub"
    skeleton_norm = SkeletonNorm(anchor=0, scale_pair=(0, 1))
    training = TrainingProfile(
        method_defaults={"simclr[body]": {"temperature": 0.3}, "unimodal": {"epochs": 5}},
        augmentations={"skeleton": {"rotation": {"start": -5, "end": 5}}},
        semisup_budget_type="per_class", semisup_budgets=(1, 2, 100), main_metric="f1",
    )

    def read(self, folder: Path | None) -> RawData:
        rng = np.random.default_rng(3)
        labels, subjects = _clips(3)
        body = []
        for y in labels:
            joints = np.stack([_signal(rng, int(y), 40, 3) + j for j in range(5)], axis=1)  # (T, J, C)
            body.append(joints)
        return RawData(samples={"wrist": [_signal(rng, int(y), 60, 6) for y in labels],
                                "ankle": [_signal(rng, int(y), 60, 6) for y in labels], "body": body},
                       labels=labels, groups={"subject": subjects}, ids=[f"clip{i}" for i in range(len(labels))])


FIXTURES = (AccOnly, TwoImus, Three)


@contextmanager
def registered() -> Iterator[None]:
    """Register the fixture datasets for the duration of a test."""
    for cls in FIXTURES:
        DATASETS.add(cls.name, cls)
    try:
        yield
    finally:
        for cls in FIXTURES:
            DATASETS.remove(cls.name)
