"""SICL, subject-invariant contrastive learning (olivesgatech/SICL, MLSP 2025; more_methods_spec.md section 1).

A fork of the reference that changes SimCLR's / CMC's loss only: rows of the anchor's own subject leave the
InfoNCE denominator and return as a hinged penalty scaled by 1 / (1 - tau_plus) (benchmark.losses.sicl_loss,
computed exactly as the fork does, including the row-max shift, the batch-wide Pi and the floor
N exp(-1 / T)). Subject ids come from the dataset's "subject" group (a dataset that does not record it cannot
run SICL: the planner lists it as not applicable). Settings as the fork's command-line defaults:
T = 0.05, tau_plus = 0.2 (its beta = 0.5 cancels exactly and is not a parameter); encoder + Linear(d->256),
BN, ReLU, Linear(256->128); Adam 1e-3, ReduceLROnPlateau(min, 0.5, patience 20) on the train loss; 300
epochs; batch inertial 128, skeleton 32 (its UTD-MHAD configs). Batches are drawn at random (no subject-
balanced sampler, as the fork).

- `sicl`: two augmented views of one modality.
- `sicl_mm`: the fork's CMC-style form (`--framework cmc --loss super_subject`): one view per modality, the
  modalities are the views, same- and other-subject sets hold intra- and cross-modal rows; for n modalities
  N = n (B - 1). 100 epochs, batch 64 ([ours] for UTD-MHAD: the fork's UTD multimodal config cannot run).

Validation on a single subject (the suite's xsub validates on subject 7) leaves the loss undefined; there the
val loss treats every clip as its own subject (documented deviation; it only enters the logged val_loss).
The fork's own UTD-MHAD split is the dataset's `sicl_reference` split.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.blocks import encoders_and_heads
from benchmark.contracts import DataInfo, Method
from benchmark.losses import sicl_loss
from benchmark.registry import METHODS

SICL_DEFAULTS = {"temperature": 0.05, "tau_plus": 0.2, "proj_hidden": 256, "proj_dim": 128}


class _SICLBase(Method):
    """One encoder and projection head per modality used; batches carry subject ids."""

    needs_groups = ("subject",)

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        if not cfg["temperature"] > 0 or not 0 <= cfg["tau_plus"] < 1:
            raise ValueError(f"{self.name}: temperature must be > 0 and tau_plus in [0, 1), got "
                             f"{cfg['temperature']}, {cfg['tau_plus']}")
        self.modalities = self.modalities_used()
        self.encoder_modules, self.heads = encoders_and_heads(info, self.modalities, cfg["proj_hidden"],
                                                              cfg["proj_dim"])

    def views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        raise NotImplementedError

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return sicl_loss(self.views(batch), batch["groups"]["subject"], self.cfg["temperature"], self.cfg["tau_plus"])

    def val_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        subjects = batch["groups"]["subject"]
        if bool((subjects == subjects[0]).all()):  # one subject: every clip its own (see the module docstring)
            subjects = torch.arange(subjects.shape[0], device=subjects.device)
        return sicl_loss(self.views(batch), subjects, self.cfg["temperature"], self.cfg["tau_plus"])

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.heads)


@METHODS.register("sicl")
class SICL(_SICLBase):
    """Unimodal SICL: two augmented views of one modality."""

    name = "sicl"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "epochs": 300, **SICL_DEFAULTS}
    modality_defaults = {"inertial": {"batch_size": 128}, "skeleton": {"batch_size": 32}}

    def views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        m = self.modalities[0]
        v1, v2 = (view[m] for view in batch["views"][:2])
        z = self.heads[m](self.encoder_modules[m](torch.cat([v1, v2])))
        return [z[: v1.shape[0]], z[v1.shape[0]:]]


@METHODS.register("sicl_mm")
class SICLCrossModal(_SICLBase):
    """CMC-style SICL: the modalities (one view each) are the views."""

    name = "sicl_mm"
    kind = "multimodal"
    n_views = 1
    defaults = {"epochs": 100, "batch_size": 64, **SICL_DEFAULTS}

    def views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        x = batch["views"][0]
        return [self.heads[m](self.encoder_modules[m](x[m])) for m in self.modalities]
