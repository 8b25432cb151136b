"""The `synthetic` dataset: contract, determinism, shapes, splits, and the physics linking IMU and skeleton."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.data import load_dataset
from benchmark.registry import DATASETS
from datasets import _synthetic_motion as sm
from datasets.base import DatasetError, SkeletonNorm
from datasets.synthetic import SyntheticDataset, nearest_neighbour_accuracy

TINY = {"n_subjects": 4, "n_trials": 1, "n_classes": 3}
UTD_JOINTS = [
    "head", "shoulder_center", "spine", "hip_center", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
    "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot",
]
RATE = sm.INTERNAL_RATE_HZ


@pytest.fixture(scope="module")
def one_trial():
    """Default subjects and classes, one trial each: 8 x 10 = 80 clips, preprocessed by the harness."""
    return load_dataset("synthetic", n_trials=1)


# -- contract -----------------------------------------------------------------------------------
def test_registered_with_utd_semantics():
    cls = DATASETS.get("synthetic")
    assert cls is SyntheticDataset
    assert cls.needs_root is False and cls.training.is_generic() and cls.main_metric == "accuracy"
    assert cls.skeleton_norm == SkeletonNorm(anchor=2, scale_pair=(1, 2))
    inertial, skeleton = cls.modalities["inertial"], cls.modalities["skeleton"]
    assert (inertial.layout, inertial.channels, inertial.rate_hz) == ("inertial", 6, 50.0)
    assert (skeleton.layout, skeleton.channels, skeleton.joints, skeleton.rate_hz) == ("skeleton", 3, 20, 30.0)
    assert cls.option_defaults == {"n_subjects": 8, "n_trials": 4, "n_classes": 10, "seed": 0}
    xsub = SyntheticDataset().splits["xsub"]
    assert cls.default_split == "xsub"
    assert (list(xsub.train["subject"]), list(xsub.val["subject"]), list(xsub.test["subject"])) == (
        [1, 3, 5], [7], [2, 4, 6, 8])


def test_joint_order_is_utd_kinect_v1():
    assert list(sm.JOINT_NAMES) == UTD_JOINTS


def test_joint_order_matches_the_real_dataset_file(utd_root):
    text = (utd_root / "utd_mhad" / "Skeleton_joint_order.txt").read_text()
    listed = [line.split(".", 1)[1].strip(" ;") for line in text.splitlines() if line[:1].isdigit()]
    assert listed == UTD_JOINTS


def test_class_names_unique_and_selectable():
    assert len(sm.CLASS_NAMES) == 12 and len(set(sm.CLASS_NAMES)) == 12
    assert SyntheticDataset().class_names == list(sm.CLASS_NAMES[:10])
    assert SyntheticDataset(n_classes=12).class_names == list(sm.CLASS_NAMES)


@pytest.mark.parametrize("options, fragment", [
    ({"n_subjects": 3}, "n_subjects"), ({"n_classes": 13}, "n_classes"), ({"n_trials": 0}, "n_trials"),
    ({"subjects": 8}, "unknown option"), ({"seed": "1"}, "seed"),
])
def test_bad_options_are_named(options, fragment):
    with pytest.raises(DatasetError, match=fragment):
        SyntheticDataset(**options)


def test_xsub_split_scales_with_subjects():
    spec = SyntheticDataset(n_subjects=5).splits["xsub"]
    assert (list(spec.train["subject"]), list(spec.val["subject"]), list(spec.test["subject"])) == ([1, 3], [5], [2, 4])


# -- raw generation -----------------------------------------------------------------------------
def test_same_seed_identical_other_seed_different():
    a = SyntheticDataset(**TINY).read()
    b = SyntheticDataset(**TINY).read()
    c = SyntheticDataset(**TINY, seed=1).read()
    assert a.ids == b.ids
    for m in ("inertial", "skeleton"):
        assert all(np.array_equal(x, y) for x, y in zip(a.samples[m], b.samples[m]))
        assert not any(x.shape == y.shape and np.allclose(x, y) for x, y in zip(a.samples[m], c.samples[m]))


def test_clip_does_not_depend_on_dataset_size():
    small = SyntheticDataset(**TINY).read()
    big = SyntheticDataset(n_subjects=5, n_trials=2, n_classes=3).read()
    i = big.ids.index("a2_s3_t1")
    j = small.ids.index("a2_s3_t1")
    assert np.array_equal(big.samples["inertial"][i], small.samples["inertial"][j])


def test_raw_layouts_rates_and_durations():
    raw = SyntheticDataset(**TINY).read()
    assert len(raw.ids) == 12 and raw.ids[:2] == ["a1_s1_t1", "a1_s2_t1"]
    assert raw.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert raw.groups["subject"].tolist() == [1, 2, 3, 4] * 3 and set(raw.groups["trial"].tolist()) == {1}
    for x, s in zip(raw.samples["inertial"], raw.samples["skeleton"]):
        assert x.ndim == 2 and x.shape[1] == 6 and x.dtype == np.float32
        assert s.shape[1:] == (20, 3) and s.dtype == np.float32
        seconds_i, seconds_s = len(x) / 50.0, len(s) / 30.0
        assert 2.0 <= seconds_i <= 4.02  # clips of 2-4 s at 50 Hz
        assert seconds_i - 0.55 <= seconds_s <= seconds_i  # the Kinect window is a little shorter
    assert len({len(x) for x in raw.samples["inertial"]}) > 6  # durations vary per trial
    heights = np.concatenate([s[:, 0, 1] - s[:, 19, 1] for s in raw.samples["skeleton"]])
    assert 1.2 < heights.min() and heights.max() < 2.0  # head above the foot by a human height, in metres


# -- the harness view ---------------------------------------------------------------------------
def test_preprocessed_shapes_labels_and_split(one_trial):
    d = one_trial
    assert tuple(d.modalities["inertial"].shape) == (80, 6, 50)
    assert tuple(d.modalities["skeleton"].shape) == (80, 3, 50, 20)
    assert np.bincount(d.labels.numpy()).tolist() == [8] * 10
    assert d.meta["training"].is_generic() and d.meta["main_metric"] == "accuracy"
    assert sorted(d.groups) == ["subject", "trial"]
    sp = d.split()
    assert (len(sp.train), len(sp.val), len(sp.test)) == (30, 10, 40)
    subj = d.groups["subject"]
    assert set(subj[sp.train]) == {1, 3, 5} and set(subj[sp.val]) == {7} and set(subj[sp.test]) == {2, 4, 6, 8}


def test_not_trivially_separable(one_trial):
    """1-NN on raw flattened features across subjects is far from perfect but far above chance (0.1)."""
    d, sp = one_trial, one_trial.split()
    y = d.labels.numpy()
    for m, x in d.modalities.items():
        f = x.reshape(len(x), -1).double().numpy()
        acc = nearest_neighbour_accuracy(f[sp.train], y[sp.train], f[sp.test], y[sp.test])
        assert 0.3 <= acc <= 0.85, (m, acc)


def test_nearest_neighbour_accuracy_exact():
    train = np.array([[0.0, 0.0], [10.0, 0.0]])
    test = np.array([[1.0, 0.0], [9.0, 1.0], [4.0, 0.0], [6.0, 0.0]])
    assert nearest_neighbour_accuracy(train, np.array([0, 1]), test, np.array([0, 1, 1, 1])) == 0.75


# -- physics: the IMU is derived from the motion ------------------------------------------------
def _clock(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE) + 1) / RATE


def test_still_arm_reads_one_g_along_the_forearm_and_no_rotation():
    pose = sm.Pose.rest(300)  # arms hanging straight down
    kin = sm.forward_kinematics(pose, sm.Body())
    acc, gyro = sm.imu_from_motion(kin.sensor_position, kin.sensor_rotation, RATE)
    np.testing.assert_allclose(acc, np.tile([-1.0, 0.0, 0.0], (300, 1)), atol=1e-9)  # like UTD's wrist sensor
    np.testing.assert_allclose(gyro, 0.0, atol=1e-9)


def test_translation_only_gives_zero_gyro_and_the_linear_acceleration():
    t = _clock(2.0)
    pose = sm.Pose.rest(len(t), r_sh_elev=0.7, r_elbow=0.9, r_sh_plane=0.4)
    amp, f = 0.1, 1.5
    pose.root[:, 0] = amp * np.sin(2 * np.pi * f * t)  # sway sideways, nothing rotates
    kin = sm.forward_kinematics(pose, sm.Body(), yaw=0.3)
    acc, gyro = sm.imu_from_motion(kin.sensor_position, kin.sensor_rotation, RATE)
    assert np.abs(gyro).max() < 1e-9
    a_world = np.zeros((len(t), 3))
    a_world[:, :] = -amp * (2 * np.pi * f) ** 2 * np.sin(2 * np.pi * f * t)[:, None] * sm.rot_y(0.3)[:, 0]
    expected = np.einsum("tji,tj->ti", kin.sensor_rotation, (a_world - sm.GRAVITY_WORLD) / sm.STANDARD_GRAVITY)
    np.testing.assert_allclose(acc[2:-2], expected[2:-2], atol=2e-3)
    norm = np.linalg.norm(acc, axis=1)
    assert norm.max() - norm.min() > 0.3  # the accelerometer sees the motion (peak 0.9 g), not only gravity


def test_free_fall_reads_zero_acceleration():
    t = _clock(0.5)
    pose = sm.Pose.rest(len(t), r_sh_elev=1.2)
    pose.root[:, 1] = 2.0 * t - 0.5 * sm.STANDARD_GRAVITY * t**2  # ballistic flight
    kin = sm.forward_kinematics(pose, sm.Body())
    acc, gyro = sm.imu_from_motion(kin.sensor_position, kin.sensor_rotation, RATE)
    np.testing.assert_allclose(acc[2:-2], 0.0, atol=1e-6)


def test_elbow_flexion_is_a_rotation_about_one_sensor_axis():
    t = _clock(1.0)
    pose = sm.Pose.rest(len(t), r_elbow=0.0)
    pose.angles["r_elbow"] = np.deg2rad(60.0) * (1 - np.cos(2 * np.pi * t))
    kin = sm.forward_kinematics(pose, sm.Body())
    _, gyro = sm.imu_from_motion(kin.sensor_position, kin.sensor_rotation, RATE)
    rate_dps = 60.0 * 2 * np.pi * np.sin(2 * np.pi * t)
    np.testing.assert_allclose(gyro[1:-1, :2], 0.0, atol=1e-9)
    np.testing.assert_allclose(gyro[1:-1, 2], rate_dps[1:-1], rtol=1e-3, atol=1e-3)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_integrated_gyro_reproduces_forearm_direction_change_from_the_skeleton():
    """Sensor mounted straight on the forearm: its x axis is the elbow->wrist direction of the skeleton."""
    t = _clock(2.0)
    pose = sm.Pose.rest(len(t))
    w = 2 * np.pi * t / 2.0
    pose.angles["r_sh_plane"] = 0.8 + 0.5 * np.sin(w)
    pose.angles["r_sh_elev"] = 0.9 + 0.6 * np.sin(2 * w)
    pose.angles["r_elbow"] = 0.8 - 0.6 * np.cos(3 * w)
    pose.angles["r_pron"] = 0.7 * np.sin(w)
    kin = sm.forward_kinematics(pose, sm.Body())
    acc, gyro = sm.imu_from_motion(kin.sensor_position, kin.sensor_rotation, RATE)
    imu, idx = sm.sample_stream(np.concatenate([acc, gyro], axis=1), 0, 101, 6)  # 50 Hz
    rel = sm.integrate_gyro(imu[:, 3:], sm.IMU_RATE_HZ)  # orientation relative to the first sample
    skel = kin.joints[idx]
    forearm = skel[:, sm.J["right_wrist"]] - skel[:, sm.J["right_elbow"]]
    turned_skeleton = _angle_deg(forearm[:1], forearm)
    turned_gyro = _angle_deg(np.array([1.0, 0.0, 0.0]), rel[:, :, 0])
    assert turned_skeleton.max() > 60.0
    np.testing.assert_allclose(turned_gyro, turned_skeleton, atol=1.5)


@pytest.mark.parametrize("name", ["draw_circle", "throw", "boxing"])
def test_generated_clip_gyro_follows_its_skeleton(name):
    """On generated clips (noise off): gyro integrated at 50 Hz tracks the 30 fps skeleton's forearm."""
    clip = sm.simulate_clip(name, 2, 3, seed=0, noise=False)
    assert np.all(np.diff(clip.inertial_index) == 6) and np.all(np.diff(clip.skeleton_index) == 10)
    common = np.intersect1d(clip.inertial_index, clip.skeleton_index)
    ki, ks = np.searchsorted(clip.inertial_index, common), np.searchsorted(clip.skeleton_index, common)
    r0 = clip.kinematics.sensor_rotation[common[0]]
    orient = sm.integrate_gyro(clip.inertial[ki[0]:, 3:], sm.IMU_RATE_HZ, r0)[ki - ki[0]]
    forearm = clip.skeleton[ks, sm.J["right_wrist"]] - clip.skeleton[ks, sm.J["right_elbow"]]
    in_sensor = r0.T @ forearm[0] / np.linalg.norm(forearm[0])
    assert _angle_deg(forearm[:1], forearm).max() > 45.0
    assert _angle_deg(orient @ in_sensor, forearm).max() < 3.0


def test_generated_clips_start_still_at_one_g():
    raw = SyntheticDataset(n_subjects=4, n_trials=1, n_classes=12).read()
    for sid, x in zip(raw.ids, raw.samples["inertial"]):
        assert abs(np.linalg.norm(x[:5, :3], axis=1).mean() - 1.0) < 0.15, sid
