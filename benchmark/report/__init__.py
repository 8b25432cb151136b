"""The report: leaderboards, statistics, figures and the paper table, regenerated from stored records alone.

`build_report(results_dir)` reads `<results_dir>/records/*.json` and writes
    leaderboard.md / leaderboard.csv / leaderboard.tex   one section per (dataset, split, protocol variant)
    figures/*.png                                       curves, bars, confusion, precision@k, embeddings
    findings.md                                         the leaderboards read out: best, ties, retrieval views
    compute.md                                          hardware, commits, runs (interrupted?), summed compute
    table.md / table.csv                                published vs reproduced (only where published numbers and
                                                        reference-configuration records exist; else removed)
Text outputs are byte-identical when rebuilt from the same records.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.report.entries import ReportError, ResultSet, collect

__all__ = ["ReportError", "ResultSet", "build_report", "collect"]

LEADERBOARD = "leaderboard"
FIGURES_DIR = "figures"
PAPER_TABLE = "table"
FINDINGS = "findings"
COMPUTE = "compute"


def _calibration(results_dir: Path) -> dict | None:
    """The folder's calibration.json (written by `python -m benchmark.report.calibrate ... --json`), if any."""
    import json

    path = Path(results_dir) / "calibration.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path} is not readable JSON ({exc}); rerun python -m benchmark.report.calibrate "
                          f"{results_dir} --json {path}, or delete it") from None
    return data if isinstance(data, dict) and "null" in data and "design" in data else None


def build_report(results_dir: Path, suite: str | None = None, rs: ResultSet | None = None,
                 allow_mixed: bool = False) -> list[Path]:
    """Regenerate every table and figure of `results_dir` from its records; returns the written paths.

    `suite` only titles the leaderboard; `rs` is the already collected (validated) records. Raises
    ReportError (naming the file) for a missing records folder or a record the report cannot read, before
    anything is written.
    """
    from benchmark.report import compute, findings, page, paper, plots, tables
    from benchmark.store import atomic_write_text, scan_records

    results_dir = Path(results_dir)
    rs = rs if rs is not None else collect(results_dir, allow_mixed)
    written: list[Path] = []
    calibration = _calibration(results_dir)
    for suffix, text in ((".md", tables.leaderboard_markdown(rs, suite, calibration)),
                         (".csv", tables.leaderboard_csv(rs)),
                         (".tex", tables.leaderboard_latex(rs, suite))):
        path = results_dir / f"{LEADERBOARD}{suffix}"
        atomic_write_text(path, text)
        written.append(path)
    path = results_dir / f"{FINDINGS}.md"
    atomic_write_text(path, findings.findings_markdown(rs, suite, calibration))
    written.append(path)
    path = results_dir / f"{COMPUTE}.md"
    atomic_write_text(path, compute.compute_markdown(results_dir, scan_records(results_dir)[0]))
    written.append(path)
    sections = paper.paper_sections(rs)
    for suffix, make in ((".md", paper.paper_markdown), (".csv", paper.paper_csv)):
        path = results_dir / f"{PAPER_TABLE}{suffix}"
        if sections:
            atomic_write_text(path, make(sections))
            written.append(path)
        else:  # a table left by earlier records would no longer follow from these ones
            path.unlink(missing_ok=True)
    figures = plots.plot_all(rs, results_dir / FIGURES_DIR)
    fig_dir = results_dir / FIGURES_DIR
    for stale in sorted(fig_dir.glob("*.png")) if fig_dir.is_dir() else []:
        if stale not in figures:  # drawn from records that are gone or changed: it no longer follows from them
            stale.unlink(missing_ok=True)
    written += figures
    written.append(page.write_page(rs, results_dir, suite, figures))
    return written
