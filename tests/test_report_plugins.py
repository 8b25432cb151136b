"""The report and the plugins: it names none, asks dataset plugins for their main metric, and reads the paper's
published numbers from its data file."""
from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark.registry import DATASETS, METHODS
from benchmark.report import ReportError, collect, paper
from benchmark.report.entries import ResultSet
from benchmark.report.main_metric import declared_main_metric
from tests.test_report import _record, _write

REPO = Path(__file__).resolve().parent.parent
REPORT_DIR = REPO / "benchmark" / "report"
MAX_LINES = 400


# ------------------------------------------------------------------------------------------------
# no plugin named in the report
# ------------------------------------------------------------------------------------------------
def test_report_code_names_no_dataset_or_method_plugin():
    names = sorted(set(DATASETS.names()) | set(METHODS.names()), key=len, reverse=True)
    assert names  # the plugins loaded
    word = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    found = []
    for path in sorted(REPORT_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{path.name}:{node.lineno}: {m.group(0)!r}" for m in word.finditer(node.value)]
    assert not found, "plugin names belong in the plugins or in data files:\n" + "\n".join(found)


def test_report_modules_stay_small():
    long = {p.name: n for p in sorted(REPORT_DIR.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules (at most {MAX_LINES} lines each): {long}"


# ------------------------------------------------------------------------------------------------
# main metric: records, else the dataset plugin
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_datasets():
    plugins = {
        "zz_profile_f1": SimpleNamespace(training=SimpleNamespace(main_metric="f1")),
        "zz_plain_acc": SimpleNamespace(main_metric="acc"),
        "zz_plain_over_profile": SimpleNamespace(main_metric="F1", training=SimpleNamespace(main_metric="accuracy")),
        "zz_declares_nothing": SimpleNamespace(),
    }
    DATASETS.names()  # load the real plugins first
    for name, plugin in plugins.items():
        DATASETS.add(name, plugin)
    yield plugins
    for name in plugins:
        DATASETS.remove(name)


def test_main_metric_falls_back_to_the_dataset_plugin(fake_datasets):
    rs = ResultSet([], 0, 0)
    assert rs.main_metric("zz_profile_f1") == "f1_macro"  # TrainingProfile.main_metric, alias mapped
    assert rs.main_metric("zz_plain_acc") == "accuracy"
    assert rs.main_metric("zz_plain_over_profile") == "f1_macro"  # what an instance reports (and records)
    assert rs.main_metric("zz_declares_nothing") == "accuracy"
    assert rs.main_metric("zz_not_registered") == "accuracy"
    assert declared_main_metric("zz_not_registered") == "accuracy"


def test_a_stated_main_metric_beats_the_plugin(tmp_path, fake_datasets):
    rec = _record("zz_profile_f1", "s", "m", "linear", 0, {"accuracy": 0.1, "f1_macro": 0.2})
    rec["main_metric"] = "accuracy"
    _write(tmp_path, rec)
    assert collect(tmp_path).main_metric("zz_profile_f1") == "accuracy"


# ------------------------------------------------------------------------------------------------
# the paper's data file
# ------------------------------------------------------------------------------------------------
def test_published_table_is_read_from_the_data_file():
    table = paper.published()
    assert paper.PUBLISHED_FILE.parent == REPORT_DIR and table.rows == paper.PUBLISHED
    assert (paper.PAPER_PROTOCOL, paper.HEADLINE_PAIR, paper.SOURCE) == (
        table.protocol, table.headline_pair, table.source)
    assert len(table.rows) == 8 and all(len(r.values) == 3 for r in table.rows)
    for row in table.rows:
        assert {d for d, _ in row.values} <= set(table.metric)
        assert all(isinstance(v, float) for v in row.values.values())


def test_data_file_is_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = setuptools.get("package-data", {}).get("benchmark.report", [])
    assert any(fnmatch.fnmatch(paper.PUBLISHED_FILE.name, p) for p in patterns)


def _good() -> dict:
    return json.loads(paper.PUBLISHED_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("spoil, message", [
    (lambda d: None, "is missing"),
    (lambda d: "{not json", "not readable JSON"),
    (lambda d: d.pop("source") and d, r"'source' must be a non-empty str"),
    (lambda d: d["rows"][0].pop("variant") and d, r"rows\[0\] 'variant' must be a non-empty str"),
    (lambda d: d["rows"][1]["values"].update(zz_other={"xsub": 50.0}) or d, "names no metric"),
    (lambda d: d["rows"][2]["values"][next(iter(d["metric"]))].update(xsub="high") or d, "must be a number"),
    (lambda d: d.update(headline_pair=["a", "b"]) or d, "'headline_pair' must be a non-empty dict"),
])
def test_a_broken_data_file_is_a_clear_error(tmp_path, spoil, message):
    path = tmp_path / "published.json"
    data = spoil(_good())
    if data is not None:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError, match=message) as info:
        paper.published(path)
    assert str(path) in str(info.value)
