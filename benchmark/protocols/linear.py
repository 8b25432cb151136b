"""`linear`: classic linear evaluation on frozen features.

The encoders run once in eval mode on each part; multimodal features are concatenated (sorted modality
order) and standardised with the train part's per-dimension mean and std. A single Linear layer is trained
with engine.fit (Adam, no LR schedule) and the epoch with the best validation main metric is scored once on
test; training stops once that metric has not improved for `early_stop_patience` epochs (`early_stop_on="main"`,
default; "val_loss" is the reference's rule). It applies to every method kind (for supervised methods it probes their
encoders, not their own classifier).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from benchmark.backbones.heads import LinearClassifier
from benchmark.engine import ConfigError, resolve_device, seed_everything
from benchmark.protocols.base import (
    HEAD_STOPPING,
    STOP_ON,
    EvalResult,
    Probe,
    Protocol,
    batched_forward,
    check_split,
    classifier_train_config,
    encode,
    eval_mode,
    fit_classifier,
    history_summary,
    labels_of,
    scored,
    select_key,
)
from benchmark.registry import PROTOCOLS

if TYPE_CHECKING:
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained


def _concat(feats: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([feats[m] for m in sorted(feats)], dim=1)


@PROTOCOLS.register("linear")
class Linear(Protocol):
    """Frozen, standardised encoder features -> one Linear layer, best on val, scored once on test."""

    name = "linear"
    defaults = {"epochs": 100, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "standardize": True,
                **HEAD_STOPPING}
    choices = {"early_stop_on": STOP_ON}

    @classmethod
    def validate(cls, cfg: dict[str, Any]) -> None:
        super().validate(cfg)
        if cfg["weight_decay"] < 0:
            raise ConfigError(f"linear.weight_decay must be >= 0, got {cfg['weight_decay']!r}")

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        self.check_applicable(pre)
        check_split(split)
        dev = resolve_device(device)
        seed_everything(seed)
        encoders = pre.encoders()
        x_tr = _concat(encode(encoders, data, split.train, dev))
        x_va = _concat(encode(encoders, data, split.val, dev))
        mean = x_tr.mean(0, keepdim=True) if cfg["standardize"] else torch.zeros(1, x_tr.shape[1], device=dev)
        std = x_tr.std(0, keepdim=True).clamp_min(1e-6) if cfg["standardize"] else torch.ones(1, x_tr.shape[1],
                                                                                               device=dev)
        probe = Probe(LinearClassifier(x_tr.shape[1], data.num_classes), ["features"]).to(dev)
        tcfg = classifier_train_config(cfg, len(split.train), select=select_key(data), scheduler="none",
                                       desc=f"linear {pre.variant}")
        fitted = fit_classifier(probe, {"features": (x_tr - mean) / std}, labels_of(data, split.train, dev),
                                {"features": (x_va - mean) / std}, labels_of(data, split.val, dev), tcfg, seed, dev)
        x_te = _concat(encode(encoders, data, split.test, dev))
        with eval_mode(probe):
            pred = batched_forward(probe, {"features": (x_te - mean) / std}, dev).argmax(1)
        result = scored(labels_of(data, split.test, dev), pred, data.class_names)
        result.artifacts["head_training"] = history_summary(fitted)
        result.artifacts["feature_dim"] = int(x_tr.shape[1])
        return result
