"""The paper comparison: the published numbers of the reproduced paper beside ours, with the difference.

Where the numbers come from: the authors' README table of the IJCNN 2022 paper (spec section 7.1), one
column per (dataset, split), cross-subject and cross-scene, each in the metric the paper reports for that
dataset (accuracy or macro-F1). They are data, not code: `published_ijcnn2022.json` beside
this module holds the rows (each keyed to the method variant that reproduces it, values in percent), the
protocol of ours that reproduces the published evaluation, each dataset's column metric, the headline pair
(challenger, baseline) and the citation; it is read on first use (`published()`).

Only records of the reference configuration count: no method override besides the modality and no protocol
override, so a run with shortened schedules (`--epochs-scale`, the quick suite) or changed hyperparameters is
never set beside the published numbers. The comparison is written only for (dataset, split) pairs that have
published numbers and such records.

Per row: ours as mean ± std over seeds; our 95 % interval of that mean (the leaderboard's interval over seeds
and test subjects where records hold per-clip predictions, else the t-interval over seeds); and
whether the published value is plausible as ONE run of ours. Published values are single runs (one seed,
selected on one validation subject), so they are judged against the spread of single runs, not against the
interval of our mean: the 95 % prediction interval of one further run under a normal model of our seeds,
mean ± t(0.975, n-1) · std · sqrt(1 + 1/n) (n >= 2, clipped to [0, 100] %), plus the published value's
percentile among our seeds (the share of our seeds below it, ties counted half). "plausible" = inside that
prediction interval.

Under each table, a joint verdict over all rows (`joint_verdict`): the pooled offset ours - published with
its t interval over rows, a sign test of "published above our mean", and whether the published values fit as
single runs of ours (their one-run standardized offsets combined by Stouffer, each t_{n-1}); row-by-row
"plausible" verdicts can hide a joint, systematic offset.

Under each table the headline pair (challenger vs baseline, e.g. CMC-CMKM vs CMC) gets its verdict from the
paired difference (same seeds, same test subjects; `bootstrap.paired_difference`: crossed jackknife over
seeds and test subjects with Student t at Satterthwaite df; records without per-clip predictions: Student t
over the paired seeds): the mean difference, its 95 % interval,
P(challenger > baseline), and "real" only when the interval excludes 0.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchmark.report import bootstrap, stats
from benchmark.report.entries import Entry, ReportError, ResultSet
from benchmark.report.leaderboard import n_classes as leaderboard_n_classes
from benchmark.report.leaderboard import row_seed
from benchmark.report.tables import pct

PUBLISHED_FILE = Path(__file__).with_name("published_ijcnn2022.json")


@dataclass(frozen=True)
class PublishedRow:
    """One row of the published table: what it is, which of our variants reproduces it, its values in %."""

    modality: str
    approach: str
    variant: str
    values: Mapping[tuple[str, str], float]  # (dataset, split) -> published value in percent


@dataclass(frozen=True)
class PublishedTable:
    """The published table and how to compare with it, as read from the data file."""

    source: str  # the citation the comparison document prints
    protocol: str  # the protocol (variant) of ours that reproduces the published evaluation
    metric: Mapping[str, str]  # dataset -> the metric key its published columns report
    rows: tuple[PublishedRow, ...]  # in the published order
    headline_pair: tuple[str, str]  # (challenger, baseline) variants of the paired test under each table


def _field(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """obj[key], checked: of `kind` (numbers: not bool; text, objects and lists: not empty)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, (str, dict, list)) and not value):
        expected = "a number" if isinstance(kind, tuple) else f"a non-empty {kind.__name__}"
        raise ReportError(f"paper data file {path}: {where}{key!r} must be {expected}, got {value!r}; restore "
                          f"the file from the repository (or reinstall mmhar-bench)")
    return value


@functools.cache
def published(path: Path = PUBLISHED_FILE) -> PublishedTable:
    """The published table from `path` (read once); a ReportError naming the file if it is missing or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"paper data file {path} is missing: restore it from the repository (or reinstall "
                          f"mmhar-bench, whose package data includes it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"paper data file {path} is not readable JSON ({exc}); restore it from the "
                          f"repository (or reinstall mmhar-bench)") from None
    metric = _field(data, "metric", dict, path, "")
    for dataset in metric:
        _field(metric, dataset, str, path, "metric ")
    pair = _field(data, "headline_pair", dict, path, "")
    rows = []
    for i, row in enumerate(_field(data, "rows", list, path, "")):
        where = f"rows[{i}] "
        values: dict[tuple[str, str], float] = {}
        for dataset, splits in _field(row, "values", dict, path, where).items():
            if dataset not in metric:
                raise ReportError(f"paper data file {path}: {where}has values of {dataset!r} but 'metric' names "
                                  f"no metric for it; add it to 'metric'")
            for split in _field(row["values"], dataset, dict, path, f"{where}values "):
                values[(dataset, split)] = float(_field(splits, split, (int, float), path,
                                                        f"{where}values {dataset!r} "))
        modality, approach, variant = (_field(row, k, str, path, where) for k in ("modality", "approach", "variant"))
        rows.append(PublishedRow(modality, approach, variant, values=values))
    return PublishedTable(
        source=_field(data, "source", str, path, ""), protocol=_field(data, "protocol", str, path, ""),
        metric=dict(metric), rows=tuple(rows),
        headline_pair=(_field(pair, "challenger", str, path, "headline_pair "),
                       _field(pair, "baseline", str, path, "headline_pair ")),
    )


# The published table's parts under their former module-level names, read on first access.
_PUBLISHED_NAMES = {"PUBLISHED": "rows", "PUBLISHED_METRIC": "metric", "HEADLINE_PAIR": "headline_pair",
                    "PAPER_PROTOCOL": "protocol", "SOURCE": "source"}


def __getattr__(name: str) -> Any:
    if name in _PUBLISHED_NAMES:
        return getattr(published(), _PUBLISHED_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class PaperRow:
    """A published row with our summary beside it (summary.n == 0 when we have no runs)."""

    published: PublishedRow
    value: float  # published, percent
    ours: stats.Summary  # fractions
    interval: tuple[float, float] = (math.nan, math.nan)  # 95 % interval of our mean (fractions)
    scheme: str = "seeds only"  # how the interval was drawn
    seed_values: tuple[float, ...] = ()  # our per-seed values (fractions)

    @property
    def prediction(self) -> tuple[float, float]:
        """95 % prediction interval of one further run of ours (fractions; nan with fewer than 2 seeds)."""
        s = self.ours
        if s.n < 2 or math.isnan(s.std):
            return (math.nan, math.nan)
        half = float(stats.t_quantile(0.975, s.n - 1)) * s.std * math.sqrt(1.0 + 1.0 / s.n)
        return (max(0.0, s.mean - half), min(1.0, s.mean + half))  # a score lies in [0, 1]

    @property
    def percentile(self) -> float:
        """The published value's percentile among our seeds: share of seeds below it, ties half (nan: no runs)."""
        if not self.seed_values:
            return math.nan
        v = self.value / 100.0
        below = sum(1.0 if x < v - 1e-12 else 0.5 if abs(x - v) <= 1e-12 else 0.0 for x in self.seed_values)
        return below / len(self.seed_values)

    @property
    def plausible(self) -> bool | None:
        """Published value inside the prediction interval (None when there is none)."""
        lo, hi = self.prediction
        if math.isnan(lo):
            return None
        return lo <= self.value / 100.0 <= hi

    @property
    def difference(self) -> float:
        """Ours minus published, in percentage points (nan without runs)."""
        return 100.0 * self.ours.mean - self.value if self.ours.n else math.nan


@dataclass
class PaperSection:
    """The comparison for one (dataset, split), with the paired test of the headline pair."""

    dataset: str
    split: str
    metric: str
    rows: list[PaperRow]
    pair: bootstrap.PairedDifference | None  # headline challenger - baseline; None when either has no runs


def is_reference_config(e: Entry) -> bool:
    """True when a record ran the method's and the protocol's defaults (the modality aside)."""
    return set(e.method_cfg) <= {"modality"} and not e.protocol_cfg


def paper_sections(rs: ResultSet, protocol: str | None = None) -> list[PaperSection]:
    """Sections for every (dataset, split) with published numbers and records of `protocol` (default: the
    protocol the data file names)."""
    data = published()
    protocol = data.protocol if protocol is None else protocol
    keys = sorted({k for row in data.rows for k in row.values})
    out = []
    for dataset, split in keys:
        ents = [e for e in rs.entries if (e.dataset, e.split, e.protocol_variant) == (dataset, split, protocol)
                and is_reference_config(e)]
        if not ents:
            continue
        metric = data.metric[dataset]
        by_label: dict[str, dict[int, float]] = {}
        preds: dict[str, dict[int, Any]] = {}
        for e in ents:
            v = e.metrics.get(metric, math.nan)
            if math.isfinite(v):
                by_label.setdefault(e.variant, {})[e.seed] = v  # one config per variant after the filter
                preds.setdefault(e.variant, {})[e.seed] = bootstrap.predictions_from(e.predictions)
        clip_level = all(p is not None for row in preds.values() for p in row.values())
        inputs = {lab: (preds[lab] if clip_level else dict(vals)) for lab, vals in by_label.items()}
        n_classes = leaderboard_n_classes(ents)
        tid = ("paper", dataset, split, protocol, metric)
        boots = bootstrap.bootstrap_table(inputs, metric, row_seed((dataset, split, protocol), metric), by_label,
                                          n_classes)
        rows = []
        for p in data.rows:
            if (dataset, split) not in p.values:
                continue
            vals = by_label.get(p.variant, {})
            b = boots.get(p.variant)
            summary = stats.summarize(list(vals.values()))
            interval = (b.low, b.high) if b is not None else (math.nan, math.nan)
            rows.append(PaperRow(p, p.values[(dataset, split)], summary, interval,
                                 b.scheme if b is not None else "seeds only", tuple(vals[k] for k in sorted(vals))))
        chal, base = data.headline_pair
        pair = None
        if by_label.get(chal) and by_label.get(base):
            pair = bootstrap.paired_difference(inputs[chal], inputs[base], by_label[chal], by_label[base], metric,
                                               bootstrap.table_seed(*tid, "pair"), n_classes)
        out.append(PaperSection(dataset, split, metric, rows, pair))
    return out


def _ours(s: stats.Summary) -> str:
    if s.n == 0:
        return "not run"
    if s.n == 1:
        return f"{pct(s.mean)} (n=1)"
    return f"{pct(s.mean)} ± {pct(s.std)} (n={s.n})"


def _range(iv: tuple[float, float]) -> str:
    lo, hi = iv
    return "–" if math.isnan(lo) else f"{100 * lo:.2f}-{100 * hi:.2f}"


def _plausible(r: PaperRow) -> str:
    ok = r.plausible
    if ok is None:
        return "–"
    if ok:
        return "yes"
    return "no (above)" if r.value / 100.0 > r.prediction[1] else "no (below)"


def _signed(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:+.2f}"


def _prob(p: float) -> str:
    """P formatted without claiming certainty a finite bootstrap cannot give."""
    if p >= 1.0 - 0.5 / bootstrap.N_BOOT:
        return f">= {1 - 0.5 / bootstrap.N_BOOT:.4f}"
    if p <= 0.5 / bootstrap.N_BOOT:
        return f"<= {0.5 / bootstrap.N_BOOT:.4f}"
    return f"{p:.3f}"


def verdict_line(section: PaperSection) -> str:
    """One sentence: the headline pair's challenger minus its baseline in our runs (paired bootstrap over seeds
    and test subjects), its interval, P(challenger > baseline) and whether the difference is real."""
    values = {r.published.variant: r.value for r in section.rows}
    chal, base = published().headline_pair
    pub = ""
    if chal in values and base in values:
        pub = f" (published: {values[chal] - values[base]:+.2f})"
    d = section.pair
    head = f"{chal} vs {base} ({section.metric}"
    if d is None:
        return f"{head}): n/a - needs records of both variants."
    head += f", paired over {d.n_seeds} seed(s), {d.scheme})"
    diff = f"mean difference {_signed(100 * d.mean)} points{pub}"
    if math.isnan(d.low):
        need = (f"at least {bootstrap.MIN_SEEDS_SEED_ONLY} shared seeds with varying differences"
                if d.scheme == "seeds only" else f"at least {bootstrap.MIN_SEEDS_CLIP} shared seeds")
        return f"{head}: {diff}; untestable - needs {need}."
    real = d.low > 0.0 or d.high < 0.0
    verdict = ("real: the interval excludes 0" if real
               else "not shown: the interval contains 0 (absence of evidence, not evidence of equality)")
    return (f"{head}: {diff}, 95 % interval [{_signed(100 * d.low)}, {_signed(100 * d.high)}], "
            f"P({chal} > {base}) = {_prob(d.p_greater)}: {verdict}.")


@dataclass(frozen=True)
class JointVerdict:
    """All rows of a section at once: the pooled offset (ours - published, points), its t interval over rows,
    the sign test of 'published above our mean', and the test of the published values as single runs of ours."""

    n_rows: int
    offset: float
    low: float
    high: float
    n_above: int  # rows whose published value exceeds our mean
    p_sign: float
    p_single_run: float  # Stouffer over the rows' one-run standardized offsets (t_{n-1} each)


def joint_verdict(section: PaperSection) -> JointVerdict | None:
    """The joint reproduction verdict over the section's rows with at least 2 seeds (None with fewer than 2)."""
    from scipy import stats as st

    rows = [r for r in section.rows if r.ours.n >= 2 and math.isfinite(r.ours.std) and r.ours.std > 0]
    if len(rows) < 2:
        return None
    diffs = [r.difference for r in rows]
    offset = sum(diffs) / len(diffs)
    lo, hi = stats.t_interval(diffs)
    above = sum(1 for d in diffs if d < 0)
    ties = sum(1 for d in diffs if d == 0)
    p_sign = float(st.binomtest(above, len(diffs) - ties, 0.5).pvalue) if len(diffs) > ties else math.nan
    z = sum((r.value / 100.0 - r.ours.mean) / (r.ours.std * math.sqrt(1 + 1 / r.ours.n)) for r in rows)
    var = sum((r.ours.n - 1) / (r.ours.n - 3) if r.ours.n > 3 else 3.0 for r in rows)  # var of t_{n-1}; n <= 3: 3
    p_single = float(2 * st.norm.sf(abs(z) / math.sqrt(var)))
    return JointVerdict(len(rows), offset, lo, hi, above, p_sign, p_single)


def joint_line(section: PaperSection) -> str:
    """One sentence: the joint reproduction verdict over all rows (or why there is none)."""
    from benchmark.report.tables import fmt_p

    j = joint_verdict(section)
    if j is None:
        return "Joint verdict: n/a - needs at least 2 rows with 2 or more seeds."
    side = "above" if j.offset < 0 else "below"
    shown = not (j.low <= 0.0 <= j.high) or j.p_sign < 0.05
    if not shown:
        verdict = "no joint offset shown"
    elif j.p_single_run >= 0.05:
        verdict = (f"the published values sit jointly {side} ours, but within what single runs of ours would give "
                   f"(consistent with selected single runs)")
    else:
        verdict = (f"the published values sit jointly {side} ours by more than single runs of ours explain: a "
                   f"systematic difference remains (or the published runs were selected from many)")
    return (f"Joint verdict over {j.n_rows} rows: ours - published = {j.offset:+.2f} points on average (95 % "
            f"t-interval over rows [{j.low:+.2f}, {j.high:+.2f}]); published above our mean on {j.n_above} of "
            f"{j.n_rows} rows (sign test p = {fmt_p(j.p_sign)}); as single runs of ours (one-run standardized "
            f"offsets, Stouffer) p = {fmt_p(j.p_single_run)}: {verdict}.").replace("= <", "<").replace("= >", ">")


def paper_markdown(sections: list[PaperSection], protocol: str | None = None) -> str:
    """The comparison document: one table and one verdict line per (dataset, split)."""
    data = published()
    protocol = data.protocol if protocol is None else protocol
    parts = ["# Published vs reproduced", "",
             (f"Published: {data.source}. Ours: protocol `{protocol}`, mean ± std over seeds (n seeds), and the "
              f"95 % interval of that mean (jackknife t over seeds and test subjects, or t over seeds where records "
              f"lack per-clip predictions). The published values are single runs, so they are judged against "
              f"one run of ours: `one run (95 % PI)` is the prediction interval of one further seed, mean ± "
              f"t(0.975, n-1) · std · sqrt(1 + 1/n) clipped to [0, 100]; `plausible` = the published value lies "
              f"inside it, and `percentile` = share of our seeds below the published value. All values in %; "
              f"difference = ours - published, in points."), ""]
    for sec in sections:
        rows = [[r.published.modality, f"{r.published.approach} ({r.published.variant})", f"{r.value:.2f}",
                 _ours(r.ours), _range(r.interval), _range(r.prediction), _plausible(r),
                 "–" if math.isnan(r.percentile) else f"{100 * r.percentile:.0f} %", _signed(r.difference)]
                for r in sec.rows]
        table = tabulate(rows, headers=["Modality", "Approach", "published", "ours (mean ± std, n)",
                                        "our 95 % interval", "one run (95 % PI)", "plausible", "percentile",
                                        "difference"], tablefmt="github", disable_numparse=True)
        parts += [f"## {sec.dataset} / {sec.split} ({sec.metric})", "", table, "", joint_line(sec), "",
                  verdict_line(sec), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def paper_csv(sections: list[PaperSection]) -> str:
    """The comparison as CSV (values in %)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "split", "metric", "modality", "approach", "variant", "published", "ours_mean",
                "ours_std", "n", "ours_low", "ours_high", "run_pi_low", "run_pi_high", "plausible", "percentile",
                "difference"])
    for sec in sections:
        for r in sec.rows:
            s = r.ours
            w.writerow([sec.dataset, sec.split, sec.metric, r.published.modality, r.published.approach,
                        r.published.variant, f"{r.value:.2f}", "" if s.n == 0 else f"{100 * s.mean:.4f}",
                        "" if s.n < 2 else f"{100 * s.std:.4f}", str(s.n),
                        *("" if math.isnan(v) else f"{100 * v:.4f}" for v in (*r.interval, *r.prediction)),
                        "" if r.plausible is None else str(r.plausible).lower(),
                        "" if math.isnan(r.percentile) else f"{r.percentile:.4f}",
                        "" if math.isnan(r.difference) else f"{r.difference:.4f}"])
    return buf.getvalue()
