"""SIGINT at random moments, to the run's PID or to its process group: the workers end, the results folder's lock
is held until the last of them is gone, the process exits, and no stored file is corrupt."""
from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark import store
from benchmark.runner.lock import LOCK_NAME
from tests.conftest import REPO

ARGS = ["--suite", "smoke", "--methods", "simclr[inertial]", "simclr[skeleton]", "--protocols", "knn", "--seeds", "0",
        "--jobs", "2", "--threads", "1", "--device", "cpu", "--quiet"]
EXIT_S = 60.0  # a stopped run must be gone within this


def _group_members(pgid: int) -> dict[int, str]:
    """pid -> command line of the processes in process group `pgid` (read from /proc)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    return out


def _writers(pgid: int, run_pid: int) -> list[int]:
    """The run's own process and its worker processes (not the resource trackers, which write no result)."""
    return [pid for pid, cmd in _group_members(pgid).items() if pid == run_pid or "popen_loky" in cmd]


def _lock_free(results: Path) -> bool:
    path = results / LOCK_NAME
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def _stop_once(results: Path, delay: float, to_group: bool, after_workers: bool = False) -> dict:
    """Start the run, wait `delay` s (from the start, or from when its workers exist), send SIGINT, watch it end."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "run_all.py"), *ARGS, "--results", str(results)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    pgid = proc.pid
    deadline = time.monotonic() + 300
    while after_workers and proc.poll() is None and time.monotonic() < deadline:
        if [p for p in _writers(pgid, proc.pid) if p != proc.pid]:
            break
        time.sleep(0.05)
    time.sleep(delay)
    signalled = proc.poll() is None
    if signalled:
        (os.killpg if to_group else os.kill)(pgid, signal.SIGINT)
    deadline = time.monotonic() + EXIT_S
    early = []  # writers alive while the lock was already free
    while time.monotonic() < deadline:
        alive = _writers(pgid, proc.pid) if proc.poll() is None or _group_members(pgid) else []
        if alive and _lock_free(results) and [p for p in alive if p != proc.pid]:
            early.append(alive)
        if proc.poll() is not None and not _writers(pgid, proc.pid):
            break
        time.sleep(0.05)
    left = _writers(pgid, proc.pid)
    if proc.poll() is None or left:
        os.killpg(pgid, signal.SIGKILL)
    err = proc.communicate(timeout=30)[1].decode(errors="replace")
    return {"rc": proc.returncode, "signalled": signalled, "left": left, "early": early, "err": err}


def _check_files(results: Path) -> None:
    good, bad = store.scan_records(results)
    assert not bad, bad
    for f in (results / "records").glob("*.json"):
        json.loads(f.read_text())  # every record parses
    for f in results.glob("*.jsonl"):
        lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
        for ln in lines:
            json.loads(ln)


@pytest.mark.slow
def test_sigint_at_random_moments_ends_workers_before_the_lock_and_exits(tmp_path: Path) -> None:
    rng = random.Random(35)
    outcomes = []
    for i in range(20):  # PID and group alternately; at a random time from the start, or once workers run
        results = tmp_path / f"run{i}"
        to_group, after_workers = i % 2 == 1, i % 4 >= 2
        out = _stop_once(results, rng.uniform(0.0, 5.0) if after_workers else rng.uniform(0.5, 10.0), to_group,
                         after_workers)
        outcomes.append(out)
        assert not out["left"], f"run {i} ({'group' if to_group else 'pid'}): processes left {out['left']}"
        if out["rc"] == 130:  # (after a normal end, idle workers may outlive the lock: they write nothing)
            assert not out["early"], f"run {i}: the lock was free while workers ran: {out['early'][:1]}"
        if out["signalled"]:
            assert out["rc"] in (0, 130), f"run {i}: exit {out['rc']}: {out['err'][-500:]}"
        assert "Traceback" not in out["err"], out["err"][-2000:]
        if results.exists():
            _check_files(results)
    assert sum(o["rc"] == 130 for o in outcomes) >= 10  # most signals landed mid-run


def test_a_swallowed_stop_still_stops_the_run_at_the_next_check(tmp_path: Path) -> None:
    from benchmark.runner import RunSettings, execute, plan_suite, stop
    from benchmark.runner.runlog import read_log
    from benchmark.suites import get_suite, narrow

    plan = plan_suite(narrow(get_suite("smoke"), methods=["simclr[inertial]"], protocols=["knn"], seeds=[0]),
                      tmp_path, device="cpu")
    stop.request()  # not armed (no command line running): ignored
    assert not stop.requested()
    stop.arm()
    try:
        stop.request()  # as the signal handler does, its KeyboardInterrupt lost somewhere
        with pytest.raises(KeyboardInterrupt):
            execute(plan, RunSettings(device="cpu", quiet=True))
    finally:
        stop.disarm()
    runs, _ = read_log(tmp_path)
    assert runs[-1]["end"]["status"] == "interrupted" and not store.scan_records(tmp_path)[0]
    assert _lock_free(tmp_path)
