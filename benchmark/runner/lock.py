"""An advisory lock on a results folder, so two runs never compute the same cells or clean each other's files.

`results_lock(folder)` takes an exclusive `flock` on `<folder>/.mmhar.lock` (which records the owner's pid, host
and start time) for the whole run; a second run into the same folder stops at once with a RunError naming the
first. The lock goes with the process: a killed run leaves no stale lock (the file stays, unlocked), so the
start-up clean-up of temporary files, which runs under the lock, only ever removes files of finished runs.
"""
from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".mmhar.lock"


@contextmanager
def results_lock(results_dir: Path) -> Iterator[None]:
    """Hold the results folder's lock for the block (RunError if another process holds it)."""
    from benchmark.runner.units import RunError

    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    fh = open(results_dir / LOCK_NAME, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            raise RunError(f"results folder {results_dir} is in use by another run ({owner}); wait for it to "
                           f"finish, or pass another --results folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()
