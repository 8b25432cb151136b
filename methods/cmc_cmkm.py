"""CMC-CMKM (Brinzea et al., IJCNN 2022): CMC plus cross-modal knowledge mining, as the reference computes it.

Spec 1.1-1.5. Each step, the frozen stage-1 SimCLR encoder of each modality embeds the *same augmented*
batch the students see; the top-k cosine neighbours (self excluded by subtracting I) found by the skeleton
teacher become extra cross-modal positives of the inertial anchors and vice versa, while each anchor's own
modality's neighbours are intra-modal positives and the other same-modality samples intra-modal negatives
(weight lam). Validation loss is plain CMC. Reference settings: tau 0.1, k 1, lam 1, batch 64 (UTD-MHAD) /
128 (MMAct), 100 epochs, Adam 1e-3, plateau on the last step's train loss, the last epoch kept.

Options (reference value first):
- intra_temperature "none" | "tau": intra-modal terms exp(cos) (the reference's quirk) or exp(cos / tau);
- intra_negatives (True), positive_mining (True), k (1), lam (1.0);
- symmetric_mining (False): both anchors use the union of the two mined sets;
- negative_pruning (False), pruning_threshold gamma (0.6 UTD / 0.7 MMAct);
- loss_weighting (False), weighting_scale (0.25 UTD / 0.05 MMAct).

Teachers: dependencies "teacher_inertial" / "teacher_skeleton" (SimCLR per modality; `teacher_overrides` is
merged into both teachers' configs). Their encoders are copied and loaded strictly, kept in eval mode,
never optimised and NOT registered as submodules: `train()` cannot flip them, and they are neither in the
state dict nor in the optimizer (they follow `.to()`). A model built without teachers can be evaluated
(e.g. loaded from a checkpoint) but not trained.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones import build_encoder
from benchmark.losses import cmc_loss, cmkm_loss, connectivity, mine_topk
from benchmark.registry import METHODS
from methods.base import DataInfo, Dependency, Method
from methods.cmc import CMC

MODALITIES = ("inertial", "skeleton")


@METHODS.register("cmc_cmkm")
class CMCCMKM(CMC):
    """CMC with cross-modal knowledge mining by frozen unimodal SimCLR teachers."""

    name = "cmc_cmkm"
    kind = "multimodal"
    n_views = 1
    defaults = {
        **CMC.defaults,
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
    profile_defaults = {"mmact": {"batch_size": 128, "pruning_threshold": 0.7, "weighting_scale": 0.05}}
    choices = {"intra_temperature": ("none", "tau")}

    @classmethod
    def dependencies(cls, cfg: dict[str, Any]) -> list[Dependency]:
        return [Dependency(f"teacher_{m}", "simclr", {**cfg["teacher_overrides"], "modality": m}) for m in MODALITIES]

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        if tuple(info.shapes) != MODALITIES:
            raise ValueError(f"cmc_cmkm needs exactly the modalities {MODALITIES} in this order; "
                             f"got {tuple(info.shapes)}")
        if cfg["k"] < 1:
            raise ValueError(f"cmc_cmkm.k must be >= 1, got {cfg['k']}")
        super().__init__(info, cfg, deps)
        self._teachers: dict[str, nn.Module] = {}  # a plain dict: not submodules, not in state_dict()
        for m in MODALITIES:
            dep = self._deps.get(f"teacher_{m}")
            if dep is not None:
                self._teachers[m] = self._frozen_copy(m, dep.encoders()[m])

    def _frozen_copy(self, modality: str, source: nn.Module) -> nn.Module:
        """A fresh encoder loaded strictly from the teacher's, in eval mode and without gradients."""
        enc = build_encoder(self.info.layouts[modality], self.info.shapes[modality])
        try:
            enc.load_state_dict(source.state_dict(), strict=True)
        except RuntimeError as exc:
            raise RuntimeError(f"cmc_cmkm: teacher_{modality}'s encoder does not match the {modality} encoder "
                               f"this data needs (strict load failed): {exc}") from exc
        enc.to(next(source.parameters()).device)
        return enc.eval().requires_grad_(False)

    def teachers(self) -> dict[str, nn.Module]:
        """The frozen teacher encoders (empty when built without them)."""
        return dict(self._teachers)

    def _apply(self, fn, recurse: bool = True):  # keep the unregistered teachers on the model's device/dtype
        super()._apply(fn, recurse)
        for t in getattr(self, "_teachers", {}).values():
            t._apply(fn)
        return self

    def _mining_features(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if set(self._teachers) != set(MODALITIES):
            raise RuntimeError("cmc_cmkm has no frozen SimCLR teachers: build it with deps {'teacher_inertial': ..., "
                               "'teacher_skeleton': ...} or train it through benchmark.pretrain.pretrain")
        # Mining in float32 even inside a bf16 training step: top-1 among near-ties must match fp32 mining.
        device_type = next(iter(x.values())).device.type
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            return {m: t(x[m].float()).flatten(1).float() for m, t in self._teachers.items()}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        cfg = self.cfg
        x = batch["views"][0]
        z = self.project(x)
        mined_i = mined_s = prune = weighting = None
        if cfg["positive_mining"] or cfg["negative_pruning"] or cfg["loss_weighting"]:
            h = self._mining_features(x)
            if cfg["positive_mining"]:
                mined_i, mined_s = mine_topk(h["inertial"], cfg["k"]), mine_topk(h["skeleton"], cfg["k"])
            if cfg["negative_pruning"] or cfg["loss_weighting"]:
                conn_i, conn_s = connectivity(h["inertial"]), connectivity(h["skeleton"])
                if cfg["negative_pruning"]:
                    prune = (conn_i, conn_s, cfg["pruning_threshold"])
                if cfg["loss_weighting"]:
                    weighting = (conn_i, conn_s, cfg["weighting_scale"])
        return cmkm_loss(
            z["inertial"], z["skeleton"], mined_i, mined_s, cfg["temperature"], lam=cfg["lam"],
            intra_temperature=cfg["intra_temperature"], intra=cfg["intra_negatives"], mining=cfg["positive_mining"],
            symmetric=cfg["symmetric_mining"], prune=prune, weighting=weighting,
        )

    def val_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Plain CMC, as the reference's validation (no mining, no intra-modal terms)."""
        z = self.project(batch["views"][0])
        return cmc_loss(z["inertial"], z["skeleton"], self.cfg["temperature"])
