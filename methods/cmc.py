"""CMC with in-batch negatives (spec 2.2): one augmented view per modality, the modalities are the views.

For two modalities the loss is the mean of the row-wise and column-wise N-way cross-entropy of the
cross-modal cosine matrix / tau (tau 0.1); for more modalities it is summed over every pair (CMC's
"full graph"). Reference settings: batch 64 (UTD-MHAD; MMAct's plugin declares 128), 100 epochs, Adam 1e-3,
ReduceLROnPlateau(min, 0.5, patience 20) on the last step's train loss, the last epoch kept.
Tian et al.'s original CMC used a memory bank with NCE; the reference (and this) uses the batch.
"""
from __future__ import annotations

from typing import Any

import torch

from benchmark.blocks import PROJECTION_DEFAULTS, CrossModalProjections
from benchmark.losses import pairwise_cmc
from benchmark.registry import METHODS


@METHODS.register("cmc")
class CMC(CrossModalProjections):
    """Contrastive multiview coding across modalities (every pair of the data's modalities)."""

    name = "cmc"
    defaults = dict(PROJECTION_DEFAULTS)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return pairwise_cmc(self.project(batch["views"][0]), self.cfg["temperature"], self.modalities)
