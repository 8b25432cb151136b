"""Re-run a sample of a results folder's cells from their records and compare with the stored metrics.

    python -m benchmark.verify RESULTS_DIR [--cells N] [--variant V] [--suite NAME] [--device cpu] [--data-root DIR]

The suite (default: the folder's name, e.g. results/paper -> paper) is planned again with each record's
precision; a record is matched to the planned cell of the same identity (dataset, split, method variant and
config, protocol variant and config, seed), so records of an older code version are re-run with today's code.
The sampled cells (an evenly spaced sample of N, in file order) are trained and evaluated afresh in a
temporary folder; the report lists stored vs re-run main metric and their difference per cell, and says
whether an exact match was to be expected: the same code version, CPU model, torch threads and precision
(then any difference is a reproducibility defect), or not (then the differences measure the change).
Exit status 1 when an exact match was expected and a cell differs.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from benchmark import store
from benchmark.report.entries import ReportError, canonical, load_records


def _ident(cell: dict[str, Any]) -> str:
    return canonical([cell["dataset"], cell["split"], cell["variant"], cell.get("method_cfg") or {},
                      cell.get("protocol_variant") or cell["protocol"], cell.get("protocol_cfg") or {}, cell["seed"]])


def sample(items: list[Any], n: int) -> list[Any]:
    """An evenly spaced sample of n items (all of them when n >= len)."""
    if n >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def verify(results_dir: Path, n_cells: int, suite_name: str | None = None, device: str = "cpu",
           data_root: str | None = None, log: Any = print, variant: str | None = None
           ) -> tuple[list[dict[str, Any]], bool]:
    """Re-run `n_cells` sampled cells; returns one row per cell and whether every expected-exact cell matched."""
    from benchmark.hardware import cpu_info
    from benchmark.runner import RunSettings, execute, plan_suite
    from benchmark.runner.plan import refresh
    from benchmark.runner.units import CODE_VERSION
    from benchmark.suites import get_suite

    records = load_records(results_dir)
    suite = get_suite(suite_name or Path(results_dir).name)
    candidates = [(n, r) for n, r in records if variant is None or r["cell"]["variant"] == variant]
    if not candidates:
        raise ValueError(f"no record of variant {variant!r} in {results_dir}")
    picked = sample(candidates, n_cells)
    here = cpu_info()
    rows, all_exact = [], True
    plans: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mmhar-verify-") as tmp:
        for name, rec in picked:
            cell, precision = rec["cell"], rec.get("precision") or "fp32"
            if precision not in plans:
                plans[precision] = plan_suite(replace(suite, seeds=tuple(sorted({int(r["cell"]["seed"]) for _, r in
                                                                                  records}))),
                                              Path(tmp) / precision, data_root=data_root, device=device,
                                              precision=precision)
            plan = plans[precision]
            match = [c for c in plan.cells if _ident(c.describe()) == _ident(cell)]
            metric = rec.get("main_metric") or "accuracy"
            row = {"record": name, "cell": f"{cell['variant']} / {cell.get('protocol_variant') or cell['protocol']}"
                                          f" / seed {cell['seed']}", "metric": metric,
                   "stored": rec["metrics"].get(metric)}
            if not match:
                rows.append({**row, "rerun": None, "diff": None, "exact_expected": False,
                             "note": f"no cell of suite {suite.name!r} has this identity"})
                continue
            sub = replace(plan, cells=match)
            refresh(sub)
            log(f"re-running {row['cell']} ({precision}) ...")
            summary = execute(sub, RunSettings(device=device, threads=int(rec.get("threads") or 1), quiet=True,
                                               data_root=data_root, precision=precision))
            if not summary.ok:
                rows.append({**row, "rerun": None, "diff": None, "exact_expected": False,
                             "note": f"re-run failed: {summary.failed[0][1].strip().splitlines()[-1]}"})
                continue
            fresh = store.read_record(store.record_path(plan.results_dir, match[0].key))
            rerun = fresh["metrics"].get(metric)
            same_env = (str(rec.get("code_version")) == CODE_VERSION
                        and (rec.get("cpu") or {}).get("model") == here.get("model")
                        and store.device_type(rec.get("device")) == "cpu" == store.device_type(device))
            diff = None if rerun is None or row["stored"] is None else float(rerun) - float(row["stored"])
            old_p, new_p = (r.get("test_predictions") or {} for r in (rec, fresh))
            clips = (sum(a != b for a, b in zip(old_p["y_pred"], new_p["y_pred"]))
                     if old_p.get("ids") and old_p.get("ids") == new_p.get("ids") else None)
            exact = diff == 0.0
            if same_env and not exact:
                all_exact = False
            rows.append({**row, "rerun": rerun, "diff": diff, "exact_expected": same_env, "clips": clips,
                         "note": "exact" if exact else ("DIFFERS on the same code, CPU and precision" if same_env else
                                                        f"recorded with code version {rec.get('code_version')}, "
                                                        f"{(rec.get('cpu') or {}).get('model', '?')}, "
                                                        f"{rec.get('device')}")})
    return rows, all_exact


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The verification table and a one-line summary of the differences (points of the metric, in %)."""
    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * float(v):.2f}"

    table = tabulate([[r["cell"], r["metric"], pct(r["stored"]), pct(r["rerun"]),
                       "-" if r["diff"] is None else f"{100 * r['diff']:+.2f}",
                       "-" if r.get("clips") is None else r["clips"], r["note"]] for r in rows],
                     headers=["cell", "metric", "stored %", "re-run %", "diff", "clips predicted differently",
                              "note"], tablefmt="github")
    diffs = [100 * r["diff"] for r in rows if r["diff"] is not None]
    if diffs:
        summary = (f"{len(diffs)} re-run cell(s): {sum(d == 0 for d in diffs)} exact; mean diff {np.mean(diffs):+.2f}, "
                   f"mean |diff| {np.mean(np.abs(diffs)):.2f}, max |diff| {max(map(abs, diffs)):.2f} points")
    else:
        summary = "no cell could be re-run"
    return table + "\n\n" + summary + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.verify", description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", type=Path)
    p.add_argument("--cells", type=int, default=3, help="how many cells to re-run (default 3)")
    p.add_argument("--suite", help="the suite the folder was produced by (default: the folder's name)")
    p.add_argument("--variant", help="only records of this method variant, e.g. 'supervised[skeleton]'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-root", help="folder holding the raw datasets (default: $MMHAR_DATA, ./data)")
    args = p.parse_args(argv)
    if args.cells < 1:
        print("error: --cells must be >= 1", file=sys.stderr)
        return 2
    try:
        rows, ok = verify(args.results_dir, args.cells, args.suite, args.device, args.data_root, variant=args.variant)
    except (ReportError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_rows(rows))
    return 0 if ok and not any(math.isnan(r["diff"]) for r in rows if r["diff"] is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
