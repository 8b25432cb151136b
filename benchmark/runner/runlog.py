"""The invocation log of a results folder: one line when a run starts and one when it ends.

`<results>/invocations.jsonl` lets the report say how a folder was produced: how many runs it took, which were
interrupted (a start line without an end line: killed; or an end line with status "interrupted") and their
summed wall time, next to the compute time summed from the records (`report.compute`). Lines are appended,
flushed and synced one at a time while the folder's run lock is held; a line cut short by a crash is skipped
(and counted) when the log is read.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOG_NAME = "invocations.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _append(results_dir: Path, entry: dict[str, Any]) -> None:
    path = Path(results_dir) / LOG_NAME
    line = json.dumps(entry, sort_keys=True) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:  # a log that cannot be written never stops a run
        pass


class RunLog:
    """Start and end lines of one invocation (`start`, then `end`)."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self.run_id = uuid.uuid4().hex[:12]
        self._t0 = time.perf_counter()

    def start(self, **facts: Any) -> None:
        """Append the start line: when, where, and the facts given (cells to run, device, workers, commit)."""
        self._t0 = time.perf_counter()
        _append(self.results_dir, {"event": "start", "run": self.run_id, "time": _now(),
                                   "host": socket.gethostname(), **facts})

    def end(self, status: str, **facts: Any) -> None:
        """Append the end line: 'done', 'failed' (some cells failed) or 'interrupted', with the wall seconds."""
        _append(self.results_dir, {"event": "end", "run": self.run_id, "time": _now(), "status": status,
                                   "wall_s": round(time.perf_counter() - self._t0, 1), **facts})


def read_log(results_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """The log's runs in order, start and end merged per run ({'start': {...}, 'end': {...} or None}), and the
    number of lines that could not be read."""
    path = Path(results_dir) / LOG_NAME
    if not path.is_file():
        return [], 0
    runs: dict[str, dict[str, Any]] = {}
    bad = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            run, event = entry["run"], entry["event"]
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        slot = runs.setdefault(run, {"start": None, "end": None})
        if event in slot:
            slot[event] = entry
    ordered = sorted(runs.values(), key=lambda r: str((r["start"] or r["end"] or {}).get("time", "")))
    return ordered, bad
