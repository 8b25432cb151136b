"""All-or-nothing file writes: a temp file in the target folder, fsync, then `os.replace`.

Every file the harness stores (records, checkpoints, caches, subset index files) goes through `atomic_write`,
so a crash or interrupt leaves either the old file or the new one, never a half-written one. Temporary
files carry `TMP_MARK` in their name, so a scan can tell (and clean) what a killed writer left.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TMP_MARK = ".tmp-"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call `write(fh)` on a temp file beside `path`, then move it into place (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` all-or-nothing."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text version of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any, indent: int | None = 1) -> None:
    """`payload` as JSON, written all-or-nothing."""
    atomic_write_text(path, json.dumps(payload, indent=indent))
