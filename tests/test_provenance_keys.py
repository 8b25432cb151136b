"""Results that follow the code: target provenance per table, metric checks, code-hashed keys, foreign records,
one suite per folder (issue 35, items 1-4)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import codehash, store
from benchmark.registry import METHODS
from benchmark.report import collect
from benchmark.report.tables import leaderboard_markdown
from benchmark.runner import RunError, RunSettings, execute, plan_suite
from benchmark.runner.folder_mark import read_mark
from benchmark.suites import Suite
from tests import toy_plugins
from tests.test_report import _record, _write

SERIAL = RunSettings(device="cpu", quiet=True)
TOY_DATA = {"synthetic": {"n_trials": 1, "n_classes": 4}}
ONE = Suite(name="toy", description="toy", datasets=("synthetic",), methods=("toy_ssl[inertial]",),
            protocols=("toy_probe",), seeds=(0,), dataset_options=TOY_DATA)


@pytest.fixture()
def toys():
    with toy_plugins.registered():
        yield


def _tables(md: str) -> str:
    """The leaderboard's headings and table rows (its intro counts the records and lists what was left out)."""
    return "\n".join(line for line in md.splitlines() if line.startswith(("#", "|")))


def _knn_folder(root: Path, n: int = 5) -> None:
    for variant, base in (("cmc", 0.70), ("simclr[inertial]", 0.60)):
        for seed in range(n):
            rec = _record("synthetic", "xsub", variant, "knn", seed, {"accuracy": base + seed / 100},
                          created=f"2026-01-0{seed + 1}T00:00:00+00:00")
            rec["code_version"], rec["precision"], rec["main_metric"] = "3", "bf16", "accuracy"
            _write(root, rec)


# -- item 1: tables from the target provenance, never hijacked -------------------------------------
def test_a_later_dated_record_of_another_code_version_changes_no_table_and_is_named(tmp_path: Path) -> None:
    _knn_folder(tmp_path)
    before = leaderboard_markdown(collect(tmp_path))
    late = _record("synthetic", "xsub", "cmc", "knn", 0, {"accuracy": 0.10}, created="2027-06-01T00:00:00+00:00",
                   key="e" * 16)
    late["code_version"], late["precision"] = "2", "bf16"
    _write(tmp_path, late)
    rs = collect(tmp_path)
    assert len(rs.entries) == 10 and all(e.provenance[0] == "3" for e in rs.entries)
    ((name, why),) = rs.dropped
    assert name == "e" * 16 + ".json" and "code version 2" in why and "folder's provenance" in why
    assert f"in the results folder: rm records/{name}" in why
    after = leaderboard_markdown(rs)
    assert _tables(after) == _tables(before) and name in after


def test_an_impossible_metric_makes_the_record_invalid_named_and_never_printed(tmp_path: Path) -> None:
    _knn_folder(tmp_path)
    bad = _record("synthetic", "xsub", "byol", "knn", 0, {"accuracy": 99.0}, key="f" * 16)
    bad["code_version"], bad["precision"] = "3", "bf16"
    _write(tmp_path, bad)
    nan = _record("synthetic", "xsub", "byol", "knn", 1, {"accuracy": 0.5}, key="a" * 16)
    nan["code_version"], nan["precision"] = "3", "bf16"
    _write(tmp_path, nan)
    text = (tmp_path / "records" / ("a" * 16 + ".json")).read_text().replace("0.5", "Infinity")
    (tmp_path / "records" / ("a" * 16 + ".json")).write_text(text)
    rs = collect(tmp_path)
    dropped = dict(rs.dropped)
    assert "metric 'accuracy' = 99.0 is not a fraction in [0, 1]" in dropped["f" * 16 + ".json"]
    assert "metric 'accuracy' = inf is not finite" in dropped["a" * 16 + ".json"]
    assert not [e for e in rs.entries if e.variant == "byol"]
    md = leaderboard_markdown(rs)
    assert "9900" not in md and "| byol" not in md


def test_the_current_codes_records_beat_a_majority_of_older_harness_code(tmp_path: Path) -> None:
    _knn_folder(tmp_path)  # 10 records without code hashes, cpu bf16
    store.atomic_write_json(tmp_path / "suite.json", {"suite": "toy", "numerics": "cpu-bf16"})
    for seed in (0, 1):
        rec = _record("synthetic", "xsub", "cmc", "knn", seed, {"accuracy": 0.9}, key=f"{seed}" * 16,
                      created="2025-01-01T00:00:00+00:00")  # older dates do not matter
        rec["code_version"], rec["precision"] = "3", "bf16"
        rec["code"] = {"harness": codehash.harness_hash(), "method": "m", "dataset": "d"}
        _write(tmp_path, rec)
    rs = collect(tmp_path)
    assert sorted((e.variant, e.seed) for e in rs.entries) == [("cmc", 0), ("cmc", 1)]
    assert len(rs.dropped) == 10 and all("the current code's provenance" in why for _, why in rs.dropped)


def test_a_later_record_of_other_plugin_code_cannot_push_a_rows_seeds_out(tmp_path: Path) -> None:
    harness = codehash.harness_hash()
    for seed in range(4):  # four seeds of one plugin code, then one later record of another
        rec = _record("synthetic", "xsub", "cmc", "knn", seed, {"accuracy": 0.7}, key=f"{seed}" * 16,
                      created=f"2026-01-0{seed + 1}T00:00:00+00:00")
        rec["code_version"], rec["precision"] = "3", "bf16"
        rec["code"] = {"harness": harness, "method": "old", "dataset": "d"}
        _write(tmp_path, rec)
    late = _record("synthetic", "xsub", "cmc", "knn", 4, {"accuracy": 0.1}, key="9" * 16,
                   created="2027-01-01T00:00:00+00:00")
    late["code_version"], late["precision"] = "3", "bf16"
    late["code"] = {"harness": harness, "method": "other", "dataset": "d"}
    _write(tmp_path, late)
    rs = collect(tmp_path)
    assert sorted(e.seed for e in rs.entries) == [0, 1, 2, 3]
    ((name, why),) = rs.dropped
    assert name == "9" * 16 + ".json" and "the code most of its records share" in why


# -- item 2: keys follow the code -------------------------------------------------------------------
def test_source_hash_ignores_comments_docstrings_and_layout_but_not_expressions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text('"""Doc."""\ndef f(x):\n    """Say."""\n    return x * 2  # double\n')
    base = codehash.source_hash(f)
    f.write_text('"""Other doc."""\n\n# a comment\ndef f(x):\n    return (x *\n            2)\n')
    assert codehash.source_hash(f) == base
    f.write_text('"""Doc."""\ndef f(x):\n    return x * 3\n')
    assert codehash.source_hash(f) != base


PLUGIN = '''"""A method plugin kept outside the project."""
from tests.toy_plugins import ToySSL


class EditMe(ToySSL):
    name = "edit_me"
    defaults = {**ToySSL.defaults, "temperature": 0.5}  # the temperature
'''


def test_editing_a_plugin_expression_recomputes_exactly_its_cells_and_a_comment_nothing(toys, tmp_path: Path,
                                                                                       monkeypatch) -> None:
    from benchmark.plugins import import_plugin_source

    plugin = tmp_path / "edit_me_plugin.py"
    plugin.write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import_plugin_source(str(plugin))
    cls = __import__("edit_me_plugin").EditMe
    METHODS.register("edit_me")(cls)
    try:
        suite = Suite(name="toy", description="toy", datasets=("synthetic",),
                      methods=("toy_ssl[inertial]", "edit_me[inertial]"), protocols=("toy_probe",), seeds=(0, 1),
                      dataset_options=TOY_DATA)
        results = tmp_path / "res"
        first = execute(plan_suite(suite, results), SERIAL)
        assert first.completed == 8 and not first.failed  # 2 methods x 2 budgets x 2 seeds
        plugin.write_text(PLUGIN.replace("# the temperature", "# the contrast temperature\n\n"))
        assert execute(plan_suite(suite, results), SERIAL).completed == 0
        plugin.write_text(PLUGIN.replace('"temperature": 0.5}', '"temperature": 0.25}'))
        plan = plan_suite(suite, results)
        assert {c.variant for c in plan.todo} == {"edit_me[inertial]"} and len(plan.todo) == 4
        assert plan.code_changed == {"method edit_me": 4}
        assert "code changed: 4 cell(s) recomputed (method edit_me differs" in plan.summary()
        assert execute(plan, SERIAL).completed == 4
        recs, _ = store.scan_records(results)
        assert len({r["code"]["method"] for r in recs.values() if r["cell"]["method"] == "edit_me"}) == 2
    finally:
        METHODS.remove("edit_me")


def test_keys_change_with_the_harness_hash(toys, tmp_path: Path, monkeypatch) -> None:
    keys = {c.key for c in plan_suite(ONE, tmp_path).cells}
    monkeypatch.setattr("benchmark.runner.planner.harness_hash", lambda: "changed")
    assert not keys & {c.key for c in plan_suite(ONE, tmp_path).cells}


# -- item 3: a record whose content does not match its key ----------------------------------------
@pytest.mark.parametrize("field, value", [("device", "cuda:0"), ("code_version", "0"), ("data_fingerprint", "x"),
                                          ("cell", {"seed": 7})])
def test_a_foreign_record_under_a_cell_key_is_set_aside_and_recomputed(toys, tmp_path: Path, field, value) -> None:
    assert execute(plan_suite(ONE, tmp_path), SERIAL).completed == 2
    path = sorted((tmp_path / "records").glob("*.json"))[0]
    rec = json.loads(path.read_text())
    rec[field] = {**rec["cell"], **value} if field == "cell" else value
    path.write_text(json.dumps(rec))
    plan = plan_suite(ONE, tmp_path)
    assert len(plan.todo) == 1 and plan.foreign and path.name in plan.foreign[0]
    assert "set aside" in plan.summary()
    cell = plan.todo[0]
    assert execute(plan, SERIAL).completed == 1
    assert path.with_name(path.name + ".foreign").is_file()
    assert store.read_record(path)["cell"] == json.loads(json.dumps(cell.describe()))


# -- item 4: one suite per folder -------------------------------------------------------------------
def test_a_second_suite_stops_naming_both_and_a_refused_run_does_not_rewrite_the_mark(toys, tmp_path: Path) -> None:
    from dataclasses import replace

    from benchmark.runner.lock import results_lock

    assert execute(plan_suite(ONE, tmp_path), SERIAL).completed == 2
    mark = (tmp_path / "suite.json").read_text()
    other = replace(ONE, name="toy2", seeds=(1,))
    with pytest.raises(RunError, match=r"suite toy; a run of suite toy2"):
        execute(plan_suite(other, tmp_path), SERIAL)
    assert (tmp_path / "suite.json").read_text() == mark
    with results_lock(tmp_path):  # another run holds the folder: refused, mark untouched
        with pytest.raises(RunError, match="in use by another run"):
            execute(plan_suite(ONE, tmp_path), SERIAL)
    assert (tmp_path / "suite.json").read_text() == mark
    merged = execute(plan_suite(other, tmp_path), RunSettings(device="cpu", quiet=True, merge=True))
    assert merged.completed == 2 and read_mark(tmp_path)["suites"] == ["toy", "toy2"]
    tables = {e.table for e in collect(tmp_path).entries}
    assert tables and all("suite=toy" in t for t in tables) and any("suite=toy2" in t for t in tables)


def test_a_plugins_hash_covers_its_package_siblings_and_declared_code_files(tmp_path: Path) -> None:
    from benchmark.plugins import import_plugin_source
    from benchmark.registry import DATASETS

    assert any(k.startswith("datasets._synthetic") for k in codehash.plugin_files(DATASETS.get("synthetic")))
    (tmp_path / "helper_code.py").write_text("SCALE = 2\n")
    (tmp_path / "declaring_plugin.py").write_text('class Declares:\n    code_files = ("helper_code.py",)\n')
    import_plugin_source(str(tmp_path / "declaring_plugin.py"))
    cls = __import__("declaring_plugin").Declares
    assert set(codehash.plugin_files(cls)) == {"declaring_plugin", "helper_code.py"}
    base = codehash.plugin_hash(cls)
    (tmp_path / "helper_code.py").write_text("SCALE = 2  # a comment\n")
    assert codehash.plugin_hash(cls) == base
    (tmp_path / "helper_code.py").write_text("SCALE = 3\n")
    assert codehash.plugin_hash(cls) != base
    cls.code_files = ("no_such_module_here",)
    with pytest.raises(ValueError, match="code_files names 'no_such_module_here'"):
        codehash.plugin_files(cls)
