"""Batched augmentations: reference profiles, RandomApply semantics, determinism and each op's exact behaviour."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.signal
import torch

from benchmark.augment import (
    REFERENCE_PIPELINES,
    AugmentationError,
    Augmenter,
    build_augmenters,
    crop_and_resize_frames,
    fft_resample_matrix,
    make_generator,
    rotation_matrix_2d,
    rotation_matrix_3d,
)
from benchmark.plugins import load_plugins
from benchmark.registry import DATASETS

SHAPES = {("utd_mhad", "inertial"): (6, 50), ("utd_mhad", "skeleton"): (3, 50, 20),
          ("mmact", "inertial"): (12, 50), ("mmact", "skeleton"): (2, 50, 17)}
INERTIAL_OPS = ["jittering", "scaling", "rotation", "permutation", "channel_shuffle"]
SKELETON_OPS = ["jittering", "crop_and_resize", "scaling", "rotation", "shear"]


def profiled(dataset: str, modality: str, layout: str = "reference", overrides: dict | None = None) -> Augmenter:
    """The SSL pipeline of `modality` as dataset `dataset` declares it (its TrainingProfile), plus `overrides`."""
    load_plugins()
    declared = DATASETS.get(dataset).training.augmentations
    layers = ([declared[modality]] if modality in declared else []) + ([overrides] if overrides else [])
    return Augmenter(modality, layout, layers, f"{dataset}/{modality}")


def only(modality: str, op: str, p: float = 1.0, **params) -> dict:
    """Overrides that switch every op off except `op` (applied with probability p)."""
    names = INERTIAL_OPS if modality == "inertial" else SKELETON_OPS
    out = {n: {"apply": False} for n in names}
    out[op] = {"apply": True, "probability": p, **params}
    return out


def run(profile: str, modality: str, op: str, x: torch.Tensor, layout: str = "reference", seed: int = 0,
        p: float = 1.0, **params) -> torch.Tensor:
    aug = profiled(profile, modality, layout, overrides=only(modality, op, p, **params))
    return aug(x, make_generator(seed))


# -- profiles and configuration ------------------------------------------------------------------------------
def test_profiles_are_the_reference_yaml_values_in_key_order() -> None:
    def table(profile, modality):
        ops = REFERENCE_PIPELINES[modality] if profile == "utd_mhad" else profiled(profile, modality).ops
        return [(o.name, o.apply, o.probability, {k: v for k, v in o.params.items() if k != "pivot_joint"})
                for o in ops]

    assert table("utd_mhad", "inertial") == [
        ("jittering", True, 0.75, {"sigma": 1.0}), ("scaling", True, 0.75, {"sigma": 1.0}),
        ("rotation", False, 0.75, {}), ("permutation", True, 0.75, {"max_segments": 3}),
        ("channel_shuffle", True, 0.75, {})]
    assert table("mmact", "inertial") == [
        ("jittering", False, 0.75, {"sigma": 1.0}), ("scaling", True, 0.75, {"sigma": 1.0}),
        ("rotation", True, 0.75, {}), ("permutation", False, 0.75, {"max_segments": 5}),
        ("channel_shuffle", False, 0.75, {})]
    assert table("utd_mhad", "skeleton") == [
        ("jittering", True, 1.0, {"sigma": 0.1}), ("crop_and_resize", True, 0.75, {"min_p": 0.8, "max_p": 0.9}),
        ("scaling", True, 0.75, {"min_p": 0.7, "max_p": 1.2}),
        ("rotation", True, 0.75, {"start": -10, "end": 10, "step": 2}), ("shear", True, 0.75, {"beta": 0.2})]
    assert table("mmact", "skeleton") == [
        ("jittering", True, 1.0, {"sigma": 0.1}), ("crop_and_resize", True, 0.75, {"min_p": 0.7, "max_p": 0.8}),
        ("scaling", True, 0.75, {"min_p": 0.7, "max_p": 1.2}),
        ("rotation", True, 0.75, {"start": -15, "end": 15, "step": 2}), ("shear", True, 0.75, {"beta": 0.2})]
    assert [o.name for o in profiled("mmact", "inertial").active_ops] == ["scaling", "rotation"]
    # the generic pipelines are UTD-MHAD's: that dataset (and the synthetic one) declare no augmentations
    assert not DATASETS.get("utd_mhad").training.augmentations and not DATASETS.get("synthetic").training.augmentations


def test_config_is_json_and_includes_implicit_pivot() -> None:
    cfg = Augmenter("skeleton", overrides={"rotation": {"probability": 0.5, "step": 5}}).config()
    rot = next(o for o in json.loads(json.dumps(cfg))["ops"] if o["name"] == "rotation")
    assert rot == {"name": "rotation", "apply": True, "probability": 0.5,
                   "params": {"pivot_joint": 0, "start": -10, "end": 10, "step": 5}}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"modality": "depth"}, "Known augmentation modality kinds: inertial, skeleton"),
        ({"layout": "fixed"}, "Known augmentation layouts: reference, intended"),
        ({"overrides": {"jitter": {}}}, "unknown op 'jitter'.*Did you mean 'jittering'"),
        ({"overrides": {"jittering": {"sigmaa": 2}}}, "unknown parameter 'sigmaa'.*apply, probability, sigma"),
        ({"overrides": {"jittering": {"sigma": -1}}}, "'sigma' must be a number >= 0"),
        ({"overrides": {"jittering": {"probability": 1.5}}}, "in \\[0, 1\\]"),
        ({"overrides": {"jittering": {"apply": "yes"}}}, "'apply' must be true or false"),
        ({"overrides": {"permutation": {"max_segments": 1}}}, "integer >= 2"),
        ({"overrides": {"permutation": {"max_segments": 2.5}}}, "integer >= 2"),
    ],
)
def test_bad_configuration_errors_name_the_fault(kwargs, message) -> None:
    args = {"modality": "inertial", **kwargs}
    with pytest.raises(AugmentationError, match=message):
        Augmenter(**args)


def test_bad_skeleton_parameters_and_batches() -> None:
    with pytest.raises(AugmentationError, match="must be <= 1"):
        Augmenter("skeleton", overrides={"crop_and_resize": {"max_p": 1.1}})
    with pytest.raises(AugmentationError, match="min_p 0.9 must not exceed max_p 0.8"):
        Augmenter("skeleton", overrides={"scaling": {"min_p": 0.9, "max_p": 0.8}})
    aug = Augmenter("skeleton")
    with pytest.raises(AugmentationError, match="2 or 3 coordinates"):
        aug(torch.zeros(2, 4, 50, 20), make_generator(0))
    with pytest.raises(AugmentationError, match=r"\[N, C, T, J\]"):
        aug(torch.zeros(2, 3, 50), make_generator(0))
    with pytest.raises(AugmentationError, match="torch.Generator"):
        aug(torch.zeros(2, 3, 50, 20), 0)
    with pytest.raises(AugmentationError, match="pivot_joint 25 is out of range for 20 joints"):
        Augmenter("skeleton", overrides={"scaling": {"pivot_joint": 25}})(
            torch.zeros(2, 3, 50, 20), make_generator(0))
    with pytest.raises(AugmentationError, match="multiple of 3"):
        profiled("mmact", "inertial", "intended")(torch.zeros(2, 7, 50), make_generator(0))


def test_build_augmenters_by_kind_then_name() -> None:
    augs = build_augmenters({"imu": "inertial", "pose": "skeleton"}, "intended",
                            overrides={"skeleton": {"shear": {"apply": False}, "scaling": {"min_p": 0.5}},
                                       "pose": {"scaling": {"min_p": 0.6}}})
    assert {k: (a.modality, a.layout) for k, a in augs.items()} == {"imu": ("inertial", "intended"),
                                                                     "pose": ("skeleton", "intended")}
    assert "shear" not in [o.name for o in augs["pose"].active_ops]  # the kind's entry applies
    assert next(o for o in augs["pose"].ops if o.name == "scaling").params["min_p"] == 0.6  # then the name's
    assert [o.name for o in augs["imu"].active_ops] == [o.name for o in REFERENCE_PIPELINES["inertial"] if o.apply]
    with pytest.raises(AugmentationError, match="unknown op 'shearing'"):
        build_augmenters({"pose": "skeleton"}, overrides={"pose": {"shearing": {}}})


# -- generic behaviour ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile, modality, layout",
                         list(itertools.product(["utd_mhad", "mmact"], ["inertial", "skeleton"], ["reference", "intended"])))
def test_shape_dtype_device_kept_and_seeded(profile, modality, layout) -> None:
    aug = profiled(profile, modality, layout)
    x = torch.randn(16, *SHAPES[(profile, modality)], dtype=torch.float64)
    y1, y2 = aug(x, make_generator(3)), aug(x, make_generator(3))
    assert y1.shape == x.shape and y1.dtype == x.dtype and y1.device == x.device
    assert torch.equal(y1, y2)
    assert not torch.equal(y1, aug(x, make_generator(4)))
    assert not torch.equal(y1, x) and torch.isfinite(y1).all()
    assert aug(x.float(), make_generator(0)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("modality", ["inertial", "skeleton"])
def test_cuda_batches_stay_on_device(modality) -> None:
    x = torch.randn(8, *SHAPES[("utd_mhad", modality)], device="cuda")
    aug = Augmenter(modality)
    assert aug(x, make_generator(0, "cuda")).device == x.device
    assert aug(x, make_generator(0)).device == x.device  # a CPU generator works too (draws are moved)


@pytest.mark.parametrize("modality", ["inertial", "skeleton"])
def test_probability_zero_or_apply_false_is_identity(modality) -> None:
    x = torch.randn(8, *SHAPES[("utd_mhad", modality)])
    names = INERTIAL_OPS if modality == "inertial" else SKELETON_OPS
    for override in ({"probability": 0.0}, {"apply": False}):
        aug = Augmenter(modality, overrides={n: override for n in names})
        assert aug.active_ops == () and torch.equal(aug(x, make_generator(0)), x)


def test_random_apply_is_a_per_sample_mask() -> None:
    x = torch.randn(400, 6, 50)
    y = run("utd_mhad", "inertial", "scaling", x, p=0.5)
    unchanged = (y == x).flatten(1).all(1)
    changed = (y != x).flatten(1).all(1)  # scaling touches every element of a hit sample
    assert bool((unchanged | changed).all())
    assert 150 < int(unchanged.sum()) < 250


def test_large_batch_is_handled_in_one_call() -> None:
    x = torch.randn(512, 3, 50, 20)
    y = Augmenter("skeleton")(x, make_generator(0))
    assert y.shape == x.shape and torch.isfinite(y).all()


# -- inertial, reference layout -----------------------------------------------------------------------------
def _code(n: int, c: int, t: int) -> torch.Tensor:
    """x[n, c, t] = 1000 c + t: every value names its channel and time step."""
    return (1000 * torch.arange(c).view(1, c, 1) + torch.arange(t).view(1, 1, t)).expand(n, c, t).double()


def test_reference_channel_shuffle_permutes_time_steps_shared_by_channels() -> None:
    x = _code(64, 6, 50)
    y = run("utd_mhad", "inertial", "channel_shuffle", x)
    chan, step = torch.div(y, 1000, rounding_mode="floor"), y.remainder(1000)
    assert torch.equal(chan, torch.div(x, 1000, rounding_mode="floor"))  # no channel mixing
    assert torch.equal(step.sort(dim=2).values, x.remainder(1000))  # each channel: a permutation of its steps
    assert torch.equal(step, step[:, :1].expand_as(step))  # one permutation for all channels of a sample
    assert (step != x.remainder(1000)).any(dim=2).all()  # 50! orders: never the identity here


def test_reference_permutation_swaps_channel_blocks() -> None:
    x = _code(200, 6, 50)
    y = run("utd_mhad", "inertial", "permutation", x)
    orders = {tuple(o) for o in torch.div(y[:, :, 0], 1000, rounding_mode="floor").long().tolist()}
    assert orders == {(0, 1, 2, 3, 4, 5), (3, 4, 5, 0, 1, 2)}  # n in {1, 2}: identity or acc <-> gyro
    assert torch.equal(y.remainder(1000), x.remainder(1000))  # time untouched


def test_reference_permutation_with_more_segments_uses_array_split_groups() -> None:
    x = _code(600, 12, 5)
    y = run("mmact", "inertial", "permutation", x)  # max_segments 5: 1..4 near-equal groups of 12 channels
    valid = set()
    for k in range(1, 5):
        groups = [tuple(g) for g in np.array_split(np.arange(12), k)]
        valid |= {sum(p, ()) for p in itertools.permutations(groups)}
    orders = {tuple(o) for o in torch.div(y[:, :, 0], 1000, rounding_mode="floor").long().tolist()}
    assert orders <= valid and len(orders) > 25  # 33 possible orders; nearly all occur in 600 draws


def test_reference_rotation_flips_signs_per_element() -> None:
    x = torch.rand(32, 12, 50) + 0.5
    y = run("mmact", "inertial", "rotation", x)
    torch.testing.assert_close(y.abs(), x)
    neg = (y < 0).double()
    assert 0.45 < neg.mean().item() < 0.55
    assert ((neg.sum(2) > 0) & (neg.sum(2) < 50)).all()  # signs vary inside each channel


def test_reference_scaling_is_per_element_and_intended_per_channel() -> None:
    x = torch.rand(32, 6, 50) + 0.5
    ratio = run("utd_mhad", "inertial", "scaling", x) / x
    assert (ratio.std(dim=2) > 0.3).all()  # sigma 1 per element
    ratio = run("utd_mhad", "inertial", "scaling", x, layout="intended") / x
    torch.testing.assert_close(ratio, ratio[:, :, :1].expand_as(ratio))
    assert ratio[:, :, 0].std() > 0.5


# -- inertial, intended layout ------------------------------------------------------------------------------
def test_intended_rotation_preserves_triplet_norms() -> None:
    x = torch.randn(32, 12, 50, dtype=torch.float64)
    y = run("mmact", "inertial", "rotation", x, layout="intended")
    norms = lambda t: t.view(32, 4, 3, 50).norm(dim=2)  # noqa: E731
    torch.testing.assert_close(norms(y), norms(x))
    assert not torch.allclose(y.abs(), x.abs(), atol=1e-3)  # a real rotation, not sign flips
    # one rotation per sample, the same for every triplet: recover it from the first triplet and apply it to all
    xs, ys = x.view(32, 4, 3, 50), y.view(32, 4, 3, 50)
    rot = ys[:, 0] @ torch.linalg.pinv(xs[:, 0])
    torch.testing.assert_close(torch.einsum("nij,ngjt->ngit", rot, xs), ys)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(32, dtype=torch.float64))


def test_intended_permutation_moves_contiguous_time_segments() -> None:
    x = _code(300, 6, 50)
    y = run("utd_mhad", "inertial", "permutation", x, layout="intended")
    step = y.remainder(1000).long()
    assert torch.equal(step, step[:, :1].expand_as(step))
    seen = set()
    for order in step[:, 0].tolist():
        runs = 1 + sum(b != a + 1 for a, b in zip(order, order[1:]))
        assert sorted(order) == list(range(50)) and runs <= 2
        seen.add(tuple(order))
    assert seen == {tuple(range(50)), tuple(range(25, 50)) + tuple(range(25))}


def test_intended_channel_shuffle_permutes_axes_within_triplets() -> None:
    x = _code(100, 6, 50)
    y = run("utd_mhad", "inertial", "channel_shuffle", x, layout="intended")
    chan = torch.div(y[:, :, 0], 1000, rounding_mode="floor").long()
    assert torch.equal(chan[:, 3:] - 3, chan[:, :3])  # the same axis order for acc and gyro
    assert {tuple(c) for c in chan[:, :3].tolist()} == set(itertools.permutations(range(3)))
    assert torch.equal(y.remainder(1000), x.remainder(1000))


# -- skeleton --------------------------------------------------------------------------------------------------
def test_skeleton_jitter_has_the_profile_sigma() -> None:
    x = torch.randn(64, 3, 50, 20, dtype=torch.float64)
    noise = run("utd_mhad", "skeleton", "jittering", x, sigma=0.1) - x
    assert noise.std().item() == pytest.approx(0.1, rel=0.02) and abs(noise.mean().item()) < 0.002


@pytest.mark.parametrize("n_in, n_out", [(40, 50), (41, 50), (44, 50), (50, 50), (60, 50), (3, 8)])
def test_fft_resample_matrix_equals_scipy(n_in, n_out) -> None:
    v = np.random.default_rng(n_in).standard_normal(n_in)
    np.testing.assert_allclose(fft_resample_matrix(n_in, n_out).numpy() @ v, scipy.signal.resample(v, n_out),
                               atol=1e-12)


def test_crop_and_resize_frames_equals_scipy_per_sample() -> None:
    x = torch.randn(4, 3, 50, 20, dtype=torch.float64)
    lengths, starts = torch.tensor([40, 43, 45, 50]), torch.tensor([0, 7, 5, 0])
    y = crop_and_resize_frames(x, lengths, starts)
    for i in range(4):
        crop = x[i, :, starts[i] : starts[i] + lengths[i]].numpy()
        np.testing.assert_allclose(y[i].numpy(), scipy.signal.resample(crop, 50, axis=1), atol=1e-10)


def test_crop_and_resize_draws_start_uniformly_inside_the_clip() -> None:
    x = torch.randn(64, 3, 50, 20, dtype=torch.float64)
    y = run("utd_mhad", "skeleton", "crop_and_resize", x, min_p=0.8, max_p=0.8)  # fixed length 40: starts 0..10
    candidates = torch.stack([crop_and_resize_frames(x, torch.full((64,), 40), torch.full((64,), s))
                              for s in range(11)])  # [11, N, ...]
    err = (candidates - y).abs().flatten(2).amax(2)  # [11, N]
    assert (err.min(0).values < 1e-10).all()
    starts = err.argmin(0)
    assert len(set(starts.tolist())) > 5


def _unit_frame_skeleton(n: int, dims: int, joints: int = 6) -> torch.Tensor:
    """Per frame: joint 0 random, joints 1..dims = joint 0 + unit axes, the rest random."""
    x = torch.randn(n, dims, 50, joints, dtype=torch.float64)
    for d in range(dims):
        x[:, :, :, d + 1] = x[:, :, :, 0]
        x[:, d, :, d + 1] += 1.0
    return x


def test_skeleton_scaling_pivots_on_joint_zero_of_each_frame() -> None:
    x = _unit_frame_skeleton(32, 3)
    y = run("utd_mhad", "skeleton", "scaling", x)
    torch.testing.assert_close(y[..., 0], x[..., 0])  # joint 0 fixed
    factor = (y - y[..., :1])[..., 4:] / (x - x[..., :1])[..., 4:]
    torch.testing.assert_close(factor, factor[:, :, :1, :1].expand_as(factor))  # one factor per sample and axis
    assert factor.min() >= 0.7 and factor.max() <= 1.2 and factor[:, :, 0, 0].std() > 0.05


def test_rotation_matrix_composition_order() -> None:
    deg = torch.deg2rad(torch.tensor([90.0]))
    zero = torch.zeros(1)
    ex, ey = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    torch.testing.assert_close(rotation_matrix_3d(zero, zero, deg)[0] @ ex, ey)  # Rz: x -> y
    torch.testing.assert_close(rotation_matrix_3d(deg, zero, zero)[0] @ ey, torch.tensor([0, 0, 1.0]))  # Rx: y -> z
    r = rotation_matrix_3d(deg, deg, zero)[0]  # Rx Ry (not Ry Rx): x -> Ry -> -z -> Rx -> y
    torch.testing.assert_close(r @ ex, ey, atol=1e-6, rtol=0)
    torch.testing.assert_close(rotation_matrix_2d(deg)[0] @ torch.tensor([1.0, 0]), torch.tensor([0, 1.0]))


def test_skeleton_rotation_3d_uses_grid_angles_about_joint_zero() -> None:
    x = _unit_frame_skeleton(64, 3)
    y = run("utd_mhad", "skeleton", "rotation", x)
    torch.testing.assert_close(y[..., 0], x[..., 0])
    torch.testing.assert_close((y - y[..., :1]).norm(dim=1), (x - x[..., :1]).norm(dim=1))  # distances to joint 0
    rot = (y[:, :, :, 1:4] - y[:, :, :, :1]).permute(0, 2, 1, 3)  # [N, T, 3, 3]: columns = images of the axes
    torch.testing.assert_close(rot, rot[:, :1].expand_as(rot))  # one rotation per sample, all frames
    r = rot[:, 0]
    ay = torch.rad2deg(torch.asin(r[:, 0, 2]))
    ax = torch.rad2deg(torch.atan2(-r[:, 1, 2], r[:, 2, 2]))
    az = torch.rad2deg(torch.atan2(-r[:, 0, 1], r[:, 0, 0]))
    angles = torch.stack([ax, ay, az])
    torch.testing.assert_close(angles, angles.round(), atol=1e-6, rtol=0)
    a = angles.round().long()
    assert (a % 2 == 0).all() and a.abs().max() <= 10 and len(set(a.flatten().tolist())) > 6


def test_skeleton_rotation_2d_uses_one_grid_angle() -> None:
    x = _unit_frame_skeleton(64, 2, joints=17)
    y = run("mmact", "skeleton", "rotation", x)
    torch.testing.assert_close((y - y[..., :1]).norm(dim=1), (x - x[..., :1]).norm(dim=1))
    ex_img = (y[:, :, 0, 1] - y[:, :, 0, 0])
    deg = torch.rad2deg(torch.atan2(ex_img[:, 1], ex_img[:, 0]))
    torch.testing.assert_close(deg, deg.round(), atol=1e-6, rtol=0)
    a = deg.round().long()
    assert (a % 2 == 1).all() and a.abs().max() <= 15 and len(set(a.tolist())) > 8  # {-15, -13, ..., 15}


@pytest.mark.parametrize("dims", [2, 3])
def test_skeleton_shear_matrix_structure_about_origin(dims) -> None:
    x = torch.zeros(64, dims, 50, 5, dtype=torch.float64)
    for d in range(dims):
        x[:, d, :, d] = 1.0  # joint d = unit axis d (about the origin, not joint 0)
    y = run("utd_mhad" if dims == 3 else "mmact", "skeleton", "shear", x)
    s = y[:, :, 0, :dims]  # [N, D, D]: column d = S e_d
    torch.testing.assert_close(torch.diagonal(s, dim1=1, dim2=2), torch.ones(64, dims, dtype=torch.float64))
    for i in range(dims):
        off = [s[:, i, j] for j in range(dims) if j != i]
        for o in off[1:]:
            torch.testing.assert_close(o, off[0])  # row i's off-diagonals share one factor
    assert 0.15 < s[:, 0, 1].std().item() < 0.25  # beta = 0.2
    torch.testing.assert_close(y[..., dims:], x[..., dims:])  # points at the origin stay there
