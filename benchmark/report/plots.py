"""Figures of a results folder (seaborn style, PNG): curves over a swept budget, interval plots (one per table),
pairwise P(A > B) heat maps from the paired bootstrap (few rows only), seed-averaged
confusion matrices, retrieval precision@k and 2-D embedding maps.

Figures are drawn on standalone `matplotlib.figure.Figure` objects with the Agg canvas (no pyplot state,
no GUI backend) and saved without the software/date metadata, so reruns give the same files.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; must precede any pyplot import (seaborn imports pyplot)

import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark.report import entries, figure_data, leaderboard
from benchmark.report.best_set import best_set
from benchmark.report.stats import Summary

DPI = 110
MAX_SLUG = 120  # file names stay far below the usual 255-byte limit
# Protocols whose seed-averaged confusion matrices are drawn (one figure per method each): the downstream
# heads. Others (knn, retrieval, missing_modality, ...) also store confusions; the tables cover them.
CONFUSION_PROTOCOLS = ("paper_head", "linear")
_STYLE = {"axes.spines.top": False, "axes.spines.right": False}


def slug(*parts: str) -> str:
    """File-name-safe join of name parts ('semisup[per_class=2]' -> 'semisup-per_class=2')."""
    text = "_".join(re.sub(r"[^A-Za-z0-9_.=+-]+", "-", str(p)).strip("-") for p in parts)
    if len(text) > MAX_SLUG:  # a long variant spec: keep the head readable, make the tail a hash (file-name limits)
        text = f"{text[:MAX_SLUG - 13]}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    return text or "figure"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    """Write a PNG atomically (temp file + replace), without time-dependent metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _palette(labels: list[str]) -> dict[str, tuple]:
    colors = sns.color_palette("tab10" if len(labels) <= 10 else "husl", len(labels))
    return dict(zip(labels, colors))


def _band(s: Summary) -> tuple[float, float]:
    """The 95% CI in percent, clipped to [0, 100] for display (with 2-3 seeds a t-interval can leave it)."""
    if s.n < 2:
        return (100 * s.mean, 100 * s.mean)
    return (max(0.0, 100 * s.ci_low), min(100.0, 100 * s.ci_high))


def _title(dataset: str, split: str, what: str) -> str:
    return f"{dataset} / {split} / {what}"


# ----------------------------------------------------------------------------------------------------
# Individual figures
# ----------------------------------------------------------------------------------------------------
def plot_sweep(sweep: figure_data.Sweep, colors: dict[str, tuple], path: Path) -> Path:
    """Main metric vs the swept key (e.g. label budget), one line per method, 95% t-CI bands."""
    fig = _new_figure(7.6, 4.2)
    ax = fig.subplots()
    xs_all = sorted({x for pts in sweep.points.values() for x in pts})
    for label, pts in sweep.points.items():
        xs = sorted(pts)
        mean = [100 * pts[x].mean for x in xs]
        lo, hi = zip(*(_band(pts[x]) for x in xs))
        ax.plot(xs, mean, marker="o", color=colors[label], label=label)
        ax.fill_between(xs, lo, hi, color=colors[label], alpha=0.12, linewidth=0)
    if xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10:
        ax.set_xscale("log")
    ax.set_xticks(xs_all)
    ax.set_xticklabels([f"{x:g}" for x in xs_all])
    ax.minorticks_off()
    ax.set_xlabel(sweep.x_label)
    ax.set_ylabel(f"{sweep.metric} (%)")
    ax.set_title(_title(sweep.dataset, sweep.split, f"{sweep.protocol} vs {sweep.key} (mean, 95% CI)"))
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right center", fontsize=8, frameon=False)
    return _save(fig, path)


INTERVAL_LABEL_PT = 9.0  # tick-label size of the interval plot (13.75 px at DPI 110, shown at natural size)
INTERVAL_ROW_IN = 0.2  # inches per row (22 px): a 33-row table stays a ~7.5-inch figure with readable labels
PAIRWISE_MAX_ROWS = 12  # a heat map of more rows has unreadable labels and cells: drawn for the best set instead


def plot_intervals(board: leaderboard.Leaderboard, best_set: set[str], path: Path) -> Path:
    """Main metric per row: mean (dot) and 95% interval (line), rows sorted best first, best set shaded; the axis
    spans the intervals (not 0-100), so close rows stay apart."""
    rows = [(lab, cells[board.main_metric].summary) for lab, cells in board.rows
            if cells[board.main_metric].summary.n > 0]
    fig = _new_figure(7.2, 0.9 + INTERVAL_ROW_IN * max(len(rows), 2))
    ax = fig.subplots()
    lows, highs = [], []
    for i, (lab, s) in enumerate(rows):
        lo, hi = _band(s)
        if math.isnan(s.ci_low):
            lo = hi = 100 * s.mean
        lows.append(lo)
        highs.append(hi)
        if lab in best_set:
            ax.axhspan(i - 0.5, i + 0.5, color="#fff3c4", zorder=0, linewidth=0)
        ax.plot([lo, hi], [i, i], color="#3b6ea8", linewidth=2, solid_capstyle="butt", zorder=2)
        ax.plot([100 * s.mean], [i], "o", color="#1d3557", markersize=4.5, zorder=3)
    if rows:
        span = max(max(highs) - min(lows), 1.0)
        ax.set_xlim(max(0.0, min(lows) - 0.06 * span), min(100.0, max(highs) + 0.06 * span))
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{lab}  {100 * s.mean:.1f}" for lab, s in rows])
    ax.tick_params(axis="y", labelsize=INTERVAL_LABEL_PT, length=0)
    ax.tick_params(axis="x", labelsize=INTERVAL_LABEL_PT)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"{board.main_metric} (%): mean and 95% interval; shaded: could be best", fontsize=INTERVAL_LABEL_PT)
    ax.set_title(_title(board.dataset, board.split, board.table), fontsize=INTERVAL_LABEL_PT + 1)
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, names: list[str], n_seeds: int, title: str, path: Path) -> Path:
    """Seed-averaged confusion matrix, rows (true class) normalised to percent."""
    totals = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(100 * matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = 2.5 + 0.28 * len(names)
    fig = _new_figure(size + 1.2, size)
    ax = fig.subplots()
    sns.heatmap(norm, ax=ax, cmap="Blues", vmin=0, vmax=100, square=True, annot=len(names) <= 12, fmt=".0f",
                xticklabels=names, yticklabels=names, cbar_kws={"label": "% of true class"})
    ax.tick_params(labelsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (mean over {n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=10)
    return _save(fig, path)


def plot_precision_at_k(views: dict[str, dict[str, dict[int, Summary]]], colors: dict[str, tuple],
                        title: str, path: Path) -> Path:
    """Precision@k vs k, one panel per retrieval view, one line per method with 95% t-CI bands."""
    names = list(views)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _new_figure(3.8 * ncols + 1.8, 3.3 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax, view in zip(axes, names):
        for label, ks in views[view].items():
            xs = sorted(ks)
            ax.plot(xs, [100 * ks[k].mean for k in xs], marker="o", color=colors[label], label=label)
            lo, hi = zip(*(_band(ks[k]) for k in xs))
            ax.fill_between(xs, lo, hi, color=colors[label], alpha=0.12, linewidth=0)
        all_k = sorted({k for ks in views[view].values() for k in ks})
        ax.set_xticks(all_k)
        ax.set_xlabel("k")
        ax.set_title(view or "main", fontsize=10)
    for i, ax in enumerate(axes):
        if i >= len(names):
            ax.set_visible(False)
        elif i % ncols == 0:
            ax.set_ylabel("precision@k (%)")
    legend: dict[str, "matplotlib.artist.Artist"] = {}  # every panel's methods (a view may hold one modality's)
    for ax in axes[:len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def plot_embeddings(maps: dict[str, tuple[np.ndarray, list, int]], title: str, path: Path) -> Path:
    """2-D embedding of each method (first seed), points coloured by class."""
    labels = list(maps)
    classes = sorted({str(c) for xy, cl, _ in maps.values() for c in cl}, key=entries.natural_key)
    cmap = dict(zip(classes, sns.color_palette("husl", len(classes))))
    ncols = min(3, len(labels))
    nrows = math.ceil(len(labels) / ncols)
    fig = _new_figure(3.6 * ncols + 1.6, 3.4 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, label in zip(axes, labels):
        xy, cl, seed = maps[label]
        names = [str(c) for c in cl]
        for c in classes:
            idx = [i for i, n in enumerate(names) if n == c]
            if idx:
                ax.scatter(xy[idx, 0], xy[idx, 1], s=8, color=cmap[c], label=c, linewidths=0)
        ax.set_title(f"{label} (seed {seed})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(labels):]:
        ax.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=7, frameon=False, markerscale=1.5,
               ncols=1 if len(classes) <= 20 else 2)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------------
# All figures of a results set
# ----------------------------------------------------------------------------------------------------
def plot_pairwise(board: leaderboard.Leaderboard, probs: dict[tuple[str, str], float], path: Path,
                  labels: list[str] | None = None) -> Path:
    """Heat map of P(row > column) from the paired bootstrap, rows and columns in leaderboard order (all rows, or
    `labels` only)."""
    labels = labels if labels is not None else [lab for lab, _ in board.rows]
    mat = np.array([[math.nan if a == b else probs.get((a, b), math.nan) for b in labels] for a in labels])
    side = 1.2 + 0.55 * len(labels)
    fig = _new_figure(side + 1.5, side)
    ax = fig.add_subplot()
    sns.heatmap(mat, ax=ax, vmin=0, vmax=1, cmap="vlag", annot=len(labels) <= 14, fmt=".2f", square=True,
                xticklabels=labels, yticklabels=labels, cbar_kws={"label": "P(row > column)"},
                annot_kws={"fontsize": 7})
    ax.set_title(_title(board.dataset, board.split, f"{board.table}: P(row > column), {board.main_metric}"))
    ax.tick_params(axis="x", rotation=60, labelsize=8)
    ax.tick_params(axis="y", rotation=0, labelsize=8)
    ax.grid(False)
    return _save(fig, path)


def plot_all(rs: entries.ResultSet, fig_dir: Path) -> list[Path]:
    """Draw every figure the records support into `fig_dir`; returns the written paths (sorted)."""
    fig_dir = Path(fig_dir)
    labels = sorted({e.label for e in rs.entries})
    colors = _palette(labels)
    written: list[Path] = []
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("notebook", font_scale=0.9):
        swept: set[tuple[str, str, str]] = set()
        for sw in figure_data.sweeps(rs):
            swept |= {(sw.dataset, sw.split, t) for t in sw.tables}
            name = slug("curve", sw.dataset, sw.split, sw.protocol, sw.key) + ".png"
            written.append(plot_sweep(sw, colors, fig_dir / name))
        for board in leaderboard.leaderboards(rs):
            name = slug("intervals", board.dataset, board.split, board.table) + ".png"
            written.append(plot_intervals(board, best_set(board), fig_dir / name))
        for board in leaderboard.leaderboards(rs):
            labels = [lab for lab, _ in board.rows]
            if len(labels) > PAIRWISE_MAX_ROWS:  # legible only for a few rows: the best set's, when it is small
                labels = [lab for lab in labels if lab in best_set(board)]
            if not 2 <= len(labels) <= PAIRWISE_MAX_ROWS:
                continue
            probs = leaderboard.pairwise(rs, board)
            if any(not math.isnan(v) for v in probs.values()):
                name = slug("pairwise", board.dataset, board.split, board.table) + ".png"
                written.append(plot_pairwise(board, probs, fig_dir / name, labels))
        heads = {e.table for e in rs.entries if e.protocol in CONFUSION_PROTOCOLS}
        for (dataset, split, table, label), (mat, names, n) in figure_data.mean_confusions(rs, heads).items():
            if (dataset, split, table) in swept:
                continue
            name = slug("confusion", dataset, split, table, label) + ".png"
            title = _title(dataset, split, f"{table} / {label}")
            written.append(plot_confusion(mat, names, n, title, fig_dir / name))
        for (dataset, split, table), views in figure_data.precision_at_k(rs).items():
            name = slug("retrieval", dataset, split, table) + ".png"
            written.append(plot_precision_at_k(views, colors, _title(dataset, split, f"{table}: precision@k"),
                                               fig_dir / name))
        for (dataset, split, table), maps in figure_data.first_seed_embeddings(rs).items():
            name = slug("embedding", dataset, split, table) + ".png"
            written.append(plot_embeddings(maps, _title(dataset, split, f"{table}: 2-D embedding"),
                                           fig_dir / name))
    return sorted(written)
