"""Records a reader can re-analyse and trust: per-clip test predictions with ids and subjects, provenance, the
leaderboard's P(best) and Δ-to-best columns, intervals inside [0, 100], and few-label validation in semisup."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from benchmark.plugins import load_plugins
from benchmark.report import build_report
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow

load_plugins()


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("smoke")
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]", "cmc", "supervised[skeleton]"],
                   protocols=["linear", "semisup", "retrieval"], seeds=[0, 1])
    plan = plan_suite(suite, results, device="cpu")
    summary = execute(plan, RunSettings(device="cpu", quiet=True))
    assert summary.ok, summary.failed[:2]
    build_report(results, "smoke")
    return results


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "records").glob("*.json"))]


def test_every_record_holds_per_clip_predictions_and_provenance(smoke_results: Path) -> None:
    records = _records(smoke_results)
    assert records
    for r in records:
        tp = r["test_predictions"]
        n = len(tp["ids"])
        assert n > 0 and len(tp["y_true"]) == len(tp["y_pred"]) == len(tp["groups"]["subject"]) == n
        assert len(set(tp["ids"])) == n and all(isinstance(v, int) for v in tp["y_pred"])
        correct = sum(a == b for a, b in zip(tp["y_true"], tp["y_pred"]))
        assert correct / n == pytest.approx(r["metrics"]["accuracy"])  # the predictions behind the metric
        assert r["main_metric"] == "accuracy" and r["training_profile"]["length"] == 50
        assert r["git"]["code_tree"] and "untracked_code" in r["git"] and r["cpu"]
        assert len(json.dumps(tp)) < 4000  # compact: a few KB even for UTD-MHAD's 430 test clips


def test_leaderboard_shows_best_set_and_delta_and_intervals_stay_in_range(smoke_results: Path) -> None:
    text = (smoke_results / "leaderboard.md").read_text()
    assert "best set (" in text and "Δ to best [simultaneous 95% CI]" in text
    intervals = [(float(a), float(b)) for a, b in re.findall(r"\|\s*\[(-?\d+\.\d+), (-?\d+\.\d+)\]\*?\s*\|", text)]
    assert intervals and all(0.0 <= lo <= hi <= 100.0 for lo, hi in intervals)
    assert "]*" not in text  # every record has predictions: the seeds x subjects scheme everywhere
    csv_rows = (smoke_results / "leaderboard.csv").read_text().splitlines()
    header = csv_rows[0].split(",")
    scheme = header.index("interval_scheme")
    assert {r.split(",")[scheme] for r in csv_rows[1:] if r.startswith("leaderboard")} == {"seeds x subjects"}


def test_semisup_validates_on_the_same_budget(smoke_results: Path) -> None:
    subsets = smoke_results / "subsets"
    val_files = sorted(subsets.glob("*-val-per_class-1-seed*.json"))
    assert val_files, sorted(p.name for p in subsets.iterdir())
    for f in val_files:
        stored = json.loads(f.read_text())
        assert stored["budget"] == 1
        per_class = Counter(stored["ids"][i].split("_")[0] for i in range(len(stored["ids"])))
        assert max(per_class.values()) == 1  # at most 1 validation clip per class (ids start with the class)
    rec = next(r for r in _records(smoke_results) if r["cell"]["protocol"] == "semisup"
               and r["protocol_resolved"]["budget"] == 1)
    sub = rec["artifacts"]["subset"]
    assert sub["val_labels"] == "budget" and sub["n_val"] <= sub["n_labelled"]
    assert sub["file"].startswith("subsets/") and len(sub["ids_sha256"]) == 64
