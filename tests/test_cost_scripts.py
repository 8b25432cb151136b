"""The cost scripts of docs/cost.md: the stopping check and the old/new compute comparison, on hand-made records."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import cost_tables
import head_stopping


def _record(folder: Path, name: str, seed: int, protocol_s: float, head: dict | None = None,
            cpu: str = "AMD EPYC", protocol: str = "linear") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rec = {"cell": {"variant": "cmc", "protocol": protocol.split("[")[0], "protocol_variant": protocol, "seed": seed},
           "timings": {"protocol_s": protocol_s}, "cpu": {"model": cpu}, "device": "cpu", "precision": "bf16",
           "artifacts": {"head_training": head} if head else {}}
    (folder / f"{name}.json").write_text(json.dumps(rec))


def _head(best: int, run: int, rule: str = "val_accuracy", patience: int = 25) -> dict:
    return {"best_epoch": best, "epochs_run": run, "stopped_early": run < 100, "early_stop": rule,
            "select": "val_accuracy", "patience": patience, "max_epochs": 100, "improved_at": [0, best]}


def test_check_passes_heads_within_the_cap_and_names_the_others(tmp_path: Path, capsys: pytest.CaptureFixture):
    _record(tmp_path / "ok", "a", 0, 1.0, _head(10, 36))
    _record(tmp_path / "ok", "b", 1, 1.0, _head(74, 100))
    assert head_stopping.main([str(tmp_path / "ok"), "--check"]) == 0
    _record(tmp_path / "bad", "c", 0, 1.0, _head(10, 37))                       # one epoch past the cap
    _record(tmp_path / "bad", "d", 1, 1.0, _head(10, 30, rule="val_loss", patience=50))  # another metric
    assert head_stopping.main([str(tmp_path / "bad"), "--check"]) == 1
    out = capsys.readouterr().out
    assert "c.json" in out and "d.json" in out and "2 of 2 heads" in out


def test_gaps_bands_each_head_s_longest_gap_between_improvements(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert head_stopping.longest_gap([3]) == 0 and head_stopping.longest_gap([2, 5, 29, 30]) == 24
    for name, improved in (("a", [0, 4, 8]), ("b", [1, 25]), ("c", [0, 2, 26, 30])):
        head = {**_head(improved[-1], improved[-1] + 26), "improved_at": improved}
        _record(tmp_path, name, 0, 1.0, head)
    assert head_stopping.main([str(tmp_path), "--gaps"]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| linear | 3 | 25 |"))
    assert row == "| linear | 3 | 25 | 1 | 0 | 0 | 0 | 2 | 0 | 0 |"  # gaps 4 (0-9), 24 and 24 (23-25)


def test_compare_gives_the_per_seed_and_matched_cell_ratios(tmp_path: Path, capsys: pytest.CaptureFixture):
    for seed in (3, 4):
        _record(tmp_path / "old", f"o{seed}", seed, 100.0)
    _record(tmp_path / "old", "intel", 0, 80.0, cpu="Intel Xeon")
    _record(tmp_path / "new", "n0", 0, 40.0)
    cost_tables.compare(tmp_path / "old", tmp_path / "new")
    with pytest.raises(SystemExit, match="created at or after"):
        cost_tables.compare(tmp_path / "old", tmp_path / "new", since="2999-01-01")
    out = capsys.readouterr().out
    assert "mean protocol compute per seed" in out and "= 0.40" in out  # 40 s against the AMD seeds' 100 s
    assert "1 new cells" in out


def test_compare_projects_a_whole_seed_from_part_of_one(tmp_path: Path, capsys: pytest.CaptureFixture):
    for seed in (3, 4):
        _record(tmp_path / "old", f"l{seed}", seed, 100.0)
        _record(tmp_path / "old", f"s1-{seed}", seed, 60.0, protocol="semisup[per_class=1]")
        _record(tmp_path / "old", f"s2-{seed}", seed, 30.0, protocol="semisup[per_class=2]")
        _record(tmp_path / "old", f"k{seed}", seed, 20.0, protocol="knn")
    _record(tmp_path / "new", "l0", 0, 40.0)
    _record(tmp_path / "new", "s1-0", 0, 30.0, protocol="semisup[per_class=1]")
    cost_tables.compare(tmp_path / "old", tmp_path / "new")
    out = capsys.readouterr().out
    # linear 40 and semisup(1) 30 measured; semisup(2) at its protocol's 0.5: 15; knn, never measured, at its 20
    assert "measured 2 of 4 cells" in out and "= 0.50" in out  # (40 + 30 + 15 + 20) / 210


def test_compare_leaves_out_records_made_in_a_window(tmp_path: Path, capsys: pytest.CaptureFixture):
    _record(tmp_path / "old", "o3", 3, 100.0)
    for name, when, seconds in (("a", "2026-12-07T10:00", 40.0), ("b", "2026-12-07T14:00", 90.0)):
        _record(tmp_path / "new", name, 0, seconds)
        rec = json.loads((tmp_path / "new" / f"{name}.json").read_text())
        (tmp_path / "new" / f"{name}.json").write_text(json.dumps({**rec, "created": when}))
    assert cost_tables.main(["compare", str(tmp_path / "old"), str(tmp_path / "new"),
                             "2026-12-07T13:54..2026-12-07T14:25"]) == 0
    assert "1 new cells, protocol compute" in capsys.readouterr().out  # b, made in the window, left out
    assert cost_tables.main(["compare", str(tmp_path / "old"), str(tmp_path / "new"), "x", "y"]) == 2


def _scored(folder: Path, name: str, variant: str, seed: int, acc: float, cpu: str, protocol_s: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rec = {"cell": {"dataset": "d", "split": "xsub", "variant": variant, "method": variant, "protocol": "finetune",
                    "protocol_variant": "finetune", "seed": seed},
           "main_metric": "accuracy", "metrics": {"accuracy": acc}, "cpu": {"model": cpu},
           "timings": {"protocol_s": protocol_s}, "artifacts": {}}
    (folder / f"{name}.json").write_text(json.dumps(rec))


def test_across_pairs_two_runs_cell_by_cell(tmp_path: Path, capsys: pytest.CaptureFixture):
    import paired_stopping

    old, new = tmp_path / "old", tmp_path / "new"
    for i, (variant, seed) in enumerate((("simclr", 0), ("simclr", 1), ("supervised", 0), ("supervised", 1))):
        _scored(old, f"o{i}", variant, seed, 0.80 + 0.01 * i, "AMD EPYC" if seed else "Intel Xeon", 100.0)
        _scored(new, f"n{i}", variant, seed, 0.80 + 0.01 * i - (0.02 if variant == "simclr" else 0.0), "AMD EPYC",
                60.0)
    _scored(new, "alone", "cmc", 0, 0.5, "AMD EPYC", 1.0)  # no counterpart: left out
    assert paired_stopping.main(["--across", str(old), str(new)]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(x for x in out if x.startswith("| d/xsub | finetune | accuracy"))
    cols = [c.strip() for c in row.strip("|").split("|")]
    assert cols[3:6] == ["4", "0,1", "80.50"] and cols[6] == "81.50"   # pairs, seeds, new and old means
    assert cols[7].startswith("-1.00 [")                       # simclr lost 2 points, supervised none
    assert cols[9:11] == ["2", "2"]                            # supervised's scores equal; seed 1 on one CPU
    assert cols[11] == "120 / 200 (0.60)"                      # seconds over the same-CPU pairs only
    kinds = {x.split("|")[3].strip(): x for x in out if x.startswith("| d/xsub | finetune | ") and "accur" not in x}
    assert "| 1 | 2 | -2.00 (one value) | 1 / 0 |" in kinds["self-supervised"]
    assert "+0.00" in kinds["supervised"]
    assert paired_stopping.main(["--across", str(old), str(tmp_path / "none")]) == 2


def test_finish_rerun_refuses_a_rerun_with_cells_left_and_changes_nothing(tmp_path: Path):
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "finish_rerun.sh")
    target, rerun = tmp_path / "target", tmp_path / "rerun"
    _record(target / "records", "a", 0, 1.0)
    env = {**os.environ, "RERUN_DIR": str(rerun), "TARGET_DIR": str(target), "SUITE": "smoke",
           "DATASETS": "synthetic", "OUT": str(tmp_path / "out")}

    def finish(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", script, *args], env=env, capture_output=True, text=True, timeout=600)

    bad = finish("--sawp")
    assert bad.returncode == 2 and "--sawp" in bad.stderr
    empty = finish("--swap")
    assert empty.returncode == 1 and "no records" in empty.stderr
    (rerun / "records").mkdir(parents=True)
    (rerun / "records" / "b.json").write_text(json.dumps(
        {"code": {"harness": "h"}, "device": "cpu", "precision": "fp32", "cpu": {"model": "AMD EPYC"}}))
    left = finish("--swap")
    assert left.returncode == 1, left.stderr
    assert "cells still to run" in left.stderr and "(cpu, fp32)" in left.stderr
    assert sorted(p.name for p in target.rglob("*")) == ["a.json", "records"]  # nothing swapped


def test_projection_scales_each_record_s_seconds_with_its_replayed_head_epochs(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture):
    early = {**_head(10, 60, patience=50), "improved_at": [0, 10]}
    late = {**_head(40, 91, patience=50), "improved_at": [0, 5, 40]}   # a 35-epoch gap before its best
    _record(tmp_path, "a", 0, 60.0, early, protocol="finetune")
    _record(tmp_path, "b", 0, 182.0, late, protocol="finetune")
    _record(tmp_path, "c", 0, 10.0, protocol="knn")                     # no head: its seconds stay
    assert head_stopping.main([str(tmp_path), "--replay", "ours", "--patience", "20,50"]) == 0
    out = capsys.readouterr().out.split("Projected protocol seconds")[1]
    # patience 20: a runs 31 of 60 epochs (31 s), b stops 21 epochs after its epoch-5 best (26 of 91: 52 s)
    assert "| 20 | 2 | 2 | 1 | 0.38 | 0.34 | 0.37 |" in out
    assert "| 50 | 2 | 2 | 0 | 1.00 | 1.00 | 1.00 |" in out
