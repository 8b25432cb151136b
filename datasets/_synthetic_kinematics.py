"""Kinematics and inertial physics of the synthetic dataset: a 20-joint body, forward kinematics, a wrist IMU.

Why separate: this is the physics that makes the two synthetic modalities consistent, and tests check it
on hand-built motions (`Pose.rest` + edited angles) without the activity library or any randomness.

Conventions: the camera (world) frame is Kinect's: x = the subject's right when facing the camera, y up,
z from the camera to the subject; the body frame is (right, up, back) so a subject facing the camera has
yaw 0. Angles are radians; rotation helpers take (T,) arrays and return (T, 3, 3). Joint order and names
are Kinect v1's as in UTD-MHAD (Skeleton_joint_order.txt), 0-based here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import uniform_filter1d

# -- constants ----------------------------------------------------------------------------------
JOINT_NAMES: tuple[str, ...] = (
    "head", "shoulder_center", "spine", "hip_center",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)  # Kinect v1 order of UTD-MHAD (Skeleton_joint_order.txt), 0-based here
J = {name: i for i, name in enumerate(JOINT_NAMES)}

INTERNAL_RATE_HZ = 300.0  # common multiple of both sensor rates: exact sample instants for both
IMU_RATE_HZ = 50.0
SKELETON_RATE_HZ = 30.0
STANDARD_GRAVITY = 9.80665  # m/s^2, the unit "g" of the accelerometer
GRAVITY_WORLD = np.array([0.0, -STANDARD_GRAVITY, 0.0])  # camera y axis is up
DEG = np.pi / 180.0

ANGLE_NAMES: tuple[str, ...] = (
    "pelvis_yaw", "trunk_flex", "trunk_side", "trunk_twist", "neck_flex",
    *(f"{s}_{a}" for s in ("r", "l") for a in (
        "sh_plane", "sh_elev", "sh_rot", "elbow", "pron", "wrist", "hip_flex", "hip_abd", "knee", "ankle")),
)
"""Joint angles of a `Pose`. Shoulder: elevation plane (0 = sideways, 90 deg = forward), elevation
(0 = hanging), axial rotation; elbow flexion (0 = straight); forearm pronation; leg flexions."""

# sensor axes in the forearm's local frame (columns): x along the forearm towards the hand, as in
# UTD-MHAD's wrist sensor whose x axis reads about -1 g while the arm hangs
SENSOR_AXES_IN_FOREARM = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


# -- rotations ----------------------------------------------------------------------------------
def _rot(axis: int, angle: np.ndarray | float) -> np.ndarray:
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def rot_x(angle: np.ndarray | float) -> np.ndarray:
    """Rotation(s) about x by `angle` (radians): shape angle.shape + (3, 3)."""
    return _rot(0, angle)


def rot_y(angle: np.ndarray | float) -> np.ndarray:
    """Rotation(s) about y by `angle` (radians)."""
    return _rot(1, angle)


def rot_z(angle: np.ndarray | float) -> np.ndarray:
    """Rotation(s) about z by `angle` (radians)."""
    return _rot(2, angle)


def axis_angle_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation matrices (..., 3, 3) of rotation vectors (..., 3)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    k = np.zeros(rotvec.shape[:-1] + (3, 3))
    x, y, z = rotvec[..., 0], rotvec[..., 1], rotvec[..., 2]
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -z, y, -x
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = z, -y, x
    small = theta < 1e-12
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0, np.sin(safe) / safe)
    b = np.where(small, 0.5, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * k + b * (k @ k)


def angular_velocity_body(rotations: np.ndarray, rate_hz: float) -> np.ndarray:
    """Angular velocity (rad/s, (T, 3)) of a frame with orientations `rotations` (T, 3, 3), in that frame.

    omega^ = R^T dR/dt; the derivative is a second-order central difference on the internal clock.
    """
    rdot = np.gradient(rotations, 1.0 / rate_hz, axis=0)
    w = np.swapaxes(rotations, -1, -2) @ rdot
    return 0.5 * np.stack([w[:, 2, 1] - w[:, 1, 2], w[:, 0, 2] - w[:, 2, 0], w[:, 1, 0] - w[:, 0, 1]], axis=-1)


def integrate_gyro(gyro_dps: np.ndarray, rate_hz: float, start: np.ndarray | None = None) -> np.ndarray:
    """Orientations (T, 3, 3) from body-frame angular velocity samples (deg/s), trapezoidal steps.

    Used by tests to check that the gyroscope really is the derivative of the simulated orientation.
    """
    w = np.deg2rad(np.asarray(gyro_dps, dtype=np.float64))
    steps = axis_angle_matrix(0.5 * (w[1:] + w[:-1]) / rate_hz)
    out = np.empty((len(w), 3, 3))
    out[0] = np.eye(3) if start is None else start
    for k, step in enumerate(steps):
        out[k + 1] = out[k] @ step
    return out


# -- body and pose ------------------------------------------------------------------------------
@dataclass
class Body:
    """Segment lengths (metres) of one subject and the mounting of the wrist sensor."""

    spine_low: float = 0.07  # hip_center -> spine
    spine_up: float = 0.34  # spine -> shoulder_center
    neck: float = 0.18  # shoulder_center -> head
    shoulder_half: float = 0.16
    shoulder_drop: float = 0.09
    upper_arm: float = 0.28
    forearm: float = 0.24
    hand: float = 0.08
    hip_half: float = 0.08
    hip_drop: float = 0.07
    thigh: float = 0.42
    shank: float = 0.40
    ankle_height: float = 0.05
    foot: float = 0.12
    sensor_offset: float = 0.02  # sensor centre this far up the forearm from the wrist joint
    mount: np.ndarray = field(default_factory=lambda: np.eye(3))  # sensor misalignment on the forearm

    def scaled(self, rng: np.random.Generator, height: tuple[float, float] = (0.88, 1.12),
               jitter: float = 0.05) -> "Body":
        """A random subject: a global size factor and independent per-segment proportions."""
        s = rng.uniform(*height)
        names = ["spine_low", "spine_up", "neck", "shoulder_half", "shoulder_drop", "upper_arm", "forearm",
                 "hand", "hip_half", "hip_drop", "thigh", "shank", "ankle_height", "foot"]
        lengths = {n: getattr(self, n) * s * float(np.clip(rng.normal(1.0, jitter), 0.85, 1.15)) for n in names}
        return replace(self, **lengths, sensor_offset=rng.uniform(0.0, 0.04))


@dataclass
class Pose:
    """Joint-angle trajectories (radians, each (T,)) and the pelvis offset (T, 3) in the body frame."""

    angles: dict[str, np.ndarray]
    root: np.ndarray

    @classmethod
    def rest(cls, n: int, **values: float) -> "Pose":
        """A still standing pose of `n` samples; keyword values override angles (radians)."""
        unknown = set(values) - set(ANGLE_NAMES)
        if unknown:
            raise KeyError(f"unknown pose angle(s) {sorted(unknown)}; valid: {ANGLE_NAMES}")
        return cls({a: np.full(n, float(values.get(a, 0.0))) for a in ANGLE_NAMES}, np.zeros((n, 3)))

    def __len__(self) -> int:
        return len(self.root)


@dataclass
class Kinematics:
    """Forward-kinematics result: joints (T, 20, 3) in the camera frame and the wrist sensor's pose."""

    joints: np.ndarray
    forearm_rotation: np.ndarray  # (T, 3, 3) right forearm frame -> camera frame
    sensor_rotation: np.ndarray  # (T, 3, 3) sensor frame -> camera frame
    sensor_position: np.ndarray  # (T, 3)


def _apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate constant vector v (3,) by every R (T, 3, 3)."""
    return r @ np.asarray(v, dtype=np.float64)


def forward_kinematics(pose: Pose, body: Body, yaw: float = 0.0,
                       origin: np.ndarray | tuple[float, float, float] = (0.0, -0.1, 2.85)) -> Kinematics:
    """Joint positions of `pose` for `body` standing at `origin` (hip centre) turned by `yaw` about vertical."""
    a = pose.angles
    r_world = rot_y(yaw)
    root = np.asarray(origin, dtype=np.float64) + pose.root @ r_world.T
    r_pelvis = r_world @ rot_y(a["pelvis_yaw"])
    r_trunk = r_pelvis @ rot_y(a["trunk_twist"]) @ rot_x(-a["trunk_flex"]) @ rot_z(a["trunk_side"])
    n = len(pose)
    p = np.zeros((n, len(JOINT_NAMES), 3))
    p[:, J["hip_center"]] = root
    p[:, J["spine"]] = root + _apply(r_trunk, [0, body.spine_low, 0])
    p[:, J["shoulder_center"]] = p[:, J["spine"]] + _apply(r_trunk, [0, body.spine_up, 0])
    p[:, J["head"]] = p[:, J["shoulder_center"]] + _apply(r_trunk @ rot_x(-a["neck_flex"]), [0, body.neck, 0])
    forearm_right = None
    for side, sgn in (("right", 1.0), ("left", -1.0)):
        k = side[0]
        sh = p[:, J["shoulder_center"]] + _apply(r_trunk, [sgn * body.shoulder_half, -body.shoulder_drop, 0])
        r_upper = r_trunk @ rot_y(sgn * a[f"{k}_sh_plane"]) @ rot_z(sgn * a[f"{k}_sh_elev"]) @ rot_y(
            sgn * a[f"{k}_sh_rot"])
        elbow = sh + _apply(r_upper, [0, -body.upper_arm, 0])
        r_fore = r_upper @ rot_x(a[f"{k}_elbow"]) @ rot_y(sgn * a[f"{k}_pron"])
        wrist = elbow + _apply(r_fore, [0, -body.forearm, 0])
        hand = wrist + _apply(r_fore @ rot_x(a[f"{k}_wrist"]), [0, -body.hand, 0])
        p[:, J[f"{side}_shoulder"]], p[:, J[f"{side}_elbow"]] = sh, elbow
        p[:, J[f"{side}_wrist"]], p[:, J[f"{side}_hand"]] = wrist, hand
        hip = root + _apply(r_pelvis, [sgn * body.hip_half, -body.hip_drop, 0])
        r_thigh = r_pelvis @ rot_x(a[f"{k}_hip_flex"]) @ rot_z(sgn * a[f"{k}_hip_abd"])
        knee = hip + _apply(r_thigh, [0, -body.thigh, 0])
        r_shank = r_thigh @ rot_x(-a[f"{k}_knee"])
        ankle = knee + _apply(r_shank, [0, -body.shank, 0])
        foot = ankle + _apply(r_shank @ rot_x(a[f"{k}_ankle"]), [0, -body.ankle_height, -body.foot])
        p[:, J[f"{side}_hip"]], p[:, J[f"{side}_knee"]] = hip, knee
        p[:, J[f"{side}_ankle"]], p[:, J[f"{side}_foot"]] = ankle, foot
        if side == "right":
            forearm_right = r_fore
    assert forearm_right is not None
    r_sensor = forearm_right @ SENSOR_AXES_IN_FOREARM @ body.mount
    sensor_pos = p[:, J["right_wrist"]] + _apply(forearm_right, [0, body.sensor_offset, 0])
    return Kinematics(p, forearm_right, r_sensor, sensor_pos)


def imu_from_motion(position: np.ndarray, rotation: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Ideal IMU readings of a sensor at `position` (T, 3) with orientation `rotation` (T, 3, 3).

    Returns (acc in g, gyro in deg/s), both (T, 3) in the sensor frame: acc = R^T (a - g) / g0, so a
    sensor at rest reads +1 g along the upward direction; gyro = R^T dR/dt as a vector.
    """
    dt = 1.0 / rate_hz
    acc_world = np.gradient(np.gradient(position, dt, axis=0), dt, axis=0)
    specific = (acc_world - GRAVITY_WORLD) / STANDARD_GRAVITY
    acc = np.einsum("tji,tj->ti", rotation, specific)
    gyro = np.rad2deg(angular_velocity_body(rotation, rate_hz))
    return acc, gyro


def sample_stream(x: np.ndarray, start: int, count: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Box-filter `x` (T, ...) over `step` internal samples (the sensor's integration) and take every step-th."""
    idx = start + step * np.arange(count)
    smooth = uniform_filter1d(x, size=step, axis=0, mode="nearest") if step > 1 else x
    return smooth[idx], idx
