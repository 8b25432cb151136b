"""Paired comparison of two results folders that ran the same cells in two numerics (e.g. CPU fp32 vs bf16).

`python -m benchmark.report.parity A_DIR B_DIR [--metric accuracy] [--out FILE]` matches records by
(dataset, split, variant, protocol variant, seed), and prints per variant: each seed's A and B values, the
mean paired difference B - A with its 95 % t-interval (n >= 2 seeds), and the seed standard deviation within
A and within B, the noise the difference is to be judged against. It refuses records of different code
versions within one folder, and records whose `precision` disagrees within a folder.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy import stats as sps

from benchmark import store


class ParityError(ValueError):
    """The folders cannot be compared (no common cells, mixed code versions or precisions)."""


def _cells(folder: Path, metric: str) -> tuple[dict[tuple, float], dict[str, Any]]:
    records, bad = store.scan_records(folder)
    if bad:
        raise ParityError(f"{folder}: {len(bad)} corrupt record(s); rerun the suite there first")
    if not records:
        raise ParityError(f"{folder}: no records; run the suite there first")
    versions = {str(r.get("code_version")) for r in records.values()}
    precisions = {str(r.get("precision", "fp32")) for r in records.values()}
    devices = {str(r.get("device")) for r in records.values()}
    if len(versions) > 1 or len(precisions) > 1:
        raise ParityError(f"{folder} mixes code versions {sorted(versions)} / precisions {sorted(precisions)}; "
                          f"compare folders that each hold one")
    out = {}
    for r in records.values():
        c = r["cell"]
        if metric in r["metrics"]:
            out[(c["dataset"], c["split"], c["variant"], c.get("protocol_variant") or c["protocol"], c["seed"])] = \
                100 * float(r["metrics"][metric])
    commits = sorted({str((r.get("git") or {}).get("commit")) for r in records.values()})
    cpus = sorted({str((r.get("cpu") or {}).get("model")) for r in records.values()})
    return out, {"code_version": versions.pop(), "precision": precisions.pop(), "device": sorted(devices),
                 "commits": commits, "cpus": cpus}


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else math.nan


def parity_table(a_dir: Path, b_dir: Path, metric: str = "accuracy") -> str:
    """The markdown comparison of folder B against folder A (B - A, in points)."""
    a, ma = _cells(Path(a_dir), metric)
    b, mb = _cells(Path(b_dir), metric)
    common = sorted(set(a) & set(b))
    if not common:
        raise ParityError(f"{a_dir} and {b_dir} share no cell with metric {metric!r}")
    groups: dict[tuple, list[tuple]] = {}
    for k in common:
        groups.setdefault(k[:4], []).append(k)
    lines = [(f"{metric} (%): A = {a_dir} ({ma['precision']}, {', '.join(ma['device'])}), "
              f"B = {b_dir} ({mb['precision']}, {', '.join(mb['device'])}); code version {ma['code_version']} / "
              f"{mb['code_version']}; commits {', '.join(ma['commits'])} / {', '.join(mb['commits'])}; "
              f"CPU {', '.join(ma['cpus'])}"), "",
             ("| dataset / split | variant | protocol | seeds | A per seed | B per seed | B - A mean [95 % CI] | "
              "seed sd A / B |"), "|---|---|---|---|---|---|---|---|"]
    all_d: list[float] = []
    for g, keys in groups.items():
        xa, xb = [a[k] for k in keys], [b[k] for k in keys]
        d = [y - x for x, y in zip(xa, xb)]
        all_d += d
        lines.append(f"| {g[0]} / {g[1]} | {g[2]} | {g[3]} | {', '.join(str(k[4]) for k in keys)} | "
                     f"{', '.join(f'{v:.2f}' for v in xa)} | {', '.join(f'{v:.2f}' for v in xb)} | "
                     f"{_interval(d)} | {_sd(xa):.2f} / {_sd(xb):.2f} |")
    lines += ["", f"All {len(all_d)} paired cells: B - A = {_interval(all_d)} points."]
    return "\n".join(lines) + "\n"


def _interval(d: list[float]) -> str:
    m = statistics.fmean(d)
    if len(d) < 2:
        return f"{m:+.2f} (n=1, no interval)"
    sd = statistics.stdev(d)
    if sd == 0:
        return f"{m:+.2f} (n={len(d)}, identical differences: no interval)"
    h = sps.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))
    return f"{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}] (n={len(d)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.report.parity", description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="results folder A (e.g. the fp32 run)")
    p.add_argument("b", type=Path, help="results folder B (e.g. the bf16 run)")
    p.add_argument("--metric", default="accuracy")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    try:
        text = parity_table(args.a, args.b, args.metric)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.out:
        store.atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
