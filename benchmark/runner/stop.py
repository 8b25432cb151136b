"""A stop asked by a signal (SIGINT, SIGTERM), remembered: should its KeyboardInterrupt be swallowed somewhere, the
runner's next check (between cells, while waiting for workers) still stops the run."""
from __future__ import annotations

import time

_asked: list[float] = []


def request() -> None:
    """Remember that a stop was asked (called by the signal handlers)."""
    if not _asked:
        _asked.append(time.monotonic())


def requested() -> bool:
    """Whether a stop was asked since the last `reset`."""
    return bool(_asked)


def reset() -> None:
    """Forget an earlier stop (a new run in the same process)."""
    _asked.clear()


def check() -> None:
    """Raise KeyboardInterrupt when a stop was asked."""
    if _asked:
        raise KeyboardInterrupt("stop requested")
