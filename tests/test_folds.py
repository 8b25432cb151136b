"""Split families: a suite run on every split of a family, and the report's pooled family table."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.report import build_report
from benchmark.report.entries import collect
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import SuiteError, get_suite, narrow
from tests import fixture_datasets


@pytest.fixture()
def fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    with fixture_datasets.registered():
        yield


def test_a_family_runs_every_fold_and_reports_them_pooled(fixtures, tmp_path: Path) -> None:
    suite = narrow(replace(get_suite("smoke"), dataset_options={}), datasets=["fx_two_imus"],
                   methods=["simclr[wrist]", "cmc"], protocols=["linear"], seeds=[0, 1], split="folds")
    plan = plan_suite(suite, tmp_path / "res", device="cpu")
    assert {c.split for c in plan.cells} == {"fold1", "fold2"} and len(plan.cells) == 2 * 2 * 2
    assert execute(plan, RunSettings(device="cpu", quiet=True)).ok
    rs = collect(tmp_path / "res")
    pooled = [e for e in rs.entries if e.split == "folds"]
    assert sorted((e.label, e.seed) for e in pooled) == [("cmc", 0), ("cmc", 1), ("simclr[wrist]", 0),
                                                          ("simclr[wrist]", 1)]
    for e in pooled:
        folds = [f for f in rs.entries if f.split in ("fold1", "fold2") and f.label == e.label and f.seed == e.seed]
        n_test = sum(len(f.predictions["ids"]) for f in folds)
        assert len(e.predictions["ids"]) == n_test == len(set(e.predictions["ids"]))  # every subject's clips once
        assert sorted(set(e.predictions["groups"]["subject"])) == [1, 2, 5, 6]
        correct = sum(sum(int(a == b) for a, b in zip(f.predictions["y_true"], f.predictions["y_pred"])) for f in folds)
        assert e.metrics["accuracy"] == pytest.approx(correct / n_test)
    build_report(tmp_path / "res")
    board = (tmp_path / "res" / "leaderboard.md").read_text()
    assert "folds" in board and "fold1" in board
    # the dataset's default split beside the folds: findings compare the two rankings (Kendall's tau)
    ref = narrow(replace(get_suite("smoke"), dataset_options={}), datasets=["fx_two_imus"],
                 methods=["simclr[wrist]", "cmc"], protocols=["linear"], seeds=[0, 1])
    assert execute(plan_suite(ref, tmp_path / "res", device="cpu"), RunSettings(device="cpu", quiet=True)).ok
    build_report(tmp_path / "res")
    from benchmark.report.leaderboard import leaderboards

    boards = {b.split: b for b in leaderboards(collect(tmp_path / "res"))}
    default = fixture_datasets.TwoImus.default_split
    means = {s: {lab: c[b.main_metric].summary.mean for lab, c in b.rows} for s, b in boards.items()}
    from scipy import stats as st

    labs = sorted(means[default])
    tau = st.kendalltau([means[default][k] for k in labs], [means["folds"][k] for k in labs]).statistic
    findings = (tmp_path / "res" / "findings.md").read_text()
    section = findings[findings.index("## Reference split vs subject folds"):]
    row = next(line for line in section.splitlines() if line.startswith("| fx_two_imus / linear"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # 2 seeds per row on both sides (a pooled row holds a seed once its every fold has a record)
    assert cells[1:5] == [f"{default} vs folds", "2", "2 / 2", "–" if tau != tau else f"{tau:+.2f}"]  # nan: a tie
    for cell, m in ((cells[5], means[default]), (cells[6], means["folds"])):
        assert cell == " = ".join(k for k in labs if m[k] == max(m.values()))  # ties are shown, not broken
    # the same comparison across two folders (e.g. the reference split on a CPU, the folds on a GPU): same row
    import json
    import shutil

    from benchmark.report.rankings import compare_folders

    for name in ("ref", "folds"):
        (tmp_path / name / "records").mkdir(parents=True)
    for f in (tmp_path / "res" / "records").glob("*.json"):
        split = json.loads(f.read_text())["cell"]["split"]
        shutil.copy(f, tmp_path / ("ref" if split == default else "folds") / "records" / f.name)
    text = compare_folders(tmp_path / "ref", tmp_path / "folds")
    assert row in text.splitlines() and ", cpu, " in text.splitlines()[0]
    from benchmark.report.rankings import main as rankings_main

    out = tmp_path / "ref" / "fold_agreement.md"
    assert rankings_main(["--reference", str(tmp_path / "ref"), "--folds", str(tmp_path / "folds"),
                          "--out", str(out)]) == 0
    written = out.read_text()
    assert row in written.splitlines() and f"--out {out.as_posix()}`" in written  # names its command
    assert rankings_main(["--reference", str(tmp_path / "nothere"), "--folds", str(tmp_path / "folds")]) == 2


def test_an_unknown_split_names_the_choices(fixtures) -> None:
    with pytest.raises(SuiteError, match="fold1"):
        narrow(get_suite("smoke"), datasets=["fx_two_imus"], split="nope")
