"""The method plugin contract. A method is one `Method` subclass in one file, registered in METHODS.

A method declares what it is (`kind`, `n_views`, `defaults`, per-modality-kind defaults, dependencies) and
computes `loss(batch)` for one augmented batch. It never writes a training loop, a data loader, logging or
evaluation: `benchmark.pretrain` trains it with `benchmark.engine.fit`, and the protocols evaluate the
encoders it hands over (`encoders()`, and `projectors()` for cross-modal retrieval).

Configs resolve in layers (`resolve_config`): the schedule defaults, the method's `defaults`, its
`modality_defaults` for the kind of the configured modality, the dataset's `TrainingProfile.method_defaults`
('*', method kind, method name, 'method[modality]'), then the caller's overrides.

Modalities: a method with a `modality` key works on any one modality of the data (supervised methods also on
'all' of them); a multimodal method works on every modality of the data (at least `min_modalities`). Encoders
and augmentations follow the modality's kind ('inertial' or 'skeleton'), never its name.

The batch handed to `loss` is a dict:
- "views": list of `n_views` dicts {modality: augmented tensor [B, ...]} (independent augmentations);
- "x": {modality: un-augmented tensor [B, ...]};
- "y": labels [B] (only supervised methods may use them);
- "index": dataset indices [B];
- "groups": {group: LongTensor [B]} for each group the method declares in `needs_groups` (e.g. "subject");
- "generator": the seeded torch.Generator of the run (for a method's own random draws).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import nn

from benchmark.config import ConfigError, resolve
from benchmark.contracts.dataset import TrainingProfile
from benchmark.engine import TrainConfig

KINDS = ("unimodal", "multimodal", "supervised")
AUG_LAYOUTS = ("reference", "intended")
ALL = "all"  # the modality value of a method that uses every modality of the data

# Schedule keys every method config carries (consumed by TrainConfig.from_dict), with TrainConfig's defaults;
# they are part of every resolved config (and so of every cell key). `aug_layout` picks the augmentation semantics.
SCHEDULE_KEYS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "scheduler", "monitor", "monitor_mode",
                 "plateau_factor", "plateau_patience", "early_stop", "early_stop_mode", "early_stop_patience",
                 "select", "select_mode")
SCHEDULE_DEFAULTS: dict[str, Any] = {
    **{f.name: f.default for f in fields(TrainConfig) if f.name in SCHEDULE_KEYS},
    "aug_layout": "reference",
}


# Value domains of config keys common to many methods: (low, high, low included, high included). A method adds
# or narrows its own in `Method.domains`; values outside are a ConfigError at planning time.
INF = float("inf")
VALUE_DOMAINS: dict[str, tuple[float, float, bool, bool]] = {
    "temperature": (0.0, INF, False, False), "tau_plus": (0.0, 1.0, True, False), "tau_base": (0.0, 1.0, True, True),
    "ema_momentum": (0.0, 1.0, True, True), "plateau_factor": (0.0, 1.0, False, False),
    "weight_decay": (0.0, INF, True, False), "lam": (0.0, INF, True, False), "k": (1.0, INF, True, False),
    "queue_size": (1.0, INF, True, False), "proj_dim": (1.0, INF, True, False), "proj_hidden": (1.0, INF, True, False),
    "pred_hidden": (1.0, INF, True, False), "scale": (0.0, INF, False, False),
}


def check_domains(name: str, cfg: Mapping[str, Any], domains: Mapping[str, tuple[float, float, bool, bool]]) -> None:
    """ConfigError naming the first key whose number lies outside its domain (non-numbers are left to the type check)."""
    for key, (lo, hi, lo_in, hi_in) in domains.items():
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        ok = (v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi) and v == v
        if not ok:
            rng = f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"
            raise ConfigError(f"{name}.{key} must be in {rng}, got {v!r}")


@dataclass(frozen=True)
class DataInfo:
    """What a method may know about the data: per-sample shapes, modality kinds, classes, training profile."""

    shapes: dict[str, tuple[int, ...]]  # e.g. {"inertial": (6, 50), "skeleton": (3, 50, 20)}
    kinds: dict[str, str]  # modality -> "inertial" | "skeleton"
    num_classes: int
    training: TrainingProfile = field(default_factory=TrainingProfile)
    dataset: str = ""
    train_size: int | None = None  # clips in the train part of the split (None: unknown)
    groups: tuple[str, ...] = ()  # the grouping keys the data records (e.g. "subject")

    @property
    def layouts(self) -> dict[str, str]:
        """The modality kinds under their older name."""
        return self.kinds

    @property
    def modalities(self) -> list[str]:
        return list(self.shapes)

    @classmethod
    def from_data(cls, data: Any, split: Any = None) -> "DataInfo":
        """The info of a loaded `MultimodalData` (and, given a Split, the size of its train part)."""
        specs = data.meta["modality_specs"]
        return cls(
            shapes={m: tuple(int(d) for d in t.shape[1:]) for m, t in data.modalities.items()},
            kinds={m: specs[m]["kind"] for m in data.modalities},
            num_classes=data.num_classes,
            # the declared vector triplets of each modality reach the augmenters through the profile
            training=(data.meta.get("training") or TrainingProfile()).with_vectors(specs),
            dataset=data.name,
            train_size=None if split is None else int(len(split.train)),
            groups=tuple(sorted(data.groups)),
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
    modality_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # modality kind -> defaults on such a modality
    modality_kinds: ClassVar[tuple[str, ...] | None] = None  # kinds the method can use (None: any)
    min_modalities: ClassVar[int] = 2  # multimodal methods: how many modalities they need at least
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}  # allowed values for enumerated keys
    needs_groups: ClassVar[tuple[str, ...]] = ()  # group keys the batches must carry (batch["groups"])
    domains: ClassVar[dict[str, tuple[float, float, bool, bool]]] = {}  # key -> (low, high, low in, high in)

    # -- configuration ------------------------------------------------------------------------
    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**SCHEDULE_DEFAULTS, **cls.defaults}

    @classmethod
    def usable_modalities(cls, info: DataInfo) -> list[str]:
        """The data's modalities of a kind this method can use."""
        return [m for m in info.shapes if cls.modality_kinds is None or info.kinds[m] in cls.modality_kinds]

    @classmethod
    def modality_options(cls, info: DataInfo) -> tuple[str, ...]:
        """The `modality` values this method can take on this data (empty: the method has no modality key)."""
        if "modality" not in cls.all_defaults():
            return ()
        declared = cls.choices.get("modality")
        usable = cls.usable_modalities(info)
        if declared is not None:  # a plugin that fixes its modality values
            return tuple(m for m in declared if m in usable or (m == ALL and len(usable) > 1))
        extra = (ALL,) if cls.kind == "supervised" and len(usable) > 1 else ()
        return tuple(usable) + extra

    @classmethod
    def applicability(cls, info: DataInfo) -> str | None:
        """Why this method cannot run on this data (None: it can)."""
        usable = cls.usable_modalities(info)
        missing = [g for g in cls.needs_groups if g not in info.groups]
        if missing:
            return (f"needs the {', '.join(repr(g) for g in missing)} group of every clip, which "
                    f"{info.dataset or 'the data'} does not record (it records {list(info.groups) or 'no groups'})")
        if "modality" in cls.all_defaults():
            return None if cls.modality_options(info) else \
                f"needs a modality of kind {', '.join(cls.modality_kinds or ())}; the data has {info.kinds}"
        if cls.kind == "multimodal" and len(usable) < cls.min_modalities:
            return f"needs at least {cls.min_modalities} modalities; the data has {len(usable)} ({', '.join(usable)})"
        return None

    @classmethod
    def context_defaults(cls, info: DataInfo, modality: str | None) -> dict[str, Any]:
        """Defaults that depend on the data (default: `modality_defaults` of the configured modality's kind)."""
        kind = info.kinds.get(modality) if modality else None
        return dict(cls.modality_defaults.get(kind, {})) if kind else {}

    @classmethod
    def resolve_config(cls, info: DataInfo, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every layer of defaults, then `overrides` (see the module docstring); unknown or ill-typed keys fail."""
        if not isinstance(info, DataInfo):
            raise TypeError(f"{cls.__name__}.resolve_config needs a DataInfo (got {info!r}); build one with "
                            f"DataInfo.from_data(data)")
        base = cls.all_defaults()
        overrides = dict(overrides or {})
        modality = overrides.get("modality", base.get("modality"))
        options = cls.modality_options(info)
        if "modality" in base and modality not in options and "modality" not in overrides and options:
            modality = options[0]  # the method's default modality is not in this data: its first usable one
            overrides = {"modality": modality, **overrides}
        profile = info.training
        kind_of = info.kinds.get(modality) if isinstance(modality, str) else None
        layers: list[tuple[str, Mapping[str, Any] | None]] = [("data-dependent defaults",
                                                               cls.context_defaults(info, modality))]
        where = f"dataset {info.dataset}" if info.dataset else "the dataset's training profile"
        for sel in profile.selectors(cls.name, cls.kind, modality if "modality" in base else None, kind_of):
            values = profile.method_defaults[sel]
            if sel in ("*", cls.kind):  # generic selectors: only the keys this method has
                values = {k: v for k, v in values.items() if k in base}
            layers.append((f"{where}, method_defaults[{sel!r}]", values))
        layers.append(("overrides", overrides))
        cfg = resolve(cls.name, base, layers, choices=cls.choices_for(info), what=f"method {cls.name!r}",
                      allow_none=True)
        check_domains(cls.name, cfg, {**VALUE_DOMAINS, **cls.domains})
        if cfg["aug_layout"] not in AUG_LAYOUTS:
            raise ConfigError(f"invalid aug_layout {cfg['aug_layout']!r}; choose reference or intended")
        TrainConfig.from_dict(cfg)  # validates schedule values
        return cfg

    @classmethod
    def choices_for(cls, info: DataInfo) -> dict[str, tuple[Any, ...]]:
        """The enumerated keys' allowed values on this data (the modality choices follow the data)."""
        out = {k: v for k, v in cls.choices.items() if k != "modality"}
        if "modality" in cls.all_defaults():
            opts = cls.modality_options(info)
            if not opts:
                raise ConfigError(f"method {cls.name!r} cannot run on {info.dataset or 'this data'}: "
                                  f"{cls.applicability(info)}")
            out["modality"] = opts
        return out

    @classmethod
    def dependencies(cls, cfg: dict[str, Any], info: DataInfo) -> list[Dependency]:
        """Pretrained methods this configuration needs on this data; the runner trains or loads them first."""
        return []

    @classmethod
    def variant_name(cls, cfg: dict[str, Any]) -> str:
        """Display name of a configured method (e.g. 'my_method[inertial]')."""
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
        if mod and mod != ALL:
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
