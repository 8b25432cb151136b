"""Content fingerprints of raw data files: a byte-identical copy anywhere gives the same fingerprint (so the
same cache entries and cell keys), and any changed byte gives a new one.

File hashes are cached in `<cache dir>/file_hashes.json` under (absolute path, size, mtime, ctime, inode): a
warm load re-reads no file. The change time (ctime) cannot be set back by a program, so a file rewritten with
its size and modification time restored still misses the cache and is hashed again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from benchmark.atomic import atomic_write_json

CACHE_FILE = "file_hashes.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"


def file_digests(files: list[Path], cache_dir: Path | None = None) -> dict[Path, str]:
    """{file: content sha256}, cached by path, size, mtime, ctime and inode in `cache_dir`."""
    cache_path = Path(cache_dir) / CACHE_FILE if cache_dir else None
    cache: dict[str, str] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            cache = {}
    out: dict[Path, str] = {}
    changed = False
    for f in sorted(files):
        key = _stat_key(f)
        digest = cache.get(key)
        if digest is None:
            digest = sha256_file(f)
            cache[key] = digest
            changed = True
        out[f] = digest
    if changed and cache_path is not None:
        try:
            atomic_write_json(cache_path, cache, indent=None)
        except OSError:  # a read-only cache folder costs speed, never correctness
            pass
    return out


def files_fingerprint(files: list[Path], root: Path | None = None, cache_dir: Path | None = None,
                      digests: dict[Path, str] | None = None) -> str:
    """sha256 over (path relative to `root`, content sha256) of every file, in sorted order (16 hex digits)."""
    digests = digests if digests is not None else file_digests(files, cache_dir)
    h = hashlib.sha256()
    for f in sorted(files):
        rel = f.relative_to(root).as_posix() if root is not None else f.name
        h.update(f"{rel}\0{digests[f]}\n".encode())
    return h.hexdigest()[:16]


def same_content(digests: dict[Path, str]) -> list[list[Path]]:
    """Groups of two or more files with byte-identical content (e.g. a clip copied under another name)."""
    groups: dict[str, list[Path]] = {}
    for f, d in digests.items():
        groups.setdefault(d, []).append(f)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def code_tree_hash(root: Path, folders: tuple[str, ...] = ("benchmark", "methods", "datasets")) -> str:
    """sha256 (16 hex digits) over the Python files of the harness and plugin folders: traceable without .git."""
    h = hashlib.sha256()
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*.py")):
            if "__pycache__" in f.parts:
                continue
            h.update(f"{f.relative_to(root).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()[:16]


__all__ = ["code_tree_hash", "files_fingerprint", "sha256_file"]
