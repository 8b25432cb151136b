"""VICReg (Bardes et al. 2022; more_methods_spec.md section 3), unimodal and cross-modal.

Loss in the official form (benchmark.losses.vicreg): sim * MSE + std * mean variance hinge (gamma 1, eps
1e-4, unbiased) + 2 cov * mean off-diagonal covariance / D, with [NN]'s coefficients 10 / 25 / 1 (the paper's:
25 / 25 / 1; solo-learn does not halve the variance term, i.e. std 50 here). Projector Linear(d->256), BN,
ReLU, Linear(256->128) as [NN]; Adam 1e-3 with the suite's plateau schedule on the train loss ([NN]: plateau
0.9 / 5 on the val loss).

- `vicreg`: two augmented views of one modality ([NN] has no unimodal VICReg; [ours], with SimCLR-like
  settings): 300 epochs, batch inertial 128, skeleton 64.
- `vicreg_mm`: one view per modality, as [NN]'s vicreg_mm; for n modalities the invariance term is averaged
  over modality pairs and the variance / covariance terms over modalities (spec 3.3); 100 epochs, batch 64
  ([NN]: 128 on MMAct; no UTD-MHAD config exists: [NOT FOUND]).

Collapse reads 24.75 (std * 0.99); the covariance term has a rank floor D / (N - 1) - 1 when D > N - 1.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.blocks import encoders_and_heads
from benchmark.contracts import DataInfo, Method
from benchmark.losses import vicreg
from benchmark.registry import METHODS

VIC_DEFAULTS = {"sim_coeff": 10.0, "std_coeff": 25.0, "cov_coeff": 1.0, "proj_hidden": 256, "proj_dim": 128}


class _VICRegBase(Method):
    """One encoder and one projector per modality used."""

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        if min(cfg["sim_coeff"], cfg["std_coeff"], cfg["cov_coeff"]) < 0:
            raise ValueError(f"{self.name}: the VICReg coefficients must be >= 0")
        self.modalities = self.modalities_used()
        self.encoder_modules, self.heads = encoders_and_heads(info, self.modalities, cfg["proj_hidden"],
                                                              cfg["proj_dim"])

    def criterion(self, zs: list[torch.Tensor]) -> torch.Tensor:
        return vicreg(zs, self.cfg["sim_coeff"], self.cfg["std_coeff"], self.cfg["cov_coeff"])

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)


@METHODS.register("vicreg")
class VICReg(_VICRegBase):
    """Unimodal VICReg between two augmented views."""

    name = "vicreg"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "epochs": 300, **VIC_DEFAULTS}
    modality_defaults = {"inertial": {"batch_size": 128}, "skeleton": {"batch_size": 64}}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        m = self.modalities[0]
        v1, v2 = (view[m] for view in batch["views"][:2])
        z = self.heads[m](self.encoder_modules[m](torch.cat([v1, v2])))
        return self.criterion([z[: v1.shape[0]], z[v1.shape[0]:]])


@METHODS.register("vicreg_mm")
class VICRegCrossModal(_VICRegBase):
    """Cross-modal VICReg: the modalities (one view each) are the embeddings to make invariant."""

    name = "vicreg_mm"
    kind = "multimodal"
    n_views = 1
    defaults = {"epochs": 100, "batch_size": 64, **VIC_DEFAULTS}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        x = batch["views"][0]
        return self.criterion([self.heads[m](self.encoder_modules[m](x[m])) for m in self.modalities])

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.heads)
