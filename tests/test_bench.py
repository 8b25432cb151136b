"""The training benchmark's plumbing (fields, baseline pairing, dependencies) and the measured step-time cache.

Speeds themselves are measured by `python -m benchmark.bench train --baseline`, never asserted here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import bench, rates
from benchmark.runner import plan_suite
from benchmark.suites import get_suite, narrow

FIELDS = {"method", "batch", "step_ms", "baseline_step_ms", "speedup", "gflops", "fp32_matmul_gflops",
          "bf16_matmul_gflops", "precision", "data_fraction"}


def test_bench_json_has_one_object_per_method_with_the_baseline(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["train", "--baseline", "--methods", "cmc_cmkm", "--steps", "1", "--rounds", "2",
                       "--threads", "1", "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["cmc_cmkm"]  # its teachers come from its declared dependencies
    row = rows[0]
    assert FIELDS <= set(row) and row["precision"] in ("fp32", "bf16")
    assert row["speedup"] == pytest.approx(row["baseline_step_ms"] / row["step_ms"])
    assert 0 <= row["data_fraction"] < 1 and row["machine"]["baseline"] is True
    assert "speedup" in capsys.readouterr().out


def test_bench_rejects_an_unknown_method(capsys) -> None:
    assert bench.main(["train", "--methods", "nope", "--steps", "1"]) == 2
    assert "unknown method(s) nope" in capsys.readouterr().err


def test_step_times_are_measured_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr(rates, "_time_steps", lambda m, o, d, dev, steps=3: calls.append(m) or 0.5)
    suite = narrow(get_suite("smoke"), methods=["cmc", "simclr[inertial]"], protocols=["knn"], seeds=[0])
    plan = plan_suite(suite, tmp_path / "res", device="cpu", precision="fp32")
    first = rates.measure_step_times(plan, "cpu", 1)
    assert sorted(calls) == ["cmc", "simclr"] and set(first) == set(plan.units)
    assert rates.measure_step_times(plan, "cpu", 1) == first and len(calls) == 2  # cached per machine
    other = plan_suite(suite, tmp_path / "res", device="cpu", precision="bf16")
    rates.measure_step_times(other, "cpu", 1)
    assert len(calls) == 4  # another precision is another measurement
    secs, source = plan.estimate_seconds("cpu", 1, first)
    want = sum(rates.unit_seconds(u, plan.datasets[u.dataset].sizes, 0.5) for u in plan.units.values())
    assert secs > want and "measured on this machine" in source  # pretraining plus the protocol cells


def test_unit_seconds_counts_train_and_validation_batches() -> None:
    class U:
        resolved = {"epochs": 10, "batch_size": 32}
        flops = 1e12

    assert rates.unit_seconds(U, {"train": 100, "val": 40, "test": 0}, 0.1) == pytest.approx(10 * (3 + 2 / 3) * 0.1)
    assert rates.flop_rate(U, {"train": 100, "val": 40, "test": 0}, 0.1) == pytest.approx(1e12 / (10 * (3 + 2 / 3) * 0.1))
