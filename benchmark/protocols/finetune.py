"""`finetune`: encoders and head trained end-to-end on the labelled train part (true fine-tuning).

Works on deep copies of the pretrained encoders (the originals are reused by other protocols and never
change). Head: FusionClassifier for several modalities, one Linear for one (as `paper_head`). Adam with the
head at `lr` and the encoders at `lr * encoder_lr_scale` (0 freezes them); optional ReduceLROnPlateau on
the validation main metric; early stop once the validation main metric has not improved for `early_stop_patience`
epochs (`early_stop_on="main"`, default; "val_loss" is the reference's rule); the best epoch on the validation
main metric (encoders and head together) is scored once on test. No augmentation is applied.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from benchmark.engine import ConfigError, resolve_device, seed_everything
from benchmark.protocols.base import (
    HEAD_STOPPING,
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


@PROTOCOLS.register("finetune")
class Finetune(Protocol):
    """Copies of the encoders + a fresh head, trained end-to-end; best on val, scored once on test."""

    name = "finetune"
    defaults = {"epochs": 100, "batch_size": 64, "lr": 1e-3, "encoder_lr_scale": 0.1, "weight_decay": 0.0,
                "scheduler": "plateau", "plateau_factor": 0.5, "plateau_patience": 5, **HEAD_STOPPING}
    choices = {"scheduler": ("plateau", "none"), "early_stop_on": STOP_ON}

    @classmethod
    def validate(cls, cfg: dict[str, Any]) -> None:
        super().validate(cfg)
        for key in ("encoder_lr_scale", "weight_decay"):
            if cfg[key] < 0:
                raise ConfigError(f"finetune.{key} must be >= 0, got {cfg[key]!r}")

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        self.check_applicable(pre)
        check_split(split)
        dev = resolve_device(device)
        seed_everything(seed)
        originals = pre.encoders()
        mods = sorted(originals)
        encoders = {m: copy.deepcopy(originals[m]) for m in mods}
        head, fusion = build_head(feature_dims(encoders, data, split.train, dev), data.num_classes)
        probe = Probe(head, mods, encoders, fusion).to(dev)
        scale = float(cfg["encoder_lr_scale"])
        enc_params = [p for e in probe.held_encoders().values() for p in e.parameters()]
        for p in enc_params:
            p.requires_grad_(scale > 0)
        groups: list[dict[str, Any]] = [{"params": list(probe.head.parameters())}]
        if scale > 0:
            groups.append({"params": enc_params, "lr": float(cfg["lr"]) * scale})
        select = select_key(data)
        tcfg = classifier_train_config(cfg, len(split.train), select=select, scheduler=cfg["scheduler"],
                                       monitor=select, desc=f"finetune {pre.variant}")
        fitted = fit_classifier(probe, gather(data, split.train, mods, dev), labels_of(data, split.train, dev),
                                gather(data, split.val, mods, dev), labels_of(data, split.val, dev), tcfg, seed, dev,
                                params=groups)
        feats = encode(probe.held_encoders(), data, split.test, dev)
        with eval_mode(probe):
            pred = batched_forward(probe.classify, feats, dev).argmax(1)
        result = scored(labels_of(data, split.test, dev), pred, data.class_names)
        result.artifacts["head_training"] = history_summary(fitted)
        return result
