"""The paper comparison: published CMC-CMKM numbers (spec 7.1) beside ours, with the difference.

Published values are the authors' README table (UTD-MHAD accuracy; MMAct macro-F1, cross-subject and
cross-scene), each keyed to the method variant that reproduces it, evaluated with the `paper_head`
protocol. Only records of the reference configuration count: no method override besides the modality and
no protocol override, so a run with shortened schedules (`--epochs-scale`, the quick suite) or changed
hyperparameters is never set beside the published numbers. The comparison is written only for
(dataset, split) pairs that have published numbers and such records; a paired test over seeds says
whether CMC-CMKM beats CMC in our runs.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Mapping

from tabulate import tabulate

from benchmark.report import stats
from benchmark.report.aggregate import Entry, ResultSet
from benchmark.report.tables import fmt_p, pct

PAPER_PROTOCOL = "paper_head"
SOURCE = "authors' README table of CMC-CMKM (IJCNN 2022), spec section 7.1"
# The metric each published column reports.
PUBLISHED_METRIC = {"utd_mhad": "accuracy", "mmact": "f1_macro"}


@dataclass(frozen=True)
class PublishedRow:
    """One row of the published table: what it is, which of our variants reproduces it, its values in %."""

    modality: str
    approach: str
    variant: str
    values: Mapping[tuple[str, str], float]  # (dataset, split) -> published value in percent


PUBLISHED: tuple[PublishedRow, ...] = (
    PublishedRow("Inertial", "SimCLR", "simclr[inertial]",
                 {("utd_mhad", "xsub"): 72.09, ("mmact", "xsub"): 52.89, ("mmact", "xscene"): 59.23}),
    PublishedRow("Inertial", "Supervised", "supervised[inertial]",
                 {("utd_mhad", "xsub"): 76.74, ("mmact", "xsub"): 61.22, ("mmact", "xscene"): 78.86}),
    PublishedRow("Skeleton", "SimCLR", "simclr[skeleton]",
                 {("utd_mhad", "xsub"): 95.11, ("mmact", "xsub"): 75.82, ("mmact", "xscene"): 67.80}),
    PublishedRow("Skeleton", "Supervised", "supervised[skeleton]",
                 {("utd_mhad", "xsub"): 94.65, ("mmact", "xsub"): 82.50, ("mmact", "xscene"): 70.58}),
    PublishedRow("Multimodal", "CMC", "cmc",
                 {("utd_mhad", "xsub"): 96.04, ("mmact", "xsub"): 82.05, ("mmact", "xscene"): 79.97}),
    PublishedRow("Multimodal", "CMC-CMKM", "cmc_cmkm",
                 {("utd_mhad", "xsub"): 97.67, ("mmact", "xsub"): 84.51, ("mmact", "xscene"): 82.91}),
    PublishedRow("Multimodal", "Supervised", "supervised[all]",
                 {("utd_mhad", "xsub"): 97.21, ("mmact", "xsub"): 84.05, ("mmact", "xscene"): 87.36}),
)
# The paired comparison reported under each table: (challenger, baseline) variants.
HEADLINE_PAIR = ("cmc_cmkm", "cmc")


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
    """The comparison for one (dataset, split), with the paired CMC-CMKM vs CMC test."""

    dataset: str
    split: str
    metric: str
    rows: list[PaperRow]
    pair: stats.PairedTest | None  # None when either variant has no runs


def is_reference_config(e: Entry) -> bool:
    """True when a record ran the method's and the protocol's defaults (the modality aside)."""
    return set(e.method_cfg) <= {"modality"} and not e.protocol_cfg


def paper_sections(rs: ResultSet, protocol: str = PAPER_PROTOCOL) -> list[PaperSection]:
    """Sections for every (dataset, split) with published numbers and records of `protocol`."""
    keys = sorted({k for row in PUBLISHED for k in row.values})
    out = []
    for dataset, split in keys:
        ents = [e for e in rs.entries if (e.dataset, e.split, e.protocol_variant) == (dataset, split, protocol)
                and is_reference_config(e)]
        if not ents:
            continue
        metric = PUBLISHED_METRIC[dataset]
        by_label: dict[str, dict[int, float]] = {}
        for e in ents:
            v = e.metrics.get(metric, math.nan)
            if math.isfinite(v):
                by_label.setdefault(e.variant, {})[e.seed] = v  # one config per variant after the filter
        rows = [PaperRow(p, p.values[(dataset, split)], stats.summarize(list(by_label.get(p.variant, {}).values())))
                for p in PUBLISHED if (dataset, split) in p.values]
        a, b = (by_label.get(v, {}) for v in HEADLINE_PAIR)
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
    """One sentence: CMC-CMKM minus CMC in our runs (paired over seeds) and whether it is significant."""
    published = {r.published.variant: r.value for r in section.rows}
    chal, base = HEADLINE_PAIR
    pub = ""
    if chal in published and base in published:
        pub = f" (published: {published[chal] - published[base]:+.2f})"
    head = f"{chal} vs {base} ({section.metric}, paired over seeds)"
    t = section.pair
    if t is None:
        return f"{head}: n/a - needs records of both variants."
    if t.n < 2:
        return f"{head}: n/a - {t.n} paired seed(s), at least 2 needed; mean difference " \
               f"{_signed(100 * t.mean_diff)} points{pub}."
    sig = "significant" if t.pvalue < alpha else "not significant"
    p_text = fmt_p(t.pvalue)
    p_text = f"p {p_text[0]} {p_text[1:]}" if p_text.startswith("<") else f"p = {p_text}"
    return (f"{head}: mean difference {_signed(100 * t.mean_diff)} points{pub}, paired t-test "
            f"{p_text}, n = {t.n}: {sig} at alpha = {alpha}.")


def paper_markdown(sections: list[PaperSection], protocol: str = PAPER_PROTOCOL) -> str:
    """The comparison document: one table and one verdict line per (dataset, split)."""
    parts = ["# Published vs reproduced", "",
             f"Published: {SOURCE}. Ours: protocol `{protocol}`, mean ± std over seeds (n seeds). "
             f"All values in %; difference = ours - published, in points.", ""]
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
