"""Statistics over seeds: mean/std with a t-interval, paired t-tests and Holm's correction.

The leaderboard's question is "which methods are indistinguishable from the best?": every method is
compared with the best on the seeds both share (same seed = same pretraining seed and label subset), with
a paired t-test, and the p-values of one table are Holm-corrected together.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

ALPHA = 0.05
CONFIDENCE = 0.95
_ROUNDING = 1e-12  # differences below this (relative to the values) are float noise, not variation


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and t-interval of the values of several seeds; nan where undefined."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedTest:
    """Paired t-test of a - b over matched seeds; pvalue is nan when fewer than 2 pairs exist."""

    n: int
    mean_diff: float
    statistic: float
    pvalue: float


@dataclass(frozen=True)
class Comparison:
    """One row's comparison with the best row of a table (p_holm nan and `tied` None when not testable)."""

    n_paired: int
    mean_diff: float  # row - best, over the paired seeds
    p_raw: float
    p_holm: float
    tied: bool | None  # True: indistinguishable from the best at alpha; None: fewer than 2 paired seeds


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    return arr[np.isfinite(arr)]


def t_quantile(q: float, df: int) -> float:
    """The q quantile of Student's t with `df` degrees of freedom."""
    return float(_st.t.ppf(q, df=df))


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Student-t confidence interval of the mean (nan, nan) with fewer than 2 values."""
    arr = _finite(values)
    n = arr.size
    if n < 2:
        return (math.nan, math.nan)
    mean = float(arr.mean())
    sem = float(arr.std(ddof=1)) / math.sqrt(n)
    half = float(_st.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * sem
    return (mean - half, mean + half)


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Summary of one method's per-seed values (non-finite values are ignored)."""
    arr = _finite(values)
    n = int(arr.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else math.nan
    lo, hi = t_interval(arr, confidence)
    return Summary(n, mean, std, lo, hi)


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired t-test (scipy.stats.ttest_rel) of equal-length seed-matched samples a and b.

    Zero-variance differences (up to float rounding, common with accuracies k/N) are decided without
    scipy's nan or precision warning: identical samples give p = 1, and a constant non-zero shift (e.g. one
    clip on every seed) is untestable, p = nan: a t-test has no variance to judge it by, and p = 0 would
    call it certain.
    """
    x = np.asarray(list(a), dtype=float)
    y = np.asarray(list(b), dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_ttest needs seed-matched samples of equal length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 2:
        diff = float((x - y).mean()) if n else math.nan
        return PairedTest(n, diff, math.nan, math.nan)
    d = x - y
    mean_diff = float(d.mean())
    scale = max(1.0, float(np.abs(x).max()), float(np.abs(y).max()))
    if float(np.ptp(d)) <= _ROUNDING * scale:
        if abs(mean_diff) <= _ROUNDING * scale:
            return PairedTest(n, 0.0, 0.0, 1.0)
        return PairedTest(n, mean_diff, math.copysign(math.inf, mean_diff), math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _st.ttest_rel(x, y)
    return PairedTest(n, mean_diff, float(res.statistic), float(res.pvalue))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (monotone, capped at 1); nan entries stay nan and are not counted."""
    p = [float(v) for v in pvalues]
    idx = sorted((i for i, v in enumerate(p) if not math.isnan(v)), key=lambda i: (p[i], i))
    m = len(idx)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def best_of(means: Mapping[str, float]) -> str | None:
    """Label with the highest finite mean (ties broken by label order), None when no mean is finite."""
    finite = [(k, v) for k, v in means.items() if not math.isnan(v)]
    if not finite:
        return None
    return min(finite, key=lambda kv: (-kv[1], kv[0]))[0]


def compare_to_best(values: Mapping[str, Mapping[int, float]], best: str,
                    alpha: float = ALPHA) -> dict[str, Comparison]:
    """Paired t-test of every row against `best` on their shared seeds, Holm-corrected across rows.

    `values` maps row label -> {seed: value}. The best row itself is not in the result.
    """
    ref = values[best]
    raw: dict[str, PairedTest] = {}
    for label in sorted(values):
        if label == best:
            continue
        seeds = sorted(s for s in set(values[label]) & set(ref)
                       if math.isfinite(values[label][s]) and math.isfinite(ref[s]))
        raw[label] = paired_ttest([values[label][s] for s in seeds], [ref[s] for s in seeds])
    labels = list(raw)
    adjusted = holm([raw[k].pvalue for k in labels])
    out: dict[str, Comparison] = {}
    for label, p_adj in zip(labels, adjusted):
        t = raw[label]
        tied = None if math.isnan(p_adj) else bool(p_adj >= alpha)
        out[label] = Comparison(t.n, t.mean_diff, t.pvalue, p_adj, tied)
    return out
