"""Split families (e.g. UTD-MHAD's rotating subject folds `xsub_fold1..4`, family `xsub_folds`) as one result.

A dataset declares a family on its splits (`SplitSpec.family`). For every (table, row, seed) that has a
record on every split of the family, the report adds one entry under the family's name:

- its test predictions are the folds' predictions concatenated (every clip once: the folds test disjoint
  subjects), so the row statistics treat the subjects of all folds together (8 on UTD-MHAD);
- accuracy and macro-F1 are recomputed on those pooled predictions (cross-validated scores); every other
  metric is the mean over the folds;
- the entry's source names the fold records it pools.

A (row, seed) missing on some fold gets no family entry (the per-fold tables still show it); nor do fold
records of different provenance (code version, device, precision, data), unless mixing is allowed: they are
listed as left out.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from benchmark import metrics as M
from benchmark.report.entries import Entry


def split_families(dataset: str) -> dict[str, str]:
    """{split: family} of a registered dataset's splits that belong to a family (empty when unknown)."""
    from benchmark.plugins import load_plugins
    from benchmark.registry import DATASETS

    load_plugins()
    if dataset not in DATASETS:
        return {}
    return {name: str(spec.family) for name, spec in (getattr(DATASETS.get(dataset), "splits", None) or {}).items()
            if getattr(spec, "family", None)}


def _pooled_predictions(parts: list[dict[str, Any]]) -> dict[str, Any]:
    groups = sorted(set.intersection(*(set(p.get("groups") or {}) for p in parts)))
    return {"ids": [i for p in parts for i in p["ids"]],
            "groups": {g: [v for p in parts for v in p["groups"][g]] for g in groups},
            "y_true": [v for p in parts for v in p["y_true"]], "y_pred": [v for p in parts for v in p["y_pred"]]}


def family_entries(entries: list[Entry], allow_mixed: bool = False) -> tuple[list[Entry], list[tuple[str, str]]]:
    """One pooled entry per (dataset, family, table, row, seed) complete on every split of the family, and the
    (sources, why) of the groups left unpooled because their provenance differs."""
    families = {d: split_families(d) for d in {e.dataset for e in entries}}
    members: dict[tuple[str, str], set[str]] = defaultdict(set)
    for d, fam in families.items():
        for split, family in fam.items():
            members[(d, family)].add(split)
    groups: dict[tuple, dict[str, Entry]] = defaultdict(dict)
    for e in entries:
        fam_of = families[e.dataset].get(e.split)
        if fam_of:
            groups[(e.dataset, fam_of, e.table, e.label, e.seed)][e.split] = e
    out, unpooled = [], []
    for (dataset, family, _table, _label, seed), by_split in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if set(by_split) != members[(dataset, family)]:
            continue
        folds = [by_split[s] for s in sorted(by_split)]
        first = folds[0]
        if len({f.provenance for f in folds}) > 1 and not allow_mixed:
            unpooled.append(("+".join(f.source for f in folds),
                             f"not pooled into {family}: its folds differ in code version, device, precision or data"))
            continue
        keys = set.intersection(*(set(f.metrics) for f in folds))
        metrics = {k: float(np.mean([f.metrics[k] for f in folds])) for k in sorted(keys)}
        preds = None
        if all(f.predictions for f in folds):
            preds = _pooled_predictions([f.predictions for f in folds])  # type: ignore[misc]
            y, p = np.asarray(preds["y_true"]), np.asarray(preds["y_pred"])
            metrics.update({"accuracy": M.accuracy(y, p), "f1_macro": M.f1_macro(y, p)})
        out.append(Entry(
            source="+".join(f.source for f in folds), dataset=dataset, split=family, method=first.method,
            variant=first.variant, label=first.label, protocol=first.protocol,
            protocol_variant=first.protocol_variant, table=first.table, protocol_cfg=first.protocol_cfg, seed=seed,
            metrics=metrics, per_class={}, artifacts={"folds": sorted(by_split)}, main_metric=first.main_metric,
            method_cfg=first.method_cfg, predictions=preds, provenance=first.provenance, commit=first.commit,
            resources=first.resources))  # cost as on the first fold
    return out, unpooled
