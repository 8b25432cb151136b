"""CMC with in-batch negatives (spec 2.2): one augmented view per modality, the modalities are the views.

For two modalities the loss is the mean of the row-wise and column-wise N-way cross-entropy of the
cross-modal cosine matrix / tau (tau 0.1); for more modalities it is summed over every pair (CMC's
"full graph"). Reference settings: batch 64 (UTD-MHAD) / 128 (MMAct), 100 epochs, Adam 1e-3,
ReduceLROnPlateau(min, 0.5, patience 20) on the last step's train loss, the last epoch kept.
Tian et al.'s original CMC used a memory bank with NCE; the reference (and this) uses the batch.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones import ProjectionHead, build_encoder
from benchmark.losses import pairwise_cmc
from benchmark.registry import METHODS
from methods.base import DataInfo, Method


@METHODS.register("cmc")
class CMC(Method):
    """Contrastive multiview coding across modalities (inertial <-> skeleton)."""

    name = "cmc"
    kind = "multimodal"
    n_views = 1
    defaults = {"temperature": 0.1, "proj_hidden": 256, "proj_dim": 128}
    profile_defaults = {"mmact": {"batch_size": 128}}

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modalities = list(info.shapes)
        if len(self.modalities) < 2:
            raise ValueError(f"cmc needs at least two modalities; the data has {self.modalities}")
        self.encoder_modules = nn.ModuleDict(
            {m: build_encoder(info.layouts[m], info.shapes[m]) for m in self.modalities})
        self.heads = nn.ModuleDict({
            m: ProjectionHead(self.encoder_modules[m].out_dim, cfg["proj_hidden"], cfg["proj_dim"])
            for m in self.modalities
        })

    def project(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{modality: projection} of a batch {modality: input}."""
        return {m: self.heads[m](self.encoder_modules[m](x[m])) for m in self.modalities}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return pairwise_cmc(self.project(batch["views"][0]), self.cfg["temperature"], self.modalities)

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.heads)
