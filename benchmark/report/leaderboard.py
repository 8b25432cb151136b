"""The numbers of every table: leaderboards on the headline metrics and tables of the further metrics.

Entries come from benchmark.report.entries; formatting is benchmark.report.tables' job. A leaderboard ranks
the method labels of one (dataset, split, protocol variant) by the dataset's main metric, with each row's
summary over seeds and its comparison with the best row.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from benchmark.report import bootstrap, stats
from benchmark.report.entries import Entry, ResultSet, TableId, natural_key
from benchmark.report.main_metric import HEADLINE_METRICS

MAIN_GROUP = "main"  # group of further metrics without a '<group>/' prefix


@dataclass(frozen=True)
class MetricCell:
    """One metric of one leaderboard row: summary over seeds (its interval from `bootstrap_table`), best flag,
    comparison with the best (tied: the simultaneous Δ interval contains 0, the row could be the best) and the
    row statistics."""

    summary: stats.Summary
    best: bool
    comparison: stats.Comparison | None  # None for the best row itself and for rows without a finite mean
    boot: bootstrap.RowStats | None = None


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


def bootstrap_inputs(rs: ResultSet, tid: TableId, metric: str) -> dict[str, dict[int, Any]]:
    """{label: {seed: Predictions}} when every record of the table holds per-clip predictions (and the metric
    can be recomputed from them), else {label: {seed: value}} (the seed-only scheme)."""
    entries = [e for e in rs.by_table().get(tid, []) if math.isfinite(e.metrics.get(metric, math.nan))]
    preds = {id(e): bootstrap.predictions_from(e.predictions) for e in entries}
    per_clip = metric in HEADLINE_METRICS and entries and all(p is not None for p in preds.values())
    out: dict[str, dict[int, Any]] = defaultdict(dict)
    for e in entries:
        out[e.label][e.seed] = preds[id(e)] if per_clip else e.metrics[metric]
    return dict(out)


def _n_classes(rs: ResultSet, tid: TableId) -> int:
    return n_classes(rs.by_table().get(tid, []))


def n_classes(entries: list[Entry]) -> int:
    """The class count a table's bootstrap needs: the records' class names, else 1 + the largest label seen."""
    n = 0
    for e in entries:
        names = e.artifacts.get("class_names")
        n = max(n, len(names) if isinstance(names, list) else 0)
        if e.predictions:
            n = max(n, 1 + max(max(e.predictions["y_true"], default=0), max(e.predictions["y_pred"], default=0)))
    return max(n, 1)


def row_seed(tid: TableId, metric: str) -> int:
    """The bootstrap seed of a table's rows on `metric` (the paper table uses it too: same rows, same intervals)."""
    return bootstrap.table_seed(*tid, metric)


def _with_interval(s: stats.Summary, b: bootstrap.RowStats | None) -> stats.Summary:
    """The summary with the bootstrap interval (or its t-interval clipped to [0, 1] where no bootstrap ran)."""
    if b is not None and not math.isnan(b.low):
        return stats.Summary(s.n, s.mean, s.std, b.low, b.high)
    lo = max(0.0, s.ci_low) if not math.isnan(s.ci_low) else s.ci_low
    hi = min(1.0, s.ci_high) if not math.isnan(s.ci_high) else s.ci_high
    return stats.Summary(s.n, s.mean, s.std, lo, hi)


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
            means = {lab: s.mean for lab, s in summaries.items()}
            inputs = bootstrap_inputs(rs, tid, metric)
            boots = bootstrap.bootstrap_table(inputs, metric, row_seed(tid, metric),
                                              {k: vals.get(k, {}) for k in inputs}, _n_classes(rs, tid))
            best = next((lab for lab, b in boots.items() if b.best), None)
            for lab in labels:
                b = boots.get(lab)
                comp = None
                if best is not None and lab != best and b is not None and not math.isnan(means[lab]):
                    n_paired = len(set(vals.get(lab, {})) & set(vals.get(best, {})))
                    comp = stats.Comparison(n_paired, b.delta, math.nan, math.nan, b.tied)
                cells[lab][metric] = MetricCell(_with_interval(summaries[lab], b), lab == best, comp, b)
        main = metrics[0]
        means = {lab: cells[lab][main].summary.mean for lab in labels}
        rows = [(lab, cells[lab]) for lab in bootstrap.rank(means)]
        out.append(Leaderboard(tid[0], tid[1], tid[2], protocol, main, metrics, rows))
    return out


def pairwise(rs: ResultSet, board: Leaderboard) -> dict[tuple[str, str], float]:
    """{(a, b): P(a > b)} on a leaderboard's main metric (bootstrap.pairwise_superiority, seeded by the table)."""
    tid = (board.dataset, board.split, board.table)
    return bootstrap.pairwise_superiority(bootstrap_inputs(rs, tid, board.main_metric),
                                          board.main_metric, bootstrap.table_seed(*tid, board.main_metric, "pairwise"),
                                          _n_classes(rs, tid))


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
