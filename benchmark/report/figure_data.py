"""The numbers behind the figures: sweeps over a config key, precision@k, confusions and 2-D embeddings.

Entries come from benchmark.report.entries; drawing is benchmark.report.plots' job.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.report import stats
from benchmark.report.entries import (
    Entry,
    ReportError,
    ResultSet,
    TableId,
    canonical,
    natural_key,
)

_PK = re.compile(r"^(?:(?P<view>.+)/)?p@(?P<k>\d+)$")  # precision@k metrics: '<view>/p@<k>' or 'p@<k>'


@dataclass
class Sweep:
    """A protocol run at several values of one numeric config key (e.g. label budgets per class)."""

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
