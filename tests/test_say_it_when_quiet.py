"""--quiet still says what matters (a fall-back dataset, a skipped one); --jobs is capped at the work there is;
dataset options on the command line; the not-applicable list one line per method."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark import cli
from benchmark.runner import RunSettings, execute, jobs_that_start, parallel_workers, plan_suite
from benchmark.suites import SuiteError, get_suite, narrow
from tests import toy_plugins

QUICK = ["--suite", "quick", "--methods", "simclr[inertial]", "--protocols", "knn", "--seeds", "0"]


def test_quiet_still_prints_the_fall_back_to_synthetic_data(tmp_path, monkeypatch, capsys) -> None:
    import benchmark.runner as runner_mod

    ran = []
    monkeypatch.setattr(runner_mod, "execute", lambda plan, settings, log=None: ran.append(plan) or
                        runner_mod.RunSummary(total=len(plan.cells), done_before=0))
    code = cli.main([*QUICK, "--data-root", str(tmp_path / "typo"), "--results", str(tmp_path / "res"), "--quiet"])
    assert code == 0 and ran and {c.dataset for c in ran[0].cells} == {"synthetic"}
    err = capsys.readouterr().err
    assert "no raw data found under" in err and str(tmp_path / "typo") in err
    assert "runs on synthetic instead of utd_mhad" in err


def test_quiet_still_prints_a_skipped_dataset(tmp_path) -> None:
    seen: list[str] = []
    suite = narrow(get_suite("full"), methods=["simclr[inertial]"], protocols=["knn"], seeds=[0])
    plan_suite(suite, tmp_path / "res", data_root=str(tmp_path / "none"), log=lambda m: None, warn=seen.append,
               device="cpu")
    assert any(m.startswith("skipped utd_mhad") for m in seen) and any(m.startswith("skipped mmact") for m in seen)


def test_jobs_are_capped_at_the_work_units_and_the_dry_run_says_what_starts(tmp_path, monkeypatch, capsys) -> None:
    import benchmark.rates as rates

    assert jobs_that_start(12, 2) == 2 and jobs_that_start(1, 5) == 1 and jobs_that_start(4, 0) == 1
    assert jobs_that_start(12, 2, "dask", "tcp://x:1") == 12  # an outside cluster is its own
    monkeypatch.setattr(rates, "measure_step_times", lambda *a, **k: {})
    args = ["--suite", "smoke", "--methods", "simclr[inertial]", "cmc", "--protocols", "knn", "--seeds", "0",
            "--results", str(tmp_path / "res"), "--device", "cpu", "--threads", "1"]
    assert cli.main([*args, "--dry-run", "--jobs", "12"]) == 0
    captured = capsys.readouterr()
    assert "note: 12 jobs capped at 2: only 2 work unit(s) to run" in captured.err
    workers = parallel_workers("cpu", 2, 1)
    assert (f"with {workers} parallel work units" in captured.out) == (workers > 1)
    assert ("2 worker processes start" in captured.out) == (workers < 2)


def test_execute_caps_the_jobs_it_starts(tmp_path) -> None:
    with toy_plugins.registered():
        from tests.test_runner import TOY_SUITE

        suite = narrow(TOY_SUITE, methods=["toy_ssl[inertial]"], protocols=["toy_probe"], seeds=[0])
        plan = plan_suite(suite, tmp_path)
        lines: list[str] = []
        summary = execute(plan, RunSettings(device="cpu", jobs=12, quiet=True), log=lines.append)
    assert summary.ok
    units = len({c.pretrain_key for c in plan.cells})
    assert f"note: 12 jobs capped at {units}: only {units} work unit(s) to run" in lines
    assert any(f"jobs {units}" in ln for ln in lines if ln.startswith("running "))


def test_dataset_options_on_the_command_line() -> None:
    suite = narrow(get_suite("quick"), datasets=["utd_mhad[skip_bad=true]"])
    assert suite.datasets == ("utd_mhad",) and suite.dataset_options["utd_mhad"]["skip_bad"] is True
    with pytest.raises(SuiteError, match="unknown option 'skipbad' for dataset 'utd_mhad'"):
        narrow(get_suite("quick"), datasets=["utd_mhad[skipbad=true]"])
    with pytest.raises(SuiteError, match=r"write name\[option=value"):
        narrow(get_suite("quick"), datasets=["utd_mhad[skeleton]"])


def test_not_applicable_is_one_line_per_method(tmp_path: Path) -> None:
    plan = plan_suite(get_suite("smoke"), tmp_path, device="cpu")
    lines = plan.not_applicable_lines()
    variants = {v for v, _, _ in plan.skipped}
    assert lines[0] == f"  not applicable: {len(variants)} method variant(s):" and len(lines) == len(variants) + 1
    assert all(len(ln) < 200 for ln in lines)
    assert "not applicable" in plan.summary(device="cpu")
