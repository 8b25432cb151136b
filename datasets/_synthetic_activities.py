"""The activity library of the synthetic dataset: one parametric joint-angle motion per class.

Each activity is a function of a `MotionContext` (clock, time-warped phase of the active window, the
rest -> action -> rest envelope, amplitude, repetitions, body, rest posture) returning absolute joint-angle
trajectories for the angles it drives, and optionally a pelvis offset (legs, jumps). The generator adds
subject/trial style and micro-motion on top. Angles in the bodies below are written in degrees (* DEG).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from datasets._synthetic_kinematics import DEG, STANDARD_GRAVITY, Body


# -- motion building blocks ---------------------------------------------------------------------
def smoothstep(x: np.ndarray) -> np.ndarray:
    """C2 ramp 0 -> 1 on [0, 1] (quintic), clipped outside."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def envelope(t: np.ndarray, t_on: float, t_off: float, ramp: float) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 window: rises over [t_on, t_on+ramp], falls over [t_off-ramp, t_off]."""
    return smoothstep((t - t_on) / ramp) * smoothstep((t_off - t) / ramp)


def bump(x: np.ndarray) -> np.ndarray:
    """Raised-cosine pulse: 1 at 0, 0 for |x| >= 1."""
    return np.where(np.abs(x) < 1.0, np.cos(0.5 * np.pi * np.clip(x, -1, 1)) ** 2, 0.0)


def keyframes(u: np.ndarray, knots: list[float], values: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Shape-preserving cubic (PCHIP) paths through keyframe angles (degrees) at phases `knots`."""
    names = list(values)
    table = np.array([values[n] for n in names], dtype=np.float64).T * DEG
    path = PchipInterpolator(np.asarray(knots, dtype=np.float64), table, axis=0)(np.clip(u, knots[0], knots[-1]))
    return {n: path[:, i] for i, n in enumerate(names)}


def leg_support(body: Body, hip_flex: np.ndarray, knee: np.ndarray) -> np.ndarray:
    """Pelvis offset (T, 3) that keeps the ankle where it is when standing, for symmetric leg flexion."""
    shank = hip_flex - knee
    down = body.thigh * (1 - np.cos(hip_flex)) + body.shank * (1 - np.cos(shank))
    back = body.thigh * np.sin(hip_flex) + body.shank * np.sin(shank)
    return np.stack([np.zeros_like(down), -down, back], axis=-1)


@dataclass
class MotionContext:
    """What a class motion sees: the clock, the active window and this trial's style."""

    t: np.ndarray  # seconds on the internal clock
    u: np.ndarray  # time-warped phase of the active window, 0 -> 1
    w: np.ndarray  # envelope of the active window (rest -> action -> rest)
    t_on: float
    t_off: float
    amp: float  # movement amplitude factor (~1)
    reps: int  # repetitions for repetitive classes
    body: Body
    rest: dict[str, float]  # this subject's rest angles (radians)

    def blend(self, target: dict[str, np.ndarray | float]) -> dict[str, np.ndarray]:
        """rest -> `target` (radians) -> rest, following the envelope."""
        return {k: self.rest.get(k, 0.0) + self.w * (np.asarray(v) - self.rest.get(k, 0.0))
                for k, v in target.items()}


MotionFn = Callable[[MotionContext], tuple[dict[str, np.ndarray], np.ndarray | None]]


def _cyc(ctx: MotionContext, reps: float | None = None) -> np.ndarray:
    """Phase angle 2*pi*reps*u of a repetitive movement."""
    return 2 * np.pi * (ctx.reps if reps is None else reps) * ctx.u


def _swipe(ctx: MotionContext, start: float, stop: float) -> tuple[dict[str, np.ndarray], None]:
    sweep = smoothstep((ctx.u - 0.2) / 0.55)
    plane = (start + (stop - start) * sweep) * DEG
    tgt = {"r_sh_plane": plane, "r_sh_elev": 85 * ctx.amp * DEG, "r_elbow": 20 * DEG, "r_pron": -70 * DEG,
           "trunk_twist": (-8 + 16 * sweep) * ctx.amp * DEG * np.sign(stop - start)}
    return ctx.blend(tgt), None


def swipe_left(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Right arm raised forward, swept horizontally from the right side across the body to the left."""
    return _swipe(ctx, 10.0, 10.0 + 120.0 * ctx.amp)


def swipe_right(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Right arm raised across the body, swept horizontally to the right side."""
    return _swipe(ctx, 10.0 + 120.0 * ctx.amp, 10.0)


def wave(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Right upper arm raised sideways, forearm up, swinging side to side at the elbow."""
    osc = np.sin(_cyc(ctx))
    return ctx.blend({"r_sh_plane": 25 * DEG, "r_sh_elev": 95 * DEG, "r_sh_rot": -90 * DEG,
                      "r_elbow": (85 + 30 * ctx.amp * osc) * DEG, "r_pron": 0.0}), None


def clap(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Both arms forward, swung together and apart repeatedly."""
    close = 0.5 * (1 - np.cos(_cyc(ctx)))
    plane = (45 + 40 * ctx.amp * close) * DEG
    out = {}
    for k in ("r", "l"):
        out.update({f"{k}_sh_plane": plane, f"{k}_sh_elev": 70 * DEG, f"{k}_elbow": 35 * DEG,
                    f"{k}_pron": -80 * DEG})
    return ctx.blend(out), None


def throw(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Right-arm overhand throw: wind-up behind the head, fast forward whip, follow-through."""
    a = ctx.amp
    k = keyframes(ctx.u, [0.0, 0.4, 0.55, 0.68, 1.0], {
        "r_sh_plane": [20, -10, 60, 110, 60],
        "r_sh_elev": [20, 150 * a, 110, 60, 20],
        "r_sh_rot": [0, 100, 30, 0, 0],
        "r_elbow": [15, 110, 40, 15, 15],
        "trunk_twist": [0, -20 * a, 5, 20 * a, 0],
        "trunk_flex": [0, -8, 10, 22 * a, 0],
        "l_sh_elev": [8, 40, 30, 20, 8],
        "l_sh_plane": [10, 80, 60, 40, 10],
    })
    return ctx.blend(k), None


def boxing(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Guard with both fists up, then alternating straight punches (right first)."""
    out = {}
    n = max(ctx.reps, 2)
    for k, first in (("r", 0), ("l", 1)):
        hit = sum(bump((ctx.u - (i + 0.5) / n) * n / 0.45) for i in range(first, n, 2))
        out.update({f"{k}_sh_plane": (80 + 12 * hit) * DEG, f"{k}_sh_elev": (45 + 40 * ctx.amp * hit) * DEG,
                    f"{k}_elbow": (125 - 115 * ctx.amp * hit) * DEG, f"{k}_pron": -60 * DEG,
                    f"{k}_sh_rot": -90 * DEG})
    out["trunk_twist"] = 12 * DEG * sum(
        (-1) ** i * bump((ctx.u - (i + 0.5) / n) * n / 0.45) for i in range(n))
    return ctx.blend(out), None


def draw_circle(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Right arm extended forward, the hand tracing clockwise circles."""
    ph = _cyc(ctx, max(1, ctx.reps // 2))
    r = 28 * ctx.amp
    return ctx.blend({"r_sh_plane": (80 + r * np.cos(ph)) * DEG, "r_sh_elev": (80 + r * np.sin(ph)) * DEG,
                      "r_elbow": 15 * DEG, "r_pron": -40 * DEG}), None


def arm_curl(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Right upper arm still at the side, the elbow flexing and extending (biceps curl)."""
    flex = 0.5 * (1 - np.cos(_cyc(ctx)))
    return ctx.blend({"r_sh_plane": 10 * DEG, "r_sh_elev": 12 * DEG, "r_pron": 80 * DEG,
                      "r_elbow": (15 + 115 * ctx.amp * flex) * DEG}), None


def squat(ctx: MotionContext) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Squat down and up with the arms raised forward for balance; feet stay on the ground."""
    depth = ctx.amp * 0.5 * (1 - np.cos(_cyc(ctx, max(1, ctx.reps // 2))))
    hip, knee = 75 * DEG * depth, 115 * DEG * depth
    arms = ctx.w * smoothstep(1.6 * depth)
    out = {"r_hip_flex": hip, "l_hip_flex": hip, "r_knee": knee, "l_knee": knee, "r_ankle": knee - hip,
           "l_ankle": knee - hip, "trunk_flex": 30 * DEG * depth}
    for k in ("r", "l"):
        out.update({f"{k}_sh_plane": 90 * DEG * arms + ctx.rest[f"{k}_sh_plane"] * (1 - arms),
                    f"{k}_sh_elev": 85 * DEG * arms + ctx.rest[f"{k}_sh_elev"] * (1 - arms)})
    return out, leg_support(ctx.body, hip, knee)


def walk_in_place(ctx: MotionContext) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Marching on the spot: alternating knee lifts with opposite arm swing."""
    ph = _cyc(ctx, 0.5 * ctx.reps)
    r_lift = np.clip(np.sin(ph), 0, None) ** 2 * ctx.w
    l_lift = np.clip(-np.sin(ph), 0, None) ** 2 * ctx.w
    out = {}
    for k, lift, swing in (("r", r_lift, -1.0), ("l", l_lift, 1.0)):
        out.update({f"{k}_hip_flex": 45 * ctx.amp * DEG * lift, f"{k}_knee": 70 * ctx.amp * DEG * lift,
                    f"{k}_ankle": 15 * DEG * lift,
                    f"{k}_sh_plane": ctx.w * 90 * DEG + (1 - ctx.w) * ctx.rest[f"{k}_sh_plane"],
                    f"{k}_sh_elev": ctx.rest[f"{k}_sh_elev"] + 30 * DEG * swing * np.sin(ph) * ctx.w,
                    f"{k}_elbow": ctx.rest[f"{k}_elbow"] + 25 * DEG * ctx.w})
    bob = np.zeros((len(ctx.t), 3))
    bob[:, 1] = 0.015 * ctx.w * np.sin(ph) ** 2
    return out, bob


def hermite(t: np.ndarray, t0: float, t1: float, p0: float, p1: float, v0: float, v1: float) -> np.ndarray:
    """Cubic Hermite segment on [t0, t1] with end positions p0, p1 and end velocities v0, v1."""
    h = t1 - t0
    x = (t - t0) / h
    return ((2 * x**3 - 3 * x**2 + 1) * p0 + (x**3 - 2 * x**2 + x) * h * v0
            + (-2 * x**3 + 3 * x**2) * p1 + (x**3 - x**2) * h * v1)


def jump_height_profile(t: np.ndarray, t0: float, span: float, depth: float, height: float) -> np.ndarray:
    """Pelvis height (m, 0 = standing) of one jump: crouch, push-off, ballistic flight, landing, recovery.

    Position and velocity are continuous, so the wrist acceleration stays finite; in flight the body
    is in free fall (the accelerometer reads only the arm's motion relative to the pelvis).
    """
    g = STANDARD_GRAVITY
    v_up = np.sqrt(2 * g * height)
    flight = 2 * v_up / g
    t_c = t0 + 0.3 * span  # bottom of the crouch
    t_up = t0 + 0.45 * span  # take-off
    t_down = t_up + flight  # touch-down
    t_l = t_down + 0.12 * span  # bottom of the landing
    segments = [(t0, t_c, 0.0, -depth, 0.0, 0.0), (t_c, t_up, -depth, 0.0, 0.0, v_up),
                (t_down, t_l, 0.0, -0.7 * depth, -v_up, 0.0), (t_l, t0 + span, -0.7 * depth, 0.0, 0.0, 0.0)]
    h = np.zeros_like(t)
    for a, b, p0, p1, v0, v1 in segments:
        inside = (t >= a) & (t < b)
        h = np.where(inside, hermite(t, a, b, p0, p1, v0, v1), h)
    tf = t - t_up
    return np.where((tf >= 0) & (tf < flight), v_up * tf - 0.5 * g * tf**2, h)


def jump(ctx: MotionContext) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Jump in place: crouch with arms back, take off swinging the arms up, ballistic flight, land."""
    n = 2 if ctx.reps >= 3 and ctx.t_off - ctx.t_on > 2.6 else 1
    span = (ctx.t_off - ctx.t_on) / n
    hip_max, knee_max = 60 * DEG, 95 * DEG
    depth = float(-leg_support(ctx.body, np.array([hip_max]), np.array([knee_max]))[0, 1])
    h = sum(jump_height_profile(ctx.t, ctx.t_on + i * span, span, depth, 0.06 + 0.06 * ctx.amp) for i in range(n))
    # legs: the crouch s in [0, 1] whose support drop equals a smooth (softplus) version of -h, so the feet
    # stay on the ground while crouched and the legs straighten smoothly in flight
    tau = 0.05
    drop = depth * tau * np.logaddexp(0.0, -h / (depth * tau))
    s_grid = np.linspace(0.0, 1.0, 401)
    s = np.interp(drop, -leg_support(ctx.body, hip_max * s_grid, knee_max * s_grid)[:, 1], s_grid)
    hip, knee = hip_max * s, knee_max * s
    root = leg_support(ctx.body, hip, knee)
    root[:, 1] = h
    arms = np.zeros_like(ctx.t)
    for i in range(n):
        t0 = ctx.t_on + i * span
        k = keyframes(ctx.t, [t0, t0 + 0.3 * span, t0 + 0.55 * span, t0 + 0.8 * span, t0 + span],
                      {"elev": [0, -35, 110, 30, 0]})
        arms += np.where((ctx.t >= t0) & (ctx.t < t0 + span), k["elev"], 0.0)
    out = {"r_hip_flex": hip, "l_hip_flex": hip, "r_knee": knee, "l_knee": knee, "trunk_flex": 0.5 * hip,
           "r_ankle": knee - hip, "l_ankle": knee - hip}
    for k in ("r", "l"):
        out.update({f"{k}_sh_plane": ctx.w * 90 * DEG + (1 - ctx.w) * ctx.rest[f"{k}_sh_plane"],
                    f"{k}_sh_elev": ctx.rest[f"{k}_sh_elev"] + ctx.amp * arms})
    return out, root


def knock(ctx: MotionContext) -> tuple[dict[str, np.ndarray], None]:
    """Knocking on a door: right forearm up in front, quick short elbow strikes."""
    osc = bump(np.mod(ctx.reps * 1.5 * ctx.u, 1.0) * 2 - 1)
    return ctx.blend({"r_sh_plane": 85 * DEG, "r_sh_elev": 55 * DEG, "r_sh_rot": -90 * DEG,
                      "r_elbow": (95 - 25 * ctx.amp * osc) * DEG,
                      "r_pron": -80 * DEG, "r_wrist": 20 * DEG * osc}), None


MOTIONS: dict[str, MotionFn] = {
    "swipe_left": swipe_left,
    "swipe_right": swipe_right,
    "wave": wave,
    "clap": clap,
    "throw": throw,
    "boxing": boxing,
    "draw_circle": draw_circle,
    "arm_curl": arm_curl,
    "squat": squat,
    "walk_in_place": walk_in_place,
    "jump": jump,
    "knock": knock,
}
CLASS_NAMES: tuple[str, ...] = tuple(MOTIONS)
BASE_DURATION_S = {"swipe_left": 2.6, "swipe_right": 2.6, "wave": 3.0, "clap": 2.8, "throw": 2.8, "boxing": 3.0,
                   "draw_circle": 3.2, "arm_curl": 3.4, "squat": 3.3, "walk_in_place": 3.4, "jump": 3.0,
                   "knock": 2.6}
REPS = {"swipe_left": (1, 1), "swipe_right": (1, 1), "wave": (2, 3), "clap": (3, 5), "throw": (1, 1),
        "boxing": (2, 4), "draw_circle": (2, 3), "arm_curl": (2, 3), "squat": (2, 3), "walk_in_place": (3, 5),
        "jump": (1, 3), "knock": (2, 4)}
