"""Barlow Twins (Zbontar et al. 2021; more_methods_spec.md section 2), unimodal and cross-modal.

As the authors' own fork of the reference implements it (MartijnHilders/No-Negative-Sample-SSL, [NN]):
encoder + projector Linear(d->256), BN, ReLU, Linear(256->128); the loss standardises each embedding
dimension with the batch's own statistics in every call (BN without affine) and takes
sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2 of the cross-correlation C, lambda 5e-3, no scale
(`scale=0.025` gives solo-learn's). Adam 1e-3 with the suite's plateau schedule on the train loss
([NN]: plateau factor 0.9, patience 5 on the val loss: set monitor=val_loss, plateau_factor=0.9,
plateau_patience=5). The paper's 8192-wide projector and LARS at batch 2048 do not fit ~323 clips.

- `barlow_twins`: two augmented views of one modality; 300 epochs (as [NN]'s unimodal configs); batch
  inertial 128, skeleton 64 on UTD-MHAD (no UTD-MHAD config exists in [NN]: [NOT FOUND], chosen here).
- `barlow_twins_mm`: every modality with two views, each modality's own encoder and projector; the loss sums
  BT(m1, m2) over modalities and BT(m1, m'2) + BT(m2, m'1) over modality pairs ([NN]'s 4-term sum at two
  modalities); 100 epochs, batch 64 ([NN]: 128 on MMAct).

Rank floor (spec 2.4): with D = 128 > N - 1 the loss cannot reach 0; identical views give at least
lambda (D^2 / (N - 1) - D): 0.66 at N = 64, 0.005 at N = 128. Collapse reads L = D (128) per term.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.blocks import encoders_and_heads
from benchmark.contracts import DataInfo, Method
from benchmark.losses import barlow_twins, barlow_twins_multi
from benchmark.registry import METHODS

BT_DEFAULTS = {"lam": 5e-3, "scale": 1.0, "proj_hidden": 256, "proj_dim": 128}


class _BarlowBase(Method):
    """One encoder and one projector per modality used."""

    n_views = 2

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        if cfg["lam"] < 0 or cfg["scale"] <= 0:
            raise ValueError(f"{self.name}: lam must be >= 0 and scale > 0, got {cfg['lam']}, {cfg['scale']}")
        self.modalities = self.modalities_used()
        self.encoder_modules, self.heads = encoders_and_heads(info, self.modalities, cfg["proj_hidden"],
                                                              cfg["proj_dim"])

    def two_views(self, batch: dict[str, Any], m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections of both views of modality m (one forward pass over 2B samples)."""
        v1, v2 = (view[m] for view in batch["views"][:2])
        z = self.heads[m](self.encoder_modules[m](torch.cat([v1, v2])))
        return z[: v1.shape[0]], z[v1.shape[0]:]

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)


@METHODS.register("barlow_twins")
class BarlowTwins(_BarlowBase):
    """Unimodal Barlow Twins between two augmented views."""

    name = "barlow_twins"
    kind = "unimodal"
    defaults = {"modality": "inertial", "epochs": 300, **BT_DEFAULTS}
    modality_defaults = {"inertial": {"batch_size": 128}, "skeleton": {"batch_size": 64}}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        z1, z2 = self.two_views(batch, self.modalities[0])
        return barlow_twins(z1, z2, self.cfg["lam"], self.cfg["scale"])


@METHODS.register("barlow_twins_mm")
class BarlowTwinsCrossModal(_BarlowBase):
    """Cross-modal Barlow Twins: two views per modality, intra- and cross-modal terms summed ([NN])."""

    name = "barlow_twins_mm"
    kind = "multimodal"
    defaults = {"epochs": 100, "batch_size": 64, **BT_DEFAULTS}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        views = [self.two_views(batch, m) for m in self.modalities]
        return barlow_twins_multi(views, self.cfg["lam"], self.cfg["scale"])

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.heads)
