"""The README's 'Adding a method' example, dropped in as a plugin module, is listed and runs every protocol."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.registry import PROTOCOLS
from tests.conftest import REPO


def readme_example() -> str:
    """The code block of the README that defines methods/my_barlow.py."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"```python\n(# methods/my_barlow\.py\n.*?)```", text, re.S)
    assert match, "README lost its 'Adding a method' example"
    return match.group(1)


def _run(args: list[str], plugin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(plugin_dir), "MMHAR_PLUGINS": "my_barlow", "MMHAR_QUIET": "1"}
    return subprocess.run([sys.executable, "run_all.py", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_readme_method_is_listed_and_runs_through_every_protocol(tmp_path: Path) -> None:
    (tmp_path / "my_barlow.py").write_text(readme_example())
    listed = _run(["--list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "my_barlow" in listed.stdout

    results = tmp_path / "res"
    ran = _run(["--suite", "smoke", "--methods", "my_barlow[inertial]", "--seeds", "0", "--results", str(results),
                "--quiet"], tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    records = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    protocols = {r["cell"]["protocol"] for r in records}
    unimodal = {name for name, cls in PROTOCOLS.items() if "unimodal" in cls.kinds}
    assert protocols == unimodal, (protocols, unimodal)
    for r in records:
        assert r["cell"]["variant"] == "my_barlow[inertial]"
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0
    assert (results / "leaderboard.md").exists()


@pytest.mark.parametrize("source, env_plugins, expect", [
    ("import not_installed_pkg\n", None, "it imports 'not_installed_pkg', which cannot be found"),
    ("x = (\n", None, "line 1; fix that line"),
    (None, "no_such_plugin_module", "add the folder that holds no_such_plugin_module.py to PYTHONPATH"),
])
def test_a_broken_plugin_gives_one_paragraph_not_a_traceback(tmp_path: Path, source: str | None,
                                                           env_plugins: str | None, expect: str) -> None:
    args = ["--list"]
    if source is not None:
        (tmp_path / "broken_plugin.py").write_text(source)
        args = ["--plugins", str(tmp_path / "broken_plugin.py"), "--list"]
    env = {k: v for k, v in os.environ.items() if k != "MMHAR_PLUGINS"}
    if env_plugins:
        env["MMHAR_PLUGINS"] = env_plugins
    out = subprocess.run([sys.executable, "run_all.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2
    assert expect in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
