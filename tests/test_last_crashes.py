"""The last crashes become one-line errors: full cache disk, too-long folder names, plugin import errors, a
Skeleton file where a folder belongs, the bench default with a method that has nothing to train."""
from __future__ import annotations

import pytest

from benchmark import cli


def test_a_full_cache_disk_warns_and_goes_on_without_cache(monkeypatch, capsys, tmp_path) -> None:
    import benchmark.data as data_mod

    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))  # empty: another test may have cached this dataset
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data_mod, "_atomic_savez", full)
    data = data_mod.load_dataset("synthetic", n_trials=1, n_classes=3)
    assert len(data) > 0
    err = capsys.readouterr().err
    assert "cannot write the preprocessing cache" in err and "No space left on device" in err and "$MMHAR_CACHE" in err


def test_a_too_long_results_folder_name_is_one_line(tmp_path, capsys) -> None:
    long = tmp_path / ("r" * 300)
    code = cli.main(["--suite", "smoke", "--methods", "simclr[inertial]", "--protocols", "knn", "--seeds", "0",
                     "--results", str(long), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "a folder name of 300 characters" in err and "pass a shorter --results" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_os_error_mid_run_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    import benchmark.runner as runner_mod

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "res" / "records" / "x.json"))

    monkeypatch.setattr(runner_mod, "execute", full)
    code = cli.main(["--suite", "smoke", "--methods", "simclr[inertial]", "--protocols", "knn", "--seeds", "0",
                     "--results", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: No space left on device: ") and "x.json" in err
    assert err.count("\n") == 1


def test_a_plugin_that_raises_at_import_names_its_file_and_line(tmp_path, capsys) -> None:
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text("cfg = {}\n\nLR = cfg['lr']\n")
    assert cli.main(["--plugins", str(plugin), "--list"]) == 2
    err = capsys.readouterr().err
    assert f"KeyError: 'lr' at {plugin}, line 3: LR = cfg['lr']" in err


def test_a_skeleton_file_where_the_folder_belongs_is_named(tmp_path) -> None:
    from benchmark.contracts import DataNotFoundError
    from benchmark.data import load_dataset
    from benchmark.plugins import load_plugins

    load_plugins()
    root = tmp_path / "data" / "utd_mhad"
    (root / "Inertial").mkdir(parents=True)
    (root / "Inertial" / "a1_s1_t1_inertial.mat").write_bytes(b"")
    (root / "Skeleton").write_bytes(b"")
    with pytest.raises(DataNotFoundError, match=r"Skeleton is a file, not a folder"):
        load_dataset("utd_mhad", tmp_path / "data")


def test_bench_skips_methods_with_nothing_to_train() -> None:
    from benchmark.bench import bench_variants, run_train_bench

    notes: list[str] = []
    variants = bench_variants("synthetic", log=notes.append)
    assert "random_init" not in {name for name, _ in variants} and len(variants) > 5
    assert any(n.startswith("note: skipped random_init: nothing to train") for n in notes)
    with pytest.raises(ValueError, match="nothing to time for random_init"):
        run_train_bench("cpu", "synthetic", methods=["random_init"])
