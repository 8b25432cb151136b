"""Findings: the leaderboards read out in a few lines, regenerated from the records like every table.

`findings_markdown(rs)` writes, for every (dataset, split, protocol variant):
- the best method on the main metric (mean ± std, n seeds);
- the methods statistically indistinguishable from it (the leaderboard's dagger: paired t-test over matched
  seeds, Holm-corrected) and those significantly below it;
then, for retrieval-like tables, the best method of every retrieval view (fused, per modality, cross-modal)
on mean average precision; ranks across a protocol's variants (label budgets), the reference split's ranking
against the subject folds' (`rankings`), and the encoders' collapse monitors where records carry them. The text states
facts the tables already hold; it draws no conclusions beyond them.
"""
from __future__ import annotations

import math

from tabulate import tabulate

from benchmark.report import bootstrap
from benchmark.report.entries import ResultSet
from benchmark.report.health import health_markdown, health_rows
from benchmark.report.leaderboard import (
    MAIN_GROUP,
    Leaderboard,
    leaderboards,
    secondary_tables,
)
from benchmark.report.rankings import fold_agreement, variant_ranks
from benchmark.report.tables import METRIC_TITLES, mean_std, table_title

VIEW_METRIC = "map"  # the retrieval column summarised per view


def _names(labels: list[str]) -> str:
    return ", ".join(labels) if labels else "none"


def board_finding(board: Leaderboard) -> list[str]:
    """[table, best (mean ± std, n), tied with the best, significantly below, untestable] for one leaderboard."""
    main = board.main_metric
    best = [(lab, c[main]) for lab, c in board.rows if c[main].best]
    if not best:
        return [table_title(board.dataset, board.split, board.table), "–", "–", "–", "–"]
    label, cell = best[0]
    tied, below, untested = [], [], []
    for lab, cells in board.rows:
        comp = cells[main].comparison
        if cells[main].best or math.isnan(cells[main].summary.mean):
            continue
        if comp is None or comp.tied is None:
            untested.append(lab)
        elif comp.tied:
            tied.append(lab)
        else:
            below.append(lab)
    # P(best) only where test subjects are resampled too: from three seed values alone it saturates at 0 or 1
    p_best = cell.boot.p_best if cell.boot is not None and cell.boot.scheme != "seeds only" else math.nan
    p_text = "" if math.isnan(p_best) else f", P(best) {p_best:.2f}"
    return [table_title(board.dataset, board.split, board.table),
            f"{label} {mean_std(cell.summary)} (n={cell.summary.n}{p_text})", _names(tied), _names(below),
            _names(untested)]


def view_findings(rs: ResultSet) -> list[list[str]]:
    """[table, view, best method (mean ± std of the view's mAP), runner-up] for every retrieval view."""
    rows = []
    for table in secondary_tables(rs):
        if VIEW_METRIC not in table.columns:
            continue
        for group in dict.fromkeys(g for g, _, _ in table.rows):  # the table's order: the main group first
            ranked = sorted(((lab, s[VIEW_METRIC]) for g, lab, s in table.rows
                             if g == group and VIEW_METRIC in s and not math.isnan(s[VIEW_METRIC].mean)),
                            key=lambda t: (-t[1].mean, t[0]))
            if not ranked:
                continue
            first = f"{ranked[0][0]} {mean_std(ranked[0][1])}"
            second = f"{ranked[1][0]} {mean_std(ranked[1][1])}" if len(ranked) > 1 else "–"
            view = "default" if group == MAIN_GROUP else group
            rows.append([table_title(table.dataset, table.split, table.table), view, first, second])
    return rows


def findings_markdown(rs: ResultSet, suite: str | None = None) -> str:
    """The findings document (deterministic text: no timestamps, no paths)."""
    boards = leaderboards(rs)
    title = f"# Findings: suite `{suite}`" if suite else "# Findings"
    metrics = sorted({METRIC_TITLES.get(b.main_metric, b.main_metric) for b in boards})
    parts = [title, "",
             (f"Read out of `leaderboard.md` (same records, same tests). Main metric: {_names(metrics)}, in %, "
              f"mean ± std over seeds. 'Tied with the best' = the paired 95 % interval of the difference to the "
              f"best row contains 0 (bootstrap over seeds and test subjects where records hold per-clip "
              f"predictions, else a paired t-interval over seeds); 'untestable' = fewer than "
              f"{bootstrap.MIN_SEEDS_SEED_ONLY} seeds shared with the best row (seeds-only records) or "
              f"differences without variance. P(best) per row is in `leaderboard.md`. With a handful of seeds "
              f"only large, consistent differences show: a tie is absence of evidence, not evidence of equality."),
             ""]
    rows = [board_finding(b) for b in boards]
    parts += [tabulate(rows, headers=["Table", "Best", "Tied with the best", "Significantly below the best",
                                      "Untestable"], tablefmt="github", disable_numparse=True), ""]
    views = view_findings(rs)
    if views:
        parts += ["## Retrieval views", "",
                  ("Best method per retrieval view on mAP (%): `fused` = the method's concatenated embedding, "
                   "`a->b` = queries embedded with modality a, gallery with modality b (cross-modal), "
                   "`default` = the protocol's main score (fused for multimodal methods, the own modality otherwise)."), "",
                  tabulate(views, headers=["Table", "View", "Best (mAP)", "Second"], tablefmt="github",
                           disable_numparse=True), ""]
    for extra in (variant_ranks(boards), fold_agreement(boards)):
        if extra:
            parts += [extra]
    health = health_markdown(health_rows(rs))
    if health:
        parts += [health]
    return "\n".join(parts).rstrip() + "\n"


__all__ = ["board_finding", "findings_markdown", "view_findings"]
