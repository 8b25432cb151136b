"""Fetching raw datasets: the generic HTTP and atomic-install parts of `--download`.

The dataset-specific part (which archives, how to unpack and validate them) lives in each dataset
plugin's `download(root, url)`; plugins use `fetch` and `staging` from here, so every dataset gets
the same streamed download, size check and all-or-nothing install.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmark.atomic import owner_tag, remove_orphans
from benchmark.contracts.dataset import DatasetError

CHUNK_BYTES = 1 << 20
USER_AGENT = "mmhar-bench-download/1"
STAGING_MARK = "-download-"  # in the name of a download's hidden staging folder beside its target


class DownloadError(DatasetError):
    """A download failed or gave a file that does not match what the server announced."""


def fetch(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: bool | None = None,
) -> Path:
    """Stream `url` to `dest` (via `dest.part`), checking the size against Content-Length and an optional sha256.

    `progress=None` shows a progress bar only when stderr is a terminal. On any failure nothing is left at
    `dest` and a DownloadError names the URL and says what to do.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if progress is None:
        progress = sys.stderr.isatty()
    digest = hashlib.sha256()
    received = 0
    announced: int | None = None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as resp, open(part, "wb") as out:
            length = resp.headers.get("Content-Length")
            announced = int(length) if length and length.strip().isdigit() else None
            bar = _progress_bar(announced, dest.name) if progress else None
            try:
                while True:
                    chunk = resp.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = " ".join(str(exc).split())
        raise DownloadError(
            f"download of {url} failed after {received} bytes: {reason}. Check the URL and your network "
            f"connection and run the download again (nothing was kept)."
        ) from exc
    problem = None
    if announced is not None and received != announced:
        problem = f"the server announced {announced} bytes but sent {received}: the transfer was cut short"
    elif received == 0:
        problem = "the server sent an empty file"
    elif sha256 and digest.hexdigest() != sha256.lower():
        problem = f"its sha256 is {digest.hexdigest()}, expected {sha256.lower()}: the file is corrupt or changed"
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} is not usable: {problem}. Run the download again (nothing was kept).")
    os.replace(part, dest)
    return dest


def _progress_bar(total: int | None, name: str):  # -> tqdm | None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)


@contextmanager
def staging(target: str | Path) -> Iterator[tuple[Path, Path]]:
    """Yield (stage, scratch) folders beside `target`; on success `stage` is renamed to `target`, else all is removed.

    `stage` is what becomes `target`; `scratch` is for downloaded archives and is always deleted. Both live
    in one hidden temporary folder in `target`'s parent, so the final rename is atomic and a failure
    leaves nothing behind.
    """
    target = Path(target)
    if target.exists():
        raise DatasetError(
            f"{target} already exists; remove it (or choose another data root) before downloading again."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    for orphan in remove_orphans(target.parent, STAGING_MARK):  # what a killed download left
        print(f"removed {orphan.name}: a download staging folder left by a stopped run", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_MARK}{owner_tag()}-", dir=target.parent))
    stage, scratch = tmp / target.name, tmp / "scratch"
    stage.mkdir()
    scratch.mkdir()
    try:
        yield stage, scratch
        os.replace(stage, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_dataset(name: str, root: str | Path | None = None, url: str | None = None) -> Path:
    """Download dataset `name` into the data root (see `benchmark.data.resolve_root`); return its folder.

    `url` overrides where the plugin fetches from (its meaning is the plugin's: e.g. a base URL or a local
    folder holding the archives). A dataset already present is left as it is.
    """
    from benchmark.data import resolve_root
    from benchmark.registry import DATASETS

    plugin = DATASETS.get(name)()
    if not plugin.needs_root:
        raise DatasetError(f"dataset {name!r} is generated on the fly; there is nothing to download.")
    data_root = resolve_root(root)
    folder = plugin.download(data_root, url)
    plugin.find(data_root)  # the installed copy must be found where load_dataset will look
    return Path(folder)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.download NAME [--root DIR] [--url URL]`: download one dataset."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.download", description=main.__doc__)
    parser.add_argument("name", help="a registered dataset name (see run_all.py --list)")
    parser.add_argument("--root", default=None, help="data root (default: $MMHAR_DATA, else ./data)")
    parser.add_argument("--url", default=None, help="override the download location")
    args = parser.parse_args(argv)
    try:
        folder = download_dataset(args.name, args.root, args.url)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} is ready in {folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
