"""Calibration of the report's statistics by simulation with known truth, on a model fitted to a folder's records.

`python -m benchmark.report.calibrate RESULTS_DIR [--table ID] [--rows N --seeds S --sims K --gap G ...]
[--json FILE]`

Model (latent Gaussian, probit): clip c of row m on seed s is correct when
z = mu_m + a_subject + g_clip + b_(m,subject) + h_(m,clip) + e_(m,seed) + f_(m,seed,subject) + eps > 0, with
independent normal terms of variances v_subj, v_clip, v_mxs, v_mxc, v_seed, v_sxs and 1 - their sum (so
P(correct) = Phi(mu_m)). The variances are fitted to every per-clip table of the chosen (dataset, split) from six
pooled tetrachoric correlations of correctness (solved with the bivariate normal orthant probability, Owen's T):
different rows, same subject, other clip = v_subj; different rows, same clip = v_subj + v_clip; same row, other
seed, same subject, other clip = v_subj + v_mxs; same row, other seed, same clip = v_subj + v_clip + v_mxs + v_mxc;
same row and seed, other subject = v_seed; same row and seed, same subject, other clip = v_subj + v_mxs + v_seed +
v_sxs (a seed that suits one test subject and not another: on UTD-MHAD most of the seed-to-seed spread is this).
The median over the tables is then scaled to the chosen table's two observed spreads (median over its rows):
the seed-to-seed SD of a row's accuracy (scaling v_seed and v_sxs) and the SD over test subjects of a row's
per-subject accuracy (scaling v_subj and v_mxs), since a probit model of pair correlations alone reproduced
only about two thirds of them on UTD-MHAD.

Each simulated table has the chosen table's test clips and subjects, N rows and S seeds, and is scored by
`bootstrap.bootstrap_table`, the function the leaderboard uses. Printed (and written with --json): the family-wise
rate of false "below the best" claims with all rows equal (with its Clopper-Pearson 95 % upper bound), coverage of
the row intervals, power at each gap (one row better than the N - 1 others by G points of expected accuracy),
the best set's coverage of the true best and its size, P(best) calibration, and the winner's inflation.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy import stats as st

from benchmark.report import bootstrap
from benchmark.report.entries import ReportError, collect
from benchmark.report.latent_model import Components, Design, fit_components, match_spreads, simulate_table
from benchmark.report.leaderboard import bootstrap_inputs
from benchmark.report.tables import COVERAGE_TARGET  # one target for the tool and the tables

__all__ = ["Components", "Design", "fit_components", "fit_folder", "main", "run", "simulate_table"]

CALIBRATION_FILE = "calibration.json"  # what --json conventionally writes into a results folder (findings reads it)


# ----------------------------------------------------------------------------------------------------
# The folder's tables
# ----------------------------------------------------------------------------------------------------
def _table_arrays(inputs: dict) -> tuple[np.ndarray, Design] | None:
    """Correctness [M, S, C] over the rows holding the most common seed set (None: under 2 rows or 2 seeds)."""
    seed_sets = [tuple(sorted(r)) for r in inputs.values()]
    common = max(set(seed_sets), key=lambda s: (sum(1 for x in seed_sets if set(s) <= set(x)), len(s)))
    rows = [lab for lab in sorted(inputs) if set(common) <= set(inputs[lab])]
    if len(rows) < 2 or len(common) < 2:
        return None
    first = inputs[rows[0]][common[0]]
    try:
        correct = np.stack([[inputs[lab][s].y_true == inputs[lab][s].y_pred for s in common] for lab in rows])
    except ValueError:
        return None  # rows scored on different clip sets
    n_classes = int(max(first.y_true.max(), max(int(inputs[lab][s].y_pred.max()) for lab in rows for s in common)))
    return correct, Design(first.y_true, first.unit, n_classes + 1)


def fit_folder(results_dir: Path, table: str | None) -> tuple[Components, Design, list[str], str, float]:
    """(median components, the chosen table's design, the tables fitted, the chosen table, its best row's mean
    accuracy) of a folder."""
    rs = collect(results_dir)
    candidates = []
    for tid in sorted(rs.by_table()):
        inputs = bootstrap_inputs(rs, tid, "accuracy")
        if not inputs or not all(isinstance(p, bootstrap.Predictions) for r in inputs.values() for p in r.values()):
            continue
        arrays = _table_arrays(inputs)
        if arrays is not None:
            candidates.append(("/".join(tid), arrays))
    if not candidates:
        raise ReportError(f"{results_dir}: no table with per-clip predictions of 2+ rows on 2+ shared seeds to fit "
                          f"the model to; calibrate a folder whose records hold test_predictions")
    names = [n for n, _ in candidates]
    if table is not None and table not in names:
        raise ReportError(f"--table {table!r} is not a per-clip table of {results_dir}; choose one of: "
                          f"{', '.join(names)}")
    chosen = table or max(candidates, key=lambda c: c[1][0].size)[0]
    ds_split = chosen.rsplit("/", 1)[0]
    fitted = [(n, fit_components(c, d.unit)) for n, (c, d) in candidates if n.rsplit("/", 1)[0] == ds_split]
    comps = [c for _, c in fitted]
    median = Components(*(float(np.median([getattr(c, f) for c in comps])) for f in Components.__dataclass_fields__))
    correct, design = dict(candidates)[chosen]
    median = match_spreads(median, correct, design)
    return median, design, [n for n, _ in fitted], chosen, float(correct.mean((1, 2)).max())


# ----------------------------------------------------------------------------------------------------
# Simulation
# ----------------------------------------------------------------------------------------------------
def _upper(k: int, n: int) -> float:
    """Clopper-Pearson one-sided 95 % upper bound of a rate k / n."""
    return 1.0 if k >= n else float(st.beta.ppf(0.95, k + 1, n - k))


def run(comps: Components, design: Design, n_rows: int, n_seeds: int, sims: int, gaps: Sequence[float],
        base_accuracy: float, seed: int = 0) -> dict:
    """Simulate the null (all rows equal) and each gap; return the calibration figures (fractions)."""
    mu0 = float(st.norm.ppf(base_accuracy))
    truth = base_accuracy
    rng = np.random.default_rng([seed, n_rows, n_seeds])
    any_false = row_false = covered = with_interval = 0
    widths, win_bias, win_cover, win_pbest, sizes = [], [], [], [], []
    for i in range(sims):
        rows, values = simulate_table(rng, comps, design, [mu0] * n_rows, n_seeds)
        out = bootstrap.bootstrap_table(rows, "accuracy", seed + i, values, design.n_classes)
        claims = [s.in_best_set is False for s in out.values()]
        any_false += any(claims)
        row_false += sum(claims)
        sizes.append(sum(1 for s in out.values() if s.in_best_set))
        for s in out.values():
            if not math.isnan(s.low):
                with_interval += 1
                covered += s.low <= truth <= s.high
                widths.append(s.high - s.low)
        best = next(lab for lab, s in out.items() if s.best)
        win_bias.append(float(np.mean(list(values[best].values()))) - truth)
        win_pbest.append(out[best].p_best)
        win_cover.append(not math.isnan(out[best].low) and out[best].low <= truth <= out[best].high)
    result: dict[str, dict] = {
        "null": {"fwer": any_false / sims, "fwer_upper": _upper(any_false, sims),
                 "per_row_false": row_false / (sims * n_rows),
                 "coverage": covered / with_interval if with_interval else math.nan,
                 "coverage_n": with_interval, "mean_width": float(np.mean(widths)) if widths else math.nan,
                 "best_set_size": float(np.mean(sizes)), "winner_inflation": float(np.mean(win_bias)),
                 "winner_coverage": float(np.mean(win_cover)), "winner_p_best": float(np.nanmean(win_pbest)),
                 "p_best_truth": 1.0 / n_rows},
        "gaps": {},
    }
    for gap in gaps:
        low_mu = float(st.norm.ppf(max(1e-6, base_accuracy - gap / 100.0)))
        called = all_called = true_in_set = 0
        pb_high = pb_high_true = 0
        for i in range(sims):
            rows, values = simulate_table(rng, comps, design, [mu0] + [low_mu] * (n_rows - 1), n_seeds)
            out = bootstrap.bootstrap_table(rows, "accuracy", seed + sims + i, values, design.n_classes)
            others = [s for lab, s in out.items() if lab != "row00"]
            below = [s.in_best_set is False for s in others]
            called += sum(below)
            all_called += all(below)
            true_in_set += out["row00"].in_best_set is not False
            for lab, s in out.items():
                if not math.isnan(s.p_best) and s.p_best >= 0.9:
                    pb_high += 1
                    pb_high_true += lab == "row00"
        result["gaps"][f"{gap:g}"] = {
            "power_per_row": called / (sims * (n_rows - 1)), "power_all": all_called / sims,
            "best_in_set": true_in_set / sims,
            "p_best_ge_0.9_truly_best": pb_high_true / pb_high if pb_high else math.nan, "p_best_ge_0.9_n": pb_high}
    return result


# ----------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def summary_text(report: dict) -> str:
    """The calibration as plain text."""
    d, c, n = report["design"], report["components"], report["null"]
    lines = [f"Calibration of {report['folder']} (model fitted to {len(report['fitted_tables'])} table(s) of "
             f"{report['dataset_split']}: {', '.join(report['fitted_tables'])})",
             "latent variance components: " + ", ".join(f"{k} {v:.3f}" for k, v in c.items()),
             f"design: {d['rows']} rows x {d['seeds']} seeds on {d['subjects']} test subjects ({d['clips']} clips, "
             f"table {d['table']}), base accuracy {100 * d['base_accuracy']:.1f} %, {d['sims']} simulated tables "
             f"per scenario",
             f"all rows equal: family-wise false 'below the best' rate {_pct(n['fwer'])} (95 % upper bound "
             f"{_pct(n['fwer_upper'])}); per row {_pct(n['per_row_false'])}; best set holds {n['best_set_size']:.1f} "
             f"of {d['rows']} rows",
             f"row intervals: coverage {_pct(n['coverage'])} of {n['coverage_n']} (target >= "
             f"{100 * COVERAGE_TARGET:.0f} %), mean width {100 * n['mean_width']:.2f} points"
             + ("" if n["coverage"] >= COVERAGE_TARGET else
                " - THIS DESIGN CANNOT REACH THE TARGET: its intervals should not be printed"),
             f"winner (selected): mean inflated by {100 * n['winner_inflation']:+.2f} points, its interval covers "
             f"its truth {_pct(n['winner_coverage'])}, its P(best) {n['winner_p_best']:.2f} (truth "
             f"{n['p_best_truth']:.2f})"]
    for gap, g in report["gaps"].items():
        lines.append(f"gap {gap} points (one row better than the others): power per row {_pct(g['power_per_row'])},"
                     f" all {d['rows'] - 1} others called below {_pct(g['power_all'])}, true best in the best set "
                     f"{_pct(g['best_in_set'])}, rows with P(best) >= 0.90 truly best {_pct(g['p_best_ge_0.9_truly_best'])}"
                     f" (of {g['p_best_ge_0.9_n']})")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m benchmark.report.calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--table", help="dataset/split/table whose design is simulated (default: the largest per-clip "
                                    "table); the model is fitted to every per-clip table of its dataset/split")
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--gap", type=float, nargs="+", default=[2.0, 5.0], help="gaps in points of accuracy")
    ap.add_argument("--base", type=float, default=None, help="expected accuracy (fraction) of the rows (default: "
                                                             "the chosen table's best row mean)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = ap.parse_args(argv)
    if args.rows < 2 or args.seeds < 1 or args.sims < 1:
        print("calibrate: --rows must be >= 2, --seeds >= 1 and --sims >= 1", file=sys.stderr)
        return 2
    try:
        comps, design, names, table, best_mean = fit_folder(args.results_dir, args.table)
    except ReportError as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    base = best_mean if args.base is None else args.base
    report = {"folder": args.results_dir.name, "dataset_split": names[0].rsplit("/", 1)[0], "fitted_tables": names,
              "components": {k: round(v, 4) for k, v in asdict(comps).items()},
              "design": {"table": table, "rows": args.rows, "seeds": args.seeds,
                         "subjects": int(len(np.unique(design.unit))), "clips": int(len(design.unit)),
                         "sims": args.sims, "base_accuracy": round(base, 4), "gaps": list(args.gap)}}
    report.update(run(comps, design, args.rows, args.seeds, args.sims, args.gap, base))
    sys.stdout.write(summary_text(report))
    if args.json:
        from benchmark.store import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
