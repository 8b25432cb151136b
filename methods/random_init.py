"""`random_init`: a randomly initialised, never trained encoder of one modality (a floor for the SSL methods).

The encoder is the method's own architecture built under the run's seed; pretraining runs 0 epochs, so every
protocol evaluates the frozen random features (the paper_head / linear / knn rows a method must beat to have
learned anything).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from benchmark.backbones import build_encoder
from benchmark.config import ConfigError
from benchmark.contracts import DataInfo, Method
from benchmark.registry import METHODS


@METHODS.register("random_init")
class RandomInit(Method):
    """A frozen random encoder (0 training epochs)."""

    name = "random_init"
    kind = "unimodal"
    n_views = 0
    defaults = {"modality": "inertial", "epochs": 0}

    @classmethod
    def resolve_config(cls, info: DataInfo, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """As Method.resolve_config, with 0 epochs whatever a dataset's profile says (asking for more is an error)."""
        if overrides and overrides.get("epochs", 0) != 0:
            raise ConfigError(f"random_init never trains: epochs must be 0, got {overrides['epochs']!r}")
        return {**super().resolve_config(info, overrides), "epochs": 0}

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modality = cfg["modality"]
        self.encoder = build_encoder(info.kinds[self.modality], info.shapes[self.modality])

    def encoders(self) -> dict[str, nn.Module]:
        return {self.modality: self.encoder}
