"""Audit: do `findings.md`'s claims agree with `leaderboard.csv`? `python -m benchmark.report.audit RESULTS_DIR`.

For every table row of findings.md's main table, the best method, the rows that could also be best, those below
the best and the untestable ones must be exactly what the leaderboard CSV's `best` / `in_best_set` columns of the
main metric say (the CSV is the tables' machine-readable twin). Prints each disagreement; exit status 1 if any.
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path


def _findings_rows(text: str) -> dict[str, list[str]]:
    """{table title: cells} of findings.md's first (main) table."""
    out: dict[str, list[str]] = {}
    for line in text.split("\n## ")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 5 and cells[0] not in ("Table",) and not set(cells[0]) <= {"-"}:
            out[cells[0]] = cells
    return out


def _names(cell: str) -> set[str]:
    return set() if cell in ("none", "–") else {x.strip() for x in cell.split(", ")}


def audit(results_dir: Path) -> list[str]:
    """The disagreements between findings.md and leaderboard.csv of a results folder (empty: they agree)."""
    findings = _findings_rows((results_dir / "findings.md").read_text(encoding="utf-8"))
    with open(results_dir / "leaderboard.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["section"] == "leaderboard"]
    by_table: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_table[f"{r['dataset']} / {r['split']} / {r['table']}"].append(r)
    problems = []
    for title, entries in sorted(by_table.items()):
        main = entries[0]["metric"]  # the CSV lists the main metric first for every method
        entries = [r for r in entries if r["metric"] == main and r["mean_pct"]]
        cells = findings.get(title)
        if cells is None:
            problems.append(f"{title}: in leaderboard.csv, not in findings.md")
            continue
        best = [r["method"] for r in entries if r["best"] == "true"]
        also = {r["method"] for r in entries if r["best"] != "true" and r["in_best_set"] == "true"}
        below = {r["method"] for r in entries if r["in_best_set"] == "false"}
        untested = {r["method"] for r in entries if r["best"] != "true" and r["in_best_set"] == ""}
        said_best = cells[1].split(" ")[0] if cells[1] != "–" else None
        if (best[0] if best else None) != said_best:
            problems.append(f"{title}: best is {best} in leaderboard.csv, {said_best!r} in findings.md")
        for what, expected, cell in (("could also be best", also, cells[2]), ("below the best", below, cells[3]),
                                     ("untestable", untested, cells[4])):
            if best and _names(cell) != expected:
                problems.append(f"{title}: {what}: findings.md says {sorted(_names(cell))}, leaderboard.csv "
                                f"{sorted(expected)}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m benchmark.report.audit RESULTS_DIR (a folder with findings.md and leaderboard.csv)",
              file=sys.stderr)
        return 2
    folder = Path(args[0])
    for name in ("findings.md", "leaderboard.csv"):
        if not (folder / name).is_file():
            print(f"audit: {folder / name} is missing; build the report first (run_all.py --report-only)",
                  file=sys.stderr)
            return 2
    problems = audit(folder)
    for p in problems:
        print(p)
    print(f"audit: {len(problems)} disagreement(s) between findings.md and leaderboard.csv in {folder}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
