"""Your rows against the baselines, widened by the anchor's shift (the leaderboard's "Against the baselines").

Where your run's provenance differs from the baselines' (device, precision, commit, schedule), the run also
re-ran one cheap baseline variant, the anchor. Its paired difference to the stored records of the same cells
and seeds measures how far your conditions alone move a score: the *shift* s (points, yours - baseline, with a
95% t-interval [s_lo, s_hi] over the (table, seed) pairs, or over seeds within one table). A difference
between one of your rows and a baseline row, d with interval [d_lo, d_hi] (paired over shared seeds), is then
read as d - s: the widened interval is [d_lo - s_hi, d_hi - s_lo]. A verdict needs the widened interval to
exclude 0; where |s| exceeds |d| the rows are "not comparable" at this precision.

This module only reads a ResultSet (benchmark.report.entries with `baselines`); the leaderboard calls
`section(rs)` and prints what it returns.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from benchmark.report.baseline_rows import PREFIX
from benchmark.report.entries import Entry, ResultSet, TableId


@dataclass(frozen=True)
class Interval:
    """A mean difference in points with its 95% interval over n pairs (lo, hi None when n < 2)."""

    mean: float
    lo: float | None
    hi: float | None
    n: int

    def text(self) -> str:
        if self.lo is None or self.hi is None:
            return f"{self.mean:+.2f} (n = {self.n}, no interval)"
        return f"{self.mean:+.2f} [{self.lo:+.2f}, {self.hi:+.2f}] (n = {self.n})"


def t_interval(diffs: list[float]) -> Interval:
    """Mean and 95% Student-t interval of paired differences."""
    from scipy import stats

    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return Interval(mean, None, None, n)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def widen(d: Interval, s: Interval | None) -> tuple[float, float] | None:
    """The interval of d - s by interval arithmetic: [d_lo - s_hi, d_hi - s_lo] (None without both intervals)."""
    if s is None or None in (d.lo, d.hi, s.lo, s.hi):
        return None
    return (d.lo - s.hi, d.hi - s.lo)  # type: ignore[operator]


def verdict(d: Interval, s: Interval | None, wide: tuple[float, float] | None) -> str:
    """'yours higher', 'baseline higher', 'no difference shown' or 'not comparable (...)'."""
    if s is not None and abs(s.mean) > abs(d.mean):
        return "not comparable (the anchor shift exceeds the difference)"
    interval = wide if wide is not None else (d.lo, d.hi) if s is None and d.lo is not None else None
    if interval is None:
        return "no verdict (too few seeds for an interval)"
    lo, hi = interval
    if lo is None or hi is None:
        return "no verdict (too few seeds for an interval)"
    if lo > 0:
        return "yours higher"
    if hi < 0:
        return "baseline higher"
    return "no difference shown"


def _score(e: Entry, metric: str) -> float | None:
    v = e.metrics.get(metric)
    return None if v is None or not math.isfinite(v) else 100.0 * v


def _is_base(e: Entry) -> bool:
    return e.source.startswith(PREFIX)


def anchor_shift(rs: ResultSet) -> tuple[dict[TableId, Interval], Interval | None]:
    """Per table and pooled: the anchor's yours - baseline differences over shared (table, seed) pairs."""
    anchor = (rs.baselines or {}).get("anchor")
    per: dict[TableId, list[float]] = defaultdict(list)
    if not anchor:
        return {}, None
    for tid, ents in sorted(rs.by_table().items()):
        metric = rs.main_metric(tid[0])
        mine = {e.seed: _score(e, metric) for e in ents if e.variant == anchor and not _is_base(e)}
        theirs = {e.seed: _score(e, metric) for e in ents if e.variant == anchor and _is_base(e)}
        for seed in sorted(set(mine) & set(theirs)):
            if mine[seed] is not None and theirs[seed] is not None:
                per[tid].append(mine[seed] - theirs[seed])  # type: ignore[operator]
    pooled = [d for ds in per.values() for d in ds]
    return {t: t_interval(ds) for t, ds in per.items()}, (t_interval(pooled) if pooled else None)


def _rows(ents: list[Entry], base: bool) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = defaultdict(list)
    for e in ents:
        if _is_base(e) == base:
            out[e.label].append(e)
    return out


def section(rs: ResultSet) -> list[str]:
    """Markdown lines of the "Against the baselines" section ([] for a folder without baselines)."""
    b = rs.baselines
    if not b:
        return []
    per_table, pooled = anchor_shift(rs)
    lines = ["## Against the baselines", "",
             f"Baselines: `{b['folder']}`, {b['used']} comparable record(s) ({b['label']}); your rows: "
             f"{b['yours'].removeprefix('yours: ')}. {b['unusable']} baseline record(s) not comparable (listed above), "
             f"{b['not_run']} record(s) of tables this run did not run (not shown)."]
    if b.get("harness_changes"):
        lines[-1] += (f" The baselines predate code hashes; their harness differs from yours in "
                      f"{len(b['harness_changes'])} file(s) ({', '.join(b['harness_changes'])}), which the anchor "
                      f"shift includes.")
    elif b.get("harness_changes") == []:
        lines[-1] += " Their harness code is the same as yours (docstrings and comments aside)."
    anchor = b.get("anchor")
    if not anchor and b.get("no_anchor") == "same provenance":
        lines += ["", "Your run has the baselines' provenance (numerics, harness code, schedules): no anchor needed."]
    elif not anchor:
        lines += ["", "No anchor was run (`--anchor none`): differences below are not adjusted for a change of "
                      "provenance."]
    elif pooled is None:
        lines += ["", f"Anchor `{anchor}`: no pair of its records with the baselines' (same cells and seeds) yet."]
    else:
        lines += ["", f"Anchor `{anchor}` re-run here: shift yours - baseline = {pooled.text()} points over all its "
                      f"(table, seed) pairs (pairs treated as independent); per table below."]
    lines += ["", "Δ = your row - the best baseline row, in points, paired over shared seeds (95% t-interval); "
                  "widened = Δ's interval minus the anchor shift's interval of that table (pooled where the table "
                  "has fewer than 2 anchor pairs).", "",
              "| table | your row | best baseline row | Δ | anchor shift | widened | verdict |",
              "|---|---|---|---|---|---|---|"]
    for tid, ents in sorted(rs.by_table().items()):
        metric = rs.main_metric(tid[0])
        mine, theirs = _rows(ents, False), _rows(ents, True)
        if not mine or not theirs:
            continue
        s = per_table.get(tid)
        s = s if s is not None and s.lo is not None else pooled
        best_label, best = max(theirs.items(), key=lambda kv: (_mean(kv[1], metric), kv[0]))
        for label, rows in sorted(mine.items()):
            if anchor and rows[0].variant == anchor:
                continue
            by_seed = {e.seed: _score(e, metric) for e in best}
            diffs = [v - b_s for e in rows if (v := _score(e, metric)) is not None
                     and (b_s := by_seed.get(e.seed)) is not None]
            if not diffs:
                continue
            d = t_interval(diffs)
            wide = widen(d, s)
            lines.append(f"| {' / '.join(tid)} | {label} | {best_label} | {d.text()} | "
                         f"{s.text() if s else 'none'} | "
                         f"{f'[{wide[0]:+.2f}, {wide[1]:+.2f}]' if wide else 'n/a'} | {verdict(d, s, wide)} |")
    return lines + [""]


def _mean(ents: list[Entry], metric: str) -> float:
    vals = [v for e in ents if (v := _score(e, metric)) is not None]
    return sum(vals) / len(vals) if vals else -math.inf
