"""Findings: the leaderboards read out in a few lines, regenerated from the records like every table.

`findings_markdown(rs)` writes, for every (dataset, split, protocol variant):
- the best method on the main metric (mean ± std, n seeds; its mean is the selected maximum, marked ‡);
- the other methods that could be the best (the leaderboard's simultaneous best set, its dagger) and those
  below the best under that family-wise procedure;
then the best method of every group of the further-metrics tables (retrieval views on mean average precision;
missing-modality conditions, k-NN k's and evaluators on the main metric); ranks across a protocol's variants
(label budgets), the reference split's ranking against the subject folds' (`rankings`), and the encoders'
collapse monitors where records carry them. The text states facts the tables already hold; it draws no
conclusions beyond them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

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
from benchmark.report.tables import METRIC_TITLES, PROCEDURE, SELECTED, mean_std, table_title

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
    return [table_title(board.dataset, board.split, board.table),
            f"{label} {mean_std(cell.summary)} {SELECTED} (n={cell.summary.n})", _names(tied), _names(below),
            _names(untested)]


def view_findings(rs: ResultSet) -> list[list[str]]:
    """[table, view, metric, best method (mean ± std), runner-up] for every group of every further-metrics table:
    retrieval views on mAP, every other group (missing-modality conditions, k-NN k's, a protocol's evaluators)
    on its table's main metric."""
    mains = {(b.dataset, b.split, b.table): b.main_metric for b in leaderboards(rs)}
    rows = []
    for table in secondary_tables(rs):
        metric = VIEW_METRIC if VIEW_METRIC in table.columns else mains.get((table.dataset, table.split, table.table))
        if metric not in table.columns:
            continue
        for group in dict.fromkeys(g for g, _, _ in table.rows):  # the table's order: the main group first
            ranked = sorted(((lab, s[metric]) for g, lab, s in table.rows
                             if g == group and metric in s and not math.isnan(s[metric].mean)),
                            key=lambda t: (-t[1].mean, t[0]))
            if not ranked:
                continue
            first = f"{ranked[0][0]} {mean_std(ranked[0][1])}"
            second = f"{ranked[1][0]} {mean_std(ranked[1][1])}" if len(ranked) > 1 else "–"
            view = "default" if group == MAIN_GROUP else group
            rows.append([table_title(table.dataset, table.split, table.table), view,
                         {**METRIC_TITLES, VIEW_METRIC: "mAP"}.get(metric, metric), first, second])
    return rows


def design_of(rs: ResultSet, board: Leaderboard) -> tuple[str, int]:
    """('4 test subjects, 5 seeds' or '... (folds pooled)' or 'seeds only, 3 seeds', subjects; 0 without
    per-clip predictions) of a leaderboard's main metric."""
    ents = rs.by_table().get((board.dataset, board.split, board.table), [])
    units = {u for e in ents if e.predictions for u in (e.predictions.get("groups") or {}).get("subject", [])}
    seeds = sorted({c[board.main_metric].summary.n for _, c in board.rows if board.main_metric in c})
    seed_text = f"{seeds[-1]} seeds" if seeds and seeds[0] == seeds[-1] else f"{seeds[0]}-{seeds[-1]} seeds" \
        if seeds else "no seeds"
    cell = next((c[board.main_metric] for _, c in board.rows if board.main_metric in c), None)
    if cell is None or cell.boot is None or cell.boot.scheme == "seeds only" or not units:
        return f"seeds only, {seed_text}", 0
    folds = any(e.artifacts.get("folds") for e in ents)
    return f"{len(units)} test subjects{' (folds pooled)' if folds else ''}, {seed_text}", len(units)


def power_text(calibration: Mapping | None, board: Leaderboard, subjects: int) -> str:
    """'2 pts: 12 %, 5 pts: 48 %' from the folder's calibration where it simulated this design, else 'n/a'."""
    if not calibration:
        return "n/a (run calibrate)"
    design = calibration.get("design", {})
    if calibration.get("dataset_split") != f"{board.dataset}/{board.split}" or design.get("subjects") != subjects:
        return "n/a (other design)"
    gaps = calibration.get("gaps", {})
    parts = [f"{g} pts: {100 * gaps[g]['power_per_row']:.0f} %" for g in ("2", "5")
             if isinstance(gaps.get(g), dict) and "power_per_row" in gaps[g]]
    return ", ".join(parts) if parts else "n/a"


def findings_markdown(rs: ResultSet, suite: str | None = None, calibration: Mapping | None = None) -> str:
    """The findings document (deterministic text: no timestamps, no paths). `calibration`: the folder's
    `calibration.json` (benchmark.report.calibrate), for the power of each claim's design."""
    boards = leaderboards(rs)
    title = f"# Findings: suite `{suite}`" if suite else "# Findings"
    metrics = sorted({METRIC_TITLES.get(b.main_metric, b.main_metric) for b in boards})
    parts = [title, "",
             (f"Read out of `leaderboard.md` (same records, same tests). Main metric: {_names(metrics)}, in %, "
              f"mean ± std over seeds. 'Could also be best' = the simultaneous 95 % interval of the difference to "
              f"the best row contains 0 ({PROCEDURE}; the variance over seeds and test subjects where records hold "
              f"per-clip predictions, else over seeds); 'below the best' = excluded by it; 'untestable' = fewer "
              f"than {bootstrap.MIN_SEEDS_CLIP} seeds shared with the best row ({bootstrap.MIN_SEEDS_SEED_ONLY} for "
              f"seeds-only records) or a difference that does not vary. {SELECTED} = the best mean is the selected "
              f"maximum, so biased upward (winner's curse). With a handful of seeds and test subjects only large, "
              f"consistent differences show: staying in the best set is absence of evidence, not evidence of "
              f"equality."),
             ""]
    rows = []
    for b in boards:
        design, subjects = design_of(rs, b)
        rows.append(board_finding(b) + [design, power_text(calibration, b, subjects)])
    parts += [tabulate(rows, headers=["Table", "Best", "Could also be best", "Below the best (simultaneous)",
                                      "Untestable", "Design", "Power (gap)"], tablefmt="github",
                       disable_numparse=True), ""]
    if calibration:
        d, null = calibration.get("design", {}), calibration.get("null", {})
        parts += [(f"Design = what each claim rests on (test subjects, seeds). Power = the chance that a row this "
                   f"many points of accuracy below the best is called below it, from `{calibration_command(calibration)}` "
                   f"({d.get('rows')} rows x {d.get('seeds')} seeds on {d.get('subjects')} test subjects, "
                   f"{d.get('sims')} simulated tables; family-wise false-claim rate with all rows equal "
                   f"{100 * null.get('fwer', math.nan):.1f} %, row-interval coverage "
                   f"{100 * null.get('coverage', math.nan):.1f} %). Where a dataset has both designs (xsub with 4 "
                   f"test subjects, and the 8-subject folds), the folds carry the claim."), ""]
    views = view_findings(rs)
    if views:
        parts += ["## Views and conditions", "",
                  ("Best method per group of `leaderboard.md`'s further metrics (mean ± std in %): retrieval views on "
                   "mAP (`fused` = the method's concatenated embedding, `a->b` = queries embedded with modality a, "
                   "gallery with modality b: cross-modal; `default` = the protocol's main score), every other group "
                   "on its table's main metric: the missing-modality conditions (`full`, `no_<modality>`: that "
                   "modality absent at test time), the k-NN k's, a protocol's evaluators."), "",
                  tabulate(views, headers=["Table", "View", "Metric", "Best", "Second"], tablefmt="github",
                           disable_numparse=True), ""]
    for extra in (variant_ranks(boards), fold_agreement(boards)):
        if extra:
            parts += [extra]
    health = health_markdown(health_rows(rs))
    if health:
        parts += [health]
    return "\n".join(parts).rstrip() + "\n"


def calibration_command(calibration: Mapping) -> str:
    """The calibrate command that produced a calibration (as stored in it)."""
    design = calibration.get("design", {})
    gaps = " ".join(f"{g:g}" for g in design.get("gaps", []))
    return (f"python -m benchmark.report.calibrate results/{calibration.get('folder')} --table {design.get('table')} --rows "
            f"{design.get('rows')} --seeds {design.get('seeds')} --sims {design.get('sims')} --gap {gaps}")


__all__ = ["board_finding", "findings_markdown", "view_findings"]
