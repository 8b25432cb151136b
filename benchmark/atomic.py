"""All-or-nothing file writes: a temp file in the target folder, fsync, then `os.replace`.

Every file the harness stores (records, checkpoints, caches, subset index files) goes through `atomic_write`,
so a crash or interrupt leaves either the old file or the new one, never a half-written one. Temporary
files carry `TMP_MARK` and their writer's host and pid in their name (`.<name>.tmp-<host>-<pid>-<random>`),
so `remove_orphans` can delete what a killed writer left in a folder shared by several runs (the preprocessing
cache, a data root) without touching a live writer's file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TMP_MARK = ".tmp-"
LEGACY_ORPHAN_AGE_S = 24 * 3600  # temp names without an owner (older versions) count as orphans after a day
_OWNER = re.compile(r"-([0-9a-f]{8})-(\d+)-")


def owner_tag() -> str:
    """`<host hash>-<pid>`: who writes a temporary file (goes into its name)."""
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def owner_gone(tag: str) -> bool:
    """Whether the process of an `owner_tag()` runs on this host and has exited (False for other hosts)."""
    host, _, pid = tag.partition("-")
    return host == owner_tag().split("-")[0] and pid.isdigit() and not _alive(int(pid))


def is_orphan(path: Path, mark: str = TMP_MARK) -> bool:
    """True for a temporary file or folder (named with `mark`) whose writer is gone: its pid is dead on this host,
    or it names no owner and is older than LEGACY_ORPHAN_AGE_S. Files of other hosts are never orphans here."""
    name = path.name
    if mark not in name:
        return False
    m = _OWNER.search(name[name.index(mark) + len(mark) - 1:])
    if m is None:
        try:
            return time.time() - path.stat().st_mtime > LEGACY_ORPHAN_AGE_S
        except OSError:
            return False
    host, pid = m.group(1), int(m.group(2))
    return host == owner_tag().split("-")[0] and not _alive(pid)


def remove_orphans(folder: str | Path, mark: str = TMP_MARK) -> list[Path]:
    """Delete the orphaned temporary files and folders (see `is_orphan`) directly in `folder`; return them."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if not is_orphan(p, mark):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue
        removed.append(p)
    return removed


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call `write(fh)` on a temp file beside `path`, then move it into place (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}{owner_tag()}-")
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
