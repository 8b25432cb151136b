"""Small-sample inference over crossed seeds x test subjects: jackknife variance, t intervals, simultaneous tests.

A row's value is the mean over its seeds of a metric on the test clips. Two things vary it: the training seed
and the (few) test subjects, crossed (every seed is scored on the same subjects). Its variance is estimated by
two jackknives, each over one factor with the other held: over seeds, var(per-seed values) / S; over subjects,
(U-1)/U · Σ_u (θ_(-u) - θ̄)², where θ_(-u) is the seed-mean metric with subject u's clips left out (any metric,
macro-F1 included). For a row's interval their sum (which counts the seed x subject interaction twice, so errs
wide) is used with Student t on min(S-1, U-1) df: 3 with 4 test subjects (a percentile bootstrap over 4 subjects
under-covers, and so did Satterthwaite df in `benchmark.report.calibrate`).

Differences between rows use the paired per-seed, per-subject differences (shared seeds), where the seed x
subject interaction is often the largest term: its double count is removed (the two-way table of jackknife
pseudo-values gives it) and the df are Satterthwaite's.
"Below the best" claims are simultaneous over the table (Games-Howell type): a row is below the best row when
|Δ| / se exceeds q(0.95; k, df) / √2, the studentized-range critical value for k compared rows at the pair's
Satterthwaite df; the adjusted p-value is the studentized range's tail at |Δ| / se · √2. With every row equal,
the chance that any row is called below is at most ~5 %, whatever k. A difference without variance (constant
over seeds and subjects) is untestable: no claim, never p = 0 or 1.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as st

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
MIN_VARIANCE = 1e-14  # a variance below this (fractions², i.e. se < 1e-7) is none: untestable
# Satterthwaite df are floored onto this grid for critical values (a lower df is wider: conservative, and cached)
_DF_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0, 50.0, 100.0,
            1000.0)


def leave_one_out(per_seed_unit: np.ndarray, metric: str) -> np.ndarray:
    """[S, U+1] metric per seed with each unit left out (columns 0..U-1) and with none left out (column U), from
    per-seed, per-unit sufficient statistics: accuracy [S, U, 2] (correct, count), macro-F1 [S, U, K, K]
    (confusion matrices; classes present in truth or predictions)."""
    total = per_seed_unit.sum(1, keepdims=True)
    stacks = np.concatenate([total - per_seed_unit, total], axis=1)  # [S, U+1, ...]
    if metric == "accuracy":
        return stacks[..., 0] / np.maximum(stacks[..., 1], 1e-12)
    tp = np.diagonal(stacks, axis1=-2, axis2=-1)
    denom = stacks.sum(-2) + stacks.sum(-1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)
    present = denom > 0
    return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)


@functools.cache
def _grid_critical(k: int, df: float, confidence: float) -> float:
    if k <= 2:
        return float(st.t.ppf(0.5 + confidence / 2, df))
    return float(st.studentized_range.ppf(confidence, k, df)) / math.sqrt(2.0)


def _floor_df(df: float) -> float:
    return max([g for g in _DF_GRID if g <= df] or [_DF_GRID[0]])


def critical(k: int, df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided simultaneous critical value for all pairs of k rows at `df` (floored onto a grid): Student t for
    k <= 2, else the studentized range quantile / √2."""
    return _grid_critical(max(k, 2), _floor_df(df), confidence)


def t_critical(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student t critical value at exact (Satterthwaite) df."""
    return float(st.t.ppf(0.5 + confidence / 2, max(df, 1.0)))


def adjusted_p(stat: float, k: int, df: float) -> float:
    """Simultaneous p-value of |Δ| / se = `stat` among all pairs of k rows at the df `critical` uses (floored onto
    its grid), so it agrees with the interval's verdict (nan: untestable)."""
    if math.isnan(stat):
        return math.nan
    df = _floor_df(df)  # the df `critical` uses, so that p < 0.05 exactly when the interval excludes 0
    if k <= 2:
        return float(2 * st.t.sf(abs(stat), df))
    return float(min(1.0, st.studentized_range.sf(abs(stat) * math.sqrt(2.0), k, df)))


def jackknife(matrix: np.ndarray, difference: bool = False) -> tuple[float, float, float]:
    """(estimate, variance, df) of the seed mean of `matrix` [S, U+1] (leave-one-unit-out columns, then the full
    column). Variance nan with one seed and one unit; 0 where nothing varies.

    A row (difference False): V_seed + V_subj (the interaction counted twice: wide) on min(S-1, U-1) df, since a
    mean over 4 skewed subject values needs the plain cluster df to cover. A difference of two rows: the unbiased
    crossed estimate V_seed + V_subj - MS_int / (S U) from the two-way table of jackknife pseudo-values (never
    below the larger of the two), on Satterthwaite df."""
    s, u = matrix.shape[0], matrix.shape[1] - 1
    full = matrix[:, -1]
    est = float(full.mean())
    if s < 2 and u < 2:
        return est, math.nan, math.nan
    v_seed = float(full.var(ddof=1)) / s if s >= 2 else 0.0
    v_unit = 0.0
    if u >= 2:
        theta = matrix[:, :-1].mean(0)
        v_unit = float((u - 1) / u * ((theta - theta.mean()) ** 2).sum())
    if not difference or s < 2 or u < 2:
        dfs = [d for d, v in ((s - 1, v_seed), (u - 1, v_unit)) if d >= 1]
        return est, v_seed + v_unit, float(max(1, min(dfs)))
    pseudo = u * full[:, None] - (u - 1) * matrix[:, :-1]  # [S, U]
    resid = pseudo - pseudo.mean(1, keepdims=True) - pseudo.mean(0, keepdims=True) + pseudo.mean()
    v_int = float((resid ** 2).sum()) / ((s - 1) * (u - 1)) / (s * u)
    var = max(v_seed + v_unit - v_int, v_seed, v_unit)
    den = v_seed ** 2 / (s - 1) + v_unit ** 2 / (u - 1) + v_int ** 2 / ((s - 1) * (u - 1))
    df = var ** 2 / den if den > 0 else float(min(s - 1, u - 1))
    return est, var, max(df, 1.0)


def t_interval(est: float, var: float, df: float) -> tuple[float, float]:
    """est ± t(df) · sqrt(var); (nan, nan) when the variance is missing or none (no claim from no variation)."""
    if math.isnan(var) or var <= MIN_VARIANCE:
        return (math.nan, math.nan)
    half = t_critical(df) * math.sqrt(var)
    return (est - half, est + half)


def seeds_only(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, variance of the mean, df) of per-seed values (the seeds-only scheme: no subject component)."""
    v = np.asarray(list(values), dtype=float)
    if v.size < 2:
        return (float(v.mean()) if v.size else math.nan, math.nan, math.nan)
    return float(v.mean()), float(v.var(ddof=1)) / v.size, float(v.size - 1)
