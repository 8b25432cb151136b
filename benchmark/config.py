"""The one config mechanism: defaults + layered overrides, checked key by key (methods, protocols,
augmentations and dataset options all resolve their configs here).

A config is a flat dict. Its valid keys are the keys of its defaults; a value must have the default's type
(ints are accepted for floats, lists for tuples; a `None` default accepts anything) unless `types` names the
accepted types of that key. Enumerated keys are checked against `choices`. Every error is a `ConfigError`
that names the owner, the key, the offending value and where it came from.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any


class ConfigError(ValueError):
    """An unknown config key or a value of the wrong type or range; the message names it."""


def coerce(owner: str, key: str, value: Any, default: Any, types: tuple[type, ...] | None = None,
           allow_none: bool = False) -> Any:
    """`value` checked against the declared `types` (or the default's type), converted where harmless;
    `allow_none` lets `None` stand for any key (methods: 'not set')."""
    if types is not None:
        if value is None and type(None) in types:
            return value
        if isinstance(value, bool) and bool not in types:
            raise ConfigError(f"{owner}.{key} must be one of {[t.__name__ for t in types]}, got {value!r}")
        if float in types and isinstance(value, int) and not isinstance(value, bool) and int not in types:
            return float(value)
        if isinstance(value, list) and tuple in types:
            return tuple(value)
        if not isinstance(value, types):
            raise ConfigError(f"{owner}.{key} must be one of {[t.__name__ for t in types]}, got {value!r}")
        return value
    if default is None or (value is None and allow_none):
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if not (isinstance(default, bool) and isinstance(value, bool)):
            raise ConfigError(f"{owner}.{key} must be true/false, got {value!r}" if isinstance(default, bool)
                              else f"{owner}.{key} must be {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    if not isinstance(value, type(default)):
        raise ConfigError(f"{owner}.{key} must be {type(default).__name__} (default {default!r}), got {value!r}")
    return value


def resolve(owner: str, defaults: Mapping[str, Any], layers: Iterable[tuple[str, Mapping[str, Any] | None]] = (),
            *, choices: Mapping[str, Iterable[Any]] | None = None,
            types: Mapping[str, tuple[type, ...]] | None = None, what: str = "",
            allow_none: bool = False, noun: str = "config key") -> dict[str, Any]:
    """`defaults` updated by each (source label, overrides) layer in turn; unknown keys and bad values fail.

    `what` names the owner in unknown-key messages (e.g. "method 'my_method'"); the source label says which
    layer brought the key (e.g. "dataset my_data, method_defaults['*']" or "overrides").
    """
    what = what or repr(owner)
    cfg = copy.deepcopy(dict(defaults))
    for source, values in layers:
        for key, value in (values or {}).items():
            if key not in defaults:
                src = f" (from {source})" if source else ""
                plural = "options" if noun == "option" else "keys"
                raise ConfigError(f"unknown {noun} {key!r} for {what}{src}; valid {plural}: "
                                  f"{', '.join(sorted(defaults)) or 'none'}")
            cfg[key] = coerce(owner, key, value, defaults[key], (types or {}).get(key), allow_none)
    for key, allowed in (choices or {}).items():
        allowed = tuple(allowed)
        if cfg.get(key) not in allowed:
            raise ConfigError(f"invalid value {cfg.get(key)!r} for {owner}.{key}; choose one of "
                              f"{', '.join(map(repr, allowed))}")
    return cfg
