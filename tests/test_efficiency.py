"""Cost columns: values taken from the records, medians as documented, GFLOPs from the dataset's shapes."""
from __future__ import annotations

import math

import pytest

from benchmark.report import efficiency
from benchmark.report.entries import Entry, ResultSet
from benchmark.report.tables import leaderboard_csv, leaderboard_markdown
from benchmark.runner.cost import clip_flops


def _entry(seed: int, table: str, pretrain_s: float, mem_mb: float) -> Entry:
    return Entry(source=f"{table}{seed}.json", dataset="synthetic", split="xsub", method="cmc", variant="cmc",
                 label="cmc", protocol=table, protocol_variant=table, table=table, protocol_cfg={}, seed=seed,
                 metrics={"accuracy": 0.5 + 0.01 * seed, "f1_macro": 0.5}, per_class={}, artifacts={},
                 main_metric="accuracy", provenance=("1", "cpu", "fp32", "x"),
                 resources={"encoders": {"inertial": 1_000_000, "skeleton": 500_000}, "pretrain_key": f"u{seed}",
                            "pretrain_s": pretrain_s, "peak_memory_mb": mem_mb, "device": "cpu",
                            "cpu_model": "Test CPU", "gpu": None, "length": 50})


def test_row_efficiency_from_records() -> None:
    # two protocols share each seed's pretraining unit: it counts once per seed; medians over seeds / records
    ents = [_entry(s, t, 60.0 * (s + 1), 1024.0 * (s + 1)) for s in range(3) for t in ("knn", "linear")]
    eff = efficiency.row_efficiency(ents)
    assert eff.params_m == pytest.approx(1.5)
    assert eff.pretrain_min == pytest.approx(2.0)  # median of 1, 2, 3 minutes
    assert eff.peak_mem_gb == pytest.approx(2.0)
    # the synthetic dataset's shapes: 6-channel IMU and 20-joint skeleton at length 50
    expected = clip_flops({"inertial": "inertial", "skeleton": "skeleton"},
                          {"inertial": (6, 50), "skeleton": (3, 50, 20)}, ["inertial", "skeleton"]) / 1e9
    assert eff.gflops_clip == pytest.approx(expected) and expected > 0
    assert efficiency.cells(eff)[:2] == ["1.50", f"{expected:.2f}"]
    assert efficiency.row_efficiency([]).params_m != efficiency.row_efficiency([]).params_m  # nan: nothing known


def test_cost_in_markdown_and_csv() -> None:
    rs = ResultSet([_entry(s, "knn", 120.0, 2048.0) for s in range(3)], n_files=3, superseded=0)
    md = leaderboard_markdown(rs)
    assert "## Cost per method" in md and "Device: cpu (Test CPU)." in md
    row = next(line for line in md.split("## Cost per method")[1].splitlines() if line.startswith("| cmc"))
    assert [c.strip() for c in row.strip("|").split("|")][:2] == ["cmc", "1.50"]
    header, first = leaderboard_csv(rs).splitlines()[:2]
    cols = dict(zip(header.split(","), first.split(",")))
    assert float(cols["params_m"]) == 1.5 and float(cols["pretrain_min"]) == 2.0 and float(cols["peak_mem_gib"]) == 2.0
    assert not math.isnan(float(cols["gflops_per_clip"]))
