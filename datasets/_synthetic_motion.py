"""The generator behind the `synthetic` dataset: subjects, trials and noise around the activity library.

Why: a benchmark needs an embedded dataset that runs anywhere, has UTD-MHAD's tensor shapes and joint
semantics, and whose two modalities are two views of ONE motion (so cross-modal learning is meaningful).
Nothing here knows about the harness; `datasets/synthetic.py` wraps it as a plugin.

Pipeline for one clip (class c, subject s, trial k), deterministic in (seed, s, c, k):
1. `subject_profile`: limb lengths (`Body`), rest posture, placement and facing, tempo, amplitude,
   sensor mounting, IMU bias and scale errors;
2. the class activity (`MOTIONS[c]`, datasets/_synthetic_activities.py) writes joint-angle trajectories
   on a 300 Hz internal clock, plus per-(subject, class) style and per-trial offsets, a time warp of the
   active phase, smooth micro-motion and pelvis sway;
3. `forward_kinematics` (datasets/_synthetic_kinematics.py) turns the pose into 20 Kinect-v1 joints in
   metres and the wrist sensor's pose; `imu_from_motion` differentiates the SAME kinematics:
   accelerometer = sensor-frame specific force (linear acceleration minus gravity) in g, gyroscope =
   sensor-frame angular velocity in deg/s;
4. both streams are sampled from the internal clock at their own rates (inertial 50 Hz over the whole
   clip, skeleton 30 fps over a slightly shorter window) and get sensor noise.

`Variation` holds every knob that sets the difficulty (tuned so that a cross-subject 1-NN on the raw
preprocessed tensors scores roughly 50-70 %; see docs/synthetic.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets._synthetic_activities import BASE_DURATION_S, CLASS_NAMES, MOTIONS, REPS, MotionContext, envelope
from datasets._synthetic_kinematics import (  # re-exported: the generator's public surface for tests
    ANGLE_NAMES,
    DEG,
    GRAVITY_WORLD,
    IMU_RATE_HZ,
    INTERNAL_RATE_HZ,
    JOINT_NAMES,
    SKELETON_RATE_HZ,
    STANDARD_GRAVITY,
    Body,
    J,
    Kinematics,
    Pose,
    angular_velocity_body,
    axis_angle_matrix,
    forward_kinematics,
    imu_from_motion,
    integrate_gyro,
    rot_x,
    rot_y,
    rot_z,
    sample_stream,
)

__all__ = [
    "ANGLE_NAMES", "BASE_DURATION_S", "CLASS_NAMES", "DEFAULT_VARIATION", "DEG", "GRAVITY_WORLD", "IMU_RATE_HZ",
    "INTERNAL_RATE_HZ", "JOINT_NAMES", "MOTIONS", "REPS", "SKELETON_RATE_HZ", "STANDARD_GRAVITY", "Body", "Clip",
    "GeneratedSet", "J", "Kinematics", "Pose", "SubjectProfile", "Variation", "angular_velocity_body",
    "axis_angle_matrix", "forward_kinematics", "generate", "imu_from_motion", "integrate_gyro", "rot_x", "rot_y",
    "rot_z", "sample_stream", "simulate_clip", "subject_profile",
]


# -- variation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variation:
    """How much subjects, trials and sensors differ: the knobs that set the dataset's difficulty."""

    style_deg: float = 25.0  # per (subject, class) offsets of the angles a motion uses
    trial_deg: float = 12.0  # per-trial offsets of those angles
    micro_deg: float = 6.0  # smooth random motion on every angle (0.1-1.2 Hz)
    posture_deg: float = 6.0  # per-subject rest posture
    amp_subject: float = 0.15  # +- relative amplitude per subject
    amp_trial: float = 0.12  # +- relative amplitude per trial
    tempo_subject: float = 0.15  # +- relative duration per subject
    tempo_trial: float = 0.12  # +- relative duration per trial
    warp: float = 0.6  # time-warp strength of the active phase (< 1 keeps it monotone)
    sway_m: float = 0.04  # smooth random shift of the pelvis (weight shifting), per axis
    yaw_subject_deg: float = 20.0
    yaw_trial_deg: float = 5.0
    mount_roll_deg: float = 15.0  # per-subject rotation of the sensor about the forearm (strap placement)
    mount_deg: float = 5.0  # per-subject tilt of the sensor on the forearm
    skeleton_noise_m: float = 0.012  # Kinect jitter (extremities; trunk joints get half)
    acc_noise_g: float = 0.02
    gyro_noise_dps: float = 2.0
    acc_bias_g: float = 0.03
    gyro_bias_dps: float = 2.0
    scale_error: float = 0.03


DEFAULT_VARIATION = Variation()


@dataclass
class SubjectProfile:
    """Everything fixed for one subject across classes and trials."""

    body: Body
    rest: dict[str, float]
    yaw: float
    origin: np.ndarray
    tempo: float
    amp: float
    acc_bias: np.ndarray
    gyro_bias: np.ndarray
    acc_scale: np.ndarray
    gyro_scale: np.ndarray


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


_TAG_SUBJECT, _TAG_STYLE, _TAG_TRIAL = 1, 2, 3


def subject_profile(seed: int, subject: int, var: Variation = DEFAULT_VARIATION) -> SubjectProfile:
    """Limb lengths, posture, placement, tempo and IMU errors of `subject` (deterministic in seed, subject)."""
    rng = _rng(_TAG_SUBJECT, seed, subject)
    body = Body().scaled(rng)
    tilt = rng.normal(0.0, var.mount_deg * DEG, 3)
    tilt[0] = rng.normal(0.0, var.mount_roll_deg * DEG)  # sensor x runs along the forearm
    body.mount = axis_angle_matrix(tilt)
    p = var.posture_deg * DEG
    rest = {a: 0.0 for a in ANGLE_NAMES}
    for k in ("r", "l"):
        rest.update({f"{k}_sh_elev": 8 * DEG + abs(rng.normal(0, p)), f"{k}_sh_plane": 10 * DEG + rng.normal(0, p),
                     f"{k}_elbow": 12 * DEG + abs(rng.normal(0, p)), f"{k}_pron": rng.normal(0, 2 * p),
                     f"{k}_knee": 3 * DEG + abs(rng.normal(0, 0.5 * p))})
    rest["trunk_flex"] = rng.normal(0, 0.5 * p)
    rest["neck_flex"] = rng.normal(0, p)
    return SubjectProfile(
        body=body, rest=rest, yaw=rng.normal(0, var.yaw_subject_deg * DEG),
        origin=np.array([rng.uniform(-0.15, 0.15), rng.uniform(-0.16, -0.04), rng.uniform(2.6, 3.1)]),
        tempo=1.0 + rng.uniform(-var.tempo_subject, var.tempo_subject),
        amp=1.0 + rng.uniform(-var.amp_subject, var.amp_subject),
        acc_bias=rng.normal(0, var.acc_bias_g, 3), gyro_bias=rng.normal(0, var.gyro_bias_dps, 3),
        acc_scale=1.0 + rng.uniform(-var.scale_error, var.scale_error, 3),
        gyro_scale=1.0 + rng.uniform(-var.scale_error, var.scale_error, 3),
    )


def _micro_motion(rng: np.random.Generator, t: np.ndarray, n: int, sigma: float,
                  band: tuple[float, float] = (0.1, 1.2)) -> np.ndarray:
    """n smooth random signals (n, T): sums of 4 sinusoids with frequencies in `band` (Hz) and std ~sigma."""
    freq = rng.uniform(*band, (n, 4, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 4, 1))
    amp = rng.normal(0, sigma / np.sqrt(2), (n, 4, 1))
    return (amp * np.sin(2 * np.pi * freq * t + phase)).sum(axis=1)


@dataclass
class Clip:
    """One simulated trial: clean kinematics on the internal clock and the two sampled sensor streams."""

    name: str
    t: np.ndarray
    pose: Pose
    kinematics: Kinematics
    inertial: np.ndarray  # (Ti, 6): acc xyz (g), gyro xyz (deg/s), at IMU_RATE_HZ
    skeleton: np.ndarray  # (Ts, 20, 3) metres, at SKELETON_RATE_HZ
    inertial_index: np.ndarray  # internal-clock sample of each inertial sample
    skeleton_index: np.ndarray  # internal-clock sample of each skeleton frame


def simulate_clip(class_name: str, subject: int, trial: int, seed: int = 0, *, noise: bool = True,
                  var: Variation = DEFAULT_VARIATION) -> Clip:
    """Simulate trial `trial` of `subject` performing `class_name`; deterministic in all arguments."""
    if class_name not in MOTIONS:
        raise KeyError(f"unknown synthetic class {class_name!r}; known: {', '.join(CLASS_NAMES)}")
    ci = CLASS_NAMES.index(class_name)
    prof = subject_profile(seed, subject, var)
    style_rng = _rng(_TAG_STYLE, seed, subject, ci)
    style = style_rng.normal(0, var.style_deg * DEG, len(ANGLE_NAMES))
    rng = _rng(_TAG_TRIAL, seed, subject, ci, trial)

    duration = BASE_DURATION_S[class_name] * prof.tempo * (1 + rng.uniform(-var.tempo_trial, var.tempo_trial))
    duration = float(np.clip(duration, 2.0, 4.0))
    rate = INTERNAL_RATE_HZ
    n = int(round(duration * rate)) + 1
    t = np.arange(n) / rate
    t_on = rng.uniform(0.15, 0.45)
    t_off = duration - rng.uniform(0.1, 0.35)
    ramp = min(0.45, 0.3 * (t_off - t_on))
    lin = np.clip((t - t_on) / (t_off - t_on), 0.0, 1.0)
    beta = rng.uniform(-var.warp, var.warp)
    u = lin + beta * np.sin(np.pi * lin) / np.pi  # monotone time warp for |beta| < 1
    lo, hi = REPS[class_name]
    ctx = MotionContext(t=t, u=u, w=envelope(t, t_on, t_off, ramp), t_on=t_on, t_off=t_off,
                        amp=prof.amp * (1 + rng.uniform(-var.amp_trial, var.amp_trial)),
                        reps=int(rng.integers(lo, hi + 1)), body=prof.body, rest=prof.rest)
    angles, root = MOTIONS[class_name](ctx)
    pose = Pose.rest(n, **prof.rest)
    trial_off = rng.normal(0, var.trial_deg * DEG, len(ANGLE_NAMES))
    micro = _micro_motion(rng, t, len(ANGLE_NAMES), var.micro_deg * DEG)
    for i, a in enumerate(ANGLE_NAMES):
        base = angles[a] if a in angles else pose.angles[a]
        offset = (style[i] + trial_off[i]) * ctx.w if a in angles else 0.0
        pose.angles[a] = base + offset + micro[i] * ((0.2 + 0.8 * ctx.w) if a in angles else 0.3)
    if root is not None:
        pose.root = root
    pose.root = pose.root + _micro_motion(rng, t, 3, var.sway_m, (0.05, 0.4)).T * np.array([1.0, 0.3, 1.0])
    yaw = prof.yaw + rng.normal(0, var.yaw_trial_deg * DEG)
    origin = prof.origin + rng.normal(0, 0.03, 3)
    kin = forward_kinematics(pose, prof.body, yaw, origin)

    acc, gyro = imu_from_motion(kin.sensor_position, kin.sensor_rotation, rate)
    step_i = int(round(rate / IMU_RATE_HZ))
    n_i = (n - 1) // step_i + 1
    imu, idx_i = sample_stream(np.concatenate([acc, gyro], axis=1), 0, n_i, step_i)
    step_s = int(round(rate / SKELETON_RATE_HZ))
    lag = int(rng.integers(0, int(0.25 * rate) // step_s + 1)) * step_s  # Kinect starts a little later...
    tail = int(rng.uniform(0.0, 0.25) * rate)  # ...and stops a little earlier
    n_s = (n - 1 - lag - tail) // step_s + 1
    skel, idx_s = kin.joints[lag::step_s][:n_s].copy(), lag + step_s * np.arange(n_s)
    if noise:
        imu[:, :3] = imu[:, :3] * prof.acc_scale + prof.acc_bias + rng.normal(0, var.acc_noise_g, (n_i, 3))
        imu[:, 3:] = imu[:, 3:] * prof.gyro_scale + prof.gyro_bias + rng.normal(0, var.gyro_noise_dps, (n_i, 3))
        jitter = np.full(len(JOINT_NAMES), 0.5)
        jitter[[J[j] for j in ("left_wrist", "left_hand", "right_wrist", "right_hand", "left_foot",
                               "right_foot", "left_ankle", "right_ankle")]] = 1.0
        skel = skel + rng.normal(0, var.skeleton_noise_m, skel.shape) * jitter[None, :, None]
    name = f"a{ci + 1}_s{subject}_t{trial}"
    return Clip(name, t, pose, kin, imu, skel, idx_i, idx_s)


@dataclass
class GeneratedSet:
    """A generated dataset in the raw layouts of the plugin contract."""

    inertial: list[np.ndarray]
    skeleton: list[np.ndarray]
    labels: np.ndarray
    subjects: np.ndarray
    trials: np.ndarray
    ids: list[str]


def generate(n_subjects: int = 8, n_trials: int = 4, n_classes: int = 10, seed: int = 0,
             var: Variation = DEFAULT_VARIATION) -> GeneratedSet:
    """Every (class, subject, trial) clip, classes first; subjects and trials are 1-based like UTD-MHAD."""
    inertial, skeleton, labels, subjects, trials, ids = [], [], [], [], [], []
    for ci, cname in enumerate(CLASS_NAMES[:n_classes]):
        for s in range(1, n_subjects + 1):
            for k in range(1, n_trials + 1):
                clip = simulate_clip(cname, s, k, seed, var=var)
                inertial.append(clip.inertial.astype(np.float32))
                skeleton.append(clip.skeleton.astype(np.float32))
                labels.append(ci)
                subjects.append(s)
                trials.append(k)
                ids.append(clip.name)
    return GeneratedSet(inertial, skeleton, np.asarray(labels, dtype=np.int64), np.asarray(subjects, dtype=np.int64),
                        np.asarray(trials, dtype=np.int64), ids)
