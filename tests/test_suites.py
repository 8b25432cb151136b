"""Suites: definitions, variant parsing and expansion, narrowing with clear errors, and the paper plan."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.registry import METHODS, PROTOCOLS
from benchmark.runner import plan_suite
from benchmark.suites import (
    PAPER_VARIANTS,
    SUITES,
    Shrink,
    SuiteError,
    all_variant_specs,
    expand_method,
    get_suite,
    narrow,
    parse_variant,
)


def test_suite_names_and_unknown_suite() -> None:
    assert sorted(SUITES) == ["full", "paper", "quick", "smoke"]
    with pytest.raises(SuiteError, match=r"unknown suite 'smok'. Known suites: full, paper, quick, smoke. "
                                         r"Did you mean 'smoke'\?"):
        get_suite("smok")


def test_parse_variant() -> None:
    assert parse_variant("cmc") == ("cmc", {})
    assert parse_variant("simclr[inertial]") == ("simclr", {"modality": "inertial"})
    assert parse_variant(" cmc_cmkm[k=2, lam=0.5, intra_temperature=tau] ") == (
        "cmc_cmkm", {"k": 2, "lam": 0.5, "intra_temperature": "tau"})
    assert parse_variant("moco[skeleton,queue_size=128]") == ("moco", {"modality": "skeleton", "queue_size": 128})
    with pytest.raises(SuiteError, match="cannot parse method variant 'simclr\\[inertial'"):
        parse_variant("simclr[inertial")


def test_method_variants_follow_declared_modality_choices() -> None:
    assert expand_method("simclr") == ["simclr[inertial]", "simclr[skeleton]"]
    assert expand_method("moco") == ["moco[inertial]", "moco[skeleton]"]
    assert expand_method("supervised") == ["supervised[inertial]", "supervised[skeleton]", "supervised[all]"]
    assert expand_method("cmc") == ["cmc"] and expand_method("cmc_cmkm[k=2]") == ["cmc_cmkm[k=2]"]
    assert expand_method("simclr[depth]") == ["simclr[depth]"]  # checked at planning, against each dataset
    specs = all_variant_specs()
    for v in ("simclr[inertial]", "simclr[skeleton]", "moco[inertial]", "moco[skeleton]", "supervised[inertial]",
              "supervised[skeleton]", "supervised[all]", "cmc", "cmc_cmkm"):
        assert v in specs


def test_suite_definitions() -> None:
    smoke, quick, full, paper = (get_suite(n) for n in ("smoke", "quick", "full", "paper"))
    assert smoke.datasets == ("synthetic",) and smoke.seeds == (0, 1) and smoke.shrink.epochs_cap == 1
    assert smoke.variant_specs() == all_variant_specs() and smoke.protocol_names() == PROTOCOLS.names()
    assert quick.fallback_dataset == "synthetic" and quick.shrink.epochs_scale == 0.05
    assert quick.variant_specs() == all_variant_specs() and quick.seeds == (0,)
    assert full.seeds == (0, 1, 2, 3, 4) and full.shrink == Shrink() and full.protocols is None
    assert full.methods is None and full.datasets == ("utd_mhad", "mmact") and full.skip_missing
    assert full.fallback_dataset == "synthetic"  # only where none of the real datasets is here
    assert paper.variant_specs() == list(PAPER_VARIANTS)
    assert paper.protocol_names() == ["paper_head", "paper_head[bn_mode=frozen]"]
    assert paper.seeds == (0, 1, 2, 3, 4) and paper.shrink == Shrink() and paper.datasets == ("utd_mhad",)


def test_narrow_and_unknown_names() -> None:
    smoke = get_suite("smoke")
    s = narrow(smoke, datasets=["synthetic"], methods=["simclr", "cmc"], protocols=["linear"], seeds=[3, 4],
               epochs_scale=2.0)
    assert s.variant_specs() == ["simclr[inertial]", "simclr[skeleton]", "cmc"]
    assert s.protocol_names() == ["linear"] and s.seeds == (3, 4) and s.shrink.epochs_scale == 2.0
    assert s.shrink.epochs_cap == 1 and smoke.seeds == (0, 1)  # the original is untouched
    with pytest.raises(SuiteError, match=r"unknown method 'simclrr'. Known methods: .*simclr\[inertial\].*"
                                         r"Did you mean 'simclr'\?"):
        narrow(smoke, methods=["simclrr"])
    with pytest.raises(SuiteError, match=r"unknown protocol 'knnn'. Known protocols: .*knn.*linear"):
        narrow(smoke, protocols=["knnn"])
    s = narrow(smoke, protocols=["paper_head", "paper_head[bn_mode=frozen]"])
    assert s.protocol_names() == ["paper_head", "paper_head[bn_mode=frozen]"]
    with pytest.raises(SuiteError, match=r"'paper_head\[bn_mod=frozen\]': unknown config key 'bn_mod' for "
                                         r"protocol 'paper_head'; valid keys: .*bn_mode"):
        narrow(smoke, protocols=["paper_head[bn_mod=frozen]"])
    with pytest.raises(SuiteError, match=r"invalid value 'off' for paper_head.bn_mode"):
        narrow(smoke, protocols=["paper_head[bn_mode=off]"])
    for bad in ("paper_head[frozen]", "paper_head[bn_mode=frozen,frozen]"):
        with pytest.raises(SuiteError, match=r"write name\[key=value,...\]"):
            narrow(smoke, protocols=[bad])
    with pytest.raises(SuiteError, match=r"unknown dataset 'utd'. Known datasets: .*synthetic, utd_mhad"):
        narrow(smoke, datasets=["utd"])
    with pytest.raises(SuiteError, match="seeds must be integers from 0 to 2147483647"):
        narrow(smoke, seeds=[-1])
    with pytest.raises(SuiteError, match="epochs scale must be a positive number"):
        narrow(smoke, epochs_scale=0)


def test_epochs_scale_multiplies_every_epoch_count(tmp_path: Path) -> None:
    quick = narrow(get_suite("quick"), datasets=["synthetic"], methods=["simclr[inertial]", "cmc_cmkm"],
                   protocols=["paper_head", "semisup"], seeds=[0], epochs_scale=2.0)
    plan = plan_suite(quick, tmp_path)
    epochs = {u.variant: u.resolved["epochs"] for u in plan.units.values()}
    assert epochs == {"simclr[inertial]": 30, "simclr[skeleton]": 30, "cmc_cmkm": 10}  # 300 / 100 x 0.05 x 2
    assert {c.protocol_resolved["epochs"] for c in plan.cells} == {10}
    assert all(c.method_cfg["epochs"] == epochs[c.variant] for c in plan.cells)


@pytest.mark.realdata
def test_paper_suite_plan_on_utd_mhad(utd_root: Path, tmp_path: Path) -> None:
    plan = plan_suite(get_suite("paper"), tmp_path, data_root=str(utd_root))
    assert plan.datasets["utd_mhad"].sizes == {"train": 323, "val": 108, "test": 430}
    assert len(plan.cells) == 8 * 5 * 2 and len(plan.todo) == 80  # 5 seeds x (paper_head, its bn_mode=frozen)
    assert len(plan.units) == 40  # CMKM's SimCLR teachers and supervised_fusion's encoders are benchmarked units
    by_variant = {(u.variant, u.seed): u for u in plan.units.values()}
    simclr_i, simclr_s, kmkm = (by_variant[(v, 0)] for v in ("simclr[inertial]", "simclr[skeleton]", "cmc_cmkm"))
    assert (simclr_i.resolved["batch_size"], simclr_i.resolved["temperature"], simclr_i.resolved["epochs"]) == \
        (128, 0.05, 300)
    assert (simclr_s.resolved["batch_size"], simclr_s.resolved["temperature"]) == (32, 0.5)
    assert kmkm.resolved["epochs"] == 100 and kmkm.deps == {"teacher_inertial": simclr_i.key,
                                                            "teacher_skeleton": simclr_s.key}
    assert {c.protocol_resolved["epochs"] for c in plan.cells} == {100}
    assert all(c.protocol_cfg in ({}, {"bn_mode": "frozen"}) and set(c.method_cfg) <= {"modality"}
               for c in plan.cells)  # no shrinking
    assert {c.protocol_variant for c in plan.cells} == {"paper_head", "paper_head[bn_mode=frozen]"}
    assert METHODS.get("supervised").kind == "supervised"
