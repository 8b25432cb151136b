"""CMC-CMKM (Brinzea et al., IJCNN 2022): CMC plus cross-modal knowledge mining, as the reference computes it.

Spec 1.1-1.5. Each step, the frozen stage-1 SimCLR encoder of each modality embeds the *same augmented*
batch the students see; the top-k cosine neighbours (self excluded by subtracting I) found by the skeleton
teacher become extra cross-modal positives of the inertial anchors and vice versa, while each anchor's own
modality's neighbours are intra-modal positives and the other same-modality samples intra-modal negatives
(weight lam). Validation loss is plain CMC. Reference settings: tau 0.1, k 1, lam 1, batch 64 (UTD-MHAD;
MMAct's plugin declares 128), 100 epochs, Adam 1e-3, plateau on the last step's train loss, the last epoch kept.

Options (reference value first):
- intra_temperature "none" | "tau": intra-modal terms exp(cos) (the reference's quirk) or exp(cos / tau);
- intra_negatives (True), positive_mining (True), k (1), lam (1.0);
- symmetric_mining (False): both anchors use the union of the two mined sets;
- negative_pruning (False), pruning_threshold gamma (0.6 UTD; MMAct's plugin declares 0.7);
- loss_weighting (False), weighting_scale (0.25 UTD; MMAct's plugin declares 0.05).

Teachers: one dependency "teacher_<modality>" per modality of the data (SimCLR on that modality;
`teacher_overrides` is merged into every teacher's config). With more than two modalities the loss is summed
over every pair of modalities (as CMC's full graph), each pair mined by its own two teachers. Their encoders
are copied and loaded strictly, kept in eval mode,
never optimised and NOT registered as submodules: `train()` cannot flip them, and they are neither in the
state dict nor in the optimizer (they follow `.to()`). A model built without teachers can be evaluated
(e.g. loaded from a checkpoint) but not trained.
"""
from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
from torch import nn

from benchmark.blocks import PROJECTION_DEFAULTS, CrossModalProjections, frozen_encoder_copy
from benchmark.contracts import DataInfo, Dependency, Method
from benchmark.losses import cmc_loss, cmkm_loss, connectivity, mine_topk
from benchmark.registry import METHODS

TEACHER_METHOD = "simclr"


@METHODS.register("cmc_cmkm")
class CMCCMKM(CrossModalProjections):
    """CMC with cross-modal knowledge mining by frozen unimodal SimCLR teachers."""

    name = "cmc_cmkm"
    defaults = {
        **PROJECTION_DEFAULTS,
        "k": 1,
        "lam": 1.0,
        "intra_temperature": "none",
        "intra_negatives": True,
        "positive_mining": True,
        "symmetric_mining": False,
        "negative_pruning": False,
        "pruning_threshold": 0.6,
        "loss_weighting": False,
        "weighting_scale": 0.25,
        "teacher_overrides": {},
    }
    choices = {"intra_temperature": ("none", "tau")}

    @classmethod
    def dependencies(cls, cfg: dict[str, Any], info: DataInfo) -> list[Dependency]:
        return [Dependency(f"teacher_{m}", TEACHER_METHOD, {**cfg["teacher_overrides"], "modality": m})
                for m in info.shapes]

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        if cfg["k"] < 1:
            raise ValueError(f"cmc_cmkm.k must be >= 1, got {cfg['k']}")
        super().__init__(info, cfg, deps)
        self._teachers: dict[str, nn.Module] = {}  # a plain dict: not submodules, not in state_dict()
        for m in self.modalities:
            dep = self._deps.get(f"teacher_{m}")
            if dep is not None:
                self._teachers[m] = frozen_encoder_copy(info, m, dep.encoders()[m], f"cmc_cmkm teacher_{m}")

    def teachers(self) -> dict[str, nn.Module]:
        """The frozen teacher encoders (empty when built without them)."""
        return dict(self._teachers)

    def _apply(self, fn, recurse: bool = True):  # keep the unregistered teachers on the model's device/dtype
        super()._apply(fn, recurse)
        for t in getattr(self, "_teachers", {}).values():
            t._apply(fn)
        return self

    def _mining_features(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if set(self._teachers) != set(self.modalities):
            wanted = ", ".join(f"'teacher_{m}': ..." for m in self.modalities)
            raise RuntimeError(f"cmc_cmkm has no frozen SimCLR teachers: build it with deps {{{wanted}}} or train "
                               f"it through benchmark.pretrain.pretrain")
        # Mining in float32 even inside a bf16 training step: top-1 among near-ties must match fp32 mining.
        device_type = next(iter(x.values())).device.type
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            return {m: t(x[m].float()).flatten(1).float() for m, t in self._teachers.items()}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        cfg = self.cfg
        x = batch["views"][0]
        z = self.project(x)
        mined: dict[str, Any] = dict.fromkeys(self.modalities)
        conn: dict[str, Any] = dict.fromkeys(self.modalities)
        if cfg["positive_mining"] or cfg["negative_pruning"] or cfg["loss_weighting"]:
            h = self._mining_features(x)
            if cfg["positive_mining"]:
                mined = {m: mine_topk(h[m], cfg["k"]) for m in self.modalities}
            if cfg["negative_pruning"] or cfg["loss_weighting"]:
                conn = {m: connectivity(h[m]) for m in self.modalities}
        total = None
        for a, b in combinations(self.modalities, 2):
            prune = (conn[a], conn[b], cfg["pruning_threshold"]) if cfg["negative_pruning"] else None
            weighting = (conn[a], conn[b], cfg["weighting_scale"]) if cfg["loss_weighting"] else None
            pair = cmkm_loss(
                z[a], z[b], mined[a], mined[b], cfg["temperature"], lam=cfg["lam"],
                intra_temperature=cfg["intra_temperature"], intra=cfg["intra_negatives"],
                mining=cfg["positive_mining"], symmetric=cfg["symmetric_mining"], prune=prune, weighting=weighting,
            )
            total = pair if total is None else total + pair
        return total

    def val_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Plain CMC, as the reference's validation (no mining, no intra-modal terms), summed over pairs."""
        z = self.project(batch["views"][0])
        total = None
        for a, b in combinations(self.modalities, 2):
            pair = cmc_loss(z[a], z[b], self.cfg["temperature"])
            total = pair if total is None else total + pair
        return total
