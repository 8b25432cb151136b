"""The plugin registry: registration, duplicate and unknown names, automatic plugin import."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from benchmark.registry import DATASETS, METHODS, Registry, RegistryError
from tests.conftest import REPO


def test_register_get_and_duplicate() -> None:
    reg: Registry[object] = Registry("widget")
    reg._items.clear()

    @reg.register("alpha")
    class Alpha:
        pass

    assert reg._items["alpha"] is Alpha

    class Other:
        pass

    with pytest.raises(RegistryError, match="duplicate widget name 'alpha'"):
        reg.add("alpha", Other)


def test_unknown_name_lists_known_and_closest() -> None:
    with pytest.raises(RegistryError) as err:
        DATASETS.get("utd_mhd")
    msg = str(err.value)
    assert "utd_mhad" in msg and "synthetic" in msg and "mmact" in msg
    assert "Did you mean 'utd_mhad'?" in msg


def test_every_plugin_module_is_imported() -> None:
    assert {"utd_mhad", "mmact", "synthetic"} <= set(DATASETS.names())
    assert {"supervised", "simclr", "moco", "cmc", "cmc_cmkm"} <= set(METHODS.names())


def test_external_plugin_module_via_env(tmp_path) -> None:
    mod = tmp_path / "my_plugin_mod.py"
    mod.write_text(textwrap.dedent("""
        from benchmark.registry import DATASETS
        from datasets.synthetic import SyntheticDataset

        @DATASETS.register("synthetic_copy")
        class SyntheticCopy(SyntheticDataset):
            name = "synthetic_copy"
    """))
    code = "from benchmark.registry import DATASETS; print(sorted(DATASETS.names()))"
    env = {"PYTHONPATH": f"{tmp_path}", "MMHAR_PLUGINS": "my_plugin_mod", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "synthetic_copy" in out.stdout


def test_shadowing_datasets_package_is_detected(tmp_path) -> None:
    fake = tmp_path / "datasets"
    fake.mkdir()
    (fake / "__init__.py").write_text("HF = True\n")
    code = "import datasets; from benchmark import plugins; plugins.load_plugins()"
    env = {"PYTHONPATH": f"{tmp_path}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, "PYTHONPATH": f"{tmp_path}:{REPO}"},
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "shadows it" in out.stderr
