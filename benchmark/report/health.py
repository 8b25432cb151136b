"""The feature-health table: the collapse monitors (benchmark.health) of every pretrained encoder, per row.

Rows come from the records' `feature_health` (one value per pretraining unit, so per seed, not per protocol) or,
for folders written before records carried it, from `python -m benchmark.health RESULTS_DIR`, which measures the
stored checkpoints and prints the same table.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from tabulate import tabulate

from benchmark.report.entries import ResultSet, natural_key

HealthRow = tuple[str, str, str, str, int, dict[str, float]]  # dataset, split, row label, encoder, seed, monitors
INTRO = ("Collapse monitors of each frozen encoder on its split's training clips (un-augmented, eval mode; "
         "`benchmark/health.py`): RankMe = effective rank of the features (1 = one direction), z_std x sqrt(D) "
         "= spread of the L2-normalised features over their D dimensions (0 = complete collapse, 1 = isotropic), "
         "top PC = share of variance on the first principal direction. Mean over seeds (min-max).")


def health_rows(rs: ResultSet) -> list[HealthRow]:
    """One row per (dataset, split, row label, encoder, seed) from the records that carry `feature_health`."""
    seen: dict[tuple[str, str, str, str, int], dict[str, float]] = {}
    for e in sorted(rs.entries, key=lambda e: e.source):
        for enc, monitors in sorted(e.health.items()):
            seen.setdefault((e.dataset, e.split, e.label, enc, e.seed), dict(monitors))
    return [(*k, v) for k, v in seen.items()]


def _summary(values: list[float], digits: int) -> str:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return "–"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(vals):.{digits}f}-{max(vals):.{digits}f})"


def health_markdown(rows: list[HealthRow], heading: str = "## Feature health (collapse monitors)") -> str:
    """The table of `rows` (empty string when there are none)."""
    if not rows:
        return ""
    groups: dict[tuple[str, str, str, str], list[dict[str, float]]] = defaultdict(list)
    for dataset, split, label, enc, _seed, monitors in rows:
        groups[(dataset, split, label, enc)].append(monitors)
    table = []
    for (dataset, split, label, enc), ms in sorted(groups.items(), key=lambda kv: tuple(map(natural_key, kv[0]))):
        dims = sorted({int(m.get("dim", 0)) for m in ms})
        table.append([f"{dataset} / {split}", label, enc, str(len(ms)),
                      _summary([m.get("rankme", math.nan) for m in ms], 1),
                      _summary([m.get("z_std_ratio", math.nan) for m in ms], 3),
                      _summary([m.get("top_share", math.nan) for m in ms], 2), "/".join(map(str, dims))])
    return "\n".join([heading, "", INTRO, "",
                      tabulate(table, headers=["Data", "Row", "Encoder", "n", "RankMe", "z_std x sqrt(D)", "top PC",
                                               "D"], tablefmt="github", disable_numparse=True), ""])


def rows_from_monitors(items: list[tuple[dict[str, Any], str, dict[str, float]]]) -> list[HealthRow]:
    """Rows from (record, encoder, monitors) triples measured outside the records (the checkpoint tool)."""
    out = []
    for rec, enc, monitors in items:
        c = rec["cell"]
        out.append((c["dataset"], c["split"], c["variant"], enc, int(c["seed"]), monitors))
    return out
