"""The runner: planning (keys, dependencies, kinds), caching, resume after a kill, failures, parallel backends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark import runner, store
from benchmark.runner import RunSettings, execute, metrics_by_cell, plan_suite
from benchmark.suites import Shrink, Suite, get_suite, narrow
from tests import toy_plugins
from tests.conftest import REPO

TOY_DATA = {"synthetic": {"n_trials": 1, "n_classes": 4}}
TOY_SUITE = Suite(name="toy", description="toy plugins", datasets=("synthetic",), methods=("toy_ssl", "toy_student"),
                  protocols=("toy_probe", "toy_multi_only"), seeds=(0, 1), dataset_options=TOY_DATA)
SERIAL = RunSettings(device="cpu", quiet=True)


@pytest.fixture()
def toys():
    with toy_plugins.registered():
        toy_plugins.ToyProbe.calls = 0
        yield


def _run(results: Path, suite: Suite = TOY_SUITE, settings: RunSettings = SERIAL) -> runner.RunSummary:
    return execute(plan_suite(suite, results), settings)


def _pretrain_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import benchmark.pretrain as pretrain_mod

    calls: list[str] = []
    real = pretrain_mod.pretrain

    def spy(name, *args, **kwargs):
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(pretrain_mod, "pretrain", spy)
    return calls


# -- planning -------------------------------------------------------------------------------------
def test_plan_counts_dependencies_and_kinds(toys, tmp_path: Path) -> None:
    plan = plan_suite(TOY_SUITE, tmp_path)
    # per seed: toy_ssl[inertial] and [skeleton] x 2 budgets, toy_student x (2 budgets + toy_multi_only)
    assert len(plan.cells) == 2 * (2 * 2 + 3)
    # the student's teachers have the same resolved config as the benchmarked toy_ssl variants: shared units
    assert len(plan.units) == 2 * 3
    student = [u for u in plan.units.values() if u.method == "toy_student"]
    assert all(set(u.deps) == {"teacher_inertial", "teacher_skeleton"} for u in student)
    order = list(plan.units)
    for u in student:
        assert all(order.index(d) < order.index(u.key) for d in u.deps.values())
        assert {plan.units[d].variant for d in u.deps.values()} == {"toy_ssl[inertial]", "toy_ssl[skeleton]"}
    assert [len(s) for s in plan.stages()] == [4, 2]
    assert sorted({(v, p) for v, p, _ in plan.skipped}) == [("toy_ssl[inertial]", "toy_multi_only"),
                                                            ("toy_ssl[skeleton]", "toy_multi_only")]
    variants = sorted({c.protocol_variant for c in plan.cells})
    assert variants == ["toy_multi_only", "toy_probe[budget=1]", "toy_probe[budget=3]"]
    cell = next(c for c in plan.cells if c.protocol_variant == "toy_probe[budget=3]")
    assert cell.protocol_cfg == {"budget": 3} and cell.protocol_resolved["epochs"] == 4
    assert len(cell.key) == 16 and all(ch in "0123456789abcdef" for ch in cell.key)


def test_protocol_variants_are_cells_of_their_own(toys, tmp_path: Path) -> None:
    plain = plan_suite(TOY_SUITE, tmp_path)
    both = plan_suite(narrow(TOY_SUITE, protocols=["toy_probe", "toy_probe[lr=0.1]", "toy_multi_only[epochs=3]",
                                                   "toy_probe[lr=0.05]"]), tmp_path)  # 0.05: the default again
    by_variant: dict[str, list] = {}
    for c in both.cells:
        by_variant.setdefault(c.protocol_variant, []).append(c)
    assert sorted(by_variant) == ["toy_multi_only[epochs=3]", "toy_probe[budget=1,lr=0.1]", "toy_probe[budget=1]",
                                  "toy_probe[budget=3,lr=0.1]", "toy_probe[budget=3]"]
    # the plain protocol's cells keep their keys; the variants' differ and carry the override
    plain_probe = {c.key for c in plain.cells if c.protocol == "toy_probe"}
    assert plain_probe == {c.key for v in ("toy_probe[budget=1]", "toy_probe[budget=3]") for c in by_variant[v]}
    tuned = by_variant["toy_probe[budget=3,lr=0.1]"]
    assert not plain_probe & {c.key for c in tuned}
    assert all(c.protocol == "toy_probe" and c.protocol_cfg == {"budget": 3, "lr": 0.1} for c in tuned)
    assert all(c.protocol_resolved["epochs"] == 3 for c in by_variant["toy_multi_only[epochs=3]"])
    # per seed: plain toy_probe 3 variants x 2 budgets, the same with lr=0.1, toy_multi_only[epochs=3] for the
    # student; toy_probe[lr=0.05] restates the default and adds nothing
    assert len(both.cells) == len({c.key for c in both.cells}) == 2 * (6 + 6 + 1)


def test_estimate_divides_by_parallel_workers_but_not_below_one_unit(toys, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_suite(TOY_SUITE, tmp_path)
    serial, source = plan.estimate_seconds("cpu")
    assert serial > 0 and "20 GFLOP/s" in source  # no past records: the default rate
    longest = max(plan.units[k].flops / 20e9 + sum(c.flops for c in plan.cells if c.pretrain_key == k) / 20e9
                  for k in plan.units)
    assert plan.estimate_seconds("cpu", 2)[0] == pytest.approx(max(serial / 2, longest))
    assert plan.estimate_seconds("cpu", 1000)[0] == pytest.approx(longest)
    assert f"on cpu ({plan.numerics}) with 2 parallel work units" in plan.summary("cpu", workers=2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert runner.parallel_workers("cpu", 8, 1) == 2 and runner.parallel_workers("cpu", 8, 2) == 1
    assert runner.parallel_workers("cuda", 8, 2) == 8  # work units share the GPU


def test_estimate_takes_the_time_past_records_of_the_same_configuration_took(toys, tmp_path: Path) -> None:
    """A resumed suite's remaining seeds cost what the finished seeds of the same configurations cost."""
    _run(tmp_path, narrow(TOY_SUITE, seeds=[0]))
    records, _ = store.scan_records(tmp_path)
    plan = plan_suite(narrow(TOY_SUITE, seeds=[0, 1]), tmp_path)
    assert {c.seed for c in plan.todo} == {1}
    expected = sum(r["timings"]["protocol_s"] for r in records.values())
    expected += sum({r["pretrain"]["key"]: r["timings"]["pretrain_s"] for r in records.values()}.values())
    secs, source = plan.estimate_seconds("cpu")
    assert secs == pytest.approx(expected)
    assert source.startswith(f"{len(plan.units) // 2} unit(s) and {len(plan.todo)} cell(s) timed by past records")
    flip = "fp32" if plan.precision == "bf16" else "bf16"
    other = plan_suite(narrow(TOY_SUITE, seeds=[0, 1]), tmp_path, precision=flip)  # other numerics: not used
    assert "timed by past records" not in other.estimate_seconds("cpu")[1]


def test_a_fresh_folders_cells_are_timed_by_their_protocols_speed_in_folders_beside_it(
        toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.runner import cost

    _run(tmp_path / "done", narrow(TOY_SUITE, seeds=[0]))
    records, _ = store.scan_records(tmp_path / "done")
    rate = {r["pretrain"]["key"]: r["estimate"]["pretrain_flops"] / r["timings"]["pretrain_s"]
            for r in records.values() if not r["timings"]["pretrain_cached"]}
    ratios = [r["estimate"]["protocol_flops"] / r["timings"]["protocol_s"] / rate[r["pretrain"]["key"]]
              for r in records.values() if r["cell"]["protocol"] == "toy_probe"]
    factors = cost.protocol_factors(tmp_path / "fresh", "cpu")  # a new folder: its neighbour's records count
    assert factors["toy_probe"] == pytest.approx(float(np.median(ratios)))
    assert cost.protocol_factors(tmp_path / "fresh", "cuda") == {}  # other device type: nothing
    plan = plan_suite(narrow(TOY_SUITE, seeds=[1]), tmp_path / "fresh")
    steps = {k: 0.01 for k in plan.units}
    monkeypatch.setattr(cost, "protocol_factors", lambda *a: {})
    plain, _ = plan.estimate_seconds("cpu", 1, steps)
    monkeypatch.setattr(cost, "protocol_factors", lambda *a: {"toy_probe": 0.5, "toy_multi_only": 0.5})
    slow, source = plan.estimate_seconds("cpu", 1, steps)
    from benchmark import rates

    cells = sum(c.flops / rates.flop_rate(plan.units[c.pretrain_key], plan.dataset_of(c.dataset, c.split).sizes,
                                           0.01) for c in plan.todo)
    assert slow - plain == pytest.approx(cells)  # half the speed: every cell takes twice as long
    assert "protocol's speed relative to pretraining" in source


def test_throughput_calibrates_on_records_of_the_same_device_type_only(tmp_path: Path) -> None:
    """'cuda:1' records time 'cuda' runs; a record without a device times neither CPU nor CUDA runs."""
    from benchmark.runner import cost

    def rec(device: str | None, key: str) -> dict:
        return {"device": device, "estimate": {"pretrain_flops": 4e9, "protocol_flops": 1e9},
                "timings": {"pretrain_s": 2.0, "protocol_s": 1.0, "pretrain_cached": False},
                "pretrain": {"key": key}}

    records = {"a": rec("cuda:1", "u1"), "b": rec(None, "u2")}
    assert cost.throughput(tmp_path, "cuda:0", records)[:2] == (2e9, 1e9)
    cpu_pre, cpu_pro, source = cost.throughput(tmp_path, "cpu", records)
    assert cpu_pre == cpu_pro == 20e9 and "rough FLOP estimate" in source  # no CPU record: the default


def test_plan_caps_a_batch_above_the_training_clips(tmp_path: Path) -> None:
    suite = narrow(get_suite("paper"), datasets=["synthetic"], methods=["simclr[inertial]"], seeds=[0])
    plan = plan_suite(suite, tmp_path)  # default synthetic: 120 training clips, paper batch 128
    assert plan.messages == ["note: simclr[inertial] on synthetic: batch_size 128 exceeds the 120 training clips "
                             "of split xsub; capped to 120 (recorded in the cell's method config)"]
    assert plan.messages[0] in plan.summary()
    (unit,) = plan.units.values()
    assert unit.resolved["batch_size"] == 120 and plan.cells[0].method_cfg == {"modality": "inertial",
                                                                              "batch_size": 120}


def test_keys_are_stable_and_change_with_config_and_code_version(toys, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    keys = sorted(c.key for c in plan_suite(TOY_SUITE, tmp_path).cells)
    assert keys == sorted(c.key for c in plan_suite(TOY_SUITE, tmp_path).cells)
    shrunk = plan_suite(narrow(TOY_SUITE, epochs_scale=0.5), tmp_path)
    assert not set(keys) & {c.key for c in shrunk.cells}
    assert all(u.resolved["epochs"] in (1, 2) for u in shrunk.units.values())  # 3 -> 2 (rounded), 2 -> 1
    assert runner.numerics_tag("cpu", "fp32") == "cpu-fp32" and runner.numerics_tag("cpu", "bf16") == "cpu-bf16"
    fp32 = sorted(c.key for c in plan_suite(TOY_SUITE, tmp_path, precision="fp32").cells)
    bf16 = sorted(c.key for c in plan_suite(TOY_SUITE, tmp_path, precision="bf16").cells)
    assert not set(fp32) & set(bf16)  # precision is part of every key
    # a GPU run's keys
    monkeypatch.setattr(runner.planner, "numerics_tag", lambda device="auto", precision=None: "cuda-bf16")
    assert not set(keys) & {c.key for c in plan_suite(TOY_SUITE, tmp_path).cells}
    monkeypatch.undo()
    monkeypatch.setattr(runner.planner, "CODE_VERSION", "test-bump")
    assert not set(keys) & {c.key for c in plan_suite(TOY_SUITE, tmp_path).cells}


# -- running, caching, resuming -------------------------------------------------------------------
def test_run_writes_records_and_rerun_recomputes_nothing(toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _pretrain_spy(monkeypatch)
    summary = _run(tmp_path)
    assert summary.ok and summary.completed == 14
    assert sorted(calls) == ["toy_ssl"] * 4 + ["toy_student"] * 2  # each unit trained once, teachers shared
    assert toy_plugins.ToyProbe.calls == 14
    records, bad = store.scan_records(tmp_path)
    assert len(records) == 14 and not bad
    assert len(list((tmp_path / "checkpoints").glob("*.pt"))) == 6
    rec = next(r for r in records.values() if r["cell"]["variant"] == "toy_student"
               and r["cell"]["protocol"] == "toy_multi_only")
    assert set(rec) >= {"schema", "key", "cell", "metrics", "per_class", "artifacts", "timings", "params",
                        "peak_memory_mb", "device", "git", "versions", "data_fingerprint", "code_version", "created"}
    assert rec["cell"] == {"dataset": "synthetic", "split": "xsub", "method": "toy_student", "variant": "toy_student",
                           "method_cfg": {}, "protocol": "toy_multi_only", "protocol_cfg": {},
                           "protocol_variant": "toy_multi_only", "seed": rec["cell"]["seed"]}
    assert rec["timings"]["pretrain_cached"] is False and rec["params"]["encoders"] == {"inertial": 8 * 300 + 8,
                                                                                      "skeleton": 8 * 3000 + 8}
    assert rec["device"] == "cpu" and rec["code_version"] == runner.CODE_VERSION and rec["peak_memory_mb"] > 0
    before = {k: (tmp_path / "records" / f"{k}.json").read_text() for k in records}

    calls.clear()
    toy_plugins.ToyProbe.calls = 0
    again = _run(tmp_path)
    assert again.completed == 0 and again.done_before == 14
    assert calls == [] and toy_plugins.ToyProbe.calls == 0
    assert {k: (tmp_path / "records" / f"{k}.json").read_text() for k in records} == before


class _Kill(BaseException):
    """Stands for SIGKILL in the middle of a run (not an Exception: nothing may catch it)."""


def test_interrupted_run_resumes_to_identical_records(toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(tmp_path / "clean")
    reference = metrics_by_cell(tmp_path / "clean")
    toy_plugins.ToyProbe.calls = 0
    real_run = toy_plugins.ToyProbe.run

    def dying_run(self, *args, **kwargs):
        if toy_plugins.ToyProbe.calls >= 5:
            raise _Kill()
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(toy_plugins.ToyProbe, "run", dying_run)
    with pytest.raises(_Kill):
        _run(tmp_path / "killed")
    assert len(store.scan_records(tmp_path / "killed")[0]) == 5
    # a killed writer may leave a temporary file behind: it is cleaned, never read as a record
    (tmp_path / "killed" / "records" / f".abc.json{store.TMP_MARK}x").write_text('{"trunc')
    monkeypatch.setattr(toy_plugins.ToyProbe, "run", real_run)
    calls = _pretrain_spy(monkeypatch)
    toy_plugins.ToyProbe.calls = 0
    summary = _run(tmp_path / "killed")
    assert summary.completed == 14 - 5 and summary.ok
    assert toy_plugins.ToyProbe.calls == 9
    assert len(calls) < 6  # units whose checkpoint was written before the kill are loaded, not retrained
    assert metrics_by_cell(tmp_path / "killed") == reference
    assert not [f for f in (tmp_path / "killed" / "records").iterdir() if store.TMP_MARK in f.name]


def test_corrupt_record_is_reported_and_recomputed(toys, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _run(tmp_path)
    reference = metrics_by_cell(tmp_path)
    victim = sorted((tmp_path / "records").glob("*.json"))[3]
    victim.write_text(victim.read_text()[:40])
    plan = plan_suite(TOY_SUITE, tmp_path)
    assert len(plan.todo) == 1 and plan.corrupt and victim.name in plan.corrupt[0]
    summary = execute(plan, RunSettings(device="cpu"))
    assert summary.completed == 1
    assert "cannot be read" in capsys.readouterr().err
    assert json.loads(victim.read_text())["key"] == victim.stem
    assert metrics_by_cell(tmp_path) == reference
    assert (tmp_path / "records" / (victim.name + ".corrupt")).exists()


def test_failing_cell_is_reported_others_still_run(toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = toy_plugins.ToyProbe.run

    def flaky(self, pre, data, split, cfg, seed, **kw):
        if pre.variant == "toy_ssl[skeleton]" and cfg["budget"] == 3:
            raise ValueError("boom in the probe")
        return real_run(self, pre, data, split, cfg, seed, **kw)

    monkeypatch.setattr(toy_plugins.ToyProbe, "run", flaky)
    summary = _run(tmp_path)
    assert summary.completed == 12 and len(summary.failed) == 2
    assert all("toy_ssl[skeleton] toy_probe[budget=3]" in label and "boom in the probe" in err
               for label, err in summary.failed)
    assert len(store.scan_records(tmp_path)[0]) == 12


def test_failed_dependency_fails_dependents(toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_loss = toy_plugins.ToySSL.loss

    def bad_loss(self, batch):
        if self.cfg["modality"] == "skeleton":
            raise RuntimeError("teacher diverged")
        return real_loss(self, batch)

    monkeypatch.setattr(toy_plugins.ToySSL, "loss", bad_loss)
    summary = _run(tmp_path, narrow(TOY_SUITE, seeds=[0]))
    failed = sorted(label for label, _ in summary.failed)
    assert summary.completed == 2  # only toy_ssl[inertial]'s two cells
    assert len(failed) == 5 and sum("toy_student" in f for f in failed) == 3
    assert all("dependency toy_ssl[skeleton] (pretrain unit " in err and "RuntimeError: teacher diverged" in err
               for label, err in summary.failed if "toy_student" in label)  # the dependency's own error


# -- parallel backends (same records as serial) ---------------------------------------------------
def test_joblib_and_dask_match_serial(toys, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    suite = narrow(TOY_SUITE, seeds=[0])
    _run(tmp_path / "serial", suite)
    reference = metrics_by_cell(tmp_path / "serial")
    assert len(reference) == 7
    _run(tmp_path / "joblib", suite, RunSettings(device="cpu", jobs=2, quiet=True))
    assert metrics_by_cell(tmp_path / "joblib") == reference
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        _run(tmp_path / "dask", suite, RunSettings(device="cpu", backend="dask", scheduler=cluster.scheduler_address,
                                                   quiet=True))
    assert metrics_by_cell(tmp_path / "dask") == reference
    serial_keys = sorted(p.name for p in (tmp_path / "serial" / "records").glob("*.json"))
    assert serial_keys == sorted(p.name for p in (tmp_path / "dask" / "records").glob("*.json"))


# -- the real smoke suite, narrowed: killed by a signal, then resumed; and run with two jobs ----------
SMOKE_ARGS = ["--suite", "smoke", "--methods", "simclr[inertial]", "cmc_cmkm", "--protocols", "linear",
              "paper_head", "--seeds", "0", "--quiet"]


@pytest.fixture(scope="module")
def smoke_reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Uninterrupted serial run of the narrowed smoke suite (real methods and protocols, 1-epoch schedules)."""
    results = tmp_path_factory.mktemp("smoke-serial")
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]", "cmc_cmkm"], protocols=["linear", "paper_head"],
                   seeds=[0])
    summary = execute(plan_suite(suite, results), RunSettings(device="cpu", quiet=True))
    assert summary.ok and summary.completed == 4
    return metrics_by_cell(results)


def _stop_after_first_record(results: Path, sig: int, times: int = 1) -> int:
    """Run the narrowed smoke suite in a subprocess, send it `sig` (`times` times, 0.2 s apart) once its first record
    exists; its exit code. Every signal must reach the running process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "run_all.py"), *SMOKE_ARGS, "--results", str(results), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = results / "records"
    deadline = time.monotonic() + 900  # generous: a machine busy with a suite is slow to its first record
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if records.is_dir() and any(records.glob("*.json")):
                break
            time.sleep(0.05)
    finally:
        sent = 0
        for i in range(times):
            time.sleep(0.2 if i else 0.0)
            if proc.poll() is None:
                proc.send_signal(sig)
                sent += 1
        rc = proc.wait()
    assert sent == times, f"the run ended after {sent} of {times} signals"
    n_before = len(store.scan_records(results)[0])
    assert 1 <= n_before < 4, "the run was expected to be stopped after its first record"
    return rc


def test_smoke_killed_with_sigkill_then_rerun_gives_same_records(smoke_reference: dict, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert _stop_after_first_record(tmp_path, signal.SIGKILL) == -signal.SIGKILL
    from benchmark.cli import main

    monkeypatch.setattr("benchmark.report.build_report", lambda d, s=None, **kw: [])  # tested in test_report.py
    assert main([*SMOKE_ARGS, "--results", str(tmp_path), "--device", "cpu"]) == 0
    assert metrics_by_cell(tmp_path) == smoke_reference
    assert (tmp_path / "runs.csv").is_file()


def test_sigterm_stops_like_ctrl_c_and_logs_the_end(tmp_path: Path) -> None:
    from benchmark.runner.runlog import read_log

    assert _stop_after_first_record(tmp_path, signal.SIGTERM) == 143
    runs, bad = read_log(tmp_path)
    assert bad == 0 and len(runs) == 1 and runs[0]["end"]["status"] == "interrupted"
    assert 0 <= runs[0]["end"]["completed"] <= len(store.scan_records(tmp_path)[0])  # counted per finished unit


def test_a_second_sigterm_during_the_clean_up_is_ignored(tmp_path: Path) -> None:
    """GNU `timeout` signals the run and then its process group: the second SIGTERM must not cut the stop short."""
    from benchmark.runner.runlog import read_log

    assert _stop_after_first_record(tmp_path, signal.SIGTERM, times=2) == 143
    runs, bad = read_log(tmp_path)
    assert bad == 0 and len(runs) == 1 and runs[0]["end"]["status"] == "interrupted"


def test_sigterm_repeats_within_the_grace_time_are_one_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark import cli

    monkeypatch.setattr(cli, "_first_stop", [])
    with pytest.raises(cli._Terminated):
        cli._raise_terminated(signal.SIGTERM, None)
    cli._raise_terminated(signal.SIGTERM, None)  # the repeat (GNU timeout: child, then group) is ignored
    monkeypatch.setattr(cli, "_first_stop", [time.monotonic() - cli._STOP_GRACE_S - 1.0])
    with pytest.raises(cli._Terminated):  # a SIGTERM long after a stop that was swallowed stops the run again
        cli._raise_terminated(signal.SIGTERM, None)


def test_smoke_with_two_jobs_matches_serial(smoke_reference: dict, tmp_path: Path) -> None:
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]", "cmc_cmkm"], protocols=["linear", "paper_head"],
                   seeds=[0])
    summary = execute(plan_suite(suite, tmp_path), RunSettings(device="cpu", jobs=2, quiet=True))
    assert summary.ok
    assert metrics_by_cell(tmp_path) == smoke_reference


def test_settings_validation() -> None:
    with pytest.raises(runner.RunError, match="unknown backend 'ray'; choose one of local, joblib, dask"):
        RunSettings(backend="ray")
    with pytest.raises(runner.RunError, match="--scheduler only applies to --backend dask"):
        RunSettings(scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(runner.RunError, match="jobs must be an integer >= 1"):
        RunSettings(jobs=0)
    with pytest.raises(runner.RunError, match="threads must be an integer >= 1"):
        RunSettings(threads=0)


def test_shrink_overrides() -> None:
    s = Shrink(epochs_scale=0.1, epochs_cap=20, batch_cap=16)
    cfg = {"epochs": 300, "head_epochs": 5, "batch_size": 128, "eval_batch_size": 8, "lr": 1e-3, "random_epochs": 0,
           "flag": True}
    assert s.overrides(cfg) == {"epochs": 20, "head_epochs": 1, "batch_size": 16}
    assert Shrink().overrides(cfg) == {}


def test_auto_precision_that_resolves_differently_than_the_folders_records_stops_the_run(
        toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder written in bf16, resumed with 'auto' on a CPU without bf16, is not silently restarted in fp32."""
    from benchmark import hardware

    suite = narrow(TOY_SUITE, seeds=[0])
    assert execute(plan_suite(suite, tmp_path, precision="bf16"), SERIAL).ok
    n = len(store.scan_records(tmp_path)[0])
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"native_bf16": False, "model": "Old CPU", "flags": []})
    plan = plan_suite(suite, tmp_path)  # auto -> fp32 here
    assert plan.numerics == "cpu-fp32" and plan.held == {"cpu-bf16": n}
    assert "a run would stop here" in plan.summary("cpu")
    with pytest.raises(runner.RunError, match=f"{n} at cpu-bf16.*--precision fp32"):
        execute(plan, SERIAL)
    assert len(store.scan_records(tmp_path)[0]) == n  # nothing ran
    explicit = plan_suite(suite, tmp_path, precision="fp32")  # saying so starts fp32 cells beside them
    assert explicit.numerics_conflict() is None and len(explicit.todo) == len(explicit.cells)
    slow = plan_suite(suite, tmp_path, precision="bf16")  # the bf16 cells are done; bf16 here is emulated
    assert not slow.todo and any("without native bf16 (Old CPU" in m for m in slow.messages)
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"native_bf16": True, "model": "New CPU", "flags": []})
    again = plan_suite(suite, tmp_path)  # auto -> bf16: the folder's own cells, all done
    assert again.numerics_conflict() is None and not again.todo
    assert not any("native bf16" in m for m in again.messages)


def test_a_folder_another_device_wrote_names_the_device_and_explicit_precision_is_never_stopped() -> None:
    from benchmark.runner.plan import Plan

    plan = Plan(suite="s", results_dir=Path("res"), cells=[], units={}, datasets={}, numerics="cpu-fp32",
                auto_precision=True, held={"cuda-bf16": 3})
    msg = plan.numerics_conflict()
    assert msg and "3 at cuda-bf16" in msg and "--device" in msg and "res" in msg
    plan.held = {"cuda-bf16": 3, "cpu-fp32": 1}  # some records already at this plan's numerics
    assert plan.numerics_conflict() is None
    plan.held, plan.auto_precision = {"cuda-bf16": 3}, False  # --precision given: the user chose
    assert plan.numerics_conflict() is None


def test_precision_is_resolved_recorded_and_the_paper_suite_trains_in_fp32(toys, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark import hardware

    assert get_suite("paper").precision == "fp32"
    assert {get_suite(s).precision for s in ("smoke", "quick", "full")} == {"auto"}
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"native_bf16": False, "model": "x", "flags": []})
    assert plan_suite(TOY_SUITE, tmp_path).numerics == "cpu-fp32"  # auto on a CPU without bf16
    monkeypatch.undo()
    seen: list[str] = []
    real = hardware.autocast_for

    def spy(device, enabled=True):
        seen.append(hardware.current_precision())
        return real(device, enabled)

    monkeypatch.setattr(hardware, "autocast_for", spy)
    suite = narrow(TOY_SUITE, seeds=[0])
    plan = plan_suite(suite, tmp_path, precision="bf16")
    assert plan.numerics == "cpu-bf16" and plan.precision == "bf16"
    assert execute(plan, SERIAL).ok
    assert seen and set(seen) == {"bf16"}  # the worker trained under bf16 autocast
    assert hardware.current_precision() == "fp32"  # and restored the process's precision afterwards
    recs, _ = store.scan_records(tmp_path)
    assert recs and all(r["precision"] == "bf16" and r["cpu"]["model"] for r in recs.values())
    with pytest.raises(runner.RunError, match="unknown precision 'fp16'"):
        RunSettings(precision="fp16")


def test_parity_table_pairs_two_precisions(toys, tmp_path: Path) -> None:
    from benchmark.report import parity

    suite = narrow(TOY_SUITE, seeds=[0, 1])
    for p in ("fp32", "bf16"):
        assert execute(plan_suite(suite, tmp_path / p, precision=p), SERIAL).ok
    text = parity.parity_table(tmp_path / "fp32", tmp_path / "bf16")
    assert "A = " in text and "(fp32, cpu)" in text and "(bf16, cpu)" in text
    assert "| synthetic / xsub | toy_ssl[inertial] |" in text and "All " in text
    with pytest.raises(parity.ParityError, match="no records"):
        parity.parity_table(tmp_path / "fp32", tmp_path / "nothing")


def test_worker_exits_when_its_dispatching_run_is_gone() -> None:
    """A loky worker outlives a SIGKILLed run; the owner watch makes it exit instead of training on."""
    from benchmark.atomic import owner_tag

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = owner_tag().split("-")[0]
    code = ("import sys, time; from benchmark.runner import worker; worker.OWNER_POLL_S = 0.05; "
            "worker.watch_owner(sys.argv[1]); time.sleep(float(sys.argv[2]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.monotonic()
    gone = subprocess.run([sys.executable, "-c", code, f"{host}-{dead.pid}", "60"], env=env, timeout=120)
    assert gone.returncode == 3 and time.monotonic() - t0 < 50
    alive = subprocess.run([sys.executable, "-c", code, owner_tag(), "1"], env=env, timeout=120)
    assert alive.returncode == 0  # its owner (this test) is alive: the worker finishes normally
    other_host = subprocess.run([sys.executable, "-c", code, f"00000000-{dead.pid}", "1"], env=env, timeout=120)
    assert other_host.returncode == 0  # an owner on another host is never judged from here


def test_units_run_seed_by_seed(toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stopped part-way has finished whole seeds (teachers and their student), not one level of all."""
    import benchmark.pretrain as pretrain_mod

    seen: list[tuple[str, int]] = []
    real = pretrain_mod.pretrain

    def spy(name, data, split, cfg, seed, *args, **kwargs):
        seen.append((name, seed))
        return real(name, data, split, cfg, seed, *args, **kwargs)

    monkeypatch.setattr(pretrain_mod, "pretrain", spy)
    assert _run(tmp_path).ok
    assert [s for _, s in seen] == [0, 0, 0, 1, 1, 1]
    assert [n for n, _ in seen] == ["toy_ssl", "toy_ssl", "toy_student"] * 2


def test_a_protocol_variant_that_names_plain_cells_gets_their_key_and_label(toys, tmp_path: Path) -> None:
    """`toy_probe[budget=3]` selects one of the plain protocol's cells: same key, label and shown config, so a
    run restricted to some budgets (e.g. --protocols semisup[budget=1] semisup[budget=5]) writes the records a
    plain run would."""
    plain = {c.key: c for c in plan_suite(TOY_SUITE, tmp_path).cells if c.protocol == "toy_probe"}
    picked = [c for c in plan_suite(narrow(TOY_SUITE, protocols=["toy_probe[budget=3]", "toy_probe[lr=0.05]"]),
                                    tmp_path).cells]
    assert picked and all(c.key in plain for c in picked)
    for c in picked:
        assert (c.protocol_variant, c.protocol_cfg) == (plain[c.key].protocol_variant, plain[c.key].protocol_cfg)
    assert {c.protocol_variant for c in picked} == {"toy_probe[budget=1]", "toy_probe[budget=3]"}
