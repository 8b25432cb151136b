"""A stop asked by a signal (SIGINT, SIGTERM), remembered: should its KeyboardInterrupt be swallowed somewhere, the
runner's next check (between cells, while waiting for workers) still stops the run.

Only armed while the command line runs (`cli.main` arms it, and disarms it on return), so library calls and
tests in the same process never inherit an old stop.
"""
from __future__ import annotations

import time

_asked: list[float] = []
_armed: list[bool] = []


def arm() -> None:
    """Start remembering stops (forgets an earlier one)."""
    _asked.clear()
    _armed[:] = [True]


def disarm() -> None:
    """Stop remembering; forget any stop."""
    _asked.clear()
    _armed.clear()


def request() -> None:
    """Remember that a stop was asked (called by the signal handlers); a no-op unless armed."""
    if _armed and not _asked:
        _asked.append(time.monotonic())


def requested() -> bool:
    """Whether a stop was asked since `arm`."""
    return bool(_asked)


def check() -> None:
    """Raise KeyboardInterrupt when a stop was asked."""
    if _asked:
        raise KeyboardInterrupt("stop requested")
