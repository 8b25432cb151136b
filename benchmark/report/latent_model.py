"""The latent-Gaussian (probit) model of per-clip correctness that `benchmark.report.calibrate` fits and simulates.

Clip c of row m on seed s is correct when z = mu_m + a_subject + g_clip + b_(m,subject) + h_(m,clip) + e_(m,seed)
+ f_(m,seed,subject) + eps > 0, independent normal terms whose variances (`Components`) sum with the residual's
to 1, so P(correct) = Phi(mu_m). `fit_components` estimates them from pooled tetrachoric correlations of
correctness; `match_spreads` scales them to a table's observed seed and subject spreads; `simulate_table`
draws a table of `bootstrap.Predictions` with known truth.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special
from scipy import stats as st

from benchmark.report import bootstrap


@dataclass(frozen=True)
class Components:
    """Latent variance components (fractions of the latent variance; the residual is 1 - their sum)."""

    v_subj: float
    v_clip: float
    v_mxs: float
    v_mxc: float
    v_seed: float
    v_sxs: float  # row x seed x subject


# ----------------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------------
def _phi2(h: np.ndarray, k: np.ndarray, rho: float) -> np.ndarray:
    """P(X < h, Y < k) for a standard bivariate normal with correlation rho (Owen's T; h, k != 0)."""
    r = math.sqrt(max(1e-12, 1.0 - rho * rho))
    ah, ak = (k - rho * h) / (h * r), (h - rho * k) / (k * r)
    corr = np.where(h * k < 0, 0.5, 0.0)
    return 0.5 * special.ndtr(h) + 0.5 * special.ndtr(k) - special.owens_t(h, ah) - special.owens_t(k, ak) - corr


def _solve_rho(observed: float, weights: np.ndarray, h: np.ndarray, k: np.ndarray) -> float:
    """The rho in [0, 0.99] whose expected joint-correct count sum(weights * Phi2(h, k; rho)) equals `observed`."""
    lo, hi = 0.0, 0.99
    if weights.sum() <= 0:
        return math.nan
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if float((weights * _phi2(h, k, mid)).sum()) < observed:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _sq(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Sum of squares of the group sums over `axes`, per remaining leading row axis (axis 0 kept)."""
    s = x.sum(axis=axes) if axes else x
    return (s ** 2).reshape(s.shape[0], -1).sum(1)


def fit_components(correct: np.ndarray, unit: np.ndarray) -> Components:
    """Variance components from correctness [M rows, S seeds, C clips] and each clip's subject."""
    m_rows, _, n_clips = correct.shape
    subjects = np.unique(unit)
    onehot = (unit[None, :] == subjects[:, None]).astype(float)  # [U, C]
    mu = st.norm.ppf(np.clip(correct.mean((1, 2)), 1e-3, 1 - 1e-3))
    mu = np.where(np.abs(mu) < 1e-6, 1e-6, mu)

    def stats_of(x: np.ndarray) -> dict[str, np.ndarray]:
        """Per-row sums over the pair classes (same row) and totals for the cross-row classes."""
        per_subject = np.einsum("msc,uc->msu", x, onehot)
        row_clip = x.sum(1)  # [M, C]
        row_subj = per_subject.sum(1)  # [M, U]
        return {
            "seed_clip": (row_clip ** 2).sum(1) - (x ** 2).sum((1, 2)),  # same row, other seed, same clip
            "seed_subj": (row_subj ** 2).sum(1) - (per_subject ** 2).sum((1, 2))
            - (row_clip ** 2).sum(1) + (x ** 2).sum((1, 2)),  # same row, other seed, same subject, other clip
            "same_seed": (x.sum(2) ** 2).sum(1) - (per_subject ** 2).sum((1, 2)),  # same row+seed, other subject
            "seed_subj_same": (per_subject ** 2).sum((1, 2)) - (x ** 2).sum((1, 2)),  # same row+seed+subject
            "all_clip": (x.sum((0, 1)) ** 2).sum(),
            "row_clip": (row_clip ** 2).sum(),
            "all_subj": (row_subj.sum(0) ** 2).sum(),
            "row_subj": (row_subj ** 2).sum(),
        }

    obs, cnt = stats_of(correct.astype(float)), stats_of(np.ones_like(correct, dtype=float))
    rho = {}
    for key in ("seed_clip", "seed_subj", "same_seed", "seed_subj_same"):
        rho[key] = _solve_rho(float(obs[key].sum()), cnt[key], mu, mu)
    # cross-row classes: pairs of different rows; expected counts from each row pair's means
    hh, kk = np.meshgrid(mu, mu, indexing="ij")
    off = ~np.eye(m_rows, dtype=bool)
    n_seeds = correct.shape[1]
    clip_pairs = n_seeds * n_seeds * n_clips
    sizes = onehot.sum(1)
    subj_pairs = n_seeds * n_seeds * float((sizes * (sizes - 1)).sum())
    cross_clip = float(obs["all_clip"] - obs["row_clip"])
    cross_subj = float(obs["all_subj"] - obs["row_subj"]) - cross_clip  # same subject, other clip
    rho["cross_clip"] = _solve_rho(cross_clip, np.where(off, clip_pairs, 0.0).ravel(), hh.ravel(), kk.ravel())
    rho["cross_subj"] = _solve_rho(cross_subj, np.where(off, subj_pairs, 0.0).ravel(), hh.ravel(), kk.ravel())
    v_subj = max(0.0, rho["cross_subj"])
    v_clip = max(0.0, rho["cross_clip"] - v_subj)
    v_mxs = max(0.0, rho["seed_subj"] - v_subj)
    v_mxc = max(0.0, rho["seed_clip"] - v_subj - v_clip - v_mxs)
    v_seed = max(0.0, rho["same_seed"])
    v_sxs = max(0.0, rho["seed_subj_same"] - v_subj - v_mxs - v_seed)
    return Components(v_subj, v_clip, v_mxs, v_mxc, v_seed, v_sxs)



@dataclass(frozen=True)
class Design:
    """The test clips of a table: labels, subjects, class count."""

    y_true: np.ndarray
    unit: np.ndarray
    n_classes: int



def spreads(correct: np.ndarray, unit: np.ndarray) -> tuple[float, float]:
    """(median over rows of the seed SD of accuracy, median over rows of the SD over subjects of the seed-mean
    per-subject accuracy) of correctness [M, S, C]."""
    subjects = np.unique(unit)
    per_subject = np.stack([correct[:, :, unit == u].mean(2) for u in subjects], 2)  # [M, S, U]
    return (float(np.median(correct.mean(2).std(1, ddof=1))),
            float(np.median(per_subject.mean(1).std(1, ddof=1))))


def _scaled(comps: Components, k_seed: float, k_subj: float) -> Components:
    c = Components(comps.v_subj * k_subj, comps.v_clip, comps.v_mxs * k_subj, comps.v_mxc, comps.v_seed * k_seed,
                   comps.v_sxs * k_seed)
    total = sum(asdict(c).values())
    if total > 0.98:  # keep a residual: shrink the lasting clip terms first
        room = max(0.0, 0.98 - (total - c.v_clip - c.v_mxc)) / max(c.v_clip + c.v_mxc, 1e-12)
        c = Components(c.v_subj, c.v_clip * room, c.v_mxs, c.v_mxc * room, c.v_seed, c.v_sxs)
    return c


def match_spreads(comps: Components, correct: np.ndarray, design: Design, reps: int = 6) -> Components:
    """Scale the seed terms and the subject terms so that simulated tables of the chosen table's rows (their
    fitted means) show its observed seed and subject spreads (alternating bisections on log-multipliers)."""
    target = spreads(correct, design.unit)
    mus = st.norm.ppf(np.clip(correct.mean((1, 2)), 1e-3, 1 - 1e-3))
    comps = Components(comps.v_subj or 1e-3, comps.v_clip, comps.v_mxs, comps.v_mxc, comps.v_seed,
                       comps.v_sxs or 1e-3)

    def simulated(k_seed: float, k_subj: float) -> tuple[float, float]:
        rng = np.random.default_rng(12345)
        got = []
        for _ in range(reps):
            rows, _ = simulate_table(rng, _scaled(comps, k_seed, k_subj), design, mus, correct.shape[1])
            sim = np.stack([[rows[lab][s].y_pred == design.y_true for s in sorted(rows[lab])] for lab in sorted(rows)])
            got.append(spreads(sim, design.unit))
        return float(np.mean([g[0] for g in got])), float(np.mean([g[1] for g in got]))

    k = [1.0, 1.0]
    for _ in range(2):
        for which in (0, 1):
            lo, hi = -4.0, 4.0  # log2 of the multiplier
            for _ in range(10):
                mid = 0.5 * (lo + hi)
                trial = list(k)
                trial[which] = 2.0 ** mid
                if simulated(*trial)[which] < target[which]:
                    lo = mid
                else:
                    hi = mid
            k[which] = 2.0 ** (0.5 * (lo + hi))
    return _scaled(comps, *k)


def simulate_table(rng: np.random.Generator, comps: Components, design: Design, mus: Sequence[float],
                   n_seeds: int) -> tuple[dict, dict]:
    """One simulated table: ({row: {seed: Predictions}}, {row: {seed: accuracy}}) with latent means `mus`."""
    subjects, pos = np.unique(design.unit, return_inverse=True)
    n_clips = len(design.unit)
    resid = math.sqrt(max(1e-9, 1.0 - sum(asdict(comps).values())))
    shared = (rng.normal(0, math.sqrt(comps.v_subj), len(subjects))[pos]
              + rng.normal(0, math.sqrt(comps.v_clip), n_clips))
    wrong = (design.y_true + 1) % design.n_classes
    rows: dict[str, dict[int, bootstrap.Predictions]] = {}
    values: dict[str, dict[int, float]] = {}
    for m, mu in enumerate(mus):
        lasting = (shared + rng.normal(0, math.sqrt(comps.v_mxs), len(subjects))[pos]
                   + rng.normal(0, math.sqrt(comps.v_mxc), n_clips))
        lab = f"row{m:02d}"
        rows[lab], values[lab] = {}, {}
        for s in range(n_seeds):
            z = (mu + lasting + rng.normal(0, math.sqrt(comps.v_seed))
                 + rng.normal(0, math.sqrt(comps.v_sxs), len(subjects))[pos] + rng.normal(0, resid, n_clips))
            correct = z > 0
            rows[lab][s] = bootstrap.Predictions(design.y_true, np.where(correct, design.y_true, wrong), design.unit)
            values[lab][s] = float(correct.mean())
    return rows, values
