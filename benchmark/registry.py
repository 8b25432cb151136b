"""One small registry type for every kind of plugin (methods, datasets, backbones, protocols)."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(ValueError):
    """A plugin name is duplicated or unknown; the message lists the known names."""


class Registry(Generic[T]):
    """Maps names to plugin objects (classes or functions) of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated object under `name` (default: its `name` attribute or __name__)."""

        def deco(obj: T) -> T:
            plugin: Any = obj  # a class or a function: both have __name__, classes may set `name`
            key = name or getattr(plugin, "name", None) or plugin.__name__
            self.add(key, obj)
            if isinstance(obj, type) and getattr(obj, "name", None) != key:
                plugin.name = key  # the registered name is the plugin's name everywhere (records, errors)
            return obj

        return deco

    def add(self, key: str, obj: T) -> None:
        """Register `obj` as `key`; a second plugin with the same name is an error."""
        if not isinstance(key, str) or not key:
            raise RegistryError(f"{self.kind} name must be a non-empty string, got {key!r}")
        origin = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
        if key in self._items:
            if self._origin[key] == origin:  # the same module imported twice (e.g. reload): keep the newest
                self._items[key] = obj
                return
            raise RegistryError(
                f"duplicate {self.kind} name {key!r}: already registered by {self._origin[key]}, "
                f"registered again by {origin}. Rename one of them."
            )
        self._items[key] = obj
        self._origin[key] = origin

    def remove(self, key: str) -> None:
        """Forget a registered name (used by tests that add temporary plugins)."""
        self._items.pop(key, None)
        self._origin.pop(key, None)

    def get(self, key: str) -> T:
        """Return the plugin called `key`, or raise an error naming the known ones and the closest match."""
        _ensure_plugins_loaded()
        if key not in self._items:
            raise RegistryError(unknown_name_message(self.kind, key, self.names()))
        return self._items[key]

    def names(self) -> list[str]:
        """Sorted registered names."""
        _ensure_plugins_loaded()
        return sorted(self._items)

    def __contains__(self, key: object) -> bool:
        _ensure_plugins_loaded()
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._items[k]) for k in self.names()]


def unknown_name_message(kind: str, key: Any, known: list[str]) -> str:
    """A one-line error for an unknown choice: the known names and the closest one."""
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {key!r}. Known {kind}s: {', '.join(known) or '(none)'}.{hint}"


def _ensure_plugins_loaded() -> None:
    from benchmark import plugins  # local import: plugins imports the registries

    plugins.load_plugins()


METHODS: Registry[Any] = Registry("method")
DATASETS: Registry[Any] = Registry("dataset")
BACKBONES: Registry[Any] = Registry("backbone")
PROTOCOLS: Registry[Any] = Registry("protocol")
