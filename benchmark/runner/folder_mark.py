"""Which suite (and numerics) a results folder belongs to: `suite.json`, written under the folder's lock.

One suite per folder: a run of another suite into a folder that holds a suite's records stops, naming both,
unless `--merge` is given (then `suites` lists every suite and the report keeps their tables apart). The mark
also holds the numerics (device type and precision) of the folder's latest run, which the report uses as the
folder's target provenance (benchmark.report.provenance).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from benchmark import store

SUITE_MARK = "suite.json"


def read_mark(results_dir: Path) -> dict[str, Any]:
    """The folder's mark ({} when absent or unreadable)."""
    try:
        mark = json.loads((Path(results_dir) / SUITE_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) else {}


def folder_suite(results_dir: Path) -> str | None:
    """The suite that wrote `results_dir`: its mark, else the title of its leaderboard, else None."""
    name = read_mark(results_dir).get("suite")
    if isinstance(name, str):
        return name
    try:
        first = (Path(results_dir) / "leaderboard.md").read_text(encoding="utf-8").split("\n", 1)[0]
    except OSError:
        return None
    m = re.match(r"# Leaderboard: suite `([^`]+)`", first)
    return m.group(1) if m else None


def folder_suites(results_dir: Path) -> list[str]:
    """Every suite whose records the folder holds (more than one only after `--merge`)."""
    listed = read_mark(results_dir).get("suites")
    if isinstance(listed, list) and all(isinstance(s, str) for s in listed):
        return list(listed)
    name = folder_suite(results_dir)
    return [name] if name else []


def has_records(results_dir: Path) -> bool:
    folder = Path(results_dir) / store.RECORDS_DIR
    return folder.is_dir() and any(store.TMP_MARK not in f.name for f in folder.glob("*.json"))


def check_suite(results_dir: Path, suite: str, merge: bool = False) -> str | None:
    """Why a run of `suite` must not write into `results_dir` (it holds another suite's records), or None."""
    held = folder_suites(results_dir)
    if merge or not held or suite in held or not has_records(results_dir):
        return None
    return (f"{results_dir} holds records of suite {', '.join(held)}; a run of suite {suite} there would mix two "
            f"suites in one folder. Pass another --results folder, or --merge to keep both suites there (their "
            f"tables are kept apart)")


def mark_folder(results_dir: Path, suite: str, numerics: str | None = None, merge: bool = False) -> None:
    """Write the folder's mark (call under the folder's lock, after `check_suite`)."""
    held = folder_suites(results_dir) if has_records(results_dir) else []
    mark: dict[str, Any] = {"suite": held[0] if held else suite}
    suites = list(dict.fromkeys([*held, suite])) if merge or not held else held
    if len(suites) > 1:
        mark["suites"] = suites
    if numerics:
        mark["numerics"] = numerics
    store.atomic_write_json(Path(results_dir) / SUITE_MARK, mark)
