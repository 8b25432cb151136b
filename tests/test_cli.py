"""The command line: listing, argument validation, dry run, running with toy plugins, report-only, download."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import cli, store
from tests import toy_plugins
from tests.conftest import REPO

TOY_ARGS = ["--suite", "smoke", "--methods", "toy_ssl[inertial]", "toy_student", "--protocols", "toy_probe",
            "--seeds", "0", "--device", "cpu", "--jobs", "1"]  # in-process: the tests monkeypatch plugins


@pytest.fixture()
def toys():
    with toy_plugins.registered():
        yield


def test_list_shows_every_plugin_kind(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for line in ("datasets:", "methods (kind: variants):", "protocols (method kinds evaluated):", "backbones:",
                 "suites:"):
        assert line in out
    assert "simclr       unimodal: simclr[inertial], simclr[skeleton]" in out
    assert "supervised   supervised: supervised[inertial], supervised[skeleton], supervised[all]" in out
    assert "cmc_cmkm     multimodal: cmc_cmkm" in out
    assert "missing_modality multimodal" in out and "inertial_cnn_transformer" in out
    assert "synthetic" in out and "generated on the fly" in out and "smoke  every method" in out


def test_list_per_dataset_shows_its_variants_and_what_each_protocol_measures(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--list", "--datasets", "mmact"]) == 0
    out = capsys.readouterr().out
    variants = next(ln for ln in out.splitlines() if ln.strip().startswith("method variants"))
    from benchmark.registry import DATASETS

    mods = list(DATASETS.get("mmact").modalities)
    assert all(f"simclr[{m}]" in variants for m in mods) and "cmc_cmkm" in variants
    assert "utd_mhad " not in out and "suites:" not in out  # only the named dataset
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("missing_modality"))
    assert "removed" in line or "absent" in line or "imputed" in line  # one line saying what it measures
    assert cli.main(["--list", "--datasets", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--suite", "nope"], "argument --suite: invalid choice: 'nope' (choose from"),
    (["--device", "tpu"], "invalid device 'tpu'; choose auto, cpu, cuda or cuda:N"),
    (["--jobs", "0"], "expected an integer >= 1, got '0'"),
    (["--backend", "ray"], "argument --backend: invalid choice: 'ray'"),
    (["--epochs-scale", "-1"], "expected a finite number > 0, got '-1'"),
    (["--epochs-scale", "inf"], "expected a finite number > 0, got 'inf'"),
    (["--epochs-scale", "nan"], "expected a finite number > 0, got 'nan'"),
    (["--seeds", "a"], "invalid seed 'a'"),
])
def test_invalid_options_list_valid_choices(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--methods", "simclrr"], "unknown method 'simclrr'. Known methods: "),
    (["--protocols", "linear,knnn"], "unknown protocol 'knnn'. Known protocols: finetune, knn, linear"),
    (["--datasets", "utd"], "unknown dataset 'utd'. Known datasets: "),
    (["--methods", "simclr[depth]"], "simclr[depth] applies to no dataset of the suite: synthetic has no usable "
                                     "modality 'depth' (choices: inertial, skeleton)"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler only applies to --backend dask"),
    (["--seeds", "99999999999999999999"], "seeds must be integers from 0 to 2147483647"),
    (["--methods", "cmc[temperature=0]"], "cmc.temperature must be in (0, inf), got 0"),
    (["--methods", "simclr[temperature=-1]"], "simclr.temperature must be in (0, inf), got -1"),
    (["--methods", "moco[ema_momentum=1.5]"], "moco.ema_momentum must be in [0, 1], got 1.5"),
    (["--split", "nope"], "unknown split 'nope'"),
])
def test_unknown_names_exit_2_with_the_list(args: list[str], message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert cli.main([*args, "--results", str(tmp_path), "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_seed_and_name_parsing() -> None:
    assert cli._seeds(["0-2,5", "7"]) == [0, 1, 2, 5, 7]
    assert cli._names(["simclr[inertial],cmc_cmkm[k=2,lam=0.5]", "cmc"]) == [
        "simclr[inertial]", "cmc_cmkm[k=2,lam=0.5]", "cmc"]


def test_full_suite_without_real_data_plans_the_synthetic_set_and_says_what_it_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["--suite", "full", "--data-root", str(empty), "--results", str(tmp_path / "r"), "--dry-run",
                     "--methods", "cmc", "--protocols", "knn", "--seeds", "0"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "dataset synthetic, split xsub" in text
    first = out.err.splitlines()[0]  # the first line says the data is synthetic and how to get the real set
    assert first.startswith("NO REAL DATA HERE") and "synthetic" in first and "--download utd_mhad" in first
    assert "stand-in schedule (epochs x0.03)" in first
    assert "estimated wall time: synthetic ~" in out.out.splitlines()[1]  # up front, per dataset
    for name, how in (("utd_mhad", "python run_all.py --download utd_mhad"), ("mmact", "$MMHAR_DATA")):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"skipped {name}:"))
        assert how in line


def test_the_synthetic_stand_in_runs_at_its_declared_schedule_and_only_in_place_of_real_data(tmp_path: Path) -> None:
    from benchmark.registry import DATASETS
    from benchmark.runner import plan_suite
    from benchmark.suites import get_suite, narrow

    empty = tmp_path / "empty"
    empty.mkdir()
    full = narrow(get_suite("full"), methods=["cmc"], protocols=["knn"], seeds=[0])
    stand_in = plan_suite(full, tmp_path / "a", data_root=str(empty), device="cpu")
    named = plan_suite(narrow(full, datasets=["synthetic"]), tmp_path / "b", data_root=str(empty), device="cpu")
    assert list(stand_in.datasets) == list(named.datasets) == ["synthetic"]
    scale = DATASETS.get("synthetic").stand_in_shrink["epochs_scale"]
    (a,), (b,) = stand_in.units.values(), named.units.values()
    assert a.resolved["epochs"] == max(1, round(b.resolved["epochs"] * scale)) < b.resolved["epochs"]


def test_missing_real_data_says_how_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["--suite", "paper", "--data-root", str(empty), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "utd_mhad" in err and "python run_all.py --download utd_mhad" in err and str(empty) in err


def test_quick_falls_back_to_synthetic(toys, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--suite", "quick", "--methods", "toy_ssl[inertial]", "--protocols", "toy_probe", "--data-root", str(empty),
            "--results", str(tmp_path / "r"), "--dry-run"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "the quick suite runs on synthetic instead of utd_mhad" in captured.err
    assert "--download utd_mhad" in captured.err
    assert "dataset synthetic {'n_trials': 11}, split xsub: 330 train / 110 val / 440 test clips" in captured.out


def test_dry_run_prints_the_plan_and_writes_nothing(toys, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main([*TOY_ARGS, "--results", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cells: 4 total, 0 done, 4 to run" in out
    assert "pretrain units: 3 (1 only as dependencies); 0 checkpoints cached, 3 to train, 0 to load" in out
    assert "estimated cost left:" in out and "rough FLOP estimate" in out
    assert "toy_ssl[inertial]  2/2" in out and "toy_student        2/2" in out
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_run_then_rerun_then_report_only(toys, tmp_path: Path, capsys: pytest.CaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[Path, str]] = []
    import benchmark.report as report

    monkeypatch.setattr(report, "build_report", lambda d, s=None, **kw: built.append((Path(d), s)) or [])
    assert cli.main([*TOY_ARGS, "--results", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "[4/4]" in err and "left ~" in err and "finished: 4 cells computed, 0 failed" in err
    rows = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert len(rows) == 4 * 3  # accuracy, f1_macro, margin per cell
    assert built == [(tmp_path, "smoke")]
    assert cli.main([*TOY_ARGS, "--results", str(tmp_path), "--dry-run"]) == 0
    assert "cells: 4 total, 4 done, 0 to run" in capsys.readouterr().out
    assert cli.main([*TOY_ARGS, "--results", str(tmp_path), "--quiet"]) == 0
    assert "0 cells computed, 0 failed, 4 already done" in capsys.readouterr().out
    (tmp_path / "runs.csv").unlink()
    assert cli.main(["--suite", "smoke", "--results", str(tmp_path), "--report-only"]) == 0
    assert (tmp_path / "runs.csv").is_file() and len(built) == 3
    # without --suite, --report-only titles the report with the suite that wrote the folder (its suite.json)
    mark = json.loads((tmp_path / "suite.json").read_text())
    assert mark["suite"] == "smoke" and mark["numerics"] in ("cpu-fp32", "cpu-bf16")  # 'auto' depends on the CPU
    (tmp_path / "suite.json").write_text(json.dumps({"suite": "paper"}))
    assert cli.main(["--results", str(tmp_path), "--report-only"]) == 0
    assert built[-1] == (tmp_path, "paper")


def test_report_only_title_falls_back_to_the_leaderboards(tmp_path: Path) -> None:
    (tmp_path / "leaderboard.md").write_text("# Leaderboard: suite `full`\n\ntext\n")
    assert cli.folder_suite(tmp_path) == "full"
    (tmp_path / "suite.json").write_text("{broken")
    assert cli.folder_suite(tmp_path) == "full"  # an unreadable mark is ignored
    (tmp_path / "leaderboard.md").write_text("# Leaderboard\n")
    assert cli.folder_suite(tmp_path) is None


def test_failing_cells_give_exit_code_1(toys, tmp_path: Path, capsys: pytest.CaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, *a, **k):
        raise ValueError("probe exploded")

    monkeypatch.setattr(toy_plugins.ToyProbe, "run", broken)
    monkeypatch.setattr("benchmark.report.build_report", lambda d, s=None, **kw: [])
    assert cli.main([*TOY_ARGS, "--results", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "FAILED synthetic toy_ssl[inertial] toy_probe[budget=1] seed 0: ValueError: probe exploded" in err
    assert store.scan_records(tmp_path) == ({}, [])


def test_report_only_without_records(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--results", str(tmp_path), "--report-only"]) == 2
    assert "no records in" in capsys.readouterr().err


def test_download_calls_the_dataset_downloader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    import benchmark.download as download

    calls = []
    monkeypatch.setattr(download, "download_dataset",
                        lambda name, root=None, url=None: calls.append((name, root)) or Path(root) / name)
    assert cli.main(["--download", "utd_mhad", "--data-root", str(tmp_path)]) == 0
    assert calls == [("utd_mhad", str(tmp_path))]
    assert f"utd_mhad is ready in {tmp_path / 'utd_mhad'}" in capsys.readouterr().out


def test_run_all_entry_point_help() -> None:
    out = subprocess.run([sys.executable, "run_all.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for opt in ("--suite", "--list", "--datasets", "--methods", "--protocols", "--seeds", "--epochs-scale", "--results",
                "--data-root", "--device", "--jobs", "--backend", "--scheduler", "--dry-run", "--report-only",
                "--download", "--quiet"):
        assert opt in out.stdout


def test_with_real_data_the_full_suite_leaves_synthetic_out_unless_named(tmp_path: Path, utd_root: Path) -> None:
    from benchmark.runner import plan_suite
    from benchmark.suites import get_suite, narrow

    full = narrow(get_suite("full"), methods=["cmc"], protocols=["knn"], seeds=[0])
    real = plan_suite(full, tmp_path / "a", data_root=str(utd_root), device="cpu")
    assert list(real.datasets) == ["utd_mhad"] and not any(m.startswith("NO REAL DATA") for m in real.messages)
    both = plan_suite(narrow(full, datasets=["utd_mhad", "synthetic"]), tmp_path / "b", data_root=str(utd_root),
                      device="cpu")
    assert sorted(both.datasets) == ["synthetic", "utd_mhad"]
