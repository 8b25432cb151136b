"""SimCLR on one modality (spec 2.1): two augmented views, NT-Xent (sthalles style), encoder + 256->128 head.

Reference settings: 300 epochs, Adam 1e-3, ReduceLROnPlateau(min, 0.5, patience 20) on the last step's
train loss, the last epoch kept; batch size and temperature per dataset and modality kind (UTD-MHAD's are
the method's defaults, MMAct's are declared by its dataset plugin):

    dataset    inertial        skeleton
    utd_mhad   B128, tau .05   B32, tau .5
    mmact      B64,  tau .2    B128, tau .2

The two views go through the network as one concatenated batch (one BatchNorm pass over 2N samples), as
the reference does. Evaluation uses the encoder output, not the projection.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones import ProjectionHead, build_encoder
from benchmark.contracts import DataInfo, Method
from benchmark.losses import nt_xent
from benchmark.registry import METHODS


@METHODS.register("simclr")
class SimCLR(Method):
    """Unimodal SimCLR: NT-Xent between two augmented views of the same clip."""

    name = "simclr"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "temperature": 0.1, "epochs": 300, "proj_hidden": 256, "proj_dim": 128}
    # the reference's UTD-MHAD configs (configs/simclr/*.yaml) per modality kind; MMAct's plugin declares its own
    modality_defaults = {"inertial": {"batch_size": 128, "temperature": 0.05},
                         "skeleton": {"batch_size": 32, "temperature": 0.5}}

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modality = cfg["modality"]
        self.encoder = build_encoder(info.kinds[self.modality], info.shapes[self.modality])
        self.head = ProjectionHead(self.encoder.out_dim, cfg["proj_hidden"], cfg["proj_dim"])

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        v1, v2 = (view[self.modality] for view in batch["views"][:2])
        z = self.head(self.encoder(torch.cat([v1, v2], dim=0)))
        return nt_xent(z[: v1.shape[0]], z[v1.shape[0]:], self.cfg["temperature"])

    def encoders(self) -> dict[str, nn.Module]:
        return {self.modality: self.encoder}

    def projectors(self) -> dict[str, nn.Module]:
        return {self.modality: self.head}
