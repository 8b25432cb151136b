"""What the machine is and how to run fast on it: CPU model and bf16 flags, training precision, allocator tuning.

Precision (`--precision`): "fp32" (the reference's precision), "bf16" (autocast to bfloat16 for the encoders'
matmuls and convolutions; losses, similarity matrices, CMKM mining and all evaluation scoring stay float32),
or "auto": bf16 on CUDA and on CPUs with native bf16 matmul (AVX512-BF16 or AMX-BF16, read from the CPU's
flags, so the choice is deterministic per machine), fp32 elsewhere. The resolved precision is part of every
cell key and record, as the device type is.

Allocator: glibc returns large freed blocks to the OS and maps fresh, zero-filled pages for the next one, so
every [N * L, 2048] activation of the inertial Transformer page-faults on first touch (measured here: 140,000
minor faults and 0.29 s of system time per fp32 encoder step, 35 % of it). `tune_allocator` keeps freed memory
in the process (glibc `mallopt`: no mmap for large blocks, no trimming); it changes no result. Set
MMHAR_MALLOC_TUNE=0 to leave the allocator alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI's argument parser stays light
    import torch

PRECISIONS = ("fp32", "bf16", "auto")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86; aarch64 lists "bf16" among its Features
_CURRENT = ["fp32"]  # the resolved precision this process trains with (set_precision)


class PrecisionError(ValueError):
    """An unknown precision, or bf16 requested where it cannot run."""


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """{'model': CPU model name, 'flags': the bf16/AMX flags present, 'native_bf16': bool, 'machine': arch}."""
    model, flags = "", set[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor()
    found = sorted(f for f in (*_BF16_FLAGS, "amx_tile", "avx512f", "bf16") if f in flags)
    native = any(f in flags for f in _BF16_FLAGS) or (platform.machine() == "aarch64" and "bf16" in flags)
    return {"model": model or "unknown", "flags": found, "native_bf16": native, "machine": platform.machine()}


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """'fp32' or 'bf16' for `precision` ('fp32', 'bf16', 'auto'; None = 'auto') on `device`."""
    p = precision or "auto"
    if p not in PRECISIONS:
        raise PrecisionError(f"unknown precision {p!r}; choose one of {', '.join(PRECISIONS)}")
    if p == "auto":
        if device.type == "cuda":
            return "fp32" if os.environ.get("MMHAR_BF16") == "0" else "bf16"
        return "bf16" if device.type == "cpu" and cpu_info()["native_bf16"] else "fp32"
    return p


def set_precision(precision: str) -> None:
    """Make `autocast_for` train in the resolved `precision` ('fp32' or 'bf16') in this process."""
    if precision not in ("fp32", "bf16"):
        raise PrecisionError(f"set_precision needs a resolved precision 'fp32' or 'bf16', got {precision!r}")
    _CURRENT[0] = precision


def current_precision() -> str:
    """The resolved training precision of this process ('fp32' unless set_precision said otherwise)."""
    return _CURRENT[0]


def autocast_for(device: torch.device, enabled: bool = True):
    """bf16 autocast on `device` when this process trains in bf16 (and `enabled`), else a no-op."""
    if enabled and _CURRENT[0] == "bf16" and device.type in ("cpu", "cuda"):
        import torch

        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


_TUNED = [False]


def tune_allocator() -> bool:
    """Keep freed memory in the process (glibc only; idempotent). True when the allocator was tuned."""
    if _TUNED[0]:
        return True
    if os.environ.get("MMHAR_MALLOC_TUNE", "1") == "0" or platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        ok = (libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
              and libc.mallopt(m_top_pad, 64 << 20) == 1)
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    _TUNED[0] = bool(ok)
    return _TUNED[0]


@contextmanager
def training_numerics(threads: int, precision: str) -> Iterator[None]:
    """Train inside this block with `threads` torch threads and the resolved `precision` (allocator tuned);
    the previous thread count and precision are restored on exit."""
    import torch

    saved_threads, saved_precision = torch.get_num_threads(), current_precision()
    torch.set_num_threads(threads)
    set_precision(precision)
    tune_allocator()
    try:
        yield
    finally:
        set_precision(saved_precision)
        torch.set_num_threads(saved_threads)


def numerics(device: torch.device, precision: str) -> str:
    """The device-type/precision tag of keys and records, e.g. 'cpu-bf16'."""
    return f"{device.type}-{precision}"


__all__ = ["PRECISIONS", "PrecisionError", "autocast_for", "cpu_info", "current_precision", "numerics",
           "resolve_precision", "set_precision", "training_numerics", "tune_allocator"]
