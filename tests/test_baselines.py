"""A new method against a stored baseline folder (issue 36): only its cells, the baseline folder only read,
comparable records joined with provenance labels, unusable ones named, the anchor's shift; `store merge`."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark import store
from benchmark.baselines import BASELINES_MARK, read_baselines
from benchmark.merge import MergeError, merge
from benchmark.registry import METHODS
from benchmark.report import collect
from benchmark.report.tables import leaderboard_markdown
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.runner.baseline_plan import plan_with_baselines
from benchmark.suites import Suite, narrow
from tests import toy_plugins

SERIAL = RunSettings(device="cpu", quiet=True)
BASE = Suite(name="toy", description="toy", datasets=("synthetic",), methods=("toy_ssl[inertial]", "toy_ssl[skeleton]"),
             protocols=("toy_probe",), seeds=(0, 1), dataset_options={"synthetic": {"n_trials": 1, "n_classes": 4}})


class ToyNew(toy_plugins.ToySSL):
    """The 'new method': the toy SimCLR under another name."""

    name = "toy_new"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("base")
    with toy_plugins.registered():
        assert execute(plan_suite(BASE, folder), SERIAL).completed == 8
    return folder


@pytest.fixture()
def toys():
    with toy_plugins.registered():
        METHODS.register("toy_new")(ToyNew)
        try:
            yield
        finally:
            METHODS.remove("toy_new")


def _digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def _run(suite: Suite, base: Path, out: Path, anchor: str | None = None, **kw) -> tuple:
    plan, mark, _ = plan_with_baselines(suite, base, out, methods=["toy_new[inertial]"], anchor=anchor,
                                        protocols=None, seeds=None, data_root=None, log=lambda s: None, **kw)
    summary = execute(plan, RunSettings(device="cpu", quiet=True, marks={BASELINES_MARK: mark}))
    return plan, mark, summary


def test_only_the_new_methods_cells_run_with_the_baselines_configs_and_the_baseline_folder_is_untouched(
        toys, baseline: Path, tmp_path: Path) -> None:
    before = _digest(baseline)
    other = replace(BASE, seeds=(5,), protocols=("toy_multi_only",))  # the baselines decide seeds and protocols
    plan, mark, summary = _run(other, baseline, tmp_path / "mine")
    assert _digest(baseline) == before
    assert {c.variant for c in plan.cells} == {"toy_new[inertial]"} and mark["anchor"] is None  # same provenance
    base_recs = read_baselines(baseline).records.values()
    want = {(r["cell"]["protocol_variant"], store.canonical_json(r["protocol_resolved"]), r["cell"]["seed"])
            for r in base_recs}
    got = {(c.protocol_variant, store.canonical_json(c.protocol_resolved), c.seed) for c in plan.cells}
    assert got == want and summary.completed == len(plan.cells) == 4
    rs = collect(tmp_path / "mine")
    labels = {e.label for e in rs.entries}
    assert any(lb.startswith("toy_new[inertial] (yours: cpu ") and " @" in lb for lb in labels)
    assert sum(lb.startswith(("toy_ssl[inertial] (baseline:", "toy_ssl[skeleton] (baseline:")) for lb in labels) == 2
    assert rs.baselines["used"] == 8 and rs.baselines["unusable"] == 0
    md = leaderboard_markdown(rs)
    assert "## Against the baselines" in md and "the baselines' provenance (numerics, harness code, schedules)" in md


def test_a_shortened_schedule_runs_the_anchor_and_reports_its_shift(toys, baseline: Path, tmp_path: Path) -> None:
    before = _digest(baseline)
    plan, mark, summary = _run(narrow(BASE, epochs_scale=0.5), baseline, tmp_path / "mine",
                               anchor="toy_ssl[skeleton]")
    assert _digest(baseline) == before
    assert mark["anchor"] == "toy_ssl[skeleton]" and mark["anchor_seeds"] == [0, 1]
    assert {c.variant for c in plan.cells} == {"toy_new[inertial]", "toy_ssl[skeleton]"}
    rs = collect(tmp_path / "mine")
    md = leaderboard_markdown(rs)
    line = next(ln for ln in md.splitlines() if ln.startswith("Anchor `toy_ssl[skeleton]` re-run here: shift"))
    assert "points over all its (table, seed) pairs" in line and "[" in line  # an interval
    section = md.split("## Against the baselines")[1].split("\n## ")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ")]
    assert rows[2:] and all("toy_new[inertial] (yours:" in r for r in rows[2:])


@pytest.mark.parametrize("field, value, reason", [
    ("data_fingerprint", "synthetic:other", "data fingerprint synthetic:other"),
    ("protocol_resolved", {"budget": 99}, "protocol config"),
])
def test_a_baseline_record_of_other_data_or_protocol_config_is_never_used_and_named(
        toys, baseline: Path, tmp_path: Path, field: str, value, reason: str) -> None:
    base = tmp_path / "base"
    shutil.copytree(baseline, base)
    path = sorted((base / "records").glob("*.json"))[0]
    rec = json.loads(path.read_text())
    rec[field] = value
    path.write_text(json.dumps(rec))
    plan, _, _ = _run(BASE, base, tmp_path / "mine")
    rs = collect(tmp_path / "mine")
    dropped = dict(rs.dropped)
    assert reason in dropped.get(f"baseline:{path.name}", "")
    assert all(e.source != f"baseline:{path.name}" for e in rs.entries)
    assert rs.baselines["used"] == 7 and rs.baselines["unusable"] == 1


def test_store_merge_adds_exactly_a_matching_folders_records_and_refuses_a_conflict(baseline: Path,
                                                                                     tmp_path: Path) -> None:
    dst, src = tmp_path / "dst", tmp_path / "src"
    shutil.copytree(baseline, dst)
    (src / "records").mkdir(parents=True)
    moved = [f for f in sorted((dst / "records").glob("*.json")) if json.loads(f.read_text())["cell"]["seed"] == 1]
    for f in moved:
        shutil.move(f, src / "records" / f.name)
    written = merge(src, dst)
    assert sorted(p.name for p in written) == sorted(f.name for f in moved)
    assert _digest(dst / "records") == _digest(baseline / "records")
    bad = json.loads((src / "records" / moved[0].name).read_text())
    bad["metrics"]["accuracy"] = 0.123
    (src / "records" / moved[0].name).write_text(json.dumps(bad))
    before = _digest(dst)
    with pytest.raises(MergeError, match=f"nothing merged: {moved[0].name}: .* different record under this key"):
        merge(src, dst)
    assert _digest(dst) == before


def test_baseline_usage_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from benchmark import cli

    assert cli.main(["--baselines", str(tmp_path / "none"), "--methods", "simclr", "--results",
                     str(tmp_path / "mine")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: --baselines {tmp_path / 'none'}: no records/ folder there; "
                                               f"name a results folder that holds records")
    with pytest.raises(SystemExit):
        cli.main(["--anchor", "none", "--dry-run"])
    assert "--anchor only applies with --baselines DIR" in capsys.readouterr().err
