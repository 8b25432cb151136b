"""The README's paper table and verdict sentences say what results/paper/table.csv and table.md say (no drift)."""
from __future__ import annotations

import csv
import json
import re

import pytest

from tests.conftest import REPO

PAPER = REPO / "results" / "paper"
ROW = re.compile(
    r"^\| (?P<modality>\w+) \| `(?P<variant>[^`]+)` \| (?P<published>[\d.]+) \| (?P<mean>[\d.]+) ± (?P<std>[\d.]+) "
    r"\(n=(?P<n>\d+)\) \| (?P<low>[\d.]+)-(?P<high>[\d.]+) \| (?P<pi_low>[\d.]+)-(?P<pi_high>[\d.]+) "
    r"\| (?P<diff>[-+][\d.]+) \|$"
)


def _readme_rows() -> dict[str, dict[str, str]]:
    """The README's paper-table rows by variant."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return {m["variant"]: m.groupdict() for m in map(ROW.match, text.splitlines()) if m}


def _table_rows() -> dict[str, dict[str, str]]:
    """results/paper/table.csv's rows that have seeds, by variant."""
    with open(PAPER / "table.csv", encoding="utf-8", newline="") as fh:
        return {r["variant"]: r for r in csv.DictReader(fh) if r["n"] not in ("", "0")}


def test_readme_paper_table_has_every_row_of_table_csv() -> None:
    assert set(_readme_rows()) == set(_table_rows()), "README.md's paper table and results/paper/table.csv list other rows"


@pytest.mark.parametrize("variant", sorted(_table_rows()))
def test_readme_paper_row_equals_table_csv(variant: str) -> None:
    ours, src = _readme_rows()[variant], _table_rows()[variant]
    pairs = {
        "published": (ours["published"], f"{float(src['published']):.2f}"),
        "n": (ours["n"], src["n"]),
        "mean": (ours["mean"], f"{float(src['ours_mean']):.2f}"),
        "std": (ours["std"], f"{float(src['ours_std']):.2f}"),
        "interval": (f"{ours['low']}-{ours['high']}", f"{float(src['ours_low']):.2f}-{float(src['ours_high']):.2f}"),
        "one run PI": (f"{ours['pi_low']}-{ours['pi_high']}",
                       f"{float(src['run_pi_low']):.2f}-{float(src['run_pi_high']):.2f}"),
        "difference": (ours["diff"], f"{float(src['difference']):+.2f}"),
    }
    wrong = {k: v for k, v in pairs.items() if v[0] != v[1]}
    assert not wrong, f"README.md row {variant} differs from results/paper/table.csv (README, table): {wrong}"


def _numbers(sentence: str) -> list[str]:
    """The decimals and 'k of n' counts of a sentence."""
    return re.findall(r"[-+]?\d+\.\d+|\d+ of \d+", sentence)


def test_readme_joint_verdict_numbers_are_table_md_s() -> None:
    table = (PAPER / "table.md").read_text(encoding="utf-8")
    joint = next(line for line in table.splitlines() if line.startswith("Joint verdict"))
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    for number in _numbers(joint):
        assert number in readme, f"README.md lacks the joint verdict's {number!r} from results/paper/table.md: {joint}"


def test_readme_cmkm_vs_cmc_interval_is_table_md_s() -> None:
    table = (PAPER / "table.md").read_text(encoding="utf-8")
    line = next(x for x in table.splitlines() if x.startswith("cmc_cmkm vs cmc"))
    interval = re.search(r"95 % interval (\[[-+\d., ]+\])", line)
    mean = re.search(r"mean difference ([-+]\d+\.\d+) points", line)
    assert interval and mean, f"results/paper/table.md's cmc_cmkm vs cmc line has no interval: {line}"
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert f"{mean.group(1)} points, 95 % interval {interval.group(1)}" in readme, (
        f"README.md's CMC-CMKM vs CMC sentence does not say {mean.group(1)} {interval.group(1)} (results/paper/table.md)")


def test_results_doc_paper_table_is_table_md_s() -> None:
    table = [x for x in (PAPER / "table.md").read_text(encoding="utf-8").splitlines() if x.startswith("| ")]
    doc = (REPO / "docs" / "results.md").read_text(encoding="utf-8").splitlines()
    missing = [x.split("|")[2].strip() for x in table if x not in doc]
    assert not missing, f"docs/results.md's copy of results/paper/table.md differs in the rows: {missing}"


def _calibration(folder: str) -> dict:
    """A committed results folder's calibration.json."""
    return json.loads((REPO / "results" / folder / "calibration.json").read_text(encoding="utf-8"))


def _pct(x: float) -> str:
    """A share as the docs print it (one decimal, in %)."""
    return f"{100 * x:.1f} %"


def test_statistics_doc_calibration_figures_are_the_json_s() -> None:
    xsub, folds = _calibration("utd_mhad"), _calibration("utd_mhad_folds_cuda")
    rows = {
        "family-wise false": [f"{_pct(c['null']['fwer'])} ({_pct(c['null']['fwer_upper'])})" for c in (xsub, folds)],
        "row-interval coverage": [f"{_pct(c['null']['coverage'])} ({100 * c['null']['mean_width']:.2f} points)"
                                  for c in (xsub, folds)],
        "power per row, gap 2": [_pct(c["gaps"]["2"]["power_per_row"]) for c in (xsub, folds)],
        "power per row, gap 5": [_pct(c["gaps"]["5"]["power_per_row"]) for c in (xsub, folds)],
    }
    doc = (REPO / "docs" / "statistics.md").read_text(encoding="utf-8").splitlines()
    for label, want in rows.items():
        line = next((x for x in doc if x.startswith(f"| {label}")), None)
        assert line is not None, f"docs/statistics.md has no figures row {label!r}"
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        assert cells == want, f"docs/statistics.md row {label!r} says {cells}, the calibration.json files {want}"
