"""Cheap dropout masks and the kernel mode that chooses between the fast and the reference implementation.

Why: on a CPU, `nn.Dropout` draws its mask with `bernoulli_`, which took 22 % (fp32) to 40 % (bf16) of an
inertial encoder's training step (torch.profiler, B128). A keep mask needs only a few random bits per element:
`keep_mask` fills full-range 64-bit words with one `random_` call, views them as 16-bit integers (four draws
per word) and keeps an element when its draw is below round((1 - p) * 2^16). Each 16-bit chunk of a full-range
uniform 64-bit word is uniform, so every element is kept independently with probability k = round((1 - p) *
2^16) / 2^16 (within 2^-17 of 1 - p), and kept values are scaled by 1 / k, so the expectation is exact. The
draws come from torch's default CPU generator: seeded runs are reproducible. The stream differs from
`bernoulli_`'s; the distribution is the same up to that rounding.

Kernel modes (`kernel_mode`): "fast" (default) builds the encoders with these masks and fused blocks;
"reference" builds them exactly as before (`nn.Dropout`, `nn.TransformerEncoderLayer`): the training
benchmark's `--baseline` uses it. The mode is read when a module is built, not at every call. On CUDA the
fast modules use torch's native dropout (already a fused kernel there).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

KERNEL_MODES = ("fast", "reference")
_MODE = ["fast"]
_RESOLUTION = 1 << 16


def current_kernel_mode() -> str:
    """The kernel mode new encoders are built with: 'fast' (default) or 'reference'."""
    return _MODE[0]


@contextlib.contextmanager
def kernel_mode(mode: str) -> Iterator[None]:
    """Build modules inside this block with `mode` ('fast' or 'reference')."""
    if mode not in KERNEL_MODES:
        raise ValueError(f"unknown kernel mode {mode!r}; choose one of {', '.join(KERNEL_MODES)}")
    old, _MODE[0] = _MODE[0], mode
    try:
        yield
    finally:
        _MODE[0] = old


def keep_threshold(p: float) -> tuple[int, float]:
    """(threshold t on 16-bit draws in [0, 2^16), scale 1 / k) for drop probability p; k = t / 2^16."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    t = int(round((1.0 - p) * _RESOLUTION))
    return t, (_RESOLUTION / t if t else 0.0)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A bool mask of `shape`, True with probability round((1 - p) * 2^16) / 2^16 per element, independently."""
    t, _ = keep_threshold(p)
    if t in (0, _RESOLUTION):  # the threshold 2^15 does not fit in an int16 comparison
        return torch.full(tuple(shape), t == _RESOLUTION, dtype=torch.bool, device=device)
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    draws = words.view(torch.int16)[:n].view(shape)  # signed 16-bit: draw - 2^15
    return draws < (t - (1 << 15))


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout with a `keep_mask` on CPU (torch's native dropout elsewhere)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    _, scale = keep_threshold(p)
    return x * keep_mask(x.shape, p, x.device).to(x.dtype).mul_(scale)


def relu_dropout(x: torch.Tensor, p: float, training: bool = True) -> tuple[torch.Tensor, float]:
    """relu(x) with dropout, the 1 / k scale left to the caller: returns (relu(x) * mask, scale).

    Why: one multiply by a bool mask is relu's and dropout's forward and backward at once; the caller folds
    `scale` into the next matmul (addmm's alpha) instead of another pass over the large hidden activation.
    """
    if not training or p == 0.0:
        return torch.relu(x), 1.0
    if x.device.type != "cpu":
        return F.dropout(torch.relu(x), p, True), 1.0
    _, scale = keep_threshold(p)
    cond = keep_mask(x.shape, p, x.device).logical_and_(x.detach() > 0)
    return x * cond.to(x.dtype), scale


class FastDropout(nn.Dropout):
    """`nn.Dropout` with `keep_mask` masks on CPU (same parameters, same state dict: none)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def make_dropout(p: float) -> nn.Module:
    """A dropout module for the current kernel mode."""
    return nn.Dropout(p) if current_kernel_mode() == "reference" else FastDropout(p)


__all__ = ["KERNEL_MODES", "FastDropout", "current_kernel_mode", "dropout", "keep_mask", "keep_threshold",
           "kernel_mode", "make_dropout", "relu_dropout"]
