"""Supervised baselines (spec 2.3): an encoder trained end-to-end with labels, unimodal or fused.

modality "inertial" | "skeleton": encoder + Linear(d -> classes). Reference schedule: Adam 1e-3, batch 64,
100 epochs (MMAct skeleton 200, declared by its plugin), ReduceLROnPlateau(max, 0.5, patience 10) on
val_<main metric>, early
stopping on val_accuracy (max, patience 50), the best val_<main metric> epoch kept.
modality "all": both encoders + the fusion head (per modality Linear->256, BN, ReLU; concat; Linear),
trained from scratch. Reference schedule: plateau(max, 0.5, patience 5) on val_accuracy, early stopping
on val_loss (min, patience 50), the best val_<main metric> epoch kept.

Options:
- inertial_kernel_size (None = reference): the multimodal supervised reference config omits the inertial
  kernel size, so its conv kernel is the code default 3 (6400-d output); unimodal uses 5. An integer
  forces a kernel size in both cases (5 makes "all" match the SSL encoders).
- train_augment (True = reference): the reference's train-only skeleton transforms: a random crop of
  U(0.7, 1) of the clip resized back to T frames, Gaussian jitter sigma 0.01 and a rotation with angles in
  -5..5 degrees (1 degree steps), each always applied (the pipeline `supervised_skeleton`: a dataset changes it
  through its TrainingProfile.augmentations, as MMAct's plugin turns the rotation of 2-D poses off).
  Deviation: the reference
  crops the raw clip before resampling and jitters before rotating; here the crop acts on the resampled
  clip and the ops run in benchmark.augment's fixed order (jitter, crop, rotation).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones import FusionClassifier, LinearClassifier, build_encoder
from benchmark.blocks import reference_schedule, skeleton_train_augmenter, supervised_loss
from benchmark.config import ConfigError
from benchmark.contracts import ALL, DataInfo, Method
from benchmark.registry import METHODS


@METHODS.register("supervised")
class Supervised(Method):
    """End-to-end supervised classifier on one modality or on all of them (fusion head)."""

    name = "supervised"
    kind = "supervised"
    n_views = 0
    defaults = {"modality": "inertial", "inertial_kernel_size": None, "train_augment": True}

    @classmethod
    def context_defaults(cls, info: DataInfo, modality: str | None) -> dict[str, Any]:
        """The reference schedule, selecting on the dataset's main metric."""
        return reference_schedule(info.training.main_metric, modality == ALL)

    @classmethod
    def resolve_config(cls, info: DataInfo, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """As Method.resolve_config, with the inertial kernel size checked."""
        cfg = super().resolve_config(info, overrides)
        k = cfg["inertial_kernel_size"]
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"supervised.inertial_kernel_size must be null (reference) or an integer >= 1, got {k!r}")
        return cfg

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modalities = self.modalities_used()
        fused = cfg["modality"] == ALL
        kernel = cfg["inertial_kernel_size"] or (3 if fused else 5)
        self.encoder_modules = nn.ModuleDict({
            m: build_encoder(info.kinds[m], info.shapes[m], **({"kernel_size": kernel}
                                                                  if info.kinds[m] == "inertial" else {}))
            for m in self.modalities
        })
        dims = {m: e.out_dim for m, e in self.encoder_modules.items()}
        self.head = FusionClassifier(dims, info.num_classes) if fused else \
            LinearClassifier(dims[self.modalities[0]], info.num_classes)
        self._augmenters = {m: skeleton_train_augmenter(info.training) for m in self.modalities
                            if cfg["train_augment"] and info.kinds[m] == "skeleton"}

    def classify(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = {m: self.encoder_modules[m](x[m]) for m in self.modalities}
        if isinstance(self.head, FusionClassifier):
            return self.head(feats)
        return self.head(feats[self.modalities[0]])

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return supervised_loss(self, self._augmenters, batch)

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)
