"""Bad input that must not crash or be served stale: a corrupt preprocessing cache."""
from __future__ import annotations

import torch

from benchmark.data import load_dataset


def test_a_corrupt_preprocessing_cache_is_named_deleted_and_rebuilt(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path))
    first = load_dataset("synthetic")
    (cache,) = list(tmp_path.glob("synthetic-*.npz"))
    cache.write_bytes(cache.read_bytes()[:100])  # truncated, as by a full disk
    again = load_dataset("synthetic")
    assert str(cache) in capsys.readouterr().err and cache.is_file()
    assert all(torch.equal(first.modalities[m], again.modalities[m]) for m in first.modalities)


def test_a_second_run_into_a_locked_results_folder_stops_naming_the_first(tmp_path):
    import os

    import pytest

    from benchmark.runner import RunError, RunSettings, execute, plan_suite
    from benchmark.runner.lock import LOCK_NAME, results_lock
    from benchmark.suites import get_suite, narrow

    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]"], protocols=["knn"], seeds=[0])
    plan = plan_suite(suite, tmp_path / "res", device="cpu")
    with results_lock(tmp_path / "res"):  # the first run holds the folder
        with pytest.raises(RunError, match=f"in use by another run \\(pid {os.getpid()} on "):
            execute(plan, RunSettings(device="cpu", quiet=True))
        assert not list((tmp_path / "res").glob("records/*.json"))  # no duplicate work
    assert execute(plan, RunSettings(device="cpu", quiet=True)).completed == 1  # free again
    assert (tmp_path / "res" / LOCK_NAME).read_text() == ""


def test_report_only_on_a_corrupt_record_names_it_and_rewrites_nothing(tmp_path, capsys):
    from benchmark import cli
    from benchmark.runner import RunSettings, execute, plan_suite
    from benchmark.suites import get_suite, narrow

    res = tmp_path / "res"
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]"], protocols=["knn", "linear"], seeds=[0])
    execute(plan_suite(suite, res, device="cpu"), RunSettings(device="cpu", quiet=True))
    assert cli.main(["--suite", "smoke", "--results", str(res), "--report-only"]) == 0
    outputs = {p: p.read_bytes() for p in [res / "runs.csv", res / "leaderboard.md"]}
    bad = sorted((res / "records").glob("*.json"))[0]
    bad.write_text("{truncated")
    assert cli.main(["--suite", "smoke", "--results", str(res), "--report-only"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "nothing was rewritten" in err
    assert all(p.read_bytes() == b for p, b in outputs.items())
