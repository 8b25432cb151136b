"""Rankings read across tables: how methods rank over a protocol's variants (e.g. label budgets) and whether the
reference split ranks them as the rotating subject folds do.

- `variant_ranks`: for every (dataset, split, protocol) with several table variants (semisup's budgets), each
  row's rank by mean of the main metric in every variant (1 = best), with the mean.
- `fold_agreement`: for every dataset split that a split family (e.g. `xsub_folds`) pools, and every table both
  have, Kendall's tau between the two rankings over the rows both hold, with each side's best. The reference
  split is the dataset's default split (its declaration), compared with each family.
Facts of the leaderboards only; a tau over a handful of rows is itself noisy, so the row count is given.

`compare_folders` (`python -m benchmark.report.rankings --reference DIR --folds DIR`) does the same across two
results folders, e.g. a CPU folder of the reference split and a GPU folder of the folds: rankings are compared,
records are never pooled, and each side's provenance is named.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from scipy import stats as st
from tabulate import tabulate

from benchmark.report.entries import natural_key
from benchmark.report.leaderboard import Leaderboard
from benchmark.report.tables import pct


def _means(board: Leaderboard) -> dict[str, float]:
    return {lab: cells[board.main_metric].summary.mean for lab, cells in board.rows
            if board.main_metric in cells and not math.isnan(cells[board.main_metric].summary.mean)}


def _seed_range(board: Leaderboard, labels: list[str]) -> str:
    """The rows' seed counts on the main metric as 'n' or 'lo-hi' (a tau over 1-seed rows is a rough one)."""
    ns = [cells[board.main_metric].summary.n for lab, cells in board.rows
          if lab in labels and board.main_metric in cells]
    return "–" if not ns else f"{min(ns)}" if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}"


def _ranks(means: dict[str, float]) -> dict[str, int]:
    """Competition ranks (1 = best; equal means share a rank)."""
    ordered = sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))
    out: dict[str, int] = {}
    for i, (lab, v) in enumerate(ordered):
        prev = ordered[i - 1] if i else None
        out[lab] = out[prev[0]] if prev is not None and abs(prev[1] - v) <= 1e-12 else i + 1
    return out


def variant_ranks(boards: list[Leaderboard]) -> str:
    """Markdown: per (dataset, split, protocol) with several table variants, each row's rank (mean %) per variant."""
    groups: dict[tuple[str, str, str], list[Leaderboard]] = defaultdict(list)
    for b in boards:
        groups[(b.dataset, b.split, b.protocol)].append(b)
    parts = []
    for (dataset, split, protocol), bs in sorted(groups.items()):
        if len(bs) < 2:
            continue
        bs = sorted(bs, key=lambda b: natural_key(b.table))
        means = [_means(b) for b in bs]
        ranks = [_ranks(m) for m in means]
        labels = sorted({lab for m in means for lab in m},
                        key=lambda lab: (sum(r.get(lab, len(r) + 1) for r in ranks), lab))
        rows = [[lab, *(f"{r[lab]} ({pct(m[lab])})" if lab in r else "–" for r, m in zip(ranks, means))]
                for lab in labels]
        parts += [f"### {dataset} / {split} / {protocol}", "",
                  tabulate(rows, headers=["Method", *(b.table for b in bs)], tablefmt="github",
                           disable_numparse=True), ""]
    if not parts:
        return ""
    return "\n".join(["## Ranks across a protocol's variants", "",
                      "Rank by mean of the main metric in each variant (1 = best; mean in % in brackets), e.g. the "
                      "label budgets of a few-label protocol: how methods rank at few labels. Rows by their summed rank.",
                      "", *parts])


def fold_agreement(boards: list[Leaderboard]) -> str:
    """Markdown: Kendall's tau between a dataset's default-split ranking and each split family's pooled ranking."""
    from benchmark.report.folds import split_families

    by_key = {(b.dataset, b.split, b.table): b for b in boards}
    rows = []
    for dataset in sorted({b.dataset for b in boards}):
        families = sorted(set(split_families(dataset).values()))
        reference = _default_split(dataset)
        if not families or reference is None:
            continue
        for family in families:
            for table in sorted({b.table for b in boards if (b.dataset, b.split) == (dataset, family)},
                                key=natural_key):
                ref, pooled = by_key.get((dataset, reference, table)), by_key.get((dataset, family, table))
                if ref is None or pooled is None:
                    continue
                a, b = _means(ref), _means(pooled)
                shared = sorted(set(a) & set(b))
                if len(shared) < 2:
                    continue
                tau = st.kendalltau([a[k] for k in shared], [b[k] for k in shared]).statistic
                best_a, best_b = (_best(board, m, shared) for board, m in ((ref, a), (pooled, b)))
                rows.append([f"{dataset} / {table}", f"{reference} vs {family}", str(len(shared)),
                             f"{_seed_range(ref, shared)} / {_seed_range(pooled, shared)}",
                             "–" if math.isnan(tau) else f"{tau:+.2f}", best_a, best_b])
    if not rows:
        return ""
    return "\n".join(["## Reference split vs subject folds", "",
                      "Kendall's tau between the ranking of the rows both hold on the reference split and on the "
                      "pooled folds (+1 = same order, 0 = unrelated, -1 = reversed), by mean of the main metric; "
                      "`n` = seeds per row on each side (a pooled folds row needs a seed's every fold).",
                      "", tabulate(rows, headers=["Table", "Splits", "rows", "n (reference / folds)", "tau",
                                                  "best (reference)", "best (folds)"],
                                   tablefmt="github", disable_numparse=True), ""])


def _best(board: Leaderboard, means: dict[str, float], labels: list[str]) -> str:
    """The label(s) with the top mean among `labels` (tied ones joined with ' = '), leaving out the rows above the
    leaderboard's best: those have too few seeds to be tested, and the leaderboard does not name them best either."""
    flagged = [lab for lab, cells in board.rows if lab in labels and board.main_metric in cells
               and cells[board.main_metric].best]
    if flagged:  # rows above the flagged best are the ones with too few seeds
        labels = [k for k in labels if means[k] <= means[flagged[0]] + 1e-12]
    top = max(means[k] for k in labels)
    return " = ".join(k for k in labels if abs(means[k] - top) <= 1e-12)


def _default_split(dataset: str) -> str | None:
    from benchmark.plugins import load_plugins
    from benchmark.registry import DATASETS

    load_plugins()
    if dataset not in DATASETS:
        return None
    return getattr(DATASETS.get(dataset), "default_split", None)


def compare_folders(reference_dir: Path, folds_dir: Path) -> str:
    """Markdown: `fold_agreement` between the default-split leaderboards of `reference_dir` and the pooled split
    families of `folds_dir`, with each folder's provenance (code version, device, precision) and commits."""
    from benchmark.report.entries import collect
    from benchmark.report.leaderboard import leaderboards

    def side(d: Path, want_reference: bool) -> tuple[list[Leaderboard], str]:
        rs = collect(d)
        boards = [b for b in leaderboards(rs) if (b.split == _default_split(b.dataset)) == want_reference]
        prov = sorted({(*e.provenance[:3], str(e.commit)[:10]) for e in rs.entries if len(e.provenance) >= 3})
        text = "; ".join(f"code version {v}, {dev}, {p}, commit {c}" for v, dev, p, c in prov) or "no records"
        return boards, text

    ref, ref_prov = side(Path(reference_dir), True)
    folds, folds_prov = side(Path(folds_dir), False)
    body = fold_agreement(ref + folds)
    head = (f"Reference split from `{reference_dir}` ({ref_prov}); folds from `{folds_dir}` ({folds_prov}). "
            "Rankings by mean of the main metric; the two sides' records are never pooled.")
    return "\n".join([head, "", body or "No table is held by both: nothing to compare.", ""])


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmark.report.rankings --reference DIR --folds DIR [--out FILE]`: print `compare_folders`, or
    write it (atomically, with the command that regenerates it) to FILE."""
    p = argparse.ArgumentParser(prog="python -m benchmark.report.rankings", description=compare_folders.__doc__)
    p.add_argument("--reference", type=Path, required=True, help="results folder holding the reference split")
    p.add_argument("--folds", type=Path, required=True, help="results folder holding a split family's folds")
    p.add_argument("--out", type=Path, help="write the comparison to this file instead of printing it")
    args = p.parse_args(argv)
    for d in (args.reference, args.folds):
        if not (d / "records").is_dir():
            print(f"error: {d} has no records/ folder; give a results folder (one that run_all.py wrote)",
                  file=sys.stderr)
            return 2
    text = compare_folders(args.reference, args.folds)
    if args.out is None:
        print(text)
        return 0
    from benchmark.atomic import atomic_write_text

    command = (f"python -m benchmark.report.rankings --reference {args.reference.as_posix()} "
               f"--folds {args.folds.as_posix()} --out {args.out.as_posix()}")
    atomic_write_text(args.out, f"# Rankings across two results folders\n\nGenerated from the records by `{command}`."
                                f"\n\n{text}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
