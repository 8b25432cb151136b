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
published numbers and such records; a paired test over seeds says whether the headline pair's challenger
beats its baseline in our runs.
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

from benchmark.report import stats
from benchmark.report.entries import Entry, ReportError, ResultSet
from benchmark.report.tables import fmt_p, pct

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
        rows.append(PublishedRow(*(_field(row, k, str, path, where) for k in ("modality", "approach", "variant")),
                                 values=values))
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
    pair: stats.PairedTest | None  # None when either variant has no runs


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
        for e in ents:
            v = e.metrics.get(metric, math.nan)
            if math.isfinite(v):
                by_label.setdefault(e.variant, {})[e.seed] = v  # one config per variant after the filter
        rows = [PaperRow(p, p.values[(dataset, split)], stats.summarize(list(by_label.get(p.variant, {}).values())))
                for p in data.rows if (dataset, split) in p.values]
        a, b = (by_label.get(v, {}) for v in data.headline_pair)
        pair = None
        if a and b:
            seeds = sorted(set(a) & set(b))
            pair = stats.paired_ttest([a[s] for s in seeds], [b[s] for s in seeds])
        out.append(PaperSection(dataset, split, metric, rows, pair))
    return out


def _ours(s: stats.Summary) -> str:
    if s.n == 0:
        return "not run"
    if s.n == 1:
        return f"{pct(s.mean)} (n=1)"
    return f"{pct(s.mean)} ± {pct(s.std)} (n={s.n})"


def _signed(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:+.2f}"


def verdict_line(section: PaperSection, alpha: float = stats.ALPHA) -> str:
    """One sentence: the headline pair's challenger minus its baseline in our runs (paired over seeds) and
    whether it is significant."""
    values = {r.published.variant: r.value for r in section.rows}
    chal, base = published().headline_pair
    pub = ""
    if chal in values and base in values:
        pub = f" (published: {values[chal] - values[base]:+.2f})"
    head = f"{chal} vs {base} ({section.metric}, paired over seeds)"
    t = section.pair
    if t is None:
        return f"{head}: n/a - needs records of both variants."
    if t.n < 2:
        return f"{head}: n/a - {t.n} paired seed(s), at least 2 needed; mean difference " \
               f"{_signed(100 * t.mean_diff)} points{pub}."
    if math.isnan(t.pvalue):
        return (f"{head}: mean difference {_signed(100 * t.mean_diff)} points{pub}, n = {t.n}: untestable "
                f"(the differences have no variance across seeds, so a t-test cannot judge them).")
    sig = "significant" if t.pvalue < alpha else "not significant"
    p_text = fmt_p(t.pvalue)
    p_text = f"p {p_text[0]} {p_text[1:]}" if p_text.startswith("<") else f"p = {p_text}"
    return (f"{head}: mean difference {_signed(100 * t.mean_diff)} points{pub}, paired t-test "
            f"{p_text}, n = {t.n}: {sig} at alpha = {alpha}.")


def paper_markdown(sections: list[PaperSection], protocol: str | None = None) -> str:
    """The comparison document: one table and one verdict line per (dataset, split)."""
    data = published()
    protocol = data.protocol if protocol is None else protocol
    parts = ["# Published vs reproduced", "",
             (f"Published: {data.source}. Ours: protocol `{protocol}`, mean ± std over seeds (n seeds). "
              f"All values in %; difference = ours - published, in points."), ""]
    for sec in sections:
        rows = [[r.published.modality, f"{r.published.approach} ({r.published.variant})", f"{r.value:.2f}",
                 _ours(r.ours), _signed(r.difference)] for r in sec.rows]
        table = tabulate(rows, headers=["Modality", "Approach", "published", "ours (mean ± std, n)", "difference"],
                         tablefmt="github", disable_numparse=True)
        parts += [f"## {sec.dataset} / {sec.split} ({sec.metric})", "", table, "", verdict_line(sec), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def paper_csv(sections: list[PaperSection]) -> str:
    """The comparison as CSV (values in %)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "split", "metric", "modality", "approach", "variant", "published", "ours_mean",
                "ours_std", "n", "difference"])
    for sec in sections:
        for r in sec.rows:
            s = r.ours
            w.writerow([sec.dataset, sec.split, sec.metric, r.published.modality, r.published.approach,
                        r.published.variant, f"{r.value:.2f}", "" if s.n == 0 else f"{100 * s.mean:.4f}",
                        "" if s.n < 2 else f"{100 * s.std:.4f}", str(s.n),
                        "" if math.isnan(r.difference) else f"{r.difference:.4f}"])
    return buf.getvalue()
