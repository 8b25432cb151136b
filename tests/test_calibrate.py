"""The calibration tool: it recovers known variance components, runs end to end on a folder, and its figures
reach the findings."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.report import calibrate
from tests.test_report import _clip_record, _write


def _design(n_sub: int = 6, per: int = 60) -> calibrate.Design:
    y = np.arange(n_sub * per) % 5
    return calibrate.Design(y, np.repeat(np.arange(n_sub), per), 5)


def test_fit_recovers_the_components_it_simulated():
    truth = calibrate.Components(v_subj=0.06, v_clip=0.30, v_mxs=0.04, v_mxc=0.15, v_seed=0.02, v_sxs=0.05)
    design = _design()
    rng = np.random.default_rng(1)
    fits = []
    for _ in range(6):
        rows, _ = calibrate.simulate_table(rng, truth, design, [1.0, 1.2, 1.4, 1.1, 1.3, 0.9], 5)
        correct = np.stack([[rows[lab][s].y_pred == design.y_true for s in sorted(rows[lab])] for lab in sorted(rows)])
        fits.append(calibrate.fit_components(correct, design.unit))
    for name in ("v_clip", "v_mxc", "v_sxs"):  # the well-identified ones, averaged over 6 tables
        assert np.mean([getattr(f, name) for f in fits]) == pytest.approx(getattr(truth, name), abs=0.05), name
    # the cross-row sum v_subj + v_clip (correlation of a clip's errors between rows) and the within-row one
    assert np.mean([f.v_subj + f.v_clip for f in fits]) == pytest.approx(0.36, abs=0.05)
    assert np.mean([f.v_subj + f.v_clip + f.v_mxs + f.v_mxc for f in fits]) == pytest.approx(0.55, abs=0.05)


def test_calibrate_runs_on_a_folder_and_writes_json(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for variant in ("a", "b", "c"):
        for seed in range(3):
            wrong = [i for i in range(40) if rng.random() < 0.15]
            _write(tmp_path, _clip_record(variant, seed, wrong))
    out = tmp_path / "calibration.json"
    assert calibrate.main([str(tmp_path), "--rows", "3", "--seeds", "2", "--sims", "4", "--gap", "5",
                           "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "family-wise false 'below the best' rate" in text and "gap 5 points" in text
    data = json.loads(out.read_text())
    assert data["design"]["subjects"] == 4 and data["design"]["table"] == "synthetic/xsub/linear"
    assert 0.0 <= data["null"]["fwer"] <= data["null"]["fwer_upper"] <= 1.0
    assert set(data["gaps"]) == {"5"}


def test_calibrate_names_a_folder_without_predictions(tmp_path, capsys):
    for variant in ("a", "b"):
        for seed in range(2):
            _write(tmp_path, _clip_record(variant, seed, [1, 2], with_predictions=False))
    assert calibrate.main([str(tmp_path), "--sims", "2"]) == 2
    assert "no table with per-clip predictions" in capsys.readouterr().err


def test_findings_state_design_and_power_from_the_calibration(tmp_path: Path):
    from benchmark.report import build_report

    rng = np.random.default_rng(0)
    for variant in ("a", "b", "c"):
        for seed in range(3):
            _write(tmp_path, _clip_record(variant, seed, [i for i in range(40) if rng.random() < 0.15]))
    build_report(tmp_path)
    assert "n/a (run calibrate)" in (tmp_path / "findings.md").read_text(encoding="utf-8")
    calibrate.main([str(tmp_path), "--rows", "3", "--seeds", "3", "--sims", "3", "--gap", "2", "5",
                    "--json", str(tmp_path / "calibration.json")])
    build_report(tmp_path)
    md = (tmp_path / "findings.md").read_text(encoding="utf-8")
    data = json.loads((tmp_path / "calibration.json").read_text())
    power = ", ".join(f"{g} pts: {100 * data['gaps'][g]['power_per_row']:.0f} %" for g in ("2", "5"))
    row = next(line for line in md.splitlines() if line.startswith("| synthetic / xsub / linear"))
    assert "4 test subjects, 3 seeds" in row and power in row
    assert "--table synthetic/xsub/linear --rows 3 --seeds 3 --sims 3 --gap 2 5" in md


def test_a_design_below_the_coverage_target_prints_no_interval(tmp_path: Path):
    from benchmark.report import build_report

    rng = np.random.default_rng(0)
    for variant in ("a", "b"):
        for seed in range(3):
            _write(tmp_path, _clip_record(variant, seed, [i for i in range(40) if rng.random() < 0.15]))
    calibration = {"dataset_split": "synthetic/xsub", "design": {"subjects": 4}, "null": {"coverage": 0.917},
                   "gaps": {}}
    (tmp_path / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    build_report(tmp_path)
    md = (tmp_path / "leaderboard.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| a "))
    assert row.count("n/a (design covers 91.7 %)") == 2  # accuracy and macro-F1
    calibration["null"]["coverage"] = 0.947
    (tmp_path / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    build_report(tmp_path)
    assert "design covers" not in (tmp_path / "leaderboard.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("k", [2, 5, 25])
@pytest.mark.parametrize("df", [2.0, 2.7, 3.0, 5.4, 17.0])
def test_the_adjusted_p_agrees_with_the_simultaneous_interval(k: int, df: float) -> None:
    from benchmark.report import crossed

    half = crossed.critical(k, df)  # |Δ| / se at which the interval just touches 0
    assert crossed.adjusted_p(half * 0.98, k, df) > 0.05
    assert crossed.adjusted_p(half * 1.02, k, df) < 0.05
