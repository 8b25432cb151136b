"""Leaderboard rendering: Markdown, CSV and LaTeX from the aggregated numbers (deterministic text).

Values are shown in percent as mean ± std over seeds with a 95% interval over seeds and test subjects
(benchmark.report.crossed); the best mean of a column is bold, rows that could be the best (the simultaneous
comparison with the best row does not exclude them) carry a dagger, and every row shows whether it is in the
best set (with its adjusted p-value) and Δ to best with its simultaneous interval.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping

from tabulate import tabulate

from benchmark.report import bootstrap, efficiency, stats
from benchmark.report.anchor import section as anchor_section
from benchmark.report.entries import ResultSet
from benchmark.report.leaderboard import (
    MAIN_GROUP,
    Leaderboard,
    MetricCell,
    SecondaryTable,
    leaderboards,
    secondary_tables,
)

METRIC_TITLES = {"accuracy": "Accuracy", "f1_macro": "Macro-F1"}
DAGGER = "†"
COVERAGE_TARGET = 0.93  # a design whose calibrated row-interval coverage is below this prints no interval
PROCEDURE = ("Games-Howell-type all-pairs comparison (studentized range over the k rows with enough seeds, "
             "crossed seed x subject jackknife variance, Satterthwaite df), family-wise error <= 5 %")


def pct(x: float, digits: int = 2) -> str:
    """A fraction as a percentage with fixed digits; 'n/a' when undefined."""
    return "n/a" if x is None or math.isnan(x) else f"{100.0 * x:.{digits}f}"


def fmt_p(p: float) -> str:
    """A p-value with three decimals, never 0 or 1: '< 0.001' and '> 0.999' beyond them."""
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else "> 0.999" if p > 0.999 else f"{p:.3f}"


def mean_std(s: stats.Summary) -> str:
    """'91.23 ± 1.05' (or just the mean for a single seed)."""
    if s.n == 0:
        return "–"
    return pct(s.mean) if s.n < 2 else f"{pct(s.mean)} ± {pct(s.std)}"


def ci_text(s: stats.Summary) -> str:
    """'[89.90, 92.56]', or 'n/a' where no interval exists (e.g. a single seed without per-clip predictions)."""
    return "n/a" if s.n == 0 or math.isnan(s.ci_low) else f"[{pct(s.ci_low)}, {pct(s.ci_high)}]"


def table_title(dataset: str, split: str, table: str) -> str:
    """Section title of one table."""
    return f"{dataset} / {split} / {table}"


# ----------------------------------------------------------------------------------------------------
# Cell text per output format
# ----------------------------------------------------------------------------------------------------
def _md_value(cell: MetricCell) -> str:
    text = mean_std(cell.summary)
    if cell.best:
        return f"**{text}**"
    if cell.comparison is not None and cell.comparison.tied:
        return f"{text} {DAGGER}"
    return text


def _tex_escape(text: str) -> str:
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--",
            "<": "$<$", ">": "$>$", "Δ": r"$\Delta$"}
    return "".join(repl.get(ch, ch) for ch in text)


def _tex_value(cell: MetricCell) -> str:
    text = _tex_escape(mean_std(cell.summary)).replace(" ± ", r" $\pm$ ")
    if cell.best:
        return rf"\textbf{{{text}}}"
    if cell.comparison is not None and cell.comparison.tied:
        return rf"{text}$^\dagger$"
    return text


SELECTED = "‡"  # the best row's mean: selected as the maximum, so biased upward (winner's curse)


def best_set_text(cell: MetricCell) -> str:
    """'yes' (the best row), 'yes (p = 0.213)', 'no (p < 0.001)', 'untestable' or 'n/a'."""
    b = cell.boot
    if b is None or math.isnan(b.delta):
        return "n/a"
    if cell.best:
        return "yes"
    if b.in_best_set is None:
        return "untestable" if enough_to_test(cell) else "n/a"
    return f"{'yes' if b.in_best_set else 'no'} (p = {fmt_p(b.p_adjusted)})".replace("= <", "<").replace("= >", ">")


def enough_to_test(cell: MetricCell) -> bool:
    """Whether the row had the seeds for a comparison (so a missing verdict means: no variance to judge by)."""
    b = cell.boot
    return b is not None and bootstrap.enough_seeds(cell.summary.n, b.scheme != "seeds only")


def _delta_text(cell: MetricCell) -> str:
    b = cell.boot
    if cell.best:
        return f"best {SELECTED}"
    if b is None or math.isnan(b.delta):
        return "n/a"
    sign = "+" if b.delta > 0 else ""
    if b.tied is None:
        return f"{sign}{pct(b.delta)}"
    return f"{sign}{pct(b.delta)} [{bound_text(b.delta_low)}, {bound_text(b.delta_high)}]"


def bound_text(x: float) -> str:
    """An interval bound in %: two decimals, more where those would print a non-zero bound as 0.00 (so no
    verdict seems to hinge on a '-0.00')."""
    if abs(x) < 1e-8:  # float noise around an exact 0
        return "0.00"
    text = pct(x)
    digits = 2
    while text.lstrip("-") == "0.00" + "0" * (digits - 2) and x != 0.0 and digits < 6:
        digits += 1
        text = pct(x, digits)
    return text


def _scheme_mark(cell: MetricCell) -> str:
    return "*" if cell.boot is not None and cell.boot.scheme == "seeds only" else ""


def uncovered(calibration: Mapping | None, board: Leaderboard) -> str | None:
    """'n/a (design covers 91.7 %)' where the folder's calibration simulated this table's dataset/split and its
    row intervals missed the 93 % coverage target (benchmark.report.calibrate), else None."""
    if not calibration or calibration.get("dataset_split") != f"{board.dataset}/{board.split}":
        return None
    coverage = calibration.get("null", {}).get("coverage", math.nan)
    return f"n/a (design covers {100 * coverage:.1f} %)" if coverage < COVERAGE_TARGET else None


def _board_rows(board: Leaderboard, value: Callable[[MetricCell], str], text: Callable[[str], str],
                ci_note: str | None = None) -> tuple[list[str], list[list[str]]]:
    headers = [text("Method")]
    for m in board.metrics:
        title = METRIC_TITLES.get(m, m)
        headers += [text(f"{title} (%)"), text("95% CI")]
    main_title = METRIC_TITLES.get(board.main_metric, board.main_metric)
    headers += [text("n"), text(f"best set ({main_title})"), text("Δ to best [simultaneous 95% CI]")]
    rows = []
    for label, cells in board.rows:
        row = [text(label)]
        for m in board.metrics:
            boot = cells[m].boot
            ci = ci_note if ci_note and boot is not None and boot.scheme != "seeds only" \
                else ci_text(cells[m].summary) + _scheme_mark(cells[m])
            row += [value(cells[m]), text(ci)]
        main = cells[board.main_metric]
        row += [str(main.summary.n), text(best_set_text(main)), text(_delta_text(main))]
        rows.append(row)
    return headers, rows


def _secondary_rows(table: SecondaryTable, bold: Callable[[str], str], text: Callable[[str], str]
                    ) -> tuple[list[str], list[list[str]]]:
    headers = [text("Group"), text("Method")] + [text(c) for c in table.columns]
    rows = []
    for group, label, summaries in table.rows:
        row = [text(group), text(label)]
        for col in table.columns:
            s = summaries.get(col)
            cell = "–" if s is None else mean_std(s)
            cell = text(cell)
            row.append(bold(cell) if (group, label, col) in table.best else cell)
        rows.append(row)
    return headers, rows


def _tab(headers: list[str], rows: list[list[str]], fmt: str) -> str:
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)


# ----------------------------------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------------------------------
def intro_line(rs: ResultSet) -> str:
    """How the leaderboard was produced (no timestamps, no paths: reruns are byte-identical)."""
    extra = f" ({rs.superseded} older duplicate record(s) ignored)" if rs.superseded else ""
    if rs.dropped:
        extra += (f". Left out, to keep every table to one provenance, {len(rs.dropped)} record(s): "
                  + "; ".join(f"`{name}` ({why})" for name, why in rs.dropped))
    if rs.mixed:
        extra += ". WARNING: --allow-mixed combines records of different code versions, devices, precisions or data"
    return (f"Generated by `benchmark.report` from {rs.n_files} record(s) in `records/`{extra}. "
            f"Values are mean ± std over seeds in %, n = seeds. 95% CI: Student-t interval with the variance of "
            f"the seed mean from two jackknives (over seeds, and over test subjects left out one at a time) on "
            f"min(seeds - 1, subjects - 1) degrees of freedom (per-clip predictions; none with fewer than "
            f"{bootstrap.MIN_SEEDS_CLIP} seeds or without variation); * = seeds only (records without per-clip "
            f"predictions): Student-t interval over seeds, and no comparison with fewer than "
            f"{bootstrap.MIN_SEEDS_SEED_ONLY} shared seeds. Δ to best = row mean - best mean (paired on shared "
            f"seeds) with its simultaneous 95% interval: {PROCEDURE}. best set = the rows that could be the best "
            f"at 95% (that interval contains 0), with the adjusted p-value of 'below the best' "
            f"({DAGGER} on the value); 'untestable' = the difference does not vary over seeds and subjects, so no "
            f"claim is made. **bold** = best mean of the column among the rows with enough seeds; "
            f"{SELECTED} = that mean is the selected maximum, biased upward (winner's curse). "
            f"n/a = not enough data. See docs/statistics.md.")


def best_set_line(board: Leaderboard) -> str:
    """The table's legend line: the rows that could be the best, and the procedure that says so."""
    main = board.main_metric
    boots = {lab: cells[main].boot for lab, cells in board.rows if main in cells}
    rows = [lab for lab, b in boots.items() if b is not None and b.in_best_set]
    if not rows:
        return ""
    untested = [lab for lab, cells in board.rows if (b := boots.get(lab)) is not None and b.in_best_set is None
                and not cells[main].best and not math.isnan(cells[main].summary.mean)]
    extra = f"; not comparable: {', '.join(untested)}" if untested else ""
    k = sum(1 for _, cells in board.rows if main in cells and enough_to_test(cells[main]))
    return (f"Best set (could be best at 95 %, {METRIC_TITLES.get(main, main)}; simultaneous Games-Howell-type "
            f"comparison over k = {max(k, 2)} rows, family-wise error <= 5 %): {', '.join(rows)}{extra}.")


def _pooled_note(rs: ResultSet, board: Leaderboard) -> str:
    """For a split family's table: which folds it pools (see benchmark.report.folds)."""
    folds = sorted({f for e in rs.by_table().get((board.dataset, board.split, board.table), [])
                    for f in e.artifacts.get("folds", [])})
    return (f" Pooled over the folds {', '.join(folds)}: every test subject once per seed; accuracy and "
            f"macro-F1 on the pooled test predictions, the interval resamples seeds and all folds' test subjects."
            if folds else "")


def _cost_sections(rs: ResultSet) -> list[str]:
    """'## Cost per method': per (dataset, split), each row label's cost over all its records there."""
    parts: list[str] = []
    for (dataset, split), eff in efficiency.split_efficiency(rs).items():
        if not parts:
            parts += ["## Cost per method", ""]
        rows = [[label] + efficiency.cells(e) for label, e in eff.items()]
        parts += [f"### {dataset} / {split}", "", efficiency.NOTE + f" Device: {efficiency.devices(rs, dataset, split)}.",
                  "", _tab(["Method", *efficiency.HEADERS], rows, "github"), ""]
    return parts


def efficiency_note(rs: ResultSet, board: Leaderboard) -> str:
    """What the cost columns mean and where they were measured."""
    return f"{efficiency.NOTE} Device: {efficiency.devices(rs, board.dataset, board.split, board.table)}."


def leaderboard_markdown(rs: ResultSet, suite: str | None = None, calibration: Mapping | None = None) -> str:
    """The whole leaderboard as one Markdown document: one section per table, then further metrics. Where
    `calibration` (the folder's calibration.json) shows a table's design below 93 % coverage, its per-clip
    row intervals are not printed."""
    title = f"# Leaderboard: suite `{suite}`" if suite else "# Leaderboard"
    parts = [title, "", intro_line(rs), ""]
    for board in leaderboards(rs):
        headers, rows = _board_rows(board, _md_value, lambda s: s, uncovered(calibration, board))
        parts += [f"## {table_title(board.dataset, board.split, board.table)}", "",
                  f"Main metric: {METRIC_TITLES.get(board.main_metric, board.main_metric)}.{_pooled_note(rs, board)}",
                  "", _tab(headers, rows, "github"), ""]
        legend = best_set_line(board)
        if legend:
            parts += [legend, ""]
    parts += anchor_section(rs)  # your rows against a folder's baselines (empty without baselines)
    parts += _cost_sections(rs)
    secondary = secondary_tables(rs)
    if secondary:
        parts += ["## Further metrics", "", ("Mean ± std over seeds in %; **bold** = best mean of the column "
                                             "within its group."), ""]
        for table in secondary:
            headers, rows = _secondary_rows(table, lambda s: f"**{s}**", lambda s: s)
            parts += [f"### {table_title(table.dataset, table.split, table.table)}", "",
                      _tab(headers, rows, "github"), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def leaderboard_latex(rs: ResultSet, suite: str | None = None) -> str:
    """The leaderboard tables as a LaTeX fragment (one starred subsection per table)."""
    head = f"% Leaderboard{f' of suite {suite}' if suite else ''}, generated by benchmark.report from records/."
    parts = [head, "% Mean $\\pm$ std over seeds in %; bold = best; dagger = could be the best at 95 % (simultaneous: "
                   + PROCEDURE + ").", ""]
    for board in leaderboards(rs):
        headers, rows = _board_rows(board, _tex_value, _tex_escape)
        parts += [rf"\subsection*{{{_tex_escape(table_title(board.dataset, board.split, board.table))}}}",
                  _tab(headers, rows, "latex_raw"), ""]
    for table in secondary_tables(rs):
        headers, rows = _secondary_rows(table, lambda s: rf"\textbf{{{s}}}",
                                        lambda s: _tex_escape(s).replace(" ± ", r" $\pm$ "))
        title = _tex_escape(table_title(table.dataset, table.split, table.table) + " (further metrics)")
        parts += [rf"\subsection*{{{title}}}", _tab(headers, rows, "latex_raw"), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


CSV_COLUMNS = ["section", "dataset", "split", "table", "group", "method", "metric", "n", "mean_pct", "std_pct",
               "ci_low_pct", "ci_high_pct", "best", "indistinguishable", "n_paired", "p_best", "delta_pct",
               "delta_low_pct", "delta_high_pct", "interval_scheme", "in_best_set", "p_adjusted",
               *efficiency.CSV_HEADERS]


def _num(x: float | None, digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _summary_fields(s: stats.Summary) -> list[str]:
    return [str(s.n), _num(100 * s.mean), _num(100 * s.std), _num(100 * s.ci_low), _num(100 * s.ci_high)]


def leaderboard_csv(rs: ResultSet) -> str:
    """Tidy CSV: one row per (table, method, metric), headline and further metrics, values in percent."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for board in leaderboards(rs):
        eff = efficiency.table_efficiency(rs, board.dataset, board.split, board.table)
        for label, cells in board.rows:
            for m in board.metrics:
                c = cells[m]
                comp = c.comparison
                tied = "" if comp is None or comp.tied is None else str(comp.tied).lower()
                b = c.boot
                w.writerow(["leaderboard", board.dataset, board.split, board.table, "", label, m,
                            *_summary_fields(c.summary), str(c.best).lower(), tied,
                            "" if comp is None else str(comp.n_paired),
                            "" if b is None else _num(b.p_best),
                            "" if b is None else _num(100 * b.delta),
                            "" if b is None or b.tied is None else _num(100 * b.delta_low),
                            "" if b is None or b.tied is None else _num(100 * b.delta_high),
                            "" if b is None else b.scheme,
                            "" if b is None or b.in_best_set is None else str(b.in_best_set).lower(),
                            "" if b is None else _num(b.p_adjusted),
                            *efficiency.csv_cells(eff.get(label))])
    for table in secondary_tables(rs):
        for group, label, summaries in table.rows:
            for col in table.columns:
                if col not in summaries:
                    continue
                name = col if group == MAIN_GROUP else f"{group}/{col}"
                w.writerow(["further", table.dataset, table.split, table.table, group, label, name,
                            *_summary_fields(summaries[col]), str((group, label, col) in table.best).lower(),
                            "", "", "", "", "", "", "", "", "", "", "", "", ""])
    return buf.getvalue()
