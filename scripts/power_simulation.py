"""How often does the leaderboard's paired bootstrap (seeds x test subjects) call a true gap significant?

Simulates two methods on UTD-MHAD-sized test sets (4 test subjects x 108 clips) whose true accuracies differ
by `gap` points, with per-subject difficulty (sd 7 points, shared by both methods, as UTD-MHAD's test subjects
span about 14 points) and seed-to-seed noise (sd 2 points per method and seed). Each simulated table is
scored with benchmark.report.bootstrap exactly as the report does; "detected" = the Δ-to-best interval
excludes 0 with the truly better method on top; "any difference called" at gap 0 is the false-positive rate.

    python scripts/power_simulation.py [--sims 200] [--seeds 3 5 10] [--gaps 0 2 5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmark.report.bootstrap import Predictions, bootstrap_table

SUBJECTS, CLIPS, BASE = 4, 108, 0.85


def simulate(rng: np.random.Generator, n_seeds: int, gap: float) -> dict[str, dict[int, Predictions]]:
    subject_effect = rng.normal(0, 0.07, SUBJECTS)
    unit = np.repeat(np.arange(SUBJECTS), CLIPS)
    y_true = rng.integers(0, 27, SUBJECTS * CLIPS)
    rows: dict[str, dict[int, Predictions]] = {"a": {}, "b": {}}
    for s in range(n_seeds):
        for lab, acc in (("a", BASE + gap / 100), ("b", BASE)):
            p = np.clip(acc + subject_effect[unit] + rng.normal(0, 0.02), 0.01, 0.99)
            correct = rng.random(len(unit)) < p
            y_pred = np.where(correct, y_true, (y_true + 1) % 27)
            rows[lab][s] = Predictions(y_true, y_pred, unit)
    return rows


def verdict(rows: dict[str, dict[int, Predictions]], seed: int) -> tuple[bool, bool]:
    """(a is best and b is significantly below it, some row is significantly below the best)."""
    values = {lab: {s: float((p.y_true == p.y_pred).mean()) for s, p in r.items()} for lab, r in rows.items()}
    means = {lab: float(np.mean(list(v.values()))) for lab, v in values.items()}
    stats = bootstrap_table(rows, "accuracy", seed, values, 27, n_boot=1000)
    best = max(means, key=lambda k: means[k])
    other = "b" if best == "a" else "a"
    significant = stats[other].tied is False
    return best == "a" and significant, significant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10])
    ap.add_argument("--gaps", type=float, nargs="+", default=[0.0, 2.0, 5.0])
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    print("| true gap (points) | seeds | a called better | any difference called |")
    print("|---|---|---|---|")
    for gap in args.gaps:
        for n in args.seeds:
            results = [verdict(simulate(rng, n, gap), i) for i in range(args.sims)]
            right = sum(r[0] for r in results) / args.sims
            anyd = sum(r[1] for r in results) / args.sims
            print(f"| {gap:.1f} | {n} | {right:.3f} | {anyd:.3f} |")


if __name__ == "__main__":
    main()
