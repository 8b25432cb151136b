"""BYOL (Grill et al. 2020; more_methods_spec.md section 4), unimodal (`byol`) and cross-modal (`byol_mm`).

Online network per modality: encoder f, projector g (d->256, BN, ReLU ->128) and predictor q (128->256, BN,
ReLU ->128); target network: EMA copies of f and g (parameters only; the target runs in train mode, without
gradients, and starts as an exact copy). Loss per direction 2 - 2 cos(q(g(f(v))), sg g'(f'(v'))), summed
over both directions (solo-learn's range [0, 8]). The target momentum follows BYOL's per-step cosine
tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2, K = epochs x optimiser steps per epoch, updated after
every step with the harness's `momentum_update` (MoCo's).

Deviations for small HAR batches (spec 4.3, all configurable): tau_base 0.99 on UTD-MHAD (~5 steps per
epoch; 0.996 is BYOL's and suits MMAct), suite-sized heads instead of 4096-wide ones, Adam 1e-3 with the
suite's plateau schedule instead of LARS, batches as SimCLR's per modality (inertial 128, skeleton 32) and 300
epochs. The online encoder is evaluated.

`byol_mm` [ours; no reference code exists]: one view per modality; each modality's online branch predicts
every other modality's target projection; L = sum over both directions of each modality pair, averaged over
the unordered pairs (at two modalities: byol(q_I(z_I), sg z'_S) + byol(q_S(z_S), sg z'_I)). Batch 64, 100
epochs (CMC's).
"""
from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
from torch import nn

from benchmark.backbones import ProjectionHead
from benchmark.blocks import encoders_and_heads, frozen_copy, momentum_update
from benchmark.contracts import DataInfo, Method
from benchmark.losses import byol_loss, byol_momentum
from benchmark.registry import METHODS

HEADS = {"proj_hidden": 256, "proj_dim": 128, "pred_hidden": 256, "tau_base": 0.99}


class _BYOLBase(Method):
    """Online encoders + projectors + predictors and their EMA targets, one per modality used."""

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        if not 0.0 <= cfg["tau_base"] <= 1.0:
            raise ValueError(f"{self.name}.tau_base must be in [0, 1], got {cfg['tau_base']}")
        self.modalities = self.modalities_used()
        self.encoder_modules, self.heads = encoders_and_heads(info, self.modalities, cfg["proj_hidden"],
                                                              cfg["proj_dim"])
        self.predictors = nn.ModuleDict({m: ProjectionHead(cfg["proj_dim"], cfg["pred_hidden"], cfg["proj_dim"])
                                         for m in self.modalities})
        self.target_encoders = nn.ModuleDict({m: frozen_copy(e) for m, e in self.encoder_modules.items()})
        self.target_heads = nn.ModuleDict({m: frozen_copy(h) for m, h in self.heads.items()})
        steps = (info.train_size or 0) // int(cfg["batch_size"])
        self.total_steps = int(cfg["epochs"]) * max(steps, 1)
        self.steps_done = 0

    def online(self, m: str, x: torch.Tensor) -> torch.Tensor:
        """q(g(f(x))): the online prediction."""
        return self.predictors[m](self.heads[m](self.encoder_modules[m](x)))

    @torch.no_grad()
    def target(self, m: str, x: torch.Tensor) -> torch.Tensor:
        """g'(f'(x)): the target projection (no gradient)."""
        return self.target_heads[m](self.target_encoders[m](x))

    def momentum(self) -> float:
        """The target momentum of the current step."""
        return byol_momentum(self.steps_done, self.total_steps, float(self.cfg["tau_base"]))

    def after_step(self) -> None:
        tau = self.momentum()
        for m in self.modalities:
            momentum_update(self.encoder_modules[m], self.target_encoders[m], tau)
            momentum_update(self.heads[m], self.target_heads[m], tau)
        self.steps_done += 1

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)


@METHODS.register("byol")
class BYOL(_BYOLBase):
    """Unimodal BYOL: two augmented views, symmetric loss."""

    name = "byol"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "epochs": 300, **HEADS}
    modality_defaults = {"inertial": {"batch_size": 128}, "skeleton": {"batch_size": 32}}  # SimCLR's (UTD-MHAD)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        m = self.modalities[0]
        v1, v2 = (view[m] for view in batch["views"][:2])
        p = self.online(m, torch.cat([v1, v2]))
        z = self.target(m, torch.cat([v1, v2]))
        n = v1.shape[0]
        return byol_loss(p[:n], z[n:]) + byol_loss(p[n:], z[:n])


@METHODS.register("byol_mm")
class BYOLCrossModal(_BYOLBase):
    """Cross-modal BYOL: each modality's online branch predicts the other modalities' target projections."""

    name = "byol_mm"
    kind = "multimodal"
    n_views = 1
    defaults = {"epochs": 100, "batch_size": 64, **HEADS}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        x = batch["views"][0]
        p = {m: self.online(m, x[m]) for m in self.modalities}
        z = {m: self.target(m, x[m]) for m in self.modalities}
        pairs = list(combinations(self.modalities, 2))
        return sum(byol_loss(p[a], z[b]) + byol_loss(p[b], z[a]) for a, b in pairs) / len(pairs)
