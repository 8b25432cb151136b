"""The results store: atomic writes, record validation, temp-file cleanup, provenance and runs.csv."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import store


def _record(key: str, variant: str, seed: int, metrics: dict) -> dict:
    cell = {"dataset": "synthetic", "split": "xsub", "method": variant.split("[")[0], "variant": variant,
            "method_cfg": {}, "protocol": "linear", "protocol_cfg": {}, "protocol_variant": "linear", "seed": seed}
    return store.make_record(key=key, cell=cell, metrics=metrics, timings={"pretrain_s": 1.0, "pretrain_cached": False,
                             "protocol_s": 0.5, "total_s": 1.5}, params={"trainable": 10, "encoders": {}},
                             peak_memory=12.5, device="cpu", data_fingerprint="synthetic:abc", code_version="1")


def test_atomic_write_survives_an_exception_mid_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "records" / "abc.json"
    store.atomic_write_json(path, {"old": 1})

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        store.atomic_write_json(path, {"new": 2, "big": list(range(10000))})
    assert json.loads(path.read_text()) == {"old": 1}
    assert os.listdir(path.parent) == ["abc.json"]  # the temporary file was removed
    with pytest.raises(TypeError, match="cannot store object value"):
        store.atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"old": 1}


def test_read_record_rejects_corrupt_files(tmp_path: Path) -> None:
    rec = _record("0123456789abcdef", "simclr[inertial]", 0, {"accuracy": 0.5})
    good = store.write_record(tmp_path, rec)
    assert store.read_record(good) == rec
    cases = {
        "truncated": good.read_text()[:50],
        "not-an-object": "[1, 2]",
        "wrong-schema": json.dumps({**rec, "schema": 99}),
        "key-mismatch": json.dumps(rec),
        "no-metrics": json.dumps({k: v for k, v in rec.items() if k != "metrics"}),
    }
    for name, text in cases.items():
        f = tmp_path / "records" / f"{name}.json"
        f.write_text(text)
        with pytest.raises(store.CorruptRecordError, match=f"record .*{name}.json"):
            store.read_record(f)
    records, bad = store.scan_records(tmp_path)
    assert list(records) == ["0123456789abcdef"] and len(bad) == len(cases)


def test_clean_temp_files(tmp_path: Path) -> None:
    rec_dir, ck_dir = tmp_path / "records", tmp_path / "checkpoints"
    rec_dir.mkdir()
    ck_dir.mkdir()
    keep = [rec_dir / "a.json", ck_dir / "b.pt", rec_dir / "c.json.corrupt"]
    stray = [rec_dir / f".a.json{store.TMP_MARK}x1", ck_dir / "b.pt.k2j3.tmp", ck_dir / "b.pt.part"]
    for f in keep + stray:
        f.write_text("x")
    assert sorted(store.clean_temp_files(tmp_path)) == sorted(stray)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)
    assert store.clean_temp_files(tmp_path / "absent") == []


def test_to_jsonable_and_canonical_json() -> None:
    obj = {"a": np.float32(0.5), "b": np.arange(3), "c": (1, 2), "d": float("nan"), "e": torch.tensor([1.5]),
           "f": Path("x/y"), "g": {2: np.int64(4)}, "h": math.inf, "i": True}
    assert store.to_jsonable(obj) == {"a": 0.5, "b": [0, 1, 2], "c": [1, 2], "d": None, "e": [1.5], "f": "x/y",
                                      "g": {"2": 4}, "h": None, "i": True}
    assert store.canonical_json({"b": 1, "a": [1.0, "x"]}) == '{"a":[1.0,"x"],"b":1}'


def test_make_record_has_the_schema_fields() -> None:
    rec = _record("k" * 16, "cmc", 3, {"accuracy": np.float64(0.25), "f1_macro": 0.2})
    assert rec["schema"] == 1 and rec["key"] == "k" * 16 and rec["metrics"] == {"accuracy": 0.25, "f1_macro": 0.2}
    assert set(rec["git"]) == {"commit", "dirty", "untracked_code", "code_tree"}
    assert rec["versions"]["torch"] == torch.__version__ and rec["versions"]["numpy"] == np.__version__
    assert rec["created"].endswith("+00:00") and rec["peak_memory_mb"] == 12.5
    json.dumps(rec, allow_nan=False)


def test_git_info_with_and_without_a_repository(tmp_path: Path) -> None:
    info = store.git_info.__wrapped__
    # not a repository: no commit, but the code tree still has a hash (of no files here)
    assert info(tmp_path) == {"commit": None, "dirty": None, "untracked_code": None, "code_tree": "e3b0c44298fc1c14"}
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (repo / "f.txt").write_text("1")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    clean = info(repo)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (repo / "f.txt").write_text("2")
    assert info(repo)["commit"] == clean["commit"] and info(repo)["dirty"] is True
    run("checkout", "-q", "f.txt")
    (repo / "results" / "r").mkdir(parents=True)  # a results folder's tracked log, appended by a run: not code
    (repo / "results" / "r" / "invocations.jsonl").write_text("{}\n")
    run("add", "results")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "r")
    (repo / "results" / "r" / "invocations.jsonl").write_text("{}\n{}\n")
    assert info(repo)["dirty"] is False
    (repo / "methods").mkdir()
    (repo / "methods" / "new_plugin.py").write_text("x = 1\n")  # untracked, but imported as a plugin
    after = info(repo)
    assert after["dirty"] is True and after["untracked_code"] == 1 and after["code_tree"] != clean["code_tree"]


def test_peak_memory_is_positive_on_cpu() -> None:
    assert store.peak_memory_mb("cpu") > 10


def test_write_runs_csv_long_format(tmp_path: Path) -> None:
    store.write_record(tmp_path, _record("b" * 16, "simclr[inertial]", 1, {"accuracy": 0.5, "f1_macro": 0.25}))
    store.write_record(tmp_path, _record("a" * 16, "cmc", 0, {"accuracy": 0.75}))
    (tmp_path / "records" / "bad.json").write_text("{")
    path = store.write_runs_csv(tmp_path)
    rows = list(csv.DictReader(path.open()))
    assert [(r["variant"], r["seed"], r["metric"], r["value"]) for r in rows] == [
        ("cmc", "0", "accuracy", "0.75"),
        ("simclr[inertial]", "1", "accuracy", "0.5"),
        ("simclr[inertial]", "1", "f1_macro", "0.25"),
    ]
    assert list(rows[0]) == store.RUNS_COLUMNS and rows[0]["key"] == "a" * 16 and rows[0]["protocol"] == "linear"
    first = path.read_bytes()
    store.write_runs_csv(tmp_path)
    assert path.read_bytes() == first


def test_record_numerics_tags_device_type_and_precision() -> None:
    assert store.device_type("cuda:1") == "cuda" and store.device_type("cpu") == "cpu"
    assert store.device_type(None) == "?"
    assert store.record_numerics({"device": "cuda:0", "precision": "bf16"}) == "cuda-bf16"
    assert store.record_numerics({"device": "cpu"}) == "cpu-?"
    assert store.record_numerics({"device": "cpu"}, missing_precision="fp32") == "cpu-fp32"
