"""The invocation log and `compute.md`: runs, interruptions and compute summed from the records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import store
from benchmark.report.compute import compute_markdown
from benchmark.runner import execute, plan_suite
from benchmark.runner.runlog import LOG_NAME, read_log
from tests import toy_plugins
from tests.test_runner import SERIAL, TOY_SUITE


class _Kill(BaseException):
    pass


def test_interrupted_then_resumed_run_is_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with toy_plugins.registered():
        toy_plugins.ToyProbe.calls = 0
        real_run = toy_plugins.ToyProbe.run

        def dying_run(self, *args, **kwargs):
            if toy_plugins.ToyProbe.calls >= 3:
                raise _Kill()
            return real_run(self, *args, **kwargs)

        monkeypatch.setattr(toy_plugins.ToyProbe, "run", dying_run)
        with pytest.raises(_Kill):
            execute(plan_suite(TOY_SUITE, tmp_path), SERIAL)
        monkeypatch.setattr(toy_plugins.ToyProbe, "run", real_run)
        summary = execute(plan_suite(TOY_SUITE, tmp_path), SERIAL)
        execute(plan_suite(TOY_SUITE, tmp_path), SERIAL)  # nothing left to run: no third run is logged
    runs, bad = read_log(tmp_path)
    assert bad == 0 and len(runs) == 2
    assert runs[0]["end"]["status"] == "interrupted" and runs[0]["end"]["completed"] == 3
    assert runs[1]["end"]["status"] == "done" and runs[1]["end"]["completed"] == summary.completed
    assert runs[1]["start"]["cells_todo"] == summary.completed == 14 - 3
    text = compute_markdown(tmp_path, store.scan_records(tmp_path)[0])
    assert "2 run(s), 1 of them stopped before the end (interrupted and resumed)" in text
    assert "| interrupted |" in text and "| done |" in text


def test_killed_run_and_cut_line(tmp_path: Path) -> None:
    start = {"event": "start", "run": "a", "time": "2026-12-02T10:00:00+00:00", "cells_todo": 4, "device": "cpu"}
    later = {"event": "start", "run": "b", "time": "2026-12-02T11:00:00+00:00", "cells_todo": 2, "device": "cpu"}
    end = {"event": "end", "run": "b", "time": "2026-12-02T11:10:00+00:00", "status": "done", "wall_s": 600.0,
           "completed": 2}
    lines = [json.dumps(start), json.dumps(later), json.dumps(end), '{"event": "end", "run": "a", "ti']
    (tmp_path / LOG_NAME).write_text("\n".join(lines) + "\n")
    runs, bad = read_log(tmp_path)
    assert bad == 1 and [r["start"]["run"] for r in runs] == ["a", "b"] and runs[0]["end"] is None
    text = compute_markdown(tmp_path, {})
    assert "no end line (killed or lost power)" in text
    assert "2 run(s), 1 of them stopped before the end (interrupted and resumed)" in text
    assert "summed wall time of the runs that logged an end: 10m00s." in text
    assert "1 line(s) of the log could not be read" in text
    # the killed run's records (made before the next run started) bound its wall time from below
    recs = {k: {"key": k, "cell": {"seed": 0}, "created": t, "timings": {}}
            for k, t in [("1", "2026-12-02T10:20:00+00:00"), ("2", "2026-12-02T10:45:00+00:00"),
                         ("3", "2026-12-02T11:05:00+00:00")]}
    text = compute_markdown(tmp_path, recs)
    assert "| 2 (records) of 4 | >= 45m00s (to its last record) |" in text
    assert "; of those without an end line, at least 45m00s (start to last record)." in text


def test_interrupted_run_shows_its_stored_cells_when_the_log_counted_fewer(tmp_path: Path) -> None:
    # logs of older runners counted only the cells of finished units; the records made in the run's window count
    start = {"event": "start", "run": "a", "time": "2026-12-02T10:00:00+00:00", "cells_todo": 9, "device": "cuda"}
    end = {"event": "end", "run": "a", "time": "2026-12-02T10:08:00+00:00", "status": "interrupted",
           "wall_s": 480.0, "completed": 1}
    (tmp_path / LOG_NAME).write_text(json.dumps(start) + "\n" + json.dumps(end) + "\n")
    recs = {k: {"key": k, "cell": {"seed": 0}, "created": t, "timings": {}}
            for k, t in [("1", "2026-12-02T10:03:00+00:00"), ("2", "2026-12-02T10:07:00+00:00"),
                         ("3", "2026-12-01T09:00:00+00:00")]}  # the last one is older than the run
    text = compute_markdown(tmp_path, recs)
    assert "| interrupted | 2 (records; 1 logged) of 9 | 8m00s |" in text
    end["completed"] = 2
    (tmp_path / LOG_NAME).write_text(json.dumps(start) + "\n" + json.dumps(end) + "\n")
    assert "| interrupted | 2 of 9 | 8m00s |" in compute_markdown(tmp_path, recs)


def _rec(key: str, unit: str, pre: float, proto: float, cached: bool, deps: dict | None = None) -> dict:
    return {"key": key, "cell": {"seed": int(key) % 2}, "pretrain": {"key": unit, "deps": deps or {}},
            "created": f"2026-12-02T10:0{key}:00+00:00",
            "timings": {"pretrain_s": pre, "protocol_s": proto, "pretrain_cached": cached, "total_s": pre + proto},
            "git": {"commit": "abc1234567890", "dirty": False}, "code_version": "3", "device": "cpu",
            "precision": "fp32", "cpu": {"model": "Some CPU"}, "threads": 1}


def test_compute_counts_each_unit_once(tmp_path: Path) -> None:
    recs = {"1": _rec("1", "u1", 100.0, 5.0, False), "2": _rec("2", "u1", 100.0, 7.0, False),
            "3": _rec("3", "u2", 50.0, 3.0, True, {"teacher": "u9"})}
    text = compute_markdown(tmp_path, recs)
    # u1 trained once (100 s), u2 loaded from the cache (0 s), protocols 15 s
    assert "| abc1234567 | 3 | cpu | fp32 | Some CPU | 1 | 3 | 1 | 1m40s | 15s | 1m55s |" in text
    assert "Not included: 1 unit(s) trained only as another method's dependency" in text
    assert "No invocation log" in text
    assert "seed 0 1m47s (1 records), seed 1 1m48s (2 records)" in text


def test_cli_run_logs_its_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.cli import main

    monkeypatch.setattr("benchmark.report.build_report", lambda d, s=None, **kw: [])
    args = ["--suite", "smoke", "--methods", "random_init[inertial]", "--protocols", "knn", "--seeds", "0",
            "--quiet", "--results", str(tmp_path), "--device", "cpu"]
    assert main(args) == 0
    runs, _ = read_log(tmp_path)
    assert len(runs) == 1 and runs[0]["end"]["status"] == "done"
    assert runs[0]["start"]["command"].startswith("python run_all.py --suite smoke --methods 'random_init[inertial]'")
    assert "Command: `python run_all.py --suite smoke" in compute_markdown(tmp_path, store.scan_records(tmp_path)[0])


def test_cuda_records_name_their_gpu() -> None:
    from benchmark.report.compute import _group

    rec = {"git": {"commit": "6f29e5e6c8ed"}, "code_version": "3", "device": "cuda", "precision": "fp32",
           "cpu": {"model": "Host CPU"}, "threads": 1, "versions": {"gpu": "NVIDIA H200"}}
    assert _group(rec)[2] == "cuda (NVIDIA H200)"
    assert _group({**rec, "device": "cpu"})[2] == "cpu"  # a CPU record of the same machine names no GPU
