"""Import every plugin module so that a plugin can never be defined but unregistered.

Sources, in order: `benchmark/backbones/`, `benchmark/protocols/`, the repository's `datasets/` and
`methods/` folders, modules named in `$MMHAR_PLUGINS` (comma-separated import names, or paths of `.py`
files: `run_all.py --plugins FILE.py` adds them), and the `mmhar_bench.plugins` entry-point group of
installed packages. A plugin file is imported under its file name (`my_dataset.py` -> module `my_dataset`),
so worker processes find it through the same variable.

The plugin folders are imported as the top-level packages `datasets` and `methods`. A Hugging Face
`datasets` installed in the same environment must not shadow ours: the repository root is put first
on `sys.path` and the resolved package is checked, with a clear error if something else won.
"""
from __future__ import annotations

import importlib
import importlib.util
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
            raise PluginImportError(f"plugin module {package}.{info.name} failed to import: {_cause(exc)}") from exc


def _cause(exc: BaseException, path: Path | None = None) -> str:
    """What went wrong and what to do, for a plugin that failed to import."""
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} at {exc.filename}, line {exc.lineno}; fix that line"
    if isinstance(exc, ModuleNotFoundError):
        return (f"it imports {exc.name!r}, which cannot be found: install it, or add the folder that holds it to "
                f"PYTHONPATH (e.g. PYTHONPATH=path/to/folder python run_all.py ...)")
    return f"{type(exc).__name__}: {exc}{_where(exc, path)}"


def _where(exc: BaseException, path: Path | None = None) -> str:
    """' at FILE, line N: CODE' of the line that raised: the last one in the plugin's file `path`, else the last
    one outside the import machinery."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<") and "importlib" not in Path(f.filename).parts]
    own = [f for f in frames if path is not None and Path(f.filename).resolve() == path] or frames
    if not own:
        return ""
    f = own[-1]
    return f" at {f.filename}, line {f.lineno}" + (f": {f.line.strip()}" if f.line else "") + "; fix that line"


def import_plugin_source(name: str) -> None:
    """Import a plugin by module name, or from a `.py` file path (registered as a module of its file name)."""
    if not name.endswith(".py"):
        importlib.import_module(name)
        return
    path = Path(name).expanduser().resolve()
    if not path.is_file():
        raise PluginImportError(f"plugin file {name} does not exist (named in $MMHAR_PLUGINS or --plugins)")
    module = path.stem
    if module in sys.modules and Path(getattr(sys.modules[module], "__file__", "") or "").resolve() == path:
        return
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        raise PluginImportError(f"plugin file {path} cannot be imported as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        del sys.modules[module]
        raise PluginImportError(f"plugin file {path} failed to import: {_cause(exc, path)}") from exc


def add_plugin_files(paths: list[str]) -> None:
    """Append plugin files to `$MMHAR_PLUGINS` (so that worker processes load them too) and load them."""
    current = [s for s in os.environ.get("MMHAR_PLUGINS", "").split(",") if s.strip()]
    resolved = [str(Path(p).expanduser().resolve()) for p in paths]
    for p in resolved:
        import_plugin_source(p)  # a file that fails to import is not handed on to worker processes
    os.environ["MMHAR_PLUGINS"] = ",".join(dict.fromkeys(current + resolved))


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
                import_plugin_source(name)
            except PluginImportError:
                raise
            except ModuleNotFoundError as exc:
                hint = (f"no module named {name!r} is importable: add the folder that holds {name}.py to "
                        f"PYTHONPATH, or name the file itself (--plugins path/to/{name}.py)"
                        if exc.name == name.split(".")[0] else _cause(exc))
                raise PluginImportError(f"module {name!r} listed in $MMHAR_PLUGINS failed to import: {hint}") from exc
            except Exception as exc:
                raise PluginImportError(f"module {name!r} listed in $MMHAR_PLUGINS failed to import: "
                                        f"{_cause(exc)}") from exc
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:
                raise PluginImportError(f"entry point {ep.name!r} ({ep.value}) failed to load: {exc!r}") from exc
        _loaded = True
    finally:
        _loading = False
