"""Contract checks over every registered plugin, the fixture datasets that stretch the contract (one inertial
modality with a predefined split and no subjects, two freely named inertial modalities, three modalities),
and what the harness does with them: applicability, batch caps, declared profiles, clear errors."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmark.checks import ContractError, check_dataset, check_method, check_protocol
from benchmark.contracts import DataInfo, DatasetError, DatasetPlugin, Method, ModalitySpec, SplitSpec, TrainingProfile
from benchmark.data import load_dataset
from benchmark.plugins import load_plugins
from benchmark.registry import DATASETS, METHODS, PROTOCOLS
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import Shrink, get_suite
from tests import fixture_datasets
from tests.conftest import REPO

load_plugins()


@pytest.mark.parametrize("name", METHODS.names())
def test_every_registered_method_passes_its_contract(name: str) -> None:
    check_method(METHODS.get(name))


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_dataset_passes_its_contract(name: str) -> None:
    check_dataset(DATASETS.get(name))


@pytest.mark.parametrize("name", PROTOCOLS.names())
def test_every_registered_protocol_passes_its_contract(name: str) -> None:
    check_protocol(PROTOCOLS.get(name))


def test_checks_report_every_problem() -> None:
    class Broken(Method):
        name = "broken"
        kind = "selfish"
        n_views = -1
        choices = {"nope": (1, 2)}

    with pytest.raises(ContractError) as exc:
        check_method(Broken)
    text = str(exc.value)
    assert "kind` must be one of" in text and "n_views" in text and "choices names 'nope'" in text

    class BadData(DatasetPlugin):
        name = "bad_data"
        modalities = {"acc": ModalitySpec("inertial", 3, 50.0)}
        class_names = ["a", "a"]
        splits = {"s": SplitSpec(train={"subject": [1]}, test={"subject": [2]})}
        default_split = "t"
        training = TrainingProfile(method_defaults={"simclr": {"temprature": 0.1}},
                                   augmentations={"acc": {"jitter": {}}})
        headline_protocols = "linear"  # a string, not a tuple of names
        stand_in_shrink = {"epochs": 3}  # not a Shrink field

    with pytest.raises(ContractError) as exc:
        check_dataset(BadData, load=False)
    text = str(exc.value)
    assert "unique names" in text and "`default_split` 't'" in text
    assert "`headline_protocols` must be a tuple" in text and "`stand_in_shrink` must be a dict" in text
    assert "unknown key(s) ['temprature'] for method 'simclr'" in text and "unknown op 'jitter'" in text


def test_declarations_fail_early_and_name_the_key() -> None:
    with pytest.raises(DatasetError, match=r"unknown key\(s\) \['lenght'\]"):
        TrainingProfile.from_dict({"lenght": 40})
    with pytest.raises(DatasetError, match="main_metric 'auc'"):
        TrainingProfile(main_metric="auc")
    with pytest.raises(DatasetError, match="kind 'depth' is not known"):
        ModalitySpec("depth", 1, 30.0)
    with pytest.raises(TypeError, match="the 'profile' attribute is gone"):
        type("Old", (DatasetPlugin,), {"profile": "utd_mhad"})


# -- the fixture datasets ----------------------------------------------------------------------------------
@pytest.fixture()
def fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    with fixture_datasets.registered():
        yield


@pytest.mark.parametrize("cls", fixture_datasets.FIXTURES, ids=lambda c: c.name)
def test_fixture_datasets_pass_the_contract(fixtures, cls) -> None:
    check_dataset(cls)


def test_predefined_split_without_subjects_carves_a_stratified_validation_part(fixtures) -> None:
    data = load_dataset("fx_acc_only")
    assert data.subjects is None and tuple(data.modalities["acc"].shape[1:]) == (3, 40)  # declared length 40
    sp = data.split()
    labels = data.labels.numpy()
    assert (len(sp.train), len(sp.val), len(sp.test)) == (24, 8, 16)
    assert [int((labels[sp.val] == c).sum()) for c in range(4)] == [2, 2, 2, 2]  # stratified, 25 % of 8
    assert not set(sp.val) & set(sp.train) and data.meta["splits"]["predefined"]["val_seed"] == 0
    again = load_dataset("fx_acc_only").split()
    assert (again.val == sp.val).all()  # seeded


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in fixture_datasets.FIXTURES])
def test_fixture_dataset_runs_every_applicable_protocol(fixtures, name: str, tmp_path: Path) -> None:
    suite = replace(get_suite("smoke"), datasets=(name,), seeds=(0,), dataset_options={})
    plan = plan_suite(suite, tmp_path / "res", device="cpu")
    summary = execute(plan, RunSettings(device="cpu", quiet=True))
    assert summary.ok and summary.completed == len(plan.cells) > 0, summary.failed[:3]
    modalities = list(DATASETS.get(name).modalities)
    variants = {c.variant for c in plan.cells}
    assert {f"simclr[{m}]" for m in modalities} <= variants  # unimodal methods on every modality, by its name
    if len(modalities) == 1:
        assert not variants & {"cmc", "cmc_cmkm", "cmc_moco", "supervised[all]"}
        assert any(v == "cmc" and p == "*" and "at least 2 modalities" in why for v, p, why in plan.skipped)
        assert "not applicable: " in plan.summary(device="cpu")
    else:
        assert {"cmc", "cmc_cmkm", "supervised[all]"} <= variants
        cmkm = {c.pretrain_key for c in plan.cells if c.variant == "cmc_cmkm"}
        teachers = {plan.units[d].variant for k in cmkm for d in plan.units[k].deps.values()}
        assert teachers == {f"simclr[{m}]" for m in modalities}  # CMKM's teachers follow the data's modalities


def test_declared_profile_reaches_configs_keys_and_records(fixtures, tmp_path: Path) -> None:
    data = load_dataset("fx_three")
    info = DataInfo.from_data(data, data.split())
    simclr = METHODS.get("simclr")
    assert simclr.resolve_config(info, {"modality": "body"})["temperature"] == 0.3  # 'simclr[body]'
    assert simclr.resolve_config(info, {"modality": "body"})["batch_size"] == 32  # its skeleton-kind default
    assert simclr.resolve_config(info, {"modality": "wrist"})["epochs"] == 5  # 'unimodal' selector
    assert METHODS.get("cmc").resolve_config(info)["epochs"] == 100  # kind selector does not reach multimodal
    assert "training" in data.meta and ":" in data.fingerprint
    generic = load_dataset("fx_two_imus")
    assert generic.meta["training"].is_generic()
    semisup = PROTOCOLS.get("semisup")
    budgets = [c["budget"] for c in semisup.expand(semisup.resolve_config({}), info)]
    assert budgets == [1, 2]  # the declared (1, 2, 100) without budgets above 32 train clips / 4 classes


def test_batch_size_above_the_training_set_is_capped_at_planning(fixtures, tmp_path: Path) -> None:
    suite = replace(get_suite("full"), datasets=("fx_two_imus",), seeds=(0,), methods=("simclr[wrist]",),
                    protocols=("linear",), shrink=Shrink(epochs_cap=1))
    plan = plan_suite(suite, tmp_path, device="cpu")
    (unit,) = plan.units.values()
    assert unit.resolved["batch_size"] == 32 and unit.overrides["batch_size"] == 32  # SimCLR's 128 > 32 clips
    assert plan.cells[0].method_cfg["batch_size"] == 32  # recorded with the cell
    assert any("simclr[wrist] on fx_two_imus: batch_size 128 exceeds the 32 training clips" in m and
               "capped to 32" in m for m in plan.messages)
    assert "note: simclr[wrist]" in plan.summary(device="cpu")
    summary = execute(plan, RunSettings(device="cpu", quiet=True))
    assert summary.ok and summary.completed == 1


# -- the dataset example of docs/datasets.md (linked from the README) ----------------------------------------
def readme_dataset_example() -> str:
    text = (REPO / "docs" / "datasets.md").read_text()
    match = re.search(r"```python\n(# my_imu\.py\n.*?)```", text, re.S)
    assert match, "docs/datasets.md lost its 'Adding a dataset' example"
    return match.group(1)


def _write_imu_files(root: Path) -> None:
    """Raw files in the example's layout: my_imu/{train,test}/<activity>_<n>.csv (time x 6 channels)."""
    gen = torch.Generator().manual_seed(0)
    for part, n in (("train", 6), ("test", 3)):
        folder = root / "my_imu" / part
        folder.mkdir(parents=True)
        for activity, freq in (("walk", 1.0), ("run", 2.0), ("sit", 0.0)):
            for i in range(n):
                t = torch.linspace(0, 6.28, 80).unsqueeze(1)
                x = torch.sin(freq * t + torch.arange(6)) + 0.2 * torch.randn(80, 6, generator=gen)
                rows = "\n".join(",".join(f"{v:.4f}" for v in row) for row in x.tolist())
                (folder / f"{activity}_{i}.csv").write_text("ax,ay,az,gx,gy,gz\n" + rows + "\n")


@pytest.mark.slow
def test_readme_dataset_runs_from_outside_the_project(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    plugin = tmp_path / "my_imu.py"
    plugin.write_text(readme_dataset_example())
    _write_imu_files(tmp_path / "data")
    env = {**os.environ, "MMHAR_QUIET": "1", "MMHAR_CACHE": str(tmp_path / "cache")}
    env.pop("MMHAR_PLUGINS", None)
    checked = subprocess.run([sys.executable, "-m", "benchmark.checks", str(plugin)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    results = tmp_path / "res"
    ran = subprocess.run([sys.executable, "run_all.py", "--plugins", str(plugin), "--suite", "smoke", "--datasets",
                          "my_imu", "--seeds", "0", "--data-root", str(tmp_path / "data"), "--results", str(results),
                          "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    records = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    assert records and all(r["cell"]["dataset"] == "my_imu" for r in records)
    assert {r["cell"]["variant"] for r in records} >= {"simclr[imu]", "supervised[imu]"}
    assert all(r["main_metric"] == "f1_macro" for r in records)
    assert (results / "leaderboard.md").exists()
