"""A table's row statistics: intervals, differences to the best, the best set, P(best).

Rows with per-clip predictions (every row of the table; subject ids as the unit where recorded, else each
clip is its own unit) get their inference from `benchmark.report.crossed` (seeds crossed with test subjects):

- the 95 % interval of a row: Student t around its mean with the seed-jackknife plus subject-jackknife
  variance on min(S-1, U-1) df (no interval without variation, or with fewer than 2 seeds);
- Δ to best is the row's mean minus the best row's (paired on their shared seeds), with the simultaneous 95 %
  interval of a Games-Howell-type comparison over the table's k testable rows (studentized range at the
  difference's Satterthwaite df); `in_best_set` / `tied` (the dagger): that interval contains 0, i.e. the row
  could be the best; `p_adjusted` is the simultaneous p-value of "below the best". A difference without
  variance is untestable (None / nan): no claim either way.
- P(best) is the share of bootstrap replicates (seeds and test subjects resampled, the same draws for every
  row) in which the row has the top value (ties shared), over the seeds every testable row has, so a table's
  P(best) sum to 1. It is kept for the CSV and the calibration, which shows it overstates the winner.

Rows without per-clip predictions (records written before they were stored) fall back to seeds only, which
the tables mark: the row interval is the Student-t interval over seeds, Δ to best gets the same simultaneous
interval from the per-seed differences (at least 3 shared seeds, with variance), pairwise P(a > b) is
T_{n-1}(mean / sem) of the paired differences (`t_superiority`). Per-clip rows need at least 2 seeds for an
interval, a Δ interval, P(best) or a pairwise P: one seed would present one training run's luck as a
difference between methods.
The bootstrap draws are seeded from the table's identity and the number of seeds (or units) they cover, never
from the order in which rows are visited: reports are byte-reproducible, and a row's interval depends only on
its own records and the table's test subjects.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.report import crossed

N_BOOT = 2000
CONFIDENCE = 0.95
TOLERANCE = 1e-9  # means closer than this rank as equal (then by label)
MIN_SEEDS_SEED_ONLY = 3
MIN_SEEDS_CLIP = 2  # one seed's bootstrap resamples test subjects only: it would call seed luck a difference


def enough_seeds(n: int, clip_level: bool) -> bool:
    """Whether `n` seeds are enough for an interval or a comparison under the scheme."""
    return n >= (MIN_SEEDS_CLIP if clip_level else MIN_SEEDS_SEED_ONLY)


@dataclass(frozen=True)
class Predictions:
    """One seed's test predictions of one row: true and predicted labels and the unit (subject) of each clip."""

    y_true: np.ndarray
    y_pred: np.ndarray
    unit: np.ndarray


@dataclass(frozen=True)
class RowStats:
    """What the bootstrap says about one row of a table (fractions; nan where undefined)."""

    low: float
    high: float
    p_best: float
    delta: float  # row mean - best row mean
    delta_low: float
    delta_high: float
    tied: bool | None  # Δ interval contains 0; None: not testable (the best row itself, or too little data)
    scheme: str  # "seeds x subjects", "seeds x clips" or "seeds only"
    best: bool = False  # the table's best row (`best_label`); no row is when no mean is finite
    in_best_set: bool | None = None  # could be the best at 95 % (simultaneous over the table); None: untestable
    p_adjusted: float = math.nan  # simultaneous p-value of "below the best" (nan: untestable or the best row)


def predictions_from(record_predictions: Mapping | None) -> Predictions | None:
    """The Predictions of a record's `test_predictions` (subject as the unit when recorded)."""
    if not record_predictions:
        return None
    y_true = np.asarray(record_predictions["y_true"], dtype=np.int64)
    groups = record_predictions.get("groups") or {}
    unit = np.asarray(groups["subject"], dtype=np.int64) if "subject" in groups else np.arange(len(y_true))
    return Predictions(y_true, np.asarray(record_predictions["y_pred"], dtype=np.int64), unit)


def table_seed(*parts: str) -> int:
    """A generator seed from a table's identity (stable across runs and machines)."""
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:15], 16)


def _metric_replicates(preds: Sequence[Predictions], metric: str, seed_draws: np.ndarray, unit_weights: np.ndarray,
                       units: np.ndarray, n_classes: int) -> np.ndarray:
    """[B] replicate values of one row: mean over drawn seeds of the metric on the weighted units' clips."""
    b, n_draw = seed_draws.shape
    per_seed = []
    for p in preds:
        pos = np.searchsorted(units, p.unit)  # unit index of every clip
        if metric == "accuracy":
            correct = np.bincount(pos, weights=(p.y_true == p.y_pred).astype(float), minlength=len(units))
            count = np.bincount(pos, minlength=len(units)).astype(float)
            per_seed.append((unit_weights @ correct) / np.maximum(unit_weights @ count, 1e-12))
        else:  # macro-F1 over classes present in the drawn clips' truth or predictions
            cm = np.zeros((len(units), n_classes, n_classes))
            np.add.at(cm, (pos, p.y_true, p.y_pred), 1.0)
            cms = np.tensordot(unit_weights, cm, axes=1)  # [B, K, K]
            tp = np.diagonal(cms, axis1=1, axis2=2)
            pred_n, true_n = cms.sum(1), cms.sum(2)
            denom = pred_n + true_n
            f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)
            present = denom > 0
            per_seed.append((f1 * present).sum(1) / np.maximum(present.sum(1), 1))
    values = np.stack(per_seed, axis=1)  # [B, n_seeds]
    return np.take_along_axis(values, seed_draws, axis=1).mean(1) if n_draw else np.full(b, math.nan)


_UNITS, _SEEDS = 0, 1  # purposes of the draws (part of their generator's seed)


def _seed_draws(seed: int, n: int, n_boot: int) -> np.ndarray:
    """[B, n] seed indices drawn with replacement: the same for every row (or pair) with n seeds in a table."""
    return np.random.default_rng([seed, _SEEDS, n]).integers(0, n, size=(n_boot, n))


def _unit_weights(rows: Mapping[str, Mapping[int, Any]], seed: int, n_boot: int
                  ) -> tuple[bool, np.ndarray, np.ndarray]:
    """(clip_level, units, [B, U] multinomial unit weights): the subject draws every row of a table shares
    (clip_level False, no draws, when any row lacks per-clip predictions)."""
    clip_level = bool(rows) and all(isinstance(v, Predictions) for r in rows.values() for v in r.values())
    if not clip_level:
        return False, np.zeros(0, dtype=np.int64), np.zeros((n_boot, 0))
    units = np.unique(np.concatenate([p.unit for lab in sorted(rows) for p in rows[lab].values()]))
    rng = np.random.default_rng([seed, _UNITS, len(units)])
    weights = rng.multinomial(len(units), np.full(len(units), 1.0 / len(units)), size=n_boot).astype(float)
    return True, units, weights


def _row_replicates(row: Mapping[int, Any], seeds: list[int], draws: np.ndarray, metric: str, clip_level: bool,
                    weights: np.ndarray, units: np.ndarray, n_classes: int) -> np.ndarray:
    """[B] replicate values of one row over the drawn seeds (and unit weights at clip level)."""
    if clip_level:
        return _metric_replicates([row[s] for s in seeds], metric, draws, weights, units, n_classes)
    return np.asarray([float(row[s]) for s in seeds])[draws].mean(1)


def _interval(x: np.ndarray) -> tuple[float, float]:
    a = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def _p_best_pool(rows: Mapping[str, Mapping[int, Any]], best: str, clip_level: bool) -> tuple[list[int], list[str]]:
    """(seeds, rows) of a table's P(best): the seeds the best row shares with every row that has enough seeds
    to be tested, and the rows that have all of them. While a seed is only partly run, a row with the extra seed
    is thus compared with the others on their common seeds, not on its own (which would leave out every row
    without it and make its P(best) incomparable with the other rows')."""
    testable = [lab for lab in rows if enough_seeds(len(rows[lab]), clip_level)]
    pool = set(rows[best]).intersection(*(set(rows[lab]) for lab in testable))
    return sorted(pool), [lab for lab in sorted(rows) if pool <= set(rows[lab])]


def _unit_stats(p: Predictions, metric: str, units: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-unit sufficient statistics of one seed's predictions: [U, 2] (correct, count) for accuracy, [U, K, K]
    confusion matrices for macro-F1."""
    pos = np.searchsorted(units, p.unit)
    if metric == "accuracy":
        return np.stack([np.bincount(pos, weights=(p.y_true == p.y_pred).astype(float), minlength=len(units)),
                         np.bincount(pos, minlength=len(units)).astype(float)], axis=1)
    cm = np.zeros((len(units), n_classes, n_classes))
    np.add.at(cm, (pos, p.y_true, p.y_pred), 1.0)
    return cm


def _loo(row: Mapping[int, Any], seeds: list[int], metric: str, units: np.ndarray, n_classes: int,
         cache: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """[len(seeds), U+1] leave-one-unit-out metric matrix of one row on `seeds` (crossed.leave_one_out)."""
    rows = []
    for s in seeds:
        key = (id(row[s]), s)
        if key not in cache:
            cache[key] = crossed.leave_one_out(_unit_stats(row[s], metric, units, n_classes)[None], metric)[0]
        rows.append(cache[key])
    return np.stack(rows)


def bootstrap_table(rows: Mapping[str, Mapping[int, Any]], metric: str, seed: int,
                    values: Mapping[str, Mapping[int, float]], n_classes: int,
                    n_boot: int = N_BOOT) -> dict[str, RowStats]:
    """RowStats of every row of one table. `rows` maps label -> {seed: Predictions} (per-clip scheme) or
    {seed: value} (seeds-only scheme, used when any row lacks predictions); `values` are the rows' per-seed
    metric values from the records (what the tables show).

    A row's interval uses its own seeds (crossed jackknife, Student t at Satterthwaite df; seeds only: t over
    seeds); its Δ to best is paired on the seeds it shares with the best row, with the simultaneous
    (Games-Howell type) interval over the table's testable rows, and `in_best_set` / `tied` say whether the row
    could be the best (`crossed`). P(best) resamples the seeds that the best row shares with every testable row
    (`_p_best_pool`), so every P(best) of a table comes from the same draws and they sum to 1.
    """
    labels = sorted(rows)
    if not labels:
        return {}
    means = {lab: float(np.mean(list(values[lab].values()))) if values.get(lab) else math.nan for lab in labels}
    clip_level, units, weights = _unit_weights(rows, seed, n_boot)
    chosen = best_label(means, {lab: len(values.get(lab, {})) for lab in labels}, clip_level)
    best = chosen or rank(means)[0]  # without a finite mean, Δs are nan against any reference row
    scheme = "seeds only"
    if clip_level:
        first = next(iter(rows[labels[0]].values()))
        scheme = "seeds x clips" if np.array_equal(first.unit, np.arange(len(first.unit))) else "seeds x subjects"

    def replicates(lab: str, seeds: list[int], draws: np.ndarray) -> np.ndarray:
        return _row_replicates(rows[lab], seeds, draws, metric, clip_level, weights, units, n_classes)

    pool, eligible = _p_best_pool(rows, best, clip_level)
    pool_draws = _seed_draws(seed, len(pool), n_boot)
    matrix = np.stack([replicates(lab, pool, pool_draws) for lab in eligible], axis=1)
    winners = np.abs(matrix - matrix.max(1, keepdims=True)) <= TOLERANCE
    share = (winners / winners.sum(1, keepdims=True)).mean(0)
    pool_ok = enough_seeds(len(pool), clip_level) and len(eligible) >= 2  # alone, a row is not "best" of anything
    p_best = {lab: float(share[k]) if pool_ok else math.nan for k, lab in enumerate(eligible)}
    k_rows = max(2, sum(enough_seeds(len(rows[lab]), clip_level) for lab in labels))
    cache: dict[tuple[int, int], np.ndarray] = {}

    def spread(lab: str, seeds: list[int], minus: str | None = None) -> tuple[float, float]:
        """(variance, df) of the seed mean of a row (or of its difference to `minus`) on `seeds`."""
        if clip_level:
            m = _loo(rows[lab], seeds, metric, units, n_classes, cache)
            if minus is not None:
                m = m - _loo(rows[minus], seeds, metric, units, n_classes, cache)
            _, var, df = crossed.jackknife(m, difference=minus is not None)
            return var, df
        vals = [float(rows[lab][s]) - (float(rows[minus][s]) if minus is not None else 0.0) for s in seeds]
        _, var, df = crossed.seeds_only(vals)
        return var, df

    out = {}
    for lab in labels:
        own = sorted(rows[lab])
        lo = hi = math.nan
        if enough_seeds(len(own), clip_level) or (not clip_level and len(own) >= 2):
            var, df = spread(lab, own)
            lo, hi = crossed.t_interval(means[lab], var, df)
        shared = sorted(set(rows[lab]) & set(rows[best]))
        delta = float(np.mean([values[lab][s] - values[best][s] for s in shared])) if shared else math.nan
        d_lo = d_hi = p_adj = math.nan
        tied: bool | None = None
        if lab == best:
            d_lo = d_hi = 0.0
        elif enough_seeds(len(shared), clip_level) and enough_seeds(len(own), clip_level):
            var, df = spread(lab, shared, best)
            if not math.isnan(var) and var > crossed.MIN_VARIANCE:
                se = math.sqrt(var)
                half = crossed.critical(k_rows, df) * se
                d_lo, d_hi = delta - half, delta + half
                p_adj = crossed.adjusted_p(delta / se, k_rows, df)
                tied = bool(abs(delta) <= half)
        in_set: bool | None = True if lab == chosen else tied
        out[lab] = RowStats(lo if math.isnan(lo) else max(0.0, lo), hi if math.isnan(hi) else min(1.0, hi),
                            p_best.get(lab, math.nan), delta, d_lo, d_hi, tied, scheme, lab == chosen,
                            in_set, p_adj)
    return out


def pairwise_superiority(rows: Mapping[str, Mapping[int, Any]], metric: str, seed: int, n_classes: int,
                         n_boot: int = N_BOOT) -> dict[tuple[str, str], float]:
    """{(a, b): P(a > b)} for every ordered pair of rows, over paired replicates: the seeds both rows have
    (resampled) and the test subjects (resampled, same draws for both; seeds-only rows: seeds alone). Ties
    count one half; nan where the pair shares fewer seeds than `enough_seeds` asks."""
    labels = sorted(rows)
    clip_level, units, weights = _unit_weights(rows, seed, n_boot)
    out: dict[tuple[str, str], float] = {}
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            shared = sorted(set(rows[a]) & set(rows[b]))
            if not enough_seeds(len(shared), clip_level):
                out[(a, b)] = out[(b, a)] = math.nan
                continue
            if not clip_level:
                p = t_superiority([float(rows[a][s]) - float(rows[b][s]) for s in shared])
                out[(a, b)], out[(b, a)] = p, 1.0 - p
                continue
            draws = _seed_draws(seed, len(shared), n_boot)
            va, vb = (_row_replicates(rows[lab], shared, draws, metric, clip_level, weights, units, n_classes)
                      for lab in (a, b))
            d = va - vb
            p = float(np.mean((d > TOLERANCE) + 0.5 * (np.abs(d) <= TOLERANCE)))
            out[(a, b)], out[(b, a)] = p, 1.0 - p
    return out


def t_superiority(diffs: Sequence[float]) -> float:
    """P(mean difference > 0) from per-seed differences under Student t (the flat-prior posterior of the mean):
    T_{n-1}(mean / sem). nan with fewer than MIN_SEEDS_SEED_ONLY values or without variance (a constant shift is
    not certainty)."""
    from scipy import stats as st

    d = np.asarray(list(diffs), dtype=float)
    if d.size < MIN_SEEDS_SEED_ONLY or float(np.ptp(d)) <= TOLERANCE:
        return math.nan
    sem = float(d.std(ddof=1)) / math.sqrt(d.size)
    return float(st.t.cdf(float(d.mean()) / sem, df=d.size - 1))


@dataclass(frozen=True)
class PairedDifference:
    """a - b over paired replicates (fractions): mean of the per-seed differences, its interval, P(a > b)."""

    n_seeds: int
    mean: float
    low: float
    high: float
    p_greater: float
    scheme: str


def paired_difference(a: Mapping[int, Any], b: Mapping[int, Any], values_a: Mapping[int, float],
                      values_b: Mapping[int, float], metric: str, seed: int, n_classes: int,
                      n_boot: int = N_BOOT) -> PairedDifference:
    """Row a minus row b on their shared seeds: {seed: Predictions} for both (seeds x test subjects) or
    {seed: value} (seeds only). nan interval and P where nothing can be claimed (fewer shared seeds than
    `enough_seeds` asks; seeds only: differences without variance)."""
    shared = sorted(set(a) & set(b) & set(values_a) & set(values_b))
    mean = float(np.mean([values_a[s] - values_b[s] for s in shared])) if shared else math.nan
    rows = {"a": {s: a[s] for s in shared}, "b": {s: b[s] for s in shared}}
    clip_level, units, weights = _unit_weights(rows, seed, n_boot)
    scheme = "seeds x subjects" if clip_level else "seeds only"
    diffs = [values_a[s] - values_b[s] for s in shared]
    if not enough_seeds(len(shared), clip_level) or (not clip_level and float(np.ptp(diffs)) <= TOLERANCE):
        return PairedDifference(len(shared), mean, math.nan, math.nan, math.nan, scheme)
    if not clip_level:  # a handful of seed values: Student t, not a bootstrap of 3 numbers
        from benchmark.report.stats import t_interval

        lo, hi = t_interval(diffs)
        return PairedDifference(len(shared), mean, lo, hi, t_superiority(diffs), scheme)
    cache: dict[tuple[int, int], np.ndarray] = {}
    m = _loo(rows["a"], shared, metric, units, n_classes, cache) - _loo(rows["b"], shared, metric, units, n_classes,
                                                                        cache)
    _, var, df = crossed.jackknife(m, difference=True)
    if math.isnan(var) or var <= crossed.MIN_VARIANCE:  # constant in every seed and subject: untestable
        return PairedDifference(len(shared), mean, math.nan, math.nan, math.nan, scheme)
    lo, hi = crossed.t_interval(mean, var, df)
    from scipy import stats as st

    return PairedDifference(len(shared), mean, lo, hi, float(st.t.cdf(mean / math.sqrt(var), df)), scheme)


def best_label(means: Mapping[str, float], n_seeds: Mapping[str, int], clip_level: bool) -> str | None:
    """The best row: the highest mean among the rows with enough seeds to be tested (`enough_seeds`) where any
    has, else the highest mean; None when no mean is finite. A row with too few seeds is shown, but never chosen
    over rows that can carry an interval, a Δ and P(best): that would leave the whole table without them."""
    ranked = [lab for lab in rank(means) if not math.isnan(means[lab])]
    testable = [lab for lab in ranked if enough_seeds(n_seeds.get(lab, 0), clip_level)]
    pick = testable or ranked
    return pick[0] if pick else None


def rank(means: Mapping[str, float]) -> list[str]:
    """Labels by mean, best first; means within TOLERANCE of their neighbour rank as equal (then by label);
    nan last."""
    finite = sorted(((v, k) for k, v in means.items() if not math.isnan(v)), key=lambda t: (-t[0], t[1]))
    out: list[str] = []
    group: list[tuple[float, str]] = []
    for v, k in finite:
        if group and group[-1][0] - v > TOLERANCE:
            out.extend(sorted(lab for _, lab in group))
            group = []
        group.append((v, k))
    out.extend(sorted(lab for _, lab in group))
    return out + sorted(k for k in means if math.isnan(means[k]))
