"""Batched, on-device SSL augmentations for inertial [N, C, T] and skeleton [N, C, T, J] batches (spec 4.3).

Why: the reference augments one sample at a time in data-loader workers; here a whole batch is augmented
with tensor ops on the batch's device, with all randomness drawn from a `torch.Generator` passed in, so a
seed fixes the result. Each op is wrapped like torchvision's RandomApply, but per sample: a Bernoulli(p)
mask decides which samples of the batch get the op. Ops run in the reference's YAML key order.

Profiles (`PROFILES`) hold the reference YAML values; ops with apply=False are kept (and can be switched
on through `overrides`):

    inertial  utd_mhad: jittering(sigma=1) scaling(sigma=1) [rotation off] permutation(max_segments=3)
                        channel_shuffle, all p=0.75
    inertial  mmact:    [jittering off] scaling(sigma=1) rotation [permutation(5) off] [channel_shuffle off]
    skeleton  utd_mhad: jittering(sigma=0.1, p=1) crop_and_resize(0.8, 0.9) scaling(0.7, 1.2)
                        rotation(-10..10 step 2) shear(beta=0.2), p=0.75 except jittering
    skeleton  mmact:    as utd_mhad but crop_and_resize(0.7, 0.8) and rotation(-15..15 step 2)

Inertial semantics per `layout`:

    op               layout="reference" (what the reference code does    layout="intended" (what the name means)
                     on the (C, T) tensors it receives)
    jittering        x + N(0, sigma^2) per element                        same
    scaling          x * F, F ~ N(1, sigma^2) per element                 one factor per channel, constant in time
    rotation         x * S, S uniform in {-1, +1} per element             one uniformly random 3-D rotation per
                     (sign flips, not a rotation)                         sample, applied to every xyz triplet of
                                                                          channels (acc and gyro alike); C % 3 == 0
    permutation      channels split into n in {1..max_segments-1}         the same split-and-permute along time
                     near-equal contiguous groups, groups permuted        (segment permutation, Um et al. 2017)
                     (UTD: swaps the acc and gyro blocks)
    channel_shuffle  one random permutation of the T time steps,          one random permutation of the x/y/z
                     shared by all channels (a full temporal shuffle)     axes per sample, applied inside every
                                                                          triplet (sensors and units never mix;
                                                                          the code's own (T, C) reading would
                                                                          shuffle all channels, mixing acc & gyro)

Skeleton ops are the same in both layouts (C = 2 or 3 coordinates):
    jittering        x + N(0, sigma^2) per element
    crop_and_resize  crop length floor(U(min_p, max_p) * T) at a uniform start, FFT-resampled (scipy's
                     `signal.resample` math) back to T frames
    scaling          diag(s), s_d ~ U(min_p, max_p) per axis, about joint `pivot_joint` of each frame
    rotation         angles from {start, start+step, .., end} degrees; 3-D: R = Rx Ry Rz with independent
                     angles, 2-D: one angle; about joint `pivot_joint` of each frame
    shear            3-D [[1, a, a], [b, 1, b], [c, c, 1]], 2-D [[1, a], [b, 1]], (a, b, c) ~ N(0, beta^2),
                     about the origin (the reference does not pivot shear)

Deliberate differences from the reference in both layouts: outputs keep the input dtype (the reference's
inertial scaling returned float64); crop_and_resize always resamples to the input length (the reference's
`size` always equals it); the reference stores an `anchor_joint` and ignores it, pivoting on joint 0 —
we expose that pivot as `pivot_joint` (default 0, the reference behaviour); random numbers come from
torch generators, so the distributions match the reference but the individual draws do not.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from benchmark.registry import unknown_name_message

LAYOUTS = ("reference", "intended")
MODALITIES = ("inertial", "skeleton")


class AugmentationError(ValueError):
    """Unknown profile, modality, layout, op or parameter, or a batch the ops cannot handle."""


@dataclass(frozen=True)
class OpConfig:
    """One augmentation op as configured: whether it is on, its per-sample probability and its parameters."""

    name: str
    apply: bool
    probability: float
    params: Mapping[str, Any] = field(default_factory=dict)


def _ops(*rows: tuple[str, bool, float, dict[str, Any]]) -> tuple[OpConfig, ...]:
    return tuple(OpConfig(n, a, p, dict(kw)) for n, a, p, kw in rows)


# The reference YAML files (configs/{inertial,skeleton}_augmentations/augmentations_{utd,mmact}.yaml), in key order.
PROFILES: dict[str, dict[str, tuple[OpConfig, ...]]] = {
    "utd_mhad": {
        "inertial": _ops(
            ("jittering", True, 0.75, {"sigma": 1.0}),
            ("scaling", True, 0.75, {"sigma": 1.0}),
            ("rotation", False, 0.75, {}),
            ("permutation", True, 0.75, {"max_segments": 3}),
            ("channel_shuffle", True, 0.75, {}),
        ),
        "skeleton": _ops(
            ("jittering", True, 1.0, {"sigma": 0.1}),
            ("crop_and_resize", True, 0.75, {"min_p": 0.8, "max_p": 0.9}),
            ("scaling", True, 0.75, {"min_p": 0.7, "max_p": 1.2}),
            ("rotation", True, 0.75, {"start": -10, "end": 10, "step": 2}),
            ("shear", True, 0.75, {"beta": 0.2}),
        ),
    },
    "mmact": {
        "inertial": _ops(
            ("jittering", False, 0.75, {"sigma": 1.0}),
            ("scaling", True, 0.75, {"sigma": 1.0}),
            ("rotation", True, 0.75, {}),
            ("permutation", False, 0.75, {"max_segments": 5}),
            ("channel_shuffle", False, 0.75, {}),
        ),
        "skeleton": _ops(
            ("jittering", True, 1.0, {"sigma": 0.1}),
            ("crop_and_resize", True, 0.75, {"min_p": 0.7, "max_p": 0.8}),
            ("scaling", True, 0.75, {"min_p": 0.7, "max_p": 1.2}),
            ("rotation", True, 0.75, {"start": -15, "end": 15, "step": 2}),
            ("shear", True, 0.75, {"beta": 0.2}),
        ),
    },
}

# Parameters that an op accepts without the profile naming them (the reference's implicit choices).
_IMPLICIT_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("skeleton", "scaling"): {"pivot_joint": 0},
    ("skeleton", "rotation"): {"pivot_joint": 0},
}

# name: (type, predicate, what it must be)
_PARAM_RULES: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "sigma": (float, lambda v: v >= 0, "a number >= 0"),
    "beta": (float, lambda v: v >= 0, "a number >= 0"),
    "min_p": (float, lambda v: v > 0, "a number > 0"),
    "max_p": (float, lambda v: v > 0, "a number > 0"),
    "max_segments": (int, lambda v: v >= 2, "an integer >= 2"),
    "start": (int, lambda v: True, "an integer (degrees)"),
    "end": (int, lambda v: True, "an integer (degrees)"),
    "step": (int, lambda v: v > 0, "an integer > 0 (degrees)"),
    "pivot_joint": (int, lambda v: v >= 0, "a joint index >= 0"),
}


# -- random draws (on the generator's device, then moved to the batch's) ------------------------------
def _rand(g: torch.Generator, size: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.rand(size, generator=g, device=g.device).to(like.device)


def _randn(g: torch.Generator, size: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.randn(size, generator=g, device=g.device).to(like.device, like.dtype)


def _randint(g: torch.Generator, low: int, high: int, size: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.randint(low, high, size, generator=g, device=g.device).to(like.device)


def _random_permutations(g: torch.Generator, n: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """[n, k] rows, each a uniformly random permutation of range(k)."""
    return _rand(g, (n, k), like).argsort(dim=1)


# -- shared building blocks ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _segment_table(size: int, max_groups: int) -> torch.Tensor:
    """[max_groups, size]: row k-1 gives each position's group when range(size) is np.array_split into k."""
    table = np.zeros((max_groups, size), dtype=np.int64)
    for k in range(1, max_groups + 1):
        for gid, part in enumerate(np.array_split(np.arange(size), k)):
            table[k - 1, part] = gid
    return torch.from_numpy(table)


def permute_segments(x: torch.Tensor, g: torch.Generator, dim: int, max_segments: int) -> torch.Tensor:
    """Split axis `dim` into n ~ U{1..max_segments-1} near-equal contiguous segments per sample; permute them."""
    n, size = x.shape[0], x.shape[dim]
    m = max_segments - 1
    counts = _randint(g, 1, max_segments, (n,), x)  # segments per sample
    groups = _segment_table(size, m).to(x.device)[counts - 1]  # [n, size]: segment of each position
    keys = _rand(g, (n, m), x)
    keys = torch.where(torch.arange(m, device=x.device)[None, :] < counts[:, None], keys, torch.full_like(keys, 2.0))
    rank = keys.argsort(dim=1).argsort(dim=1)  # new position of each segment (unused segments sort last)
    order = (rank.gather(1, groups) * size + torch.arange(size, device=x.device)).argsort(dim=1)
    shape = [1] * x.dim()
    shape[0], shape[dim] = n, size
    return x.gather(dim, order.view(shape).expand_as(x))


@functools.lru_cache(maxsize=256)
def fft_resample_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] float64 matrix M with M @ v == scipy.signal.resample(v, n_out) for real v of length n_in."""
    spec = torch.fft.rfft(torch.eye(n_in, dtype=torch.float64), dim=0)  # column l: spectrum of the unit impulse e_l
    m = min(n_in, n_out)
    spec = spec[: m // 2 + 1].clone()
    if m % 2 == 0 and n_in != n_out:  # the unpaired Nyquist bin: merged when down-, split when up-sampling
        spec[m // 2] *= 2.0 if n_out < n_in else 0.5
    return torch.fft.irfft(spec * (n_out / n_in), n=n_out, dim=0)


_RESAMPLE_BANKS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def _resample_bank(length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[length + 1, length, length]: bank[L] resamples the first L of `length` frames to `length` frames."""
    key = (length, str(device), dtype)
    if key not in _RESAMPLE_BANKS:
        bank = torch.zeros(length + 1, length, length, dtype=torch.float64)
        for crop in range(1, length + 1):
            bank[crop, :, :crop] = fft_resample_matrix(crop, length)
        _RESAMPLE_BANKS[key] = bank.to(device=device, dtype=dtype)
    return _RESAMPLE_BANKS[key]


def crop_and_resize_frames(x: torch.Tensor, lengths: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Crop frames [start, start+length) of each sample of [N, C, T, J] and FFT-resample each crop back to T."""
    n, c, t, j = x.shape
    idx = (starts.view(n, 1) + torch.arange(t, device=x.device)).clamp(max=t - 1)  # frames past the crop: weight 0
    window = x.gather(2, idx.view(n, 1, t, 1).expand(n, c, t, j))
    weights = _resample_bank(t, x.device, x.dtype)[lengths]  # [N, T_out, T_in]
    return torch.einsum("nol,nclj->ncoj", weights, window)


def rotation_matrix_3d(ax: torch.Tensor, ay: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] R = Rx(ax) Ry(ay) Rz(az) for angles in radians (the reference's composition order)."""
    one, zero = torch.ones_like(ax), torch.zeros_like(ax)
    cx, sx, cy, sy, cz, sz = ax.cos(), ax.sin(), ay.cos(), ay.sin(), az.cos(), az.sin()
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).view(-1, 3, 3)
    return rx @ ry @ rz


def rotation_matrix_2d(a: torch.Tensor) -> torch.Tensor:
    """[N, 2, 2] counter-clockwise rotations by angles `a` (radians)."""
    c, s = a.cos(), a.sin()
    return torch.stack([c, -s, s, c], -1).view(-1, 2, 2)


def random_rotations_3d(g: torch.Generator, n: int, like: torch.Tensor) -> torch.Tensor:
    """[n, 3, 3] rotations drawn uniformly from SO(3) (normalised Gaussian quaternions)."""
    q = torch.randn((n, 4), generator=g, device=g.device, dtype=torch.float64)
    w, a, b, c = (q / q.norm(dim=1, keepdim=True)).unbind(1)
    rot = torch.stack([
        1 - 2 * (b * b + c * c), 2 * (a * b - c * w), 2 * (a * c + b * w),
        2 * (a * b + c * w), 1 - 2 * (a * a + c * c), 2 * (b * c - a * w),
        2 * (a * c - b * w), 2 * (b * c + a * w), 1 - 2 * (a * a + b * b),
    ], -1).view(n, 3, 3)
    return rot.to(like.device, like.dtype)


def _about_joint(x: torch.Tensor, mat: torch.Tensor, pivot: int) -> torch.Tensor:
    """Apply per-sample [N, D, D] matrices to [N, D, T, J] points about joint `pivot` of each frame."""
    p0 = x[..., pivot : pivot + 1]
    return p0 + torch.einsum("nij,njtk->nitk", mat, x - p0)


# -- inertial ops: x [N, C, T] --------------------------------------------------------------------------
def _jitter(x: torch.Tensor, g: torch.Generator, sigma: float) -> torch.Tensor:
    return x + sigma * _randn(g, tuple(x.shape), x)


def _scale_elements(x: torch.Tensor, g: torch.Generator, sigma: float) -> torch.Tensor:
    return x * (1.0 + sigma * _randn(g, tuple(x.shape), x))


def _scale_channels(x: torch.Tensor, g: torch.Generator, sigma: float) -> torch.Tensor:
    return x * (1.0 + sigma * _randn(g, (x.shape[0], x.shape[1], 1), x))


def _flip_signs(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x * (_randint(g, 0, 2, tuple(x.shape), x) * 2 - 1).to(x.dtype)


def _rotate_triplets(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, c, t = x.shape
    rot = random_rotations_3d(g, n, x)
    return torch.einsum("nij,ngjt->ngit", rot, x.view(n, c // 3, 3, t)).reshape(n, c, t)


def _permute_channel_groups(x: torch.Tensor, g: torch.Generator, max_segments: int) -> torch.Tensor:
    return permute_segments(x, g, 1, max_segments)


def _permute_time_segments(x: torch.Tensor, g: torch.Generator, max_segments: int) -> torch.Tensor:
    return permute_segments(x, g, 2, max_segments)


def _shuffle_time(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, c, t = x.shape
    perm = _random_permutations(g, n, t, x)
    return x.gather(2, perm.view(n, 1, t).expand(n, c, t))


def _shuffle_triplet_axes(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n, c, t = x.shape
    perm = _random_permutations(g, n, 3, x)  # [N, 3]
    ch = torch.arange(c, device=x.device)
    idx = (ch // 3 * 3)[None, :] + perm[:, ch % 3]  # [N, C]
    return x.gather(1, idx.view(n, c, 1).expand(n, c, t))


# -- skeleton ops: x [N, C, T, J] -----------------------------------------------------------------------
def _crop_and_resize(x: torch.Tensor, g: torch.Generator, min_p: float, max_p: float) -> torch.Tensor:
    n, t = x.shape[0], x.shape[2]
    frac = min_p + (max_p - min_p) * torch.rand((n,), generator=g, device=g.device, dtype=torch.float64)
    lengths = (frac * t).floor().long().clamp(1, t).to(x.device)
    starts = (_rand(g, (n,), x).double() * (t - lengths + 1)).floor().long().clamp(min=0)
    starts = torch.minimum(starts, t - lengths)
    return crop_and_resize_frames(x, lengths, starts)


def _scale_about_joint(x: torch.Tensor, g: torch.Generator, min_p: float, max_p: float,
                       pivot_joint: int = 0) -> torch.Tensor:
    s = min_p + (max_p - min_p) * _rand(g, (x.shape[0], x.shape[1]), x).to(x.dtype)
    p0 = x[..., pivot_joint : pivot_joint + 1]
    return p0 + s[:, :, None, None] * (x - p0)


def _rotate_about_joint(x: torch.Tensor, g: torch.Generator, start: int, end: int, step: int,
                        pivot_joint: int = 0) -> torch.Tensor:
    grid = torch.tensor(list(range(start, end + 1, step)), dtype=torch.float64, device=x.device)
    n, d = x.shape[0], x.shape[1]
    angles = torch.deg2rad(grid[_randint(g, 0, len(grid), (n, 3 if d == 3 else 1), x)])
    rot = rotation_matrix_3d(*angles.unbind(1)) if d == 3 else rotation_matrix_2d(angles[:, 0])
    return _about_joint(x, rot.to(x.dtype), pivot_joint)


def _shear(x: torch.Tensor, g: torch.Generator, beta: float) -> torch.Tensor:
    n, d = x.shape[0], x.shape[1]
    a = beta * _randn(g, (n, d, 1), x)  # row i's off-diagonal entries all equal a_i
    eye = torch.eye(d, device=x.device, dtype=x.dtype)
    return torch.einsum("nij,njtk->nitk", eye + a * (1 - eye), x)


_SKELETON_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "jittering": _jitter, "crop_and_resize": _crop_and_resize, "scaling": _scale_about_joint,
    "rotation": _rotate_about_joint, "shear": _shear,
}
OP_FUNCTIONS: dict[tuple[str, str], dict[str, Callable[..., torch.Tensor]]] = {
    ("inertial", "reference"): {
        "jittering": _jitter, "scaling": _scale_elements, "rotation": _flip_signs,
        "permutation": _permute_channel_groups, "channel_shuffle": _shuffle_time,
    },
    ("inertial", "intended"): {
        "jittering": _jitter, "scaling": _scale_channels, "rotation": _rotate_triplets,
        "permutation": _permute_time_segments, "channel_shuffle": _shuffle_triplet_axes,
    },
    ("skeleton", "reference"): _SKELETON_OPS,
    ("skeleton", "intended"): _SKELETON_OPS,
}
_NEEDS_TRIPLETS = {("intended", "rotation"), ("intended", "channel_shuffle")}
_GEOMETRIC = {"scaling", "rotation", "shear"}


# -- configuration -------------------------------------------------------------------------------------------
def _check_param(where: str, key: str, value: Any) -> Any:
    kind, ok, what = _PARAM_RULES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise AugmentationError(f"{where}: parameter {key!r} must be {what}, got {value!r}")
    value = kind(value)
    if not ok(value):
        raise AugmentationError(f"{where}: parameter {key!r} must be {what}, got {value!r}")
    return value


def _resolve_op(modality: str, base: OpConfig, override: Any, where: str) -> OpConfig:
    """Merge one op's override {'apply', 'probability', params...} into its profile entry, validating each key."""
    params = {**_IMPLICIT_PARAMS.get((modality, base.name), {}), **base.params}
    apply, prob = base.apply, base.probability
    if override is not None:
        if not isinstance(override, Mapping):
            raise AugmentationError(f"{where}: override must be a dict like {{'apply': True, 'probability': 0.5}}, "
                                    f"got {override!r}")
        valid = ["apply", "probability", *params]
        for key, value in override.items():
            if key == "apply":
                if not isinstance(value, bool):
                    raise AugmentationError(f"{where}: 'apply' must be true or false, got {value!r}")
                apply = value
            elif key == "probability":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise AugmentationError(f"{where}: 'probability' must be a number in [0, 1], got {value!r}")
                prob = float(value)
            elif key in params:
                params[key] = value
            else:
                raise AugmentationError(f"{where}: " + unknown_name_message("parameter", key, valid))
    params = {k: _check_param(where, k, v) for k, v in params.items()}
    if "min_p" in params and params["min_p"] > params["max_p"]:
        raise AugmentationError(f"{where}: min_p {params['min_p']} must not exceed max_p {params['max_p']}")
    if base.name == "crop_and_resize" and params["max_p"] > 1:
        raise AugmentationError(f"{where}: max_p {params['max_p']} must be <= 1 (a crop cannot exceed the clip)")
    if "start" in params and params["start"] > params["end"]:
        raise AugmentationError(f"{where}: rotation start {params['start']} must not exceed end {params['end']}")
    return replace(base, apply=apply, probability=prob, params=params)


class Augmenter:
    """The SSL augmentation pipeline of one modality under one profile: `aug(x, generator) -> augmented x`."""

    def __init__(self, profile: str, modality: str, layout: str = "reference",
                 overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        if profile not in PROFILES:
            raise AugmentationError(unknown_name_message("augmentation profile", profile, sorted(PROFILES)))
        if modality not in MODALITIES:
            raise AugmentationError(unknown_name_message("augmentation modality", modality, list(MODALITIES)))
        if layout not in LAYOUTS:
            raise AugmentationError(unknown_name_message("augmentation layout", layout, list(LAYOUTS)))
        self.profile, self.modality, self.layout = profile, modality, layout
        base = PROFILES[profile][modality]
        overrides = dict(overrides or {})
        names = [op.name for op in base]
        for key in overrides:
            if key not in names:
                raise AugmentationError(
                    f"{modality} augmentations of profile {profile!r}: " + unknown_name_message("op", key, names))
        self.ops: tuple[OpConfig, ...] = tuple(
            _resolve_op(modality, op, overrides.get(op.name), f"{profile}/{modality}/{op.name}") for op in base
        )
        self._functions = OP_FUNCTIONS[(modality, layout)]

    @property
    def active_ops(self) -> tuple[OpConfig, ...]:
        """The ops that run (apply=True and probability > 0), in order."""
        return tuple(op for op in self.ops if op.apply and op.probability > 0)

    def config(self) -> dict[str, Any]:
        """A JSON-able description (for cell keys and records)."""
        return {
            "profile": self.profile, "modality": self.modality, "layout": self.layout,
            "ops": [{"name": o.name, "apply": o.apply, "probability": o.probability, "params": dict(o.params)}
                    for o in self.ops],
        }

    def __repr__(self) -> str:
        ops = ", ".join(f"{o.name}(p={o.probability:g})" for o in self.active_ops) or "identity"
        return f"Augmenter({self.profile}/{self.modality}/{self.layout}: {ops})"

    def _check_batch(self, x: torch.Tensor, generator: torch.Generator) -> None:
        if not isinstance(generator, torch.Generator):
            raise AugmentationError(f"pass a torch.Generator (e.g. torch.Generator().manual_seed(0)), got {generator!r}")
        ndim = 3 if self.modality == "inertial" else 4
        layout = "[N, C, T]" if ndim == 3 else "[N, C, T, J]"
        if x.dim() != ndim or not x.is_floating_point():
            raise AugmentationError(f"{self.modality} augmentations need a floating {layout} batch, "
                                    f"got {x.dtype} {list(x.shape)}")
        active = {o.name for o in self.active_ops}
        if self.modality == "inertial":
            if any((self.layout, n) in _NEEDS_TRIPLETS for n in active) and x.shape[1] % 3:
                raise AugmentationError(f"intended inertial rotation/channel_shuffle need xyz channel triplets; "
                                        f"{x.shape[1]} channels is not a multiple of 3 (turn those ops off)")
            return
        if active & _GEOMETRIC and x.shape[1] not in (2, 3):
            raise AugmentationError(f"skeleton scaling/rotation/shear need 2 or 3 coordinates per joint, "
                                    f"got C = {x.shape[1]} in {list(x.shape)}")
        for op in self.active_ops:
            pivot = op.params.get("pivot_joint", 0)
            if pivot >= x.shape[3]:
                raise AugmentationError(f"{op.name}: pivot_joint {pivot} is out of range for {x.shape[3]} joints")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment batch `x` (a new tensor on x's device, same dtype); each op hits each sample with its p."""
        self._check_batch(x, generator)
        n = x.shape[0]
        for op in self.active_ops:
            out = self._functions[op.name](x, generator, **op.params)
            if op.probability < 1:
                hit = _rand(generator, (n,), x) < op.probability
                out = torch.where(hit.view(n, *[1] * (x.dim() - 1)), out, x)
            x = out
        return x


def build_augmenters(profile: str, modalities: Iterable[str] | Mapping[str, str], layout: str = "reference",
                     overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> dict[str, Augmenter]:
    """One Augmenter per modality: `modalities` lists names that are layouts, or maps name -> 'inertial'/'skeleton'.

    `overrides` is {modality name: {op: {'apply'|'probability'|param: value}}}.
    """
    kinds = dict(modalities) if isinstance(modalities, Mapping) else {m: m for m in modalities}
    overrides = dict(overrides or {})
    extra = sorted(set(overrides) - set(kinds))
    if extra:
        raise AugmentationError(f"augmentation overrides name modalities {extra} that are not in {sorted(kinds)}")
    return {name: Augmenter(profile, kind, layout, overrides.get(name)) for name, kind in kinds.items()}


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded generator on `device` (use the batch's device to keep the random draws there too)."""
    return torch.Generator(device=device).manual_seed(int(seed))


__all__ = [
    "AugmentationError", "Augmenter", "LAYOUTS", "OpConfig", "PROFILES", "build_augmenters",
    "crop_and_resize_frames", "fft_resample_matrix", "make_generator", "permute_segments",
    "random_rotations_3d", "rotation_matrix_2d", "rotation_matrix_3d",
]
