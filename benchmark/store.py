"""The results store: one JSON record per cell, written atomically, plus the long-format `runs.csv`.

Layout of a results folder:
    records/<cell key>.json        one record per finished cell (schema in `make_record`)
    checkpoints/<pretrain key>.pt  pretrained methods, reused by every protocol (written by benchmark.pretrain)
    runs.csv                       one row per (cell, metric), regenerated from the records

A record is written with a temporary file in the same folder and `os.replace`, so a run killed at any
moment leaves either the complete old state or the complete new record, never half a file. Temporary
files left by a killed run are recognised by `TMP_MARK` in their name and removed by `clean_temp_files`.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import platform
import resource
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.atomic import TMP_MARK, atomic_write_bytes, atomic_write_text  # noqa: F401 (the store's writers)

SCHEMA = 1
RECORDS_DIR = "records"
CHECKPOINTS_DIR = "checkpoints"
RUNS_CSV = "runs.csv"
REPO_ROOT = Path(__file__).resolve().parent.parent
RUNS_COLUMNS = ["key", "dataset", "split", "method", "variant", "protocol", "protocol_variant", "seed",
                "metric", "value", "device", "created"]


class CorruptRecordError(ValueError):
    """A record file that cannot be read or does not follow the schema; the message names the file."""


# -- atomic files: benchmark.atomic (re-exported: the store's writers) ------------------------------


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy/torch scalars, arrays, tuples and paths; NaN/inf become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy / torch scalars and tensors
        return to_jsonable(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} value {obj!r} in a JSON record")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces): the text that cell and pretrain keys hash."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1, sort_keys=True, allow_nan=False) + "\n")


def clean_temp_files(results_dir: Path) -> list[Path]:
    """Remove temporary files that a killed run left in records/ and checkpoints/; return what was removed."""
    removed = []
    for sub in (RECORDS_DIR, CHECKPOINTS_DIR):
        folder = Path(results_dir) / sub
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            if f.is_file() and (TMP_MARK in f.name or f.name.endswith((".tmp", ".part"))):
                f.unlink(missing_ok=True)
                removed.append(f)
    return removed


# -- records --------------------------------------------------------------------------------------
def record_path(results_dir: Path, key: str) -> Path:
    """Where the record of cell `key` lives."""
    return Path(results_dir) / RECORDS_DIR / f"{key}.json"


def device_type(device: Any) -> str:
    """The type of a recorded device without its index: 'cuda:0' -> 'cuda'; '?' where none was recorded."""
    return str(device or "?").split(":", 1)[0]


def record_numerics(rec: dict[str, Any], missing_precision: str = "?") -> str:
    """A record's numerics tag, device type and precision, e.g. 'cpu-bf16' (as `Plan.numerics` writes it)."""
    return f"{device_type(rec.get('device'))}-{rec.get('precision') or missing_precision}"


def checkpoint_path(results_dir: Path, pretrain_key: str) -> Path:
    """Where the checkpoint of pretrain unit `pretrain_key` lives."""
    return Path(results_dir) / CHECKPOINTS_DIR / f"{pretrain_key}.pt"


def read_record(path: Path) -> dict[str, Any]:
    """Load and check one record; a truncated, unparsable or off-schema file raises CorruptRecordError."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptRecordError(f"record {path} cannot be read ({exc}); it will be recomputed") from exc
    problems = []
    if not isinstance(rec, dict):
        problems.append("not a JSON object")
    else:
        if rec.get("schema") != SCHEMA:
            problems.append(f"schema {rec.get('schema')!r} (expected {SCHEMA})")
        if rec.get("key") != path.stem:
            problems.append(f"key {rec.get('key')!r} does not match the file name")
        if not isinstance(rec.get("cell"), dict):
            problems.append("no 'cell' object")
        if not isinstance(rec.get("metrics"), dict):
            problems.append("no 'metrics' object")
    if problems:
        raise CorruptRecordError(f"record {path} is invalid: {'; '.join(problems)}; it will be recomputed")
    return rec


def scan_records(results_dir: Path) -> tuple[dict[str, dict[str, Any]], list[CorruptRecordError]]:
    """All valid records by key, and the errors of the corrupt ones (which callers report and recompute)."""
    folder = Path(results_dir) / RECORDS_DIR
    good: dict[str, dict[str, Any]] = {}
    bad: list[CorruptRecordError] = []
    if not folder.is_dir():
        return good, bad
    for f in sorted(folder.glob("*.json")):
        if TMP_MARK in f.name:
            continue
        try:
            good[f.stem] = read_record(f)
        except CorruptRecordError as exc:
            bad.append(exc)
    return good, bad


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Store one record atomically under its key."""
    path = record_path(results_dir, record["key"])
    atomic_write_json(path, record)
    return path


# -- provenance -----------------------------------------------------------------------------------
@functools.cache
def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit hash, dirty flag and a hash of the code tree (traceable without .git).

    `dirty` counts tracked changes and untracked Python files under benchmark/, methods/ and datasets/
    (every file there is imported); `untracked_code` lists how many such untracked files there are. Changes
    under results/ do not count: a run appends to its folder's invocations.jsonl as it starts, and a worker
    process that asks after that would call a clean checkout dirty.
    """
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    from benchmark.fingerprint import code_tree_hash

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "benchmark", "methods", "datasets")
    n_untracked = None if untracked is None else sum(1 for f in untracked.splitlines() if f.endswith(".py"))
    dirty = None if status is None else bool(status.strip()) or bool(n_untracked)
    return {"commit": commit.strip() if commit else None, "dirty": dirty, "untracked_code": n_untracked,
            "code_tree": code_tree_hash(repo)}


@functools.cache
def package_versions() -> dict[str, str | None]:
    """Versions of Python, the platform and the numerical packages a result depends on."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("mmhar-bench", "torch", "numpy", "scipy", "scikit-learn", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if out["mmhar-bench"] is None:
        import benchmark

        out["mmhar-bench"] = benchmark.__version__
    try:
        import torch

        out["torch"] = torch.__version__
        out["cuda"] = torch.version.cuda
        out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        out["cpu_threads"] = str(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return out


def peak_memory_mb(device: Any = "cpu") -> float:
    """Peak memory in MiB: CUDA max allocated on a GPU device, else this process's peak resident set size."""
    dev = str(device)
    if dev.startswith("cuda"):
        import torch

        return round(torch.cuda.max_memory_allocated(torch.device(dev)) / 2**20, 1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def make_record(
    *,
    key: str,
    cell: dict[str, Any],
    metrics: dict[str, float],
    per_class: dict[str, Any] | None = None,
    artifacts: dict[str, Any] | None = None,
    timings: dict[str, Any],
    params: dict[str, Any],
    peak_memory: float,
    device: str,
    data_fingerprint: str,
    code_version: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a schema-1 record (see the interfaces page); `extra` adds further top-level keys."""
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "key": key,
        "cell": cell,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "per_class": per_class or {},
        "artifacts": artifacts or {},
        "timings": timings,
        "params": params,
        "peak_memory_mb": peak_memory,
        "device": device,
        "git": git_info(),
        "versions": package_versions(),
        "data_fingerprint": data_fingerprint,
        "code_version": code_version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    rec.update(extra or {})
    return to_jsonable(rec)


# -- runs.csv -------------------------------------------------------------------------------------
def runs_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long-format rows (one per cell and metric), sorted for byte-stable output."""
    rows = []
    for rec in records:
        c = rec["cell"]
        for metric, value in rec["metrics"].items():
            rows.append({
                "key": rec["key"], "dataset": c.get("dataset"), "split": c.get("split"), "method": c.get("method"),
                "variant": c.get("variant"), "protocol": c.get("protocol"),
                "protocol_variant": c.get("protocol_variant"), "seed": c.get("seed"), "metric": metric,
                "value": "" if value is None else repr(float(value)), "device": rec.get("device"),
                "created": rec.get("created"),
            })
    rows.sort(key=lambda r: tuple(str(r[k]) for k in ("dataset", "split", "variant", "protocol_variant", "seed",
                                                       "metric", "key")))
    return rows


def write_runs_csv(results_dir: Path) -> Path:
    """Regenerate `<results_dir>/runs.csv` from the records (corrupt records are skipped)."""
    records, _ = scan_records(results_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RUNS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(runs_rows(records.values()))
    path = Path(results_dir) / RUNS_CSV
    atomic_write_text(path, buf.getvalue())
    return path


if __name__ == "__main__":  # python -m benchmark.store merge SRC DST
    from benchmark.merge import main

    sys.exit(main(sys.argv[1:]))
