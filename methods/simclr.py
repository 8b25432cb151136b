"""SimCLR on one modality (spec 2.1): two augmented views, NT-Xent (sthalles style), encoder + 256->128 head.

Reference settings: 300 epochs, Adam 1e-3, ReduceLROnPlateau(min, 0.5, patience 20) on the last step's
train loss, the last epoch kept; batch size and temperature per dataset profile and modality:

    profile    inertial        skeleton
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
from benchmark.losses import nt_xent
from benchmark.registry import METHODS
from methods.base import DataInfo, Method

# (profile, modality) -> the reference config's batch size and temperature (configs/simclr/*.yaml).
PAPER_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("utd_mhad", "inertial"): {"batch_size": 128, "temperature": 0.05},
    ("utd_mhad", "skeleton"): {"batch_size": 32, "temperature": 0.5},
    ("mmact", "inertial"): {"batch_size": 64, "temperature": 0.2},
    ("mmact", "skeleton"): {"batch_size": 128, "temperature": 0.2},
}


def paper_settings(profile: str, modality: str) -> dict[str, Any]:
    """The reference batch size and temperature for a profile/modality (UTD-MHAD's for unknown profiles)."""
    return dict(PAPER_SETTINGS.get((profile, modality), PAPER_SETTINGS.get(("utd_mhad", modality), {})))


@METHODS.register("simclr")
class SimCLR(Method):
    """Unimodal SimCLR: NT-Xent between two augmented views of the same clip."""

    name = "simclr"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "temperature": 0.1, "epochs": 300, "proj_hidden": 256, "proj_dim": 128}
    choices = {"modality": ("inertial", "skeleton")}

    @classmethod
    def resolve_config(cls, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """As Method.resolve_config, with the per-(profile, modality) batch size and temperature filled in."""
        overrides = dict(overrides or {})
        modality = overrides.get("modality", cls.defaults["modality"])
        return super().resolve_config(profile, {**paper_settings(profile, modality), **overrides})

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modality = cfg["modality"]
        self.encoder = build_encoder(info.layouts[self.modality], info.shapes[self.modality])
        self.head = ProjectionHead(self.encoder.out_dim, cfg["proj_hidden"], cfg["proj_dim"])

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        v1, v2 = (view[self.modality] for view in batch["views"][:2])
        z = self.head(self.encoder(torch.cat([v1, v2], dim=0)))
        return nt_xent(z[: v1.shape[0]], z[v1.shape[0]:], self.cfg["temperature"])

    def encoders(self) -> dict[str, nn.Module]:
        return {self.modality: self.encoder}

    def projectors(self) -> dict[str, nn.Module]:
        return {self.modality: self.head}
