"""Import every plugin module so that a plugin can never be defined but unregistered.

Sources, in order: `benchmark/backbones/`, `benchmark/protocols/`, the repository's `datasets/` and
`methods/` folders, modules named in `$MMHAR_PLUGINS` (comma-separated import names), and the
`mmhar_bench.plugins` entry-point group of installed packages.

The plugin folders are imported as the top-level packages `datasets` and `methods`. A Hugging Face
`datasets` installed in the same environment must not shadow ours: the repository root is put first
on `sys.path` and the resolved package is checked, with a clear error if something else won.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINT_GROUP = "mmhar_bench.plugins"

_loaded = False
_loading = False


class PluginImportError(ImportError):
    """A plugin folder resolved to the wrong package or a plugin module failed to import."""


def _ensure_repo_on_path() -> None:
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


def import_plugin_package(package: str) -> None:
    """Import `package` from the repository root and every module inside it."""
    _ensure_repo_on_path()
    mod = importlib.import_module(package)
    expected = REPO_ROOT / package
    where = Path(getattr(mod, "__file__", "") or "").resolve().parent
    if where != expected:
        raise PluginImportError(
            f"'import {package}' resolved to {where}, not to the plugin folder {expected}. Another package "
            f"named {package!r} (e.g. Hugging Face 'datasets') shadows it: run mmhar-bench from its "
            f"repository root (python run_all.py ...) or use a virtual environment without that package."
        )
    for info in sorted(pkgutil.iter_modules(mod.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{package}.{info.name}")
        except Exception as exc:  # name the module: a broken plugin must be obvious
            raise PluginImportError(f"plugin module {package}.{info.name} failed to import: {exc!r}") from exc


def load_plugins(force: bool = False) -> None:
    """Import all plugin modules once (idempotent; re-entrant calls during loading are no-ops)."""
    global _loaded, _loading
    if (_loaded and not force) or _loading:
        return
    _loading = True
    try:
        for pkg in ("benchmark.backbones", "benchmark.protocols"):
            mod = importlib.import_module(pkg)
            for info in sorted(pkgutil.iter_modules(mod.__path__), key=lambda i: i.name):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{pkg}.{info.name}")
        import_plugin_package("datasets")
        import_plugin_package("methods")
        for name in filter(None, (s.strip() for s in os.environ.get("MMHAR_PLUGINS", "").split(","))):
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise PluginImportError(f"module {name!r} listed in $MMHAR_PLUGINS failed to import: {exc!r}") from exc
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:
                raise PluginImportError(f"entry point {ep.name!r} ({ep.value}) failed to load: {exc!r}") from exc
        _loaded = True
    finally:
        _loading = False
