"""A run-time guard that every protocol reads the test split's inputs exactly once per evaluation.

`Protocol` subclasses get their `run` wrapped (`guard_run`): while it runs, every data read of the
evaluation code (`protocols.base.gather`, which `encode` uses) is checked against the split's test part:

- a read of exactly the test clips counts as the evaluation's one test read;
- a read that mixes test clips into anything else (training, validation, a gallery) fails at once;
- when `run` returns, a protocol that delegated to other protocols (semisup's evaluators) must not have read
  the test part itself, and every other one must have read it exactly once. A plugin protocol that reads
  the data without the harness's helpers (`gather`, `encode`) is not observed (0 reads through them pass);
  the harness's own protocols must read through them.

A violation raises `TestSplitReadError`, so a protocol that peeks at test data, or scores twice and keeps the
better, cannot produce a record.
"""
from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class TestSplitReadError(AssertionError):
    """A protocol read the test split other than exactly once, or mixed test clips into another read."""

    __test__ = False  # not a pytest test class


@dataclass
class _Frame:
    protocol: str
    test: np.ndarray  # sorted test indices
    strict: bool  # the harness's own protocols: every read goes through `gather`
    reads: int = 0
    other_reads: int = 0
    nested: int = 0


_STACK: contextvars.ContextVar[tuple[_Frame, ...]] = contextvars.ContextVar("mmhar_test_guard", default=())


def note_read(idx: Any) -> None:
    """Called for every data read of evaluation code: count a test read, refuse a mixed one."""
    stack = _STACK.get()
    if not stack:
        return
    frame = stack[-1]
    ids = np.asarray(idx).reshape(-1)
    if ids.size == frame.test.size and np.array_equal(np.sort(ids), frame.test):
        frame.reads += 1
        return
    frame.other_reads += 1
    mixed = int(np.isin(ids, frame.test).sum())
    if mixed:
        raise TestSplitReadError(f"protocol {frame.protocol!r} read {mixed} test clip(s) together with {ids.size - mixed} "
                                 f"other clip(s): test clips must never enter training, validation or a gallery")


def guard_run(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a protocol's `run(pre, data, split, cfg, seed, ...)` with the test-read accounting."""

    @functools.wraps(run)
    def wrapper(self: Any, pre: Any, data: Any, split: Any, *args: Any, **kwargs: Any) -> Any:
        stack = _STACK.get()
        if stack:
            stack[-1].nested += 1
        frame = _Frame(getattr(self, "name", type(self).__name__), np.sort(np.asarray(split.test).reshape(-1)),
                       strict=type(self).__module__.startswith("benchmark.protocols."))
        token = _STACK.set(stack + (frame,))
        try:
            result = run(self, pre, data, split, *args, **kwargs)
        finally:
            _STACK.reset(token)
        expected = 0 if frame.nested else 1
        unobserved = not frame.strict and frame.reads == frame.other_reads == 0
        if frame.reads != expected and not unobserved:
            raise TestSplitReadError(f"protocol {frame.protocol!r} read the test split {frame.reads} time(s) in one "
                                     f"evaluation; it must encode it exactly {expected} time(s)"
                                     + (" (it delegated to other protocols)" if frame.nested else ""))
        return result

    wrapper.__mmhar_guarded__ = True  # type: ignore[attr-defined]
    return wrapper
