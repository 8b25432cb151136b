"""Records -> tidy entries: reading, validating and de-duplicating a results folder (no numbers here).

A record is one evaluated cell (see the record schema in benchmark.store). Rows of a table are method
labels (the variant name, extended by the differing config keys when one variant was run with several
configs); tables are (dataset, split, protocol variant). When a folder holds several records of the same
cell and seed of one provenance, the newest one counts.

A table never mixes provenance: records that differ in code version, device type, precision, data
fingerprint or harness code are not averaged together. Each table keeps the records of its target
provenance, the current code's where the table has such records (benchmark.report.provenance, never the
newest date); the others, and records with impossible metrics, are left out and listed, with the reason and
the command that removes them, in `ResultSet.dropped` (and in the leaderboard), unless `allow_mixed` says to
combine provenances anyway.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from benchmark import store
from benchmark.report import provenance as prov_rules
from benchmark.report.main_metric import declared_main_metric, metric_name

TableId = tuple[str, str, str]  # (dataset, split, table label)


class ReportError(ValueError):
    """A record folder or record that the report cannot read; the message names the file and the fix."""


@dataclass(frozen=True)
class Entry:
    """One record, flattened: where it belongs (table, row, seed) and what it measured."""

    source: str
    dataset: str
    split: str
    method: str
    variant: str
    label: str  # row label: the variant, plus the differing config keys when needed
    protocol: str
    protocol_variant: str
    table: str  # table label: the protocol variant, plus differing protocol config keys when needed
    protocol_cfg: dict[str, Any]
    seed: int
    metrics: dict[str, float]
    per_class: dict[str, Any]
    artifacts: dict[str, Any]
    main_metric: str | None  # as stated by the record, if it states one
    method_cfg: dict[str, Any] = field(default_factory=dict)  # the cell's method overrides (modality included)
    predictions: dict[str, Any] | None = None  # the record's per-clip `test_predictions` (None in older records)
    provenance: tuple[str, ...] = ()  # code version, device type, precision, data fingerprint (`provenance`)
    commit: str | None = None  # the git commit the record was produced at (None: unknown)
    health: dict[str, Any] = field(default_factory=dict)  # the record's `feature_health` per encoder ({} if none)
    resources: dict[str, Any] = field(default_factory=dict)  # params, timings, memory, device (`_resources`)


@dataclass
class ResultSet:
    """The entries of a results folder, after de-duplication and the provenance check."""

    entries: list[Entry]
    n_files: int
    superseded: int
    _memo: dict = field(default_factory=dict, repr=False, compare=False)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (record file, why it was left out)
    mixed: bool = False  # allow_mixed was given and some table combines provenances
    baselines: dict[str, Any] | None = None  # what joined the folder's baselines (benchmark.report.baseline_rows)

    def by_table(self) -> dict[TableId, list[Entry]]:
        """Entries grouped by (dataset, split, table label)."""
        if "by_table" not in self._memo:
            groups: dict[TableId, list[Entry]] = defaultdict(list)
            for e in self.entries:
                groups[(e.dataset, e.split, e.table)].append(e)
            self._memo["by_table"] = dict(groups)
        return self._memo["by_table"]

    def frame(self) -> pd.DataFrame:
        """Long format: one row per (entry, metric) with finite values."""
        rows = [
            (e.dataset, e.split, e.protocol, e.table, e.label, e.seed, m, v)
            for e in self.entries for m, v in e.metrics.items() if math.isfinite(v)
        ]
        cols = ["dataset", "split", "protocol", "table", "label", "seed", "metric", "value"]
        return pd.DataFrame(rows, columns=cols)

    def main_metric(self, dataset: str) -> str:
        """The dataset's headline metric: the records' own statement, else the dataset plugin's declaration."""
        stated = sorted({e.main_metric for e in self.entries if e.dataset == dataset and e.main_metric})
        if len(stated) == 1:
            return stated[0]
        memo = ("declared_main_metric", dataset)
        if memo not in self._memo:
            self._memo[memo] = declared_main_metric(dataset)
        return self._memo[memo]


def canonical(obj: Any) -> str:
    """Stable JSON text of a config, used as an identity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically ('p@5' < 'p@10', 'knn5' < 'knn10')."""
    parts = re.split(r"(\d+(?:\.\d+)?)", str(text))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p != "")


def _require(obj: dict, key: str, where: str, kind: type) -> Any:
    if key not in obj:
        raise ReportError(f"{where}: missing key {key!r}; regenerate this record with the current runner "
                          f"or delete it")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ReportError(f"{where}: key {key!r} has {value!r}, expected {kind.__name__}")
    return value


def read_record(path: Path) -> dict[str, Any]:
    """Parse and validate one record file (the store's schema check, then the cell fields)."""
    try:
        rec = store.read_record(path)
    except store.CorruptRecordError as exc:
        raise ReportError(f"{exc} (delete it or re-run the suite, then rebuild the report)") from None
    cell = rec["cell"]
    for key in ("dataset", "split", "method", "variant", "protocol"):
        _require(cell, key, f"record {path}: cell", str)
    _require(cell, "seed", f"record {path}: cell", int)
    return rec  # metric values are checked by `collect` (benchmark.report.provenance.invalid_reason)


def load_records(results_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """All (file name, record) pairs of `<results_dir>/records/*.json`, sorted by file name."""
    folder = Path(results_dir) / store.RECORDS_DIR
    files = sorted(f for f in folder.glob("*.json") if store.TMP_MARK not in f.name) if folder.is_dir() else []
    if not files:
        raise ReportError(f"no records in {folder}: run a suite first (python run_all.py --suite smoke) "
                          f"or point the report at the results folder that holds records/")
    return [(f.name, read_record(f)) for f in files]


def _disambiguate(base: dict[int, str], cfgs: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Labels: the base name, extended by 'k=v' of the config keys that differ among same-named items."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in base.items():
        groups[name].append(i)
    out: dict[int, str] = {}
    for name, ids in groups.items():
        distinct = {canonical(cfgs[i]) for i in ids}
        if len(distinct) == 1:
            out.update({i: name for i in ids})
            continue
        keys = sorted({k for i in ids for k in cfgs[i]})
        differing = [k for k in keys if len({canonical(cfgs[i].get(k, "default")) for i in ids}) > 1]
        for i in ids:
            tag = ", ".join(f"{k}={_short(cfgs[i].get(k, 'default'))}" for k in differing)
            out[i] = f"{name} ({tag})"
    return out


def _short(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


def provenance(rec: dict[str, Any]) -> tuple[str, ...]:
    """What a record's numbers depend on beyond its cell (benchmark.report.provenance)."""
    return prov_rules.provenance(rec)


def describe_provenance(prov: tuple[str, ...]) -> str:
    return prov_rules.describe(prov)


def _cell_ident(c: dict[str, Any]) -> str:
    return canonical([c["dataset"], c["split"], c["method"], c["variant"], c.get("method_cfg") or {},
                      c["protocol"], c.get("protocol_variant") or c["protocol"], c.get("protocol_cfg") or {},
                      c["seed"]])


def _order(name: str, rec: dict[str, Any]) -> tuple:
    return (str(rec.get("created", "")), str(rec.get("key", "")), name)


def _current_plugin_code(rec: dict[str, Any], memo: dict[tuple[str, str], tuple[str, str] | None]
                         ) -> tuple[str, str] | None:
    """The (method, dataset) plugin code hashes the current code gives a record's cell (None: a plugin of the
    record is not registered here, so the current code cannot be told)."""
    c = rec["cell"]
    key = (str(c.get("method")), str(c.get("dataset")))
    if key not in memo:
        from benchmark.codehash import plugin_hash
        from benchmark.registry import DATASETS, METHODS
        memo[key] = ((plugin_hash(METHODS.get(key[0])), plugin_hash(DATASETS.get(key[1])))
                     if key[0] in METHODS and key[1] in DATASETS else None)
    return memo[key]


def _row_code(items: list[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    """Per row (variant and method config), the records of one plugin code: the current plugins' code where some
    record has it, else the code most of the row's records share (ties: the newest), never simply the newest."""
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for name, rec in items:
        c = rec["cell"]
        rows[canonical([c["variant"], c.get("method_cfg") or {}])].append((name, rec))
    kept, dropped = [], []
    memo: dict[tuple[str, str], tuple[str, str] | None] = {}
    for row in rows.values():
        codes = [prov_rules.plugin_code(rec) for _, rec in row]
        if len(set(codes)) == 1:
            kept.extend(row)
            continue
        current = {_current_plugin_code(rec, memo) for _, rec in row} - {None}
        chosen = next((c for c in codes if c in current), None)
        why = "the current plugins' code"
        if chosen is None:
            counts = Counter(codes)
            top = max(counts.values())
            chosen = prov_rules.plugin_code(max((p for p in row if counts[prov_rules.plugin_code(p[1])] == top),
                                                key=lambda p: _order(*p))[1])
            why = "the code most of its records share"
        for name, rec in row:
            if prov_rules.plugin_code(rec) == chosen:
                kept.append((name, rec))
            else:
                dropped.append((name, f"plugin code (method, dataset) {prov_rules.plugin_code(rec)}; its row uses "
                                      f"{why}, {chosen}"))
    return kept, dropped


def _current_consistent(pairs: list[tuple[str, dict[str, Any]]], allow_mixed: bool, target: prov_rules.Target,
                        suites: list[str], any_data: bool = False
                        ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]], bool]:
    """Per table, the records of its target provenance (benchmark.report.provenance); per cell and seed, the
    newest of them. `any_data`: keep every data fingerprint of the target code and numerics (a baseline
    folder's records, which are then checked against the new run's data)."""
    def prov(rec: dict[str, Any]) -> tuple[str, ...]:
        p = provenance(rec)
        return p[:3] + p[4:] if any_data else p

    by_table: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for name, rec in pairs:
        c = rec["cell"]
        by_table[canonical([c["dataset"], c["split"], c.get("protocol_variant") or c["protocol"],
                            _suite_of(rec, suites)])].append((name, rec))
    kept_pairs: list[tuple[str, dict[str, Any]]] = []
    dropped: list[tuple[str, str]] = []
    mixed = False
    for items in by_table.values():
        provs = {prov(rec) for _, rec in items}
        if len(provs) > 1 and not allow_mixed:
            full = target.choose([(cast(prov_rules.Prov, provenance(rec)), _order(name, rec)) for name, rec in items])
            chosen = full[:3] + full[4:] if any_data else full
            for name, rec in items:
                if prov(rec) != chosen:
                    dropped.append((name, target.why_not(cast(prov_rules.Prov, provenance(rec)), full)))
            items = [p for p in items if prov(p[1]) == chosen]
        if not allow_mixed:
            items, left = _row_code(items)
            dropped.extend(left)
        mixed = mixed or len(provs) > 1
        newest: dict[str, tuple[tuple, str, dict]] = {}
        for name, rec in items:
            ident = _cell_ident(rec["cell"])
            if ident not in newest or _order(name, rec) > newest[ident][0]:
                newest[ident] = (_order(name, rec), name, rec)
        kept_pairs.extend((name, rec) for _, name, rec in newest.values())
    return sorted(kept_pairs, key=lambda p: p[0]), sorted(dropped), mixed and allow_mixed


def _suite_of(rec: dict[str, Any], suites: list[str]) -> str | None:
    """The suite a record belongs to when the folder holds several (after --merge), else None."""
    if len(suites) < 2:
        return None
    return str(rec.get("suite") or suites[0])


def _resources(rec: dict[str, Any]) -> dict[str, Any]:
    """What a record says about its cost (benchmark.report.efficiency reads it)."""
    timings, params = rec.get("timings") or {}, rec.get("params") or {}
    return {"encoders": dict(params.get("encoders") or {}), "pretrain_key": (rec.get("pretrain") or {}).get("key"),
            "pretrain_s": timings.get("pretrain_s"), "peak_memory_mb": rec.get("peak_memory_mb"),
            "device": rec.get("device"), "cpu_model": (rec.get("cpu") or {}).get("model"),
            "gpu": (rec.get("versions") or {}).get("gpu"),
            "length": (rec.get("training_profile") or {}).get("length")}


def collect(results_dir: Path, allow_mixed: bool = False) -> ResultSet:
    """Load, validate and de-duplicate the records of a results folder (see the module docstring)."""
    from benchmark.runner.folder_mark import folder_suites

    pairs = load_records(results_dir)
    invalid = [(name, why) for name, rec in pairs if (why := prov_rules.invalid_reason(rec))]
    bad = {name for name, _ in invalid}
    valid = [(name, rec) for name, rec in pairs if name not in bad]
    suites = folder_suites(results_dir)
    target = prov_rules.Target(results_dir, [rec for _, rec in valid])
    kept, dropped, mixed = _current_consistent(valid, allow_mixed, target, suites)
    dropped = [(name, f"{why}; to remove it, in the results folder: {prov_rules.removal_hint(name)} (a rerun of "
                      f"its suite recomputes it when planned)") for name, why in [*invalid, *dropped]]
    superseded = len(pairs) - len(kept) - len(dropped)
    kept, more, baselines = _with_baselines(results_dir, kept, allow_mixed)
    dropped += more
    cells = {i: rec["cell"] for i, (_, rec) in enumerate(kept)}
    labels = _disambiguate({i: c["variant"] for i, c in cells.items()},
                           {i: c.get("method_cfg") or {} for i, c in cells.items()})
    if baselines is not None:
        from benchmark.report.baseline_rows import row_labels

        labels = row_labels(labels, kept)
    tables = _disambiguate({i: c.get("protocol_variant") or c["protocol"] for i, c in cells.items()},
                           {i: {**(c.get("protocol_cfg") or {}),
                                **({"suite": _suite_of(kept[i][1], suites)} if len(suites) > 1 else {})}
                            for i, c in cells.items()})
    entries = []
    for i, (name, rec) in enumerate(kept):
        c = cells[i]
        entries.append(Entry(
            source=name, dataset=c["dataset"], split=c["split"], method=c["method"], variant=c["variant"],
            label=labels[i], protocol=c["protocol"],
            protocol_variant=c.get("protocol_variant") or c["protocol"], table=tables[i],
            protocol_cfg=dict(c.get("protocol_cfg") or {}), seed=int(c["seed"]),
            metrics={k: (math.nan if v is None else float(v)) for k, v in rec["metrics"].items()},
            per_class=dict(rec.get("per_class") or {}), artifacts=dict(rec.get("artifacts") or {}),
            main_metric=metric_name(rec.get("main_metric") or c.get("main_metric")),
            method_cfg=dict(c.get("method_cfg") or {}),
            predictions=rec.get("test_predictions") or None, provenance=provenance(rec),
            commit=(rec.get("git") or {}).get("commit"), health=dict(rec.get("feature_health") or {}),
            resources=_resources(rec),
        ))
    from benchmark.report.folds import family_entries

    pooled, unpooled = family_entries(entries, allow_mixed)
    entries.extend(pooled)
    dropped = sorted(dropped + unpooled)
    return ResultSet(entries, n_files=len(pairs) + (baselines["used"] if baselines else 0),
                     superseded=superseded - len(unpooled), dropped=dropped, mixed=mixed, baselines=baselines)


def _with_baselines(results_dir: Path, kept: list[tuple[str, dict[str, Any]]], allow_mixed: bool
                    ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]], dict[str, Any] | None]:
    """The folder's own records plus the comparable records of its baselines (`baselines.json`), if it has any."""
    from benchmark.baselines import BaselineError, read_mark
    from benchmark.report import baseline_rows

    try:
        mark = read_mark(results_dir)
    except BaselineError as exc:
        raise ReportError(str(exc)) from None
    if mark is None:
        return kept, [], None
    folder = baseline_rows.baseline_dir(mark)
    if not (folder / store.RECORDS_DIR).is_dir():
        return kept, [("baselines.json", f"its baseline folder {mark['folder']} is not there: your rows alone")], None
    pairs = load_records(folder)
    left = [(n, f"invalid in the baseline folder: {why}") for n, r in pairs if (why := prov_rules.invalid_reason(r))]
    pairs = [p for p in pairs if not prov_rules.invalid_reason(p[1])]
    base_kept, base_left, _ = _current_consistent(pairs, allow_mixed,
                                                  prov_rules.Target(folder, [r for _, r in pairs]), [], any_data=True)
    left += [(n, f"left out of the baseline folder's own tables: {why}") for n, why in base_left]
    added, unusable, info = baseline_rows.join(mark, kept, base_kept)
    unusable += [(baseline_rows.PREFIX + n, why) for n, why in left]
    info["unusable"] = len(unusable)
    return sorted(kept + added, key=lambda p: p[0]), sorted(unusable), info
