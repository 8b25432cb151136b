"""The batched augmentation kernels of `benchmark.augment`: one function per op and modality kind.

Inertial ops take x [N, C, T], skeleton ops x [N, C, T, J]; all randomness comes from the generator passed in.
`OP_FUNCTIONS[(kind, layout)]` maps op names to kernels (see `benchmark.augment` for each op's semantics).
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch


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


def _flip_signs(x: torch.Tensor, g: torch.Generator, vectors: object = None) -> torch.Tensor:
    # the reference's "rotation" flips signs element-wise: declared vectors play no part
    return x * (_randint(g, 0, 2, tuple(x.shape), x) * 2 - 1).to(x.dtype)


def _rotate_triplets(x: torch.Tensor, g: torch.Generator,
                     vectors: tuple[tuple[int, int, int], ...] | None = None) -> torch.Tensor:
    """One rotation per sample applied to every xyz triplet, or (given `vectors`) to those channel triplets only."""
    n, c, t = x.shape
    rot = random_rotations_3d(g, n, x)
    if vectors is None:
        return torch.einsum("nij,ngjt->ngit", rot, x.view(n, c // 3, 3, t)).reshape(n, c, t)
    out = x.clone()
    if vectors:
        idx = torch.tensor([ch for group in vectors for ch in group], device=x.device)
        picked = x.index_select(1, idx).view(n, len(vectors), 3, t)
        out[:, idx] = torch.einsum("nij,ngjt->ngit", rot, picked).reshape(n, len(idx), t)
    return out


def _permute_channel_groups(x: torch.Tensor, g: torch.Generator, max_segments: int) -> torch.Tensor:
    return permute_segments(x, g, 1, max_segments)


def _permute_time_segments(x: torch.Tensor, g: torch.Generator, max_segments: int) -> torch.Tensor:
    return permute_segments(x, g, 2, max_segments)


def _shuffle_time(x: torch.Tensor, g: torch.Generator, vectors: object = None) -> torch.Tensor:
    n, c, t = x.shape
    perm = _random_permutations(g, n, t, x)
    return x.gather(2, perm.view(n, 1, t).expand(n, c, t))


def _shuffle_triplet_axes(x: torch.Tensor, g: torch.Generator,
                          vectors: tuple[tuple[int, int, int], ...] | None = None) -> torch.Tensor:
    """One x/y/z permutation per sample inside every triplet, or (given `vectors`) inside those triplets only."""
    n, c, t = x.shape
    perm = _random_permutations(g, n, 3, x)  # [N, 3]
    ch = torch.arange(c, device=x.device)
    if vectors is None:
        idx = (ch // 3 * 3)[None, :] + perm[:, ch % 3]  # [N, C]
    else:
        idx = ch.expand(n, c).clone()
        if vectors:
            groups = torch.tensor(vectors, device=x.device)  # [G, 3]
            src = groups[:, perm]  # [G, N, 3]: the channel that lands on axis k of triplet g in sample n
            idx[:, groups.flatten()] = src.permute(1, 0, 2).reshape(n, -1)
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
