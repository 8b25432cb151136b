"""Collapse monitors (benchmark/health.py): values on features whose answer is known, their place in records and
findings, and the checkpoint tool agreeing with what the records say."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from benchmark import health
from benchmark.report import build_report
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow


def test_isotropic_features_are_healthy() -> None:
    g = torch.Generator().manual_seed(0)
    h = health.feature_health(torch.randn(4000, 8, generator=g))
    assert h["dim"] == 8
    assert 7.5 < h["rankme"] <= 8.0  # all 8 directions used about equally
    assert 0.95 < h["z_std_ratio"] < 1.05  # each normalised coordinate has std ~ 1/sqrt(8)
    assert h["top_share"] < 0.2


def test_complete_collapse_one_point() -> None:
    h = health.feature_health(torch.ones(50, 16) * 3.0)
    assert h["rankme"] == 1.0 and h["top_share"] == 1.0
    assert h["z_std"] == pytest.approx(0.0, abs=1e-7)


def test_dimensional_collapse_one_direction() -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.randn(1, 32, generator=g)
    a = torch.randn(200, 1, generator=g)
    h = health.feature_health(a * v + 5.0)  # every feature on one line (offset by a constant)
    assert h["rankme"] == pytest.approx(1.0, abs=1e-3)
    assert h["top_share"] == pytest.approx(1.0, abs=1e-6)


def test_rankme_matches_a_float64_loop() -> None:
    g = torch.Generator().manual_seed(2)
    f = torch.randn(30, 5, generator=g) * torch.tensor([5.0, 2.0, 1.0, 0.5, 0.1])
    s = torch.linalg.svdvals((f - f.mean(0)).double()).tolist()
    p = [x / sum(s) for x in s]
    expect = math.exp(-sum(q * math.log(q) for q in p))
    assert health.feature_health(f)["rankme"] == pytest.approx(expect, rel=1e-9)


def test_non_finite_features_are_flagged_not_raised() -> None:
    f = torch.randn(10, 4)
    f[0, 0] = float("nan")
    h = health.feature_health(f)
    assert h["finite"] == 0.0 and math.isnan(h["rankme"])
    with pytest.raises(ValueError, match="at least 2 samples"):
        health.feature_health(torch.randn(1, 4))


def test_records_carry_health_and_the_tool_agrees(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = narrow(get_suite("smoke"), methods=["simclr[skeleton]", "cmc"], protocols=["knn", "linear"], seeds=[0])
    res = tmp_path / "smoke"
    plan = plan_suite(suite, res, device="cpu")
    assert execute(plan, RunSettings(device="cpu", quiet=True)).ok
    recs = [json.loads(p.read_text()) for p in sorted((res / "records").glob("*.json"))]
    by_variant = {}
    for r in recs:
        fh = r["feature_health"]
        assert fh and all(0.0 < m["rankme"] <= m["dim"] and m["finite"] == 1.0 for m in fh.values())
        by_variant.setdefault(r["cell"]["variant"], fh)
        assert fh == by_variant[r["cell"]["variant"]]  # one value per pretraining unit, whatever the protocol
    assert sorted(by_variant["cmc"]) == ["inertial", "skeleton"]
    build_report(res)
    findings = (res / "findings.md").read_text()
    assert "## Feature health (collapse monitors)" in findings and "simclr[skeleton]" in findings
    assert health.main([str(res)]) == 0
    tool = (res / "feature_health.md").read_text()
    row = next(line for line in tool.splitlines() if "| cmc " in line and "skeleton" in line)
    assert f"{by_variant['cmc']['skeleton']['rankme']:.1f}" in row  # the checkpoint says what the record says
    assert health.main([str(tmp_path / "nothing")]) == 2
    assert "Error:" in capsys.readouterr().err
