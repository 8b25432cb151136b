"""MMAct's declared vector triplets: the intended 3-D rotation leaves its orientation angles alone, the reference
layout is unchanged, and datasets that declare no vectors are untouched."""
from __future__ import annotations

import pytest
import torch

from benchmark.augment import AugmentationError, Augmenter, build_augmenters, make_generator
from benchmark.checks import tiny_data
from benchmark.contracts import DataInfo, ModalitySpec
from benchmark.plugins import load_plugins
from benchmark.registry import DATASETS
from datasets.base import DatasetError

VECTORS = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
OPS = ["jittering", "scaling", "rotation", "permutation", "channel_shuffle"]


def mmact_profile():
    load_plugins()
    cls = DATASETS.get("mmact")
    return cls.training.with_vectors(cls.modalities)


def only(op: str) -> dict:
    return {n: {"apply": n == op, "probability": 1.0} for n in OPS}


def test_mmact_declares_acc_and_gyro_as_vectors_not_orientation():
    load_plugins()
    assert DATASETS.get("mmact").modalities["inertial"].vectors == ((0, 1, 2), (3, 4, 5), (6, 7, 8))
    for name in ("utd_mhad", "synthetic"):
        assert all(s.vectors is None for s in DATASETS.get(name).modalities.values())
    aug = mmact_profile().augmentations["inertial"]
    assert aug["rotation"] == {"apply": True, "vectors": VECTORS}
    assert aug["channel_shuffle"] == {"apply": False, "vectors": VECTORS}
    assert aug["jittering"] == {"apply": False}  # the declared overrides are kept


def test_data_info_hands_the_vectors_to_the_augmenters():
    load_plugins()
    spec = DATASETS.get("mmact").modalities
    data = tiny_data({"inertial": "inertial"}, training=DATASETS.get("mmact").training)
    data.meta["modality_specs"] = {"inertial": vars(spec["inertial"])}
    info = DataInfo.from_data(data)
    assert info.training.augmentations["inertial"]["rotation"]["vectors"] == VECTORS
    plain = tiny_data()  # declares no vectors: the very same profile object
    assert DataInfo.from_data(plain).training is plain.meta["training"]


def test_intended_rotation_leaves_orientation_out():
    profile = mmact_profile()  # the pipeline the harness builds for MMAct, then everything but rotation off
    aug = Augmenter("inertial", "intended", [profile.augmentations["inertial"], only("rotation")])
    assert build_augmenters({"inertial": "inertial"}, "intended", profile.augmentations)["inertial"].ops[2].params == {
        "vectors": tuple(tuple(g) for g in VECTORS)}
    x = torch.randn(16, 12, 50, dtype=torch.float64)
    y = aug(x, make_generator(0))
    assert torch.equal(y[:, 9:], x[:, 9:])  # azimuth, pitch, roll untouched
    xs, ys = x[:, :9].reshape(16, 3, 3, 50), y[:, :9].reshape(16, 3, 3, 50)
    torch.testing.assert_close(ys.norm(dim=2), xs.norm(dim=2))
    rot = ys[:, 0] @ torch.linalg.pinv(xs[:, 0])  # one rotation per sample for phone acc, watch acc and gyro
    torch.testing.assert_close(torch.einsum("nij,ngjt->ngit", rot, xs), ys)
    assert not torch.allclose(ys, xs)


def test_intended_axis_shuffle_stays_inside_the_declared_triplets():
    code = (1000 * torch.arange(12).view(1, 12, 1) + torch.arange(50).view(1, 1, 50)).expand(64, 12, 50).double()
    aug = Augmenter("inertial", "intended", [only("channel_shuffle"), {"channel_shuffle": {"vectors": VECTORS}}])
    y = aug(code, make_generator(1))
    chan = torch.div(y[:, :, 0], 1000, rounding_mode="floor").long()
    assert torch.equal(chan[:, 9:], torch.arange(9, 12).expand(64, 3))
    for g in range(3):
        assert set(chan[:, 3 * g:3 * g + 3].flatten().tolist()) == {3 * g, 3 * g + 1, 3 * g + 2}
    assert len({tuple(r) for r in chan[:, :3].tolist()}) > 1


@pytest.mark.parametrize("op", ["rotation", "channel_shuffle", None])
def test_reference_layout_is_bit_identical_with_declared_vectors(op):
    load_plugins()
    declared = DATASETS.get("mmact").training.augmentations
    x = torch.randn(32, 12, 50)
    layers = [declared["inertial"]] + ([only(op)] if op else [])
    plain = Augmenter("inertial", "reference", layers)
    with_vectors = Augmenter("inertial", "reference",
                             layers + [{"rotation": {"vectors": VECTORS}, "channel_shuffle": {"vectors": VECTORS}}])
    assert torch.equal(plain(x, make_generator(5)), with_vectors(x, make_generator(5)))


def test_bad_vectors_are_errors():
    with pytest.raises(AugmentationError, match="parameter 'vectors' must be a list of"):
        Augmenter("inertial", "intended", {"rotation": {"vectors": [[0, 1]]}})
    with pytest.raises(AugmentationError, match="unknown parameter 'vectors'"):
        Augmenter("inertial", "intended", {"jittering": {"vectors": VECTORS}})
    aug = Augmenter("inertial", "intended", [only("rotation"), {"rotation": {"vectors": [[10, 11, 12]]}}])
    with pytest.raises(AugmentationError, match="name a channel beyond the 12 channels"):
        aug(torch.zeros(2, 12, 50), make_generator(0))
    with pytest.raises(DatasetError, match="triplets of distinct channel indices"):
        ModalitySpec("inertial", 6, 50.0, vectors=((0, 1, 1),))
    with pytest.raises(DatasetError, match="inertial modalities only"):
        ModalitySpec("skeleton", 2, 30.0, joints=17, vectors=((0, 1, 2),))
