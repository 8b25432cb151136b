"""Heads on top of the encoders (spec 3.3): SSL projection, unimodal linear probe, multimodal fusion classifier."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """SSL projection g(h) = Linear(in->hidden), BN1d, ReLU, Linear(hidden->out); 1,475,456 params for 5632-d."""

    def __init__(self, in_dim: int, hidden: int = 256, out: int = 128) -> None:
        super().__init__()
        self.in_dim, self.out_dim = int(in_dim), int(out)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: [N, in_dim] (or any [N, ...] that flattens to it) -> [N, out]."""
        return self.net(h.flatten(1))


class LinearClassifier(nn.Module):
    """A single Linear(in_dim -> n_classes): the unimodal linear-evaluation and supervised head."""

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.in_dim, self.n_classes = int(in_dim), int(n_classes)
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: [N, in_dim] -> logits [N, n_classes]."""
        return self.fc(h.flatten(1))


class FusionClassifier(nn.Module):
    """Per modality Linear->hidden, BN1d, ReLU; concatenated in sorted modality order; Linear to the classes.

    Sorted order makes the head independent of dict insertion order ('inertial' before 'skeleton',
    as in the reference). 1,522,715 parameters for UTD-MHAD ({inertial: 5632, skeleton: 256}, 27 classes).
    """

    def __init__(self, in_dims: Mapping[str, int], n_classes: int, hidden: int = 256) -> None:
        super().__init__()
        if not in_dims:
            raise ValueError("FusionClassifier needs at least one modality in in_dims")
        self.modalities: list[str] = sorted(in_dims)
        self.in_dims = {m: int(in_dims[m]) for m in self.modalities}
        self.n_classes = int(n_classes)
        self.branches = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU()) for m, d in self.in_dims.items()}
        )
        self.classifier = nn.Linear(hidden * len(self.modalities), n_classes)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """features: {modality: [N, d_m]} -> logits [N, n_classes]."""
        missing = [m for m in self.modalities if m not in features]
        if missing:
            raise KeyError(
                f"FusionClassifier got features for {sorted(features)} but needs {self.modalities} (missing {missing})"
            )
        return self.classifier(torch.cat([self.branches[m](features[m].flatten(1)) for m in self.modalities], dim=1))
