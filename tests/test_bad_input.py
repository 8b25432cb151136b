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


def test_an_unwritable_results_folder_stops_before_any_training(tmp_path, monkeypatch, capsys):
    import tempfile

    import benchmark.pretrain as pretrain_mod
    from benchmark import cli

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    trained = []
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)  # as a read-only folder answers (root ignores modes)
    monkeypatch.setattr(pretrain_mod, "pretrain", lambda *a, **k: trained.append(a))
    code = cli.main(["--suite", "smoke", "--methods", "simclr[inertial]", "--protocols", "knn", "--seeds", "0",
                     "--results", str(tmp_path / "res"), "--jobs", "1", "--quiet"])
    assert code == 2 and not trained
    assert "is not writable (Permission denied)" in capsys.readouterr().err
    assert not (tmp_path / "res" / "records").exists()


def test_quiet_still_prints_each_failed_cells_reason(tmp_path, monkeypatch, capsys):
    from benchmark import cli
    from benchmark.registry import PROTOCOLS

    def boom(self, *args, **kwargs):
        raise RuntimeError("boom: the knn protocol broke")

    monkeypatch.setattr(PROTOCOLS.get("knn"), "run", boom)
    code = cli.main(["--suite", "smoke", "--methods", "simclr[inertial]", "--protocols", "knn", "--seeds", "0",
                     "--results", str(tmp_path / "res"), "--jobs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "failed: synthetic simclr[inertial] knn seed 0: RuntimeError: boom: the knn protocol broke" in err


def test_figure_names_of_long_variant_specs_are_bounded():
    from benchmark.report.plots import MAX_SLUG, slug

    long = "cmc_cmkm[" + ",".join(f"k{i}={i}" for i in range(80)) + "]"
    a, b = slug("bars", "utd_mhad", "xsub", long), slug("bars", "utd_mhad", "xsub", long + "x")
    assert len(a) <= MAX_SLUG and a != b and a.startswith("bars_utd_mhad_xsub_cmc_cmkm-k0=0")
    assert slug("bars", "utd_mhad", "xsub", "knn") == "bars_utd_mhad_xsub_knn"


def test_an_unreachable_dask_scheduler_fails_fast_with_a_clear_message(tmp_path, capsys):
    import time

    import pytest

    from benchmark import cli

    pytest.importorskip("distributed")
    t0 = time.perf_counter()
    code = cli.main(["--suite", "smoke", "--methods", "simclr[inertial]", "--protocols", "knn", "--seeds", "0",
                     "--results", str(tmp_path / "res"), "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"])
    assert code == 2 and time.perf_counter() - t0 < 25
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:1" in capsys.readouterr().err


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphaned_cache_temp_files_are_removed_and_live_ones_kept(tmp_path, monkeypatch, capsys):
    import os
    import time

    from benchmark.atomic import TMP_MARK, owner_tag

    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path))
    host = owner_tag().split("-")[0]
    dead = tmp_path / f".synthetic-x.npz{TMP_MARK}{host}-{_dead_pid()}-abcd"  # a killed writer's
    live = tmp_path / f".synthetic-y.npz{TMP_MARK}{owner_tag()}-efgh"  # this process is writing it
    other_host = tmp_path / f".synthetic-z.npz{TMP_MARK}0badc0de-{_dead_pid()}-ijkl"  # another machine's
    legacy_old = tmp_path / f".synthetic-w.npz{TMP_MARK}q1w2e3r4"  # no owner in the name, two days old
    legacy_new = tmp_path / f".synthetic-v.npz{TMP_MARK}t5y6u7i8"
    for f in (dead, live, other_host, legacy_old, legacy_new):
        f.write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(legacy_old, (two_days_ago, two_days_ago))
    load_dataset("synthetic")
    assert not dead.exists() and not legacy_old.exists()
    assert live.exists() and other_host.exists() and legacy_new.exists()
    err = capsys.readouterr().err
    assert str(dead) in err and "partial cache file" in err


def test_a_killed_downloads_staging_folder_is_removed_on_the_next_download(tmp_path):
    from benchmark.atomic import owner_tag
    from benchmark.download import STAGING_MARK, staging

    host = owner_tag().split("-")[0]
    orphan = tmp_path / f".utd_mhad{STAGING_MARK}{host}-{_dead_pid()}-x1y2"
    (orphan / "scratch").mkdir(parents=True)
    (orphan / "scratch" / "Inertial.zip").write_bytes(b"half an archive")
    with staging(tmp_path / "utd_mhad") as (stage, _scratch):
        assert owner_tag() in stage.parent.name
        (stage / "ok.txt").write_text("done")
    assert not orphan.exists()
    assert (tmp_path / "utd_mhad" / "ok.txt").read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["utd_mhad"]
