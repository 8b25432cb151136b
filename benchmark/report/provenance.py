"""Which records a table is built from: the provenance the current code produces, never the newest date.

A record's provenance is (code version, device type, precision, data fingerprint, harness code hash). A
table never mixes provenances; it keeps the records of its *target* provenance, the first of these that
some record of the table has:

1. the current code's: `CODE_VERSION`, the folder's numerics (the `numerics` its `suite.json` names, written
   by the latest run; else those of most of its records) and the current harness hash (benchmark.codehash);
2. the folder's own: the code version, numerics and harness most of the folder's records share (a folder
   written on another machine, precision or code version, e.g. a committed one, is kept whole);
3. the table's own: those most of its records share (ties: the first in sorted order).

Among the records of that code and numerics, the data fingerprint is that of the newest record (the data the
folder's latest run saw). So one record of another code version, device or precision (a later date included)
can never take a table over; it is left out and named, with the command that removes it. Within a row, records of another
method or dataset plugin code than the row's newest record are left out the same way.

Every metric is checked on read: a value that is not finite, or a fraction metric (accuracy, F1, mAP, p@k,
...) outside [0, 1] (e.g. 99.0, a percentage), makes the record invalid; it is named and never printed.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from benchmark import store

Prov = tuple[str, str, str, str, str]  # code version, device type, precision, data fingerprint, harness hash
UNHASHED = "unhashed"  # the harness hash of records written before code hashes existed


def provenance(rec: dict[str, Any]) -> Prov:
    """What a record's numbers depend on beyond its cell."""
    return (str(rec.get("code_version") or "?"), store.device_type(rec.get("device")),
            str(rec.get("precision") or "unrecorded"), str(rec.get("data_fingerprint") or "?"),
            str((rec.get("code") or {}).get("harness") or UNHASHED))


def describe(prov: tuple[str, ...]) -> str:
    """'code version 3, cpu, precision bf16, data <fingerprint>, harness abc' (the harness part when hashed)."""
    text = f"code version {prov[0]}, {prov[1]}, precision {prov[2]}, data {prov[3]}"
    return text + (f", harness code {prov[4]}" if len(prov) > 4 and prov[4] != UNHASHED else "")


# Metric names (the part after the last '/') that are fractions: accuracy, F1, mAP, precision@k, recall, AUC.
FRACTION = re.compile(r"(balanced_)?accuracy|f1(_\w+)?|map|p@\d+|precision(_\w+)?|recall(_\w+)?|auc(_\w+)?")


def metric_problem(name: str, value: Any) -> str | None:
    """Why a stored metric value is impossible (not finite; a fraction metric outside [0, 1]), or None
    (None: not computed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"metric {name!r} has {value!r}, expected a number"
    if not math.isfinite(value):
        return f"metric {name!r} = {value!r} is not finite"
    if FRACTION.fullmatch(name.rsplit("/", 1)[-1]) and not 0.0 <= value <= 1.0:
        return f"metric {name!r} = {value!r} is not a fraction in [0, 1]"
    return None


def invalid_reason(rec: dict[str, Any]) -> str | None:
    """Why a record's metrics cannot be reported, or None."""
    problems = [p for k, v in rec["metrics"].items() if (p := metric_problem(k, v))]
    return "; ".join(problems) + "; the record is invalid and never reported" if problems else None


def _majority(provs: Iterable[tuple[str, ...]]) -> Any:
    counts = Counter(provs)
    if not counts:
        return None
    return min(counts, key=lambda p: (-counts[p], p))


def folder_numerics(results_dir: Path, records: Iterable[dict[str, Any]]) -> str | None:
    """The numerics the folder's suite resolves: its mark's, else those most of its records have."""
    from benchmark.runner.folder_mark import read_mark

    named = read_mark(results_dir).get("numerics")
    if isinstance(named, str):
        return named
    counts = Counter(store.record_numerics(r, "unrecorded") for r in records)
    return min(counts, key=lambda n: (-counts[n], n)) if counts else None


def _code(p: Prov) -> tuple[str, ...]:
    """The code version, device type, precision and harness of a provenance (all but the data)."""
    return (p[0], p[1], p[2], p[4])


class Target:
    """The folder-wide part of the rule: the current code's provenance and the folder's own."""

    def __init__(self, results_dir: Path, records: list[dict[str, Any]]) -> None:
        from benchmark.codehash import harness_hash
        from benchmark.runner.units import CODE_VERSION

        self.code_version, self.harness = CODE_VERSION, harness_hash()
        self.numerics = folder_numerics(results_dir, records)
        self.folder = _majority(_code(provenance(r)) for r in records)  # code version, numerics, harness

    def is_current(self, prov: Prov) -> bool:
        return (prov[0] == self.code_version and f"{prov[1]}-{prov[2]}" == self.numerics
                and prov[4] == self.harness)

    def choose(self, provs: list[tuple[Prov, tuple]]) -> Prov:
        """The target provenance of a table whose records have `provs` ((provenance, date order) per record):
        the code and numerics by the rule above, then the data fingerprint of the newest of those records."""
        code = _code
        codes = [code(p) for p, _ in provs]
        current = [c for c in codes if self.is_current(cast(Prov, (*c[:3], "", c[3])))]
        if current:
            chosen = _majority(current)
        elif self.folder in codes:
            chosen = self.folder
        else:
            chosen = _majority(codes)
        return max((p for p in provs if code(p[0]) == chosen), key=lambda p: p[1])[0]

    def why_not(self, prov: Prov, chosen: Prov) -> str:
        """Why a record of provenance `prov` is left out of a table built from `chosen`."""
        which = ("the current code's" if self.is_current(chosen) else "the folder's" if _code(chosen) == self.folder
                 else "the table's own")
        return f"{describe(prov)}; its table uses {which} provenance, {describe(chosen)}"


def plugin_code(rec: dict[str, Any]) -> tuple[str, str]:
    """The (method, dataset) plugin code hashes of a record ('-' where not recorded)."""
    code = rec.get("code") or {}
    return (str(code.get("method") or "-"), str(code.get("dataset") or "-"))


def removal_hint(name: str) -> str:
    """The command, run in the results folder, that removes a left-out record (no path of this machine: the
    leaderboard names it)."""
    return f"rm {store.RECORDS_DIR}/{name}"
