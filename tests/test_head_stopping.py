"""Our heads stop on the validation main metric after HEAD_PATIENCE epochs; paper_head keeps the reference rule."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.data import load_dataset
from benchmark.protocols.base import HEAD_PATIENCE, improvement_epochs
from benchmark.registry import PROTOCOLS
from benchmark.runner import plan_suite
from benchmark.suites import Suite
from tests import toy_plugins
from tests.test_protocols import TinyMethod, make_pre


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic")


@pytest.mark.parametrize("name", ["linear", "finetune", "missing_modality", "semisup"])
def test_our_protocols_stop_on_the_main_metric_by_default(name):
    cfg = PROTOCOLS.get(name).resolve_config({})
    assert (cfg["early_stop_on"], cfg["early_stop_patience"]) == ("main", HEAD_PATIENCE)


def test_paper_head_keeps_the_reference_rule():
    cfg = PROTOCOLS.get("paper_head").resolve_config({})
    assert (cfg["early_stop_on"], cfg["early_stop_patience"]) == ("val_loss", 50)


def test_full_suite_runs_paper_head_with_our_rule_and_paper_suite_with_the_reference(tmp_path: Path):
    from benchmark.suites import get_suite

    def paper_head_cfgs(name: str) -> list[dict]:
        suite = replace(get_suite(name), datasets=("synthetic",), seeds=(0,), fallback_dataset=None,
                        methods=("simclr[inertial]",))
        return [c.protocol_resolved for c in plan_suite(suite, tmp_path / name).cells if c.protocol == "paper_head"]

    full, paper = paper_head_cfgs("full"), paper_head_cfgs("paper")
    assert full and all((c["early_stop_on"], c["early_stop_patience"]) == ("main", HEAD_PATIENCE) for c in full)
    assert paper and all((c["early_stop_on"], c["early_stop_patience"]) == ("val_loss", 50) for c in paper)


def test_improvement_epochs_are_the_strict_new_bests():
    hist = [{"epoch": i, "val_accuracy": v} for i, v in enumerate([0.1, 0.3, 0.3, 0.2, 0.5, float("nan"), 0.5, 0.6])]
    assert improvement_epochs(hist, "val_accuracy") == [0, 1, 4, 7]
    assert improvement_epochs(hist, "val_accuracy", "min") == [0]


def test_head_summary_states_the_rule_and_respects_the_cap(data):
    split = data.split("xsub")
    pre = make_pre(data, TinyMethod)
    proto = PROTOCOLS.get("linear")
    res = proto().run(pre, data, split, proto.resolve_config({"epochs": 60, "batch_size": 32,
                                                              "early_stop_patience": 2}), 0, device="cpu")
    h = res.artifacts["head_training"]
    assert (h["early_stop"], h["patience"], h["select"], h["max_epochs"]) == ("val_accuracy", 2, "val_accuracy", 60)
    assert h["improved_at"][-1] == h["best_epoch"]
    assert h["epochs_run"] <= h["best_epoch"] + 2 + 1
    assert h["stopped_early"] == (h["epochs_run"] < 60)
    semi = PROTOCOLS.get("semisup")
    res = semi().run(pre, data, split, semi.resolve_config({"budget": 2, "epochs": 40, "evaluators": ["paper_head"],
                                                            "early_stop_patience": 3}), 0, device="cpu")
    h = res.artifacts["evaluators"]["paper_head"]["head_training"]
    assert (h["early_stop"], h["patience"], h["max_epochs"]) == ("val_accuracy", 3, 40)  # semisup's rule, not 50
    assert h["epochs_run"] <= h["best_epoch"] + 3 + 1


def test_a_changed_default_changes_the_cell_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with toy_plugins.registered():
        suite = Suite(name="toy", description="toy", datasets=("synthetic",), methods=("toy_ssl",),
                      protocols=("linear",), seeds=(0,), dataset_options={"synthetic": {"n_trials": 1, "n_classes": 4}})
        before = {c.key for c in plan_suite(suite, tmp_path).cells}
        linear = PROTOCOLS.get("linear")
        monkeypatch.setattr(linear, "defaults", {**linear.defaults, "early_stop_patience": HEAD_PATIENCE + 1})
        after = {c.key for c in plan_suite(suite, tmp_path).cells}
    assert before and after and not before & after
