"""Records -> tidy entries and the numbers every table and figure shows (no formatting here).

A record is one evaluated cell (see the record schema in benchmark.store). Rows of a table are method
labels (the variant name, extended by the differing config keys when one variant was run with several
configs); tables are (dataset, split, protocol variant). When a folder holds several records of the same
cell and seed (e.g. after a code change re-ran it), the newest one counts.
"""
from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from benchmark import store
from benchmark.report import stats

HEADLINE_METRICS = ("accuracy", "f1_macro")
# Datasets scored by another metric than accuracy when the records do not say (spec 5.2: MMAct uses macro-F1).
DEFAULT_MAIN_METRIC = {"mmact": "f1_macro"}
# How datasets may name their main metric (DatasetPlugin.main_metric) -> the metric key in records.
METRIC_ALIASES = {"f1": "f1_macro", "f1-score": "f1_macro", "f1_score": "f1_macro", "acc": "accuracy"}
MAIN_GROUP = "main"  # group of further metrics without a '<group>/' prefix
_PK = re.compile(r"^(?:(?P<view>.+)/)?p@(?P<k>\d+)$")


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


@dataclass
class ResultSet:
    """The entries of a results folder, after de-duplication."""

    entries: list[Entry]
    n_files: int
    superseded: int
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def by_table(self) -> dict[tuple[str, str, str], list[Entry]]:
        """Entries grouped by (dataset, split, table label)."""
        if "by_table" not in self._memo:
            groups: dict[tuple[str, str, str], list[Entry]] = defaultdict(list)
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
        """The dataset's headline metric: the records' own statement, else accuracy (macro-F1 for mmact)."""
        stated = sorted({e.main_metric for e in self.entries if e.dataset == dataset and e.main_metric})
        if len(stated) == 1:
            return stated[0]
        return DEFAULT_MAIN_METRIC.get(dataset, "accuracy")


# ----------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------
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
    """Parse and validate one record file (the store's schema check, then the cell fields and metrics)."""
    try:
        rec = store.read_record(path)
    except store.CorruptRecordError as exc:
        raise ReportError(f"{exc} (delete it or re-run the suite, then rebuild the report)") from None
    cell = rec["cell"]
    for key in ("dataset", "split", "method", "variant", "protocol"):
        _require(cell, key, f"record {path}: cell", str)
    _require(cell, "seed", f"record {path}: cell", int)
    for name, value in rec["metrics"].items():
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise ReportError(f"record {path}: metric {name!r} has {value!r}, expected a number")
    return rec


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


def _metric_name(name: Any) -> str | None:
    return METRIC_ALIASES.get(name, name) if isinstance(name, str) and name else None


def _short(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


def collect(results_dir: Path) -> ResultSet:
    """Load, validate and de-duplicate the records of a results folder."""
    pairs = load_records(results_dir)
    newest: dict[str, tuple[tuple, str, dict]] = {}
    for name, rec in pairs:
        c = rec["cell"]
        ident = canonical([c["dataset"], c["split"], c["method"], c["variant"], c.get("method_cfg") or {},
                           c["protocol"], c.get("protocol_variant") or c["protocol"],
                           c.get("protocol_cfg") or {}, c["seed"]])
        order = (str(rec.get("created", "")), str(rec.get("key", "")), name)
        if ident not in newest or order > newest[ident][0]:
            newest[ident] = (order, name, rec)
    kept = sorted(((name, rec) for _, name, rec in newest.values()), key=lambda p: p[0])
    cells = {i: rec["cell"] for i, (_, rec) in enumerate(kept)}
    labels = _disambiguate({i: c["variant"] for i, c in cells.items()},
                           {i: c.get("method_cfg") or {} for i, c in cells.items()})
    tables = _disambiguate({i: c.get("protocol_variant") or c["protocol"] for i, c in cells.items()},
                           {i: c.get("protocol_cfg") or {} for i, c in cells.items()})
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
            main_metric=_metric_name(rec.get("main_metric") or c.get("main_metric")),
            method_cfg=dict(c.get("method_cfg") or {}),
        ))
    return ResultSet(entries, n_files=len(pairs), superseded=len(pairs) - len(kept))


# ----------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------
TableId = tuple[str, str, str]  # (dataset, split, table label)


@dataclass(frozen=True)
class MetricCell:
    """One metric of one leaderboard row: summary over seeds, best flag, comparison with the best."""

    summary: stats.Summary
    best: bool
    comparison: stats.Comparison | None  # None for the best row itself and for rows without a finite mean


@dataclass
class Leaderboard:
    """Rows (method labels, best first) of one (dataset, split, protocol variant) on the headline metrics."""

    dataset: str
    split: str
    table: str
    protocol: str
    main_metric: str
    metrics: list[str]
    rows: list[tuple[str, dict[str, MetricCell]]]


@dataclass
class SecondaryTable:
    """Further metrics of one table, as rows (group, method label) and leaf-metric columns."""

    dataset: str
    split: str
    table: str
    columns: list[str]
    rows: list[tuple[str, str, dict[str, stats.Summary]]]
    best: set[tuple[str, str, str]] = field(default_factory=set)  # (group, label, column) with the best mean


def _table_order(rs: ResultSet) -> list[tuple[TableId, str]]:
    seen = {((e.dataset, e.split, e.table), e.protocol) for e in rs.entries}
    return sorted(seen, key=lambda t: (t[0][0], t[0][1], t[1], natural_key(t[0][2])))


def seed_values(rs: ResultSet, tid: TableId, metric: str) -> dict[str, dict[int, float]]:
    """{label: {seed: value}} of one metric in one table (finite values only)."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for e in rs.by_table().get(tid, []):
        if math.isfinite(e.metrics.get(metric, math.nan)):
            out[e.label][e.seed] = e.metrics[metric]
    return dict(out)


def headline_metrics(rs: ResultSet, dataset: str) -> list[str]:
    """The dataset's main metric first, then the other headline metric."""
    main = rs.main_metric(dataset)
    return [main] + [m for m in HEADLINE_METRICS if m != main]


def leaderboards(rs: ResultSet, alpha: float = stats.ALPHA) -> list[Leaderboard]:
    """One leaderboard per (dataset, split, protocol variant), rows sorted by the main metric's mean."""
    memo = ("leaderboards", alpha)
    if memo not in rs._memo:
        rs._memo[memo] = _leaderboards(rs, alpha)
    return rs._memo[memo]


def _leaderboards(rs: ResultSet, alpha: float) -> list[Leaderboard]:
    out = []
    for tid, protocol in _table_order(rs):
        metrics = [m for m in headline_metrics(rs, tid[0]) if seed_values(rs, tid, m)]
        if not metrics:
            continue
        labels = sorted({e.label for e in rs.by_table()[tid]})
        cells: dict[str, dict[str, MetricCell]] = {lab: {} for lab in labels}
        for metric in metrics:
            vals = seed_values(rs, tid, metric)
            summaries = {lab: stats.summarize(list(vals.get(lab, {}).values())) for lab in labels}
            best = stats.best_of({lab: s.mean for lab, s in summaries.items()})
            comps = stats.compare_to_best(vals, best, alpha) if best else {}
            for lab in labels:
                cells[lab][metric] = MetricCell(summaries[lab], lab == best, comps.get(lab))
        main = metrics[0]

        def order(lab: str) -> tuple:
            m = cells[lab][main].summary.mean
            return (math.isnan(m), -m if not math.isnan(m) else 0.0, lab)

        rows = [(lab, cells[lab]) for lab in sorted(labels, key=order)]
        out.append(Leaderboard(tid[0], tid[1], tid[2], protocol, main, metrics, rows))
    return out


def split_metric(name: str) -> tuple[str, str]:
    """'fused/p@5' -> ('fused', 'p@5'); an unprefixed 'p@5' -> ('main', 'p@5')."""
    if "/" in name:
        group, leaf = name.rsplit("/", 1)
        return group, leaf
    return MAIN_GROUP, name


def secondary_tables(rs: ResultSet) -> list[SecondaryTable]:
    """Tables of the metrics beyond the headline ones (k-NN k's, retrieval views, conditions, evaluators)."""
    if "secondary" not in rs._memo:
        rs._memo["secondary"] = _secondary_tables(rs)
    return rs._memo["secondary"]


def _secondary_tables(rs: ResultSet) -> list[SecondaryTable]:
    boards = {(b.dataset, b.split, b.table): b for b in leaderboards(rs)}
    out = []
    for tid, _ in _table_order(rs):
        names = sorted({m for e in rs.by_table()[tid] for m in e.metrics}
                       - set(HEADLINE_METRICS), key=natural_key)
        if not names:
            continue
        board = boards.get(tid)
        rank = {lab: i for i, (lab, _) in enumerate(board.rows)} if board else {}
        by_group: dict[str, dict[str, dict[str, stats.Summary]]] = defaultdict(lambda: defaultdict(dict))
        for name in names:
            group, leaf = split_metric(name)
            for lab, seeds in seed_values(rs, tid, name).items():
                by_group[group][lab][leaf] = stats.summarize(list(seeds.values()))
        columns = sorted({split_metric(n)[1] for n in names}, key=natural_key)
        table = SecondaryTable(tid[0], tid[1], tid[2], columns, [])
        for group in sorted(by_group, key=lambda g: (g != MAIN_GROUP, natural_key(g))):
            labs = sorted(by_group[group], key=lambda lab: (rank.get(lab, len(rank)), lab))
            for col in columns:
                means = {lab: by_group[group][lab][col].mean for lab in labs if col in by_group[group][lab]}
                best = stats.best_of(means)
                if best is not None:  # every row tied with the best mean is bold
                    table.best |= {(group, lab, col) for lab, m in means.items()
                                   if not math.isnan(m) and m >= means[best] - 1e-12}
            table.rows.extend((group, lab, dict(by_group[group][lab])) for lab in labs)
        out.append(table)
    return out


# ----------------------------------------------------------------------------------------------------
# Figure data
# ----------------------------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A protocol run at several values of one numeric config key (e.g. semi-supervised label budgets)."""

    dataset: str
    split: str
    protocol: str
    key: str
    x_label: str  # the key, with its constant '<key>_type'-like companion (e.g. 'budget (per_class)')
    metric: str
    tables: list[str]  # the table labels the sweep covers
    points: dict[str, dict[float, stats.Summary]]  # label -> {x: summary}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def sweeps(rs: ResultSet) -> list[Sweep]:
    """Protocols whose configs differ in exactly one numeric key (per subset), as curves over that key."""
    groups: dict[tuple[str, str, str], list[Entry]] = defaultdict(list)
    for e in rs.entries:
        groups[(e.dataset, e.split, e.protocol)].append(e)
    out = []
    for (dataset, split, protocol), ents in sorted(groups.items()):
        cfgs = {canonical(e.protocol_cfg): e.protocol_cfg for e in ents}
        if len(cfgs) < 2:
            continue
        keys = sorted({k for c in cfgs.values() for k in c})
        varying = [k for k in keys if len({canonical(c.get(k)) for c in cfgs.values()}) > 1]
        metric = rs.main_metric(dataset)
        for key in varying:
            subset = [c for c in cfgs.values() if c.get(key) is not None]
            if not subset or not all(_is_number(c[key]) for c in subset):
                continue
            others = [k for k in varying if k != key]
            if any(len({canonical(c.get(k)) for c in subset}) > 1 for k in others):
                continue
            if len({float(c[key]) for c in subset}) < 2:
                continue
            chosen = {canonical(c) for c in subset}
            members = [e for e in ents if canonical(e.protocol_cfg) in chosen]
            per: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
            for e in members:
                v = e.metrics.get(metric, math.nan)
                if math.isfinite(v):
                    per[e.label][float(e.protocol_cfg[key])].append(v)
            if not per:
                continue
            points = {lab: {x: stats.summarize(v) for x, v in sorted(xs.items())} for lab, xs in sorted(per.items())}
            tables = sorted({e.table for e in members}, key=natural_key)
            kinds = [str(subset[0][k]) for k in sorted(subset[0]) if k != key and k.startswith(key)
                     and isinstance(subset[0][k], str) and len({canonical(c.get(k)) for c in subset}) == 1]
            x_label = f"{key} ({', '.join(kinds)})" if kinds else key
            out.append(Sweep(dataset, split, protocol, key, x_label, metric, tables, points))
    return out


def precision_at_k(rs: ResultSet) -> dict[TableId, dict[str, dict[str, dict[int, stats.Summary]]]]:
    """{table: {view: {label: {k: summary}}}} from metrics named '<view>/p@<k>'.

    Unprefixed 'p@<k>' (view '') is kept only where a table has no prefixed view (it repeats the main one).
    """
    acc: dict[TableId, dict[str, dict[str, dict[int, list[float]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for e in rs.entries:
        for name, v in e.metrics.items():
            m = _PK.match(name)
            if m and math.isfinite(v):
                acc[(e.dataset, e.split, e.table)][m.group("view") or ""][e.label][int(m.group("k"))].append(v)
    for views in acc.values():
        if len(views) > 1:
            views.pop("", None)
    return {tid: {view: {lab: {k: stats.summarize(v) for k, v in sorted(ks.items())}
                         for lab, ks in sorted(labs.items())}
                  for view, labs in sorted(views.items(), key=lambda kv: natural_key(kv[0]))}
            for tid, views in sorted(acc.items())}


def _listed_names(e: Entry) -> list | None:
    """Class names in class order from an entry's artifacts (records sort dict keys, so only lists count)."""
    for holder in (e.artifacts, e.artifacts.get("embedding_2d")):
        if isinstance(holder, dict) and isinstance(holder.get("class_names"), list):
            return holder["class_names"]
    return None


def class_names_for(rs: ResultSet, dataset: str, n: int) -> list[str]:
    """Names of the n classes of `dataset`, from any of its records that lists them in order, else indices.

    Per-class score dicts are not used: the store writes JSON with sorted keys, which loses class order.
    """
    for e in rs.entries:
        names = _listed_names(e) if e.dataset == dataset else None
        if names is not None and len(names) == n:
            return [str(x) for x in names]
    return [str(i) for i in range(n)]


def mean_confusions(rs: ResultSet, tables: Iterable[str] | None = None
                    ) -> dict[tuple[str, str, str, str], tuple[np.ndarray, list[str], int]]:
    """{(dataset, split, table, label): (seed-averaged confusion counts, class names, n seeds)}."""
    allowed = set(tables) if tables is not None else None
    acc: dict[tuple[str, str, str, str], list[Entry]] = defaultdict(list)
    for e in rs.entries:
        if isinstance(e.artifacts.get("confusion"), list) and (allowed is None or e.table in allowed):
            acc[(e.dataset, e.split, e.table, e.label)].append(e)
    out = {}
    for key in sorted(acc):
        ents = sorted(acc[key], key=lambda e: e.seed)
        mats = [np.asarray(e.artifacts["confusion"], dtype=float) for e in ents]
        shapes = {m.shape for m in mats}
        if len(shapes) != 1 or mats[0].ndim != 2 or mats[0].shape[0] != mats[0].shape[1]:
            raise ReportError(f"{ents[0].source}: artifact 'confusion' of {key[3]} in {key[2]} must be square "
                              f"and the same shape over seeds, got {sorted(shapes)}; re-run these cells")
        out[key] = (np.mean(mats, axis=0), class_names_for(rs, key[0], mats[0].shape[0]), len(mats))
    return out


def _named_labels(e: Entry, art: dict, labels: list) -> list:
    """Integer class labels replaced by the class names the artifact (or its record) carries."""
    if not labels or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in labels):
        return labels
    names = art.get("class_names") or e.artifacts.get("class_names")
    if isinstance(names, list) and len(names) > max(labels):
        return [str(names[x]) for x in labels]
    return labels


def first_seed_embeddings(rs: ResultSet) -> dict[TableId, dict[str, tuple[np.ndarray, list, int]]]:
    """{table: {label: (xy [N,2], labels, seed)}} from artifact 'embedding_2d' of each row's lowest seed."""
    out: dict[TableId, dict[str, tuple[np.ndarray, list, int]]] = defaultdict(dict)
    for e in sorted(rs.entries, key=lambda e: e.seed):
        art = e.artifacts.get("embedding_2d")
        tid = (e.dataset, e.split, e.table)
        if not isinstance(art, dict) or e.label in out[tid]:
            continue
        xy = np.asarray(art.get("xy", []), dtype=float)
        labels = list(art.get("labels", []))
        if xy.ndim != 2 or xy.shape[1] != 2 or len(labels) != xy.shape[0]:
            raise ReportError(f"{e.source}: artifact 'embedding_2d' needs 'xy' as [[x, y], ...] and one label "
                              f"per point, got xy shape {xy.shape} and {len(labels)} labels; re-run this cell")
        out[tid][e.label] = (xy, _named_labels(e, art, labels), e.seed)
    return {tid: dict(sorted(v.items())) for tid, v in sorted(out.items()) if v}
