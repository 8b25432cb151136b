"""Hashes of the code that produces a cell's numbers, so cache keys follow the code by themselves.

A source file is hashed as its syntax tree without docstrings (`source_hash`): comments, blank lines,
formatting and docstrings do not change the hash; any changed expression, name or constant does. The hashes
that enter the keys:

- `harness_hash()`: the harness modules that change numbers (`HARNESS_CODE`: training loop, backbones,
  augmentations, losses, protocols, data preparation, the method/dataset base classes, the worker);
- `plugin_hash(cls)`: a method or dataset plugin's own file, the modules it imports from its own package
  (e.g. `methods.base`, `datasets._synthetic_motion`), and any file or module it declares in `code_files`.

`CODE_VERSION` (benchmark.runner.units) stays as the explicit override for changes outside these files.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

BENCHMARK_DIR = Path(__file__).resolve().parent
# Harness files and folders (relative to benchmark/) whose code changes a cell's numbers.
HARNESS_CODE = ("engine.py", "augment.py", "augment_ops.py", "losses.py", "blocks.py", "data.py", "metrics.py",
                "pretrain.py", "hardware.py", "backbones", "protocols", "contracts", "runner/worker.py")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_source(text: str) -> str:
    """The source's syntax tree without docstrings, as text (the raw text where it does not parse)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    return ast.dump(_strip_docstrings(tree), annotate_fields=False, include_attributes=False)


@functools.lru_cache(maxsize=512)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(normalised_source(Path(path).read_text(encoding="utf-8")).encode()).hexdigest()


def source_hash(path: Path) -> str:
    """sha256 of a Python file's docstring-free syntax tree (cached by path, size and modification time)."""
    st = Path(path).stat()
    return _file_hash(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def files_hash(files: dict[str, Path]) -> str:
    """16 hex digits over (name, source hash) of every file, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{source_hash(files[name])}\n".encode())
    return h.hexdigest()[:16]


def harness_files(root: Path = BENCHMARK_DIR) -> dict[str, Path]:
    """{path relative to the repository: file} of the harness code that changes numbers."""
    out: dict[str, Path] = {}
    for entry in HARNESS_CODE:
        p = root / entry
        for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.is_file() else []):
            if "__pycache__" not in f.parts:
                out[f"benchmark/{f.relative_to(root).as_posix()}"] = f
    return out


def harness_hash() -> str:
    """The hash of the harness code that changes numbers (`HARNESS_CODE`)."""
    return files_hash(harness_files())


def harness_hash_of_sources(sources: dict[str, str]) -> str:
    """`harness_hash` of file texts given by repository path (e.g. read from an older commit with git)."""
    h = hashlib.sha256()
    for name in sorted(sources):
        digest = hashlib.sha256(normalised_source(sources[name]).encode()).hexdigest()
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()[:16]


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec else None
    return Path(origin) if origin and origin.endswith(".py") else None


def _sibling_imports(path: Path, module: str) -> list[str]:
    """Modules of the same top-level package that a plugin file imports (absolute or relative imports)."""
    package = module.split(".")[0] if "." in module else None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level and package:
                base = module.rsplit(".", node.level)[0]
                out.append(f"{base}.{node.module}" if node.module else base)
                out.extend(f"{base}.{a.name}" for a in node.names if not node.module)
            elif node.module and package and node.module.split(".")[0] == package:
                out.append(node.module)
                out.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import) and package:
            out.extend(a.name for a in node.names if a.name.split(".")[0] == package)
    return out


def plugin_files(cls: Any) -> dict[str, Path]:
    """{name: file} of the code behind a plugin class: its file, its package siblings, its `code_files`."""
    try:
        own = Path(inspect.getsourcefile(cls) or "")
    except TypeError:
        return {}
    if not own.is_file():
        return {}
    module = cls.__module__
    out = {module: own}
    todo = _sibling_imports(own, module)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        f = _module_file(name)
        if f is not None and f.is_file():
            out[name] = f
            todo.extend(_sibling_imports(f, name))
    for extra in getattr(cls, "code_files", ()) or ():
        f = own.parent / extra if str(extra).endswith(".py") else _module_file(str(extra))
        if f is None or not Path(f).is_file():
            raise ValueError(f"{cls.__qualname__}.code_files names {extra!r}, which is neither a .py file beside "
                             f"{own.name} nor an importable module; fix the name or remove it")
        out[str(extra)] = Path(f)
    return out


def plugin_hash(cls: Any) -> str:
    """The hash of a method or dataset plugin's code (`plugin_files`); '-' when its source is not available."""
    files = plugin_files(cls)
    return files_hash(files) if files else "-"


def code_hashes(method_cls: Any, dataset_cls: Any) -> dict[str, str]:
    """{'harness', 'method', 'dataset'} hashes of the code behind one cell."""
    return {"harness": harness_hash(), "method": plugin_hash(method_cls), "dataset": plugin_hash(dataset_cls)}
