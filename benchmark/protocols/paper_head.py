"""`paper_head`: the reference's downstream protocol (spec 5.2), called "fine-tuning" in the paper.

- Multimodal methods: frozen encoders + FusionClassifier (per modality Linear->256, BN, ReLU; concat; Linear);
  ReduceLROnPlateau(max, 0.5, patience 5) on val_accuracy (also for MMAct, as in the reference).
- Unimodal methods: frozen encoder + one Linear layer; no LR scheduler.
- Both: Adam 1e-3, batch 64, up to 100 epochs, early stop on val_loss (patience 50: the reference's rule, kept
  here and in the `paper` suite; `early_stop_on="main"` stops on the selection metric instead, as our protocols
  do and as the `full` suite runs it), the epoch with the
  best validation main metric (accuracy; macro-F1 for MMAct) is restored and scored once on test.
- `bn_mode="reference"`: the frozen encoders are in train mode while the head trains (BN statistics keep
  updating, dropout is active), as under Lightning; this works on deep copies, so the pretrained encoders are
  untouched. Validation and test run in eval mode. `bn_mode="frozen"`: encoders in eval mode throughout, so
  their features are computed once.
- Supervised methods: their own classifier (`method.classify`), trained end-to-end with best-on-val selection
  during pretraining, is scored on test.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from benchmark.engine import FitResult, resolve_device, seed_everything
from benchmark.protocols.base import (
    STOP_ON,
    EvalResult,
    Probe,
    Protocol,
    batched_forward,
    build_head,
    check_split,
    classifier_train_config,
    encode,
    eval_mode,
    feature_dims,
    fit_classifier,
    frozen_copies,
    gather,
    history_summary,
    labels_of,
    scored,
    select_key,
)
from benchmark.registry import PROTOCOLS

if TYPE_CHECKING:
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained


@dataclass
class TrainedHead:
    """A fitted probe plus the encoders that give its test-time features (eval mode)."""

    probe: Probe
    encoders: Mapping[str, nn.Module]  # the probe's best-epoch copies (reference) or the pretrained ones (frozen)
    fit: FitResult

    def features(self, data: "MultimodalData", idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Eval-mode encoder features of rows `idx`."""
        return encode(self.encoders, data, idx, device)

    def logits(self, feats: Mapping[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        """Eval-mode head logits of precomputed features."""
        with eval_mode(self.probe):
            return batched_forward(self.probe.classify, feats, device)


def train_paper_head(pre: "Pretrained", data: "MultimodalData", train_idx: np.ndarray, val_idx: np.ndarray,
                     cfg: Mapping[str, Any], seed: int, device: torch.device) -> TrainedHead:
    """Train the reference's head on frozen encoders (train part), selecting the epoch on val only."""
    seed_everything(seed)
    encoders = pre.encoders()
    mods = sorted(encoders)
    encoders = {m: encoders[m] for m in mods}
    y_tr, y_va = labels_of(data, train_idx, device), labels_of(data, val_idx, device)
    if cfg["bn_mode"] == "reference":
        head, fusion = build_head(feature_dims(encoders, data, train_idx, device), data.num_classes)
        probe = Probe(head, mods, frozen_copies(encoders), fusion).to(device)
        train_x, val_x = gather(data, train_idx, mods, device), gather(data, val_idx, mods, device)
        eval_encoders: Mapping[str, nn.Module] = probe.held_encoders()
    else:
        train_x, val_x = encode(encoders, data, train_idx, device), encode(encoders, data, val_idx, device)
        head, fusion = build_head({m: int(v.shape[1]) for m, v in train_x.items()}, data.num_classes)
        probe = Probe(head, mods, None, fusion).to(device)
        eval_encoders = encoders
    tcfg = classifier_train_config(cfg, len(train_idx), select=select_key(data),
                                   scheduler="plateau" if fusion else "none", monitor="val_accuracy",
                                   desc=f"paper_head {pre.variant}")
    result = fit_classifier(probe, train_x, y_tr, val_x, y_va, tcfg, seed, device)
    return TrainedHead(probe, eval_encoders, result)


def supervised_predictions(pre: "Pretrained", data: "MultimodalData", idx: np.ndarray,
                           device: torch.device) -> torch.Tensor:
    """Class predictions of a supervised method's own classifier (eval mode)."""
    method = pre.method
    x = gather(data, idx, method.modalities_used(), device)
    with eval_mode(method):
        return batched_forward(method.classify, x, device).argmax(1)


@PROTOCOLS.register("paper_head")
class PaperHead(Protocol):
    """Frozen encoders + the reference's fusion / linear head, best-on-val checkpoint scored on test."""

    name = "paper_head"
    defaults = {"epochs": 100, "batch_size": 64, "lr": 1e-3, "bn_mode": "reference", "plateau_factor": 0.5,
                "plateau_patience": 5, "early_stop_on": "val_loss", "early_stop_patience": 50}
    choices = {"bn_mode": ("reference", "frozen"), "early_stop_on": STOP_ON}

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        self.check_applicable(pre)
        check_split(split)
        dev = resolve_device(device)
        y_test = labels_of(data, split.test, dev)
        if pre.kind == "supervised":
            result = scored(y_test, supervised_predictions(pre, data, split.test, dev), data.class_names)
            result.artifacts["classifier"] = "supervised method's own (end-to-end, best on val)"
            return result
        trained = train_paper_head(pre, data, split.train, split.val, cfg, seed, dev)
        pred = trained.logits(trained.features(data, split.test, dev), dev).argmax(1)
        result = scored(y_test, pred, data.class_names)
        result.artifacts["head_training"] = history_summary(trained.fit)
        return result
