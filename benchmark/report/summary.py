"""The answers of a results folder in a few lines: per (dataset, split, table) the rows that could be best, the
best row's mean and interval, how many rows were compared and on what design; headline tables first.

Which tables are headline is the dataset plugin's declaration (`DatasetPlugin.headline_protocols`); whether its
data is generated (simulated) is its `needs_root = False`. The report never names a dataset.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from benchmark.report.best_set import best_set
from benchmark.report.entries import ResultSet
from benchmark.report.leaderboard import Leaderboard, leaderboards


@dataclass(frozen=True)
class TableSummary:
    """One table's answer."""

    board: Leaderboard
    anchor: str  # stable HTML id of the table's section
    best: str | None  # the row with the best mean
    best_set: list[str]  # rows that could be best, in leaderboard order
    mean: float  # the best row's main metric (fraction)
    low: float
    high: float
    n_rows: int
    design: str  # e.g. "5 seeds x 4 test subjects (430 clips)"
    headline: bool


def anchor(dataset: str, split: str, table: str) -> str:
    """A stable, readable HTML id for a table ('mydata-xsub-semisup-per_class-1')."""
    text = "-".join(re.sub(r"[^A-Za-z0-9_]+", "-", p).strip("-") for p in (dataset, split, table))
    return text.lower() or "table"


def _plugin(dataset: str) -> object | None:
    from benchmark import plugins
    from benchmark.registry import DATASETS, RegistryError

    plugins.load_plugins()
    try:
        return DATASETS.get(dataset)
    except RegistryError:
        return None


def headline_tables(dataset: str) -> tuple[str, ...]:
    """The table names the dataset plugin declares as its headline protocols (() when none or not registered)."""
    return tuple(getattr(_plugin(dataset), "headline_protocols", ()) or ())


def is_generated(dataset: str) -> bool:
    """Whether the dataset's data is generated rather than read from recorded files (simulated)."""
    plugin = _plugin(dataset)
    return plugin is not None and getattr(plugin, "needs_root", True) is False


def protocol_line(protocol: str) -> str:
    """One line describing a protocol: the first line of its registered class's docstring."""
    from benchmark import plugins
    from benchmark.registry import PROTOCOLS, RegistryError

    plugins.load_plugins()
    try:
        doc = PROTOCOLS.get(protocol).__doc__ or ""
    except RegistryError:
        return ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def design(rs: ResultSet, board: Leaderboard) -> str:
    """Seeds and test units of a table: what its intervals resample."""
    ents = rs.by_table().get((board.dataset, board.split, board.table), [])
    seeds = len({e.seed for e in ents})
    folds = sorted({f for e in ents for f in e.artifacts.get("folds", [])})
    text = f"{seeds} seed{'s' if seeds != 1 else ''}"
    preds = [e.predictions for e in ents if e.predictions]
    if ents and len(preds) == len(ents):
        subjects = {s for p in preds for s in ((p.get("groups") or {}).get("subject") or [])}
        clips = len(preds[0]["y_true"])
        if subjects:
            text += f" x {len(subjects)} test subjects ({clips} clips)"
        else:
            text += f" x {clips} test clips (no subject ids)"
    else:
        text += " (seeds only)"
    return text + (f", pooled over {len(folds)} folds" if folds else "")


def resampling_note(rs: ResultSet, dataset: str) -> str:
    """What the intervals of a dataset's tables resample, in one sentence."""
    ents = [e for e in rs.entries if e.dataset == dataset]
    with_preds = [e.predictions for e in ents if e.predictions]
    if not with_preds:
        return "Intervals resample seeds only (the records hold no per-clip predictions)."
    if all((p.get("groups") or {}).get("subject") for p in with_preds):
        return "Intervals resample seeds and test subjects (all clips of a drawn subject together)."
    return ("Intervals resample seeds and test clips: this dataset's records have no subject ids, so clips stand in "
            "for subjects (clips of one person are correlated, so these intervals are likely too narrow).")


def summaries(rs: ResultSet) -> list[TableSummary]:
    """Every table's answer; per (dataset, split), the declared headline tables first in declared order."""
    out = []
    for board in leaderboards(rs):
        main = dict(board.rows)
        bset = best_set(board)
        best = next((lab for lab, cells in board.rows if cells[board.main_metric].best), None)
        if best is None and board.rows:
            best = board.rows[0][0]
        s = main[best][board.main_metric].summary if best is not None else None
        out.append(TableSummary(
            board, anchor(board.dataset, board.split, board.table), best,
            [lab for lab, _ in board.rows if lab in bset],
            math.nan if s is None else s.mean, math.nan if s is None else s.ci_low,
            math.nan if s is None else s.ci_high, len(board.rows), design(rs, board),
            board.table in headline_tables(board.dataset)))
    order = {}
    for t in out:
        heads = headline_tables(t.board.dataset)
        order[id(t)] = (t.board.dataset, t.board.split, not t.headline,
                        heads.index(t.board.table) if t.headline else 0)
    return sorted(out, key=lambda t: order[id(t)])
