"""Frozen-encoder supervised fusion: the reference's `supervised_training_mm.py --pre_trained_paths` path.

The unimodal supervised encoders (`supervised[<modality>]`, one per modality of the data) are trained
first as dependencies (the same pretraining units as the unimodal supervised rows: cached and shared), then
frozen, and the reference's fusion head (per modality Linear->256, BN, ReLU; concat; Linear) is trained on
top with the multimodal-supervised schedule: Adam 1e-3, batch 64, 100 epochs, ReduceLROnPlateau(max, 0.5,
patience 5) on val_accuracy, early stopping on val_loss (patience 50), the best val_<main metric> epoch kept.
The skeleton input gets the supervised configs' train-only transforms (`train_augment`, as `supervised`).

An audit of the reference found that this path, not the end-to-end `supervised[all]`, is the one that
reaches the published multimodal-supervised 97.21 on UTD-MHAD.

`bn_mode`: "reference" (default) keeps the frozen encoders in train mode while the head trains, as Lightning
does (BN statistics adapt, dropout is active; weights never change); "frozen" keeps them in eval mode.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones import FusionClassifier, build_encoder
from benchmark.blocks import frozen_encoder_copy, reference_schedule, skeleton_train_augmenter, supervised_loss
from benchmark.contracts import DataInfo, Dependency, Method
from benchmark.registry import METHODS


@METHODS.register("supervised_fusion")
class SupervisedFusion(Method):
    """Fusion head on the frozen encoders of separately trained unimodal supervised models."""

    name = "supervised_fusion"
    kind = "supervised"
    n_views = 0
    defaults = {"train_augment": True, "bn_mode": "reference"}
    choices = {"bn_mode": ("reference", "frozen")}

    @classmethod
    def context_defaults(cls, info: DataInfo, modality: str | None) -> dict[str, Any]:
        """The reference's multimodal-supervised schedule, selecting on the dataset's main metric."""
        return reference_schedule(info.training.main_metric, fused=True)

    @classmethod
    def applicability(cls, info: DataInfo) -> str | None:
        if len(info.shapes) < 2:
            return f"needs at least 2 modalities to fuse; the data has {len(info.shapes)}"
        return None

    @classmethod
    def dependencies(cls, cfg: dict[str, Any], info: DataInfo) -> list[Dependency]:
        return [Dependency(f"encoder_{m}", "supervised", {"modality": m}) for m in info.shapes]

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modalities = list(info.shapes)
        # with the trained dependencies: frozen copies of their encoders; without them (rebuilding from a
        # checkpoint, which holds the frozen encoders' weights): untrained encoders of the same shape
        self.encoder_modules = nn.ModuleDict({
            m: frozen_encoder_copy(info, m, self._deps[f"encoder_{m}"].encoders()[m], owner=self.name)
            if f"encoder_{m}" in self._deps else build_encoder(info.kinds[m], info.shapes[m]).requires_grad_(False)
            for m in self.modalities})
        self.head = FusionClassifier({m: e.out_dim for m, e in self.encoder_modules.items()}, info.num_classes)
        self._augmenters = {m: skeleton_train_augmenter(info.training) for m in self.modalities
                            if cfg["train_augment"] and info.kinds[m] == "skeleton"}

    def train(self, mode: bool = True) -> "SupervisedFusion":
        super().train(mode)
        if self.cfg["bn_mode"] == "frozen":
            self.encoder_modules.eval()
        return self

    def classify(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head({m: self.encoder_modules[m](x[m]) for m in self.modalities})

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return supervised_loss(self, self._augmenters, batch)

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)
