"""`python -m benchmark.store merge SRC DST`: add the records of a results folder (e.g. a `--baselines` run's)
to another one, when they match it, so a public leaderboard grows without re-running anything.

Every check runs before anything is written; a conflict changes nothing and is named. A SRC record conflicts
when DST holds another record under its key, or a record of the same cell and seed under another key, or
when its provenance (code version, device type, precision, data fingerprint, harness code) is not DST's, or
its suite is not DST's. Records already in DST byte for byte are skipped. The records are written under DST's
lock, each atomically; an interrupted merge leaves whole records, and running it again completes it.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark import store
from benchmark.report.provenance import provenance


class MergeError(ValueError):
    """A merge that would change nothing or conflict; the message names the record and the reason."""


def _full(prov: tuple[str, ...]) -> str:
    return f"code version {prov[0]}, {prov[1]}, precision {prov[2]}, data {prov[3]}, harness code {prov[4]}"


def _ident(rec: dict[str, Any]) -> str:
    return store.canonical_json(rec["cell"])


def plan_merge(src: Path, dst: Path) -> tuple[list[Path], list[str]]:
    """(SRC record files to add, conflicts) of merging SRC into DST."""
    from benchmark.runner.folder_mark import folder_suite

    src_recs, src_bad = store.scan_records(src)
    dst_recs, dst_bad = store.scan_records(dst)
    conflicts = [f"unreadable record: {e}" for e in (*src_bad, *dst_bad)]
    if not src_recs:
        conflicts.append(f"{src} holds no records to merge")
    if not dst_recs:
        conflicts.append(f"{dst} holds no records: copy the folder instead of merging into it")
    if conflicts:
        return [], conflicts
    s_suite, d_suite = folder_suite(src), folder_suite(dst)
    if s_suite and d_suite and s_suite != d_suite:
        conflicts.append(f"{src} holds suite {s_suite}, {dst} suite {d_suite}")
    counts = Counter(provenance(r) for r in dst_recs.values())
    target = min(counts, key=lambda p: (-counts[p], p))
    by_cell = {_ident(r): k for k, r in dst_recs.items()}
    add = []
    for key, rec in sorted(src_recs.items()):
        name = f"{key}.json"
        if key in dst_recs:
            if store.canonical_json(rec) != store.canonical_json(dst_recs[key]):
                conflicts.append(f"{name}: {dst} holds a different record under this key")
            continue
        if _ident(rec) in by_cell:
            conflicts.append(f"{name}: {dst} already holds this cell and seed ({by_cell[_ident(rec)]}.json)")
            continue
        if provenance(rec) != target:
            conflicts.append(f"{name}: provenance {_full(provenance(rec))}; {dst}'s is {_full(target)}")
            continue
        add.append(store.record_path(src, key))
    return add, conflicts


def merge(src: Path, dst: Path) -> list[Path]:
    """Add SRC's matching records to DST (MergeError naming the conflicts, with nothing written)."""
    from benchmark.runner.lock import results_lock

    src, dst = Path(src), Path(dst)

    def check() -> list[Path]:
        add, conflicts = plan_merge(src, dst)
        if conflicts:
            more = f" (and {len(conflicts) - 3} more)" if len(conflicts) > 3 else ""
            raise MergeError(f"nothing merged: {'; '.join(conflicts[:3])}{more}")
        return add

    if not check():  # checked first without the lock, so a refused merge leaves DST without even a lock file
        return []
    with results_lock(dst):
        add = check()
        written = []
        for f in add:
            target = dst / store.RECORDS_DIR / f.name
            store.atomic_write_bytes(target, f.read_bytes())
            written.append(target)
        return written


def main(argv: Sequence[str]) -> int:
    """`merge SRC DST`: exit 0 when merged (or nothing new), 1 on a conflict, 2 on a usage error."""
    from benchmark.runner.units import RunError

    if len(argv) != 3 or argv[0] != "merge":
        print("usage: python -m benchmark.store merge SRC DST", file=sys.stderr)
        return 2
    src, dst = Path(argv[1]), Path(argv[2])
    for folder in (src, dst):
        if not (folder / store.RECORDS_DIR).is_dir():
            print(f"error: {folder} has no records/ folder; name two results folders", file=sys.stderr)
            return 2
    try:
        written = merge(src, dst)
    except (MergeError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"merged {len(written)} record(s) from {src} into {dst}; rebuild its report: python run_all.py "
          f"--report-only --results {dst}")
    return 0
