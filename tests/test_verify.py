"""`python -m benchmark.verify`: re-running recorded cells reproduces them exactly on the same machine."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import verify
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow


def test_verify_reruns_sampled_cells_exactly_and_flags_a_tampered_record(tmp_path: Path) -> None:
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]", "cmc"], protocols=["linear", "knn"], seeds=[0])
    res = tmp_path / "smoke"
    plan = plan_suite(suite, res, device="cpu")
    assert execute(plan, RunSettings(device="cpu", quiet=True)).ok
    rows, ok = verify.verify(res, 2, device="cpu", log=lambda s: None)
    assert ok and len(rows) == 2 and all(r["diff"] == 0.0 and r["clips"] == 0 and r["exact_expected"] for r in rows)
    rec_file = res / "records" / rows[0]["record"]
    rec = json.loads(rec_file.read_text())
    rec["metrics"][rows[0]["metric"]] += 0.01  # a stored number the code does not reproduce
    rec_file.write_text(json.dumps(rec))
    rows, ok = verify.verify(res, 2, device="cpu", log=lambda s: None)
    assert not ok and rows[0]["diff"] == pytest.approx(-0.01) and "DIFFERS" in rows[0]["note"]
    assert "2 re-run cell(s): 1 exact" in verify.format_rows(rows)
    assert verify.main([str(res), "--cells", "1"]) == 1  # the first record is the tampered one
    rows, _ = verify.verify(res, 5, variant="cmc", device="cpu", log=lambda s: None)
    assert [r["cell"].split(" / ")[0] for r in rows] == ["cmc", "cmc"]  # only that variant's records


def test_retrieval_records_hold_each_querys_average_precision(tmp_path: Path) -> None:
    suite = narrow(get_suite("smoke"), methods=["cmc"], protocols=["retrieval"], seeds=[0])
    plan = plan_suite(suite, tmp_path / "r", device="cpu")
    assert execute(plan, RunSettings(device="cpu", quiet=True)).ok
    rec = json.loads(next((tmp_path / "r" / "records").glob("*.json")).read_text())
    ap = [v for v in rec["test_predictions"]["ap"] if v is not None]
    assert len(rec["test_predictions"]["ap"]) == len(rec["test_predictions"]["ids"])
    assert sum(ap) / len(ap) == pytest.approx(rec["metrics"]["map"], abs=1e-5)
