"""The method plugin contract. A method is one `Method` subclass in one file, registered in METHODS.

A method declares what it is (`kind`, `n_views`, `defaults`, per-profile defaults, dependencies) and
computes `loss(batch)` for one augmented batch. It never writes a training loop, a data loader, logging
or evaluation: `benchmark.pretrain` trains it with `benchmark.engine.fit`, and the protocols evaluate
the encoders it hands over (`encoders()`, and `projectors()` for cross-modal retrieval).

The batch handed to `loss` is a dict:
- "views": list of `n_views` dicts {modality: augmented tensor [B, ...]} (independent augmentations);
- "x": {modality: un-augmented tensor [B, ...]};
- "y": labels [B] (only supervised methods may use them);
- "index": dataset indices [B].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from benchmark.engine import ConfigError, TrainConfig

KINDS = ("unimodal", "multimodal", "supervised")

# Schedule keys every method config carries (consumed by TrainConfig.from_dict).
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "scheduler": "plateau",
    "monitor": "train_loss_last",
    "monitor_mode": "min",
    "plateau_factor": 0.5,
    "plateau_patience": 20,
    "early_stop": None,
    "early_stop_mode": "min",
    "early_stop_patience": 50,
    "select": None,
    "select_mode": "max",
    "aug_layout": "reference",
}


@dataclass(frozen=True)
class DataInfo:
    """What a method may know about the data: per-sample shapes, layouts, classes and profile."""

    shapes: dict[str, tuple[int, ...]]  # e.g. {"inertial": (6, 50), "skeleton": (3, 50, 20)}
    layouts: dict[str, str]  # modality -> "inertial" | "skeleton"
    num_classes: int
    profile: str  # "utd_mhad" | "mmact": selects per-dataset defaults and augmentation parameters

    @classmethod
    def from_data(cls, data: Any) -> "DataInfo":
        specs = data.meta["modality_specs"]
        return cls(
            shapes={m: tuple(t.shape[1:]) for m, t in data.modalities.items()},
            layouts={m: specs[m]["layout"] for m in data.modalities},
            num_classes=data.num_classes,
            profile=data.meta["profile"],
        )


@dataclass(frozen=True)
class Dependency:
    """Another pretrained method this one needs (e.g. CMKM's SimCLR teachers), by name and config overrides."""

    key: str  # how the method refers to it, e.g. "teacher_inertial"
    method: str
    overrides: dict[str, Any]


class Method(nn.Module):
    """Base class of method plugins."""

    name: ClassVar[str]
    kind: ClassVar[str]
    n_views: ClassVar[int] = 2
    defaults: ClassVar[dict[str, Any]] = {}
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}  # allowed values for enumerated keys

    # -- configuration ------------------------------------------------------------------------
    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**SCHEDULE_DEFAULTS, **cls.defaults}

    @classmethod
    def resolve_config(cls, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults, then the dataset profile's defaults, then `overrides`; unknown or ill-typed keys fail."""
        base = cls.all_defaults()
        cfg = dict(base)
        for source, values in (("profile " + profile, cls.profile_defaults.get(profile, {})),
                               ("overrides", overrides or {})):
            for k, v in values.items():
                if k not in base:
                    raise ConfigError(
                        f"unknown config key {k!r} for method {cls.name!r} (from {source}); valid keys: "
                        f"{', '.join(sorted(base))}"
                    )
                cfg[k] = _coerce(cls.name, k, v, base[k])
        for k, allowed in cls.choices.items():
            if cfg.get(k) not in allowed:
                raise ConfigError(f"invalid value {cfg.get(k)!r} for {cls.name}.{k}; choose one of {allowed}")
        if cfg["aug_layout"] not in ("reference", "intended"):
            raise ConfigError(f"invalid aug_layout {cfg['aug_layout']!r}; choose reference or intended")
        TrainConfig.from_dict(cfg)  # validates schedule values
        return cfg

    @classmethod
    def dependencies(cls, cfg: dict[str, Any]) -> list[Dependency]:
        """Pretrained methods this configuration needs; the runner trains or loads them first."""
        return []

    @classmethod
    def variant_name(cls, cfg: dict[str, Any]) -> str:
        """Display name of a configured method (e.g. 'simclr[inertial]')."""
        mod = cfg.get("modality")
        return f"{cls.name}[{mod}]" if mod else cls.name

    # -- construction -------------------------------------------------------------------------
    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, "Method"] | None = None) -> None:
        super().__init__()
        self.info = info
        self.cfg = cfg
        self._deps = deps or {}

    def modalities_used(self) -> list[str]:
        """Modalities this method reads (default: the configured one, or all)."""
        mod = self.cfg.get("modality")
        if mod and mod != "all":
            return [mod]
        return list(self.info.shapes)

    # -- training -----------------------------------------------------------------------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def val_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Loss on a validation batch (default: the training loss)."""
        return self.loss(batch)

    def after_step(self) -> None:
        """Called by the engine after each optimizer step (e.g. momentum-encoder update)."""

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.cfg)

    # -- evaluation hand-off --------------------------------------------------------------------
    def encoders(self) -> dict[str, nn.Module]:
        """{modality: encoder} whose (flattened) outputs the protocols evaluate."""
        raise NotImplementedError

    def projectors(self) -> dict[str, nn.Module]:
        """{modality: projection head} into a shared space, where the method has one (cross-modal retrieval)."""
        return {}

    def classify(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of a supervised method's own classifier (only for kind == 'supervised')."""
        raise NotImplementedError


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """Check `value` against the default's type (ints accepted for floats; None defaults accept anything)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{method}.{key} must be true/false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
        raise ConfigError(
            f"{method}.{key} must be {type(default).__name__} (default {default!r}), got {value!r}"
        )
    return value
