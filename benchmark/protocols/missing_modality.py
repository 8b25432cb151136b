"""`missing_modality`: how a multimodal representation copes when one sensor is absent at test time.

The `paper_head` fusion head is trained on all modalities as in `paper_head` (frozen encoders, best epoch on
val), but stopped like our other heads (`early_stop_on="main"`, patience `HEAD_PATIENCE`: docs/cost.md).
On the test part, encoded once, it is then scored with all modalities ("full/...") and
with each modality m absent in turn ("no_<m>/..."). An absent modality's features are replaced by their mean
over the train part (`impute="mean"`, default: the head's BatchNorm then sees in-distribution values and the
prediction rests on the other modality) or by zeros (`impute="zero"`, which puts the head off-distribution).
"accuracy"/"f1_macro", per-class F1 and the confusion matrix are the full-modality ones; artifact
"confusion_by_condition" holds every condition's confusion matrix. Applies to multimodal methods
(several encoders) only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from benchmark.engine import ConfigError, resolve_device
from benchmark.protocols.base import (
    HEAD_STOPPING,
    EvalResult,
    Protocol,
    check_split,
    history_summary,
    labels_of,
    prefixed,
    scored,
)
from benchmark.protocols.paper_head import PaperHead, train_paper_head
from benchmark.registry import PROTOCOLS

if TYPE_CHECKING:
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained


@PROTOCOLS.register("missing_modality")
class MissingModality(Protocol):
    """Fusion head trained on all modalities, tested with each modality mean-imputed (or zeroed) in turn."""

    name = "missing_modality"
    kinds = ("multimodal",)
    defaults = {**PaperHead.defaults, **HEAD_STOPPING, "impute": "mean"}
    choices = {**PaperHead.choices, "impute": ("mean", "zero")}

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        self.check_applicable(pre)
        check_split(split)
        mods = sorted(pre.encoders())
        if len(mods) < 2:
            raise ConfigError(f"missing_modality needs a method with several encoders; {pre.variant} has {mods}")
        dev = resolve_device(device)
        trained = train_paper_head(pre, data, split.train, split.val, cfg, seed, dev)
        test = trained.features(data, split.test, dev)
        if cfg["impute"] == "mean":
            fill = {m: v.mean(0, keepdim=True) for m, v in trained.features(data, split.train, dev).items()}
        else:
            fill = {m: torch.zeros(1, v.shape[1], device=v.device) for m, v in test.items()}
        y = labels_of(data, split.test, dev)
        conditions = {"full": test}
        for m in mods:
            conditions[f"no_{m}"] = {**test, m: fill[m].expand_as(test[m])}
        metrics: dict[str, float] = {}
        confusions: dict[str, list[list[int]]] = {}
        full: EvalResult | None = None
        for name, feats in conditions.items():
            res = scored(y, trained.logits(feats, dev).argmax(1), data.class_names)
            metrics.update(prefixed(res.metrics, name))
            confusions[name] = res.artifacts["confusion"]
            if name == "full":
                full = res
        assert full is not None
        full.metrics = {**full.metrics, **metrics}
        full.artifacts["confusion_by_condition"] = confusions
        full.artifacts["impute"] = cfg["impute"]
        full.artifacts["head_training"] = history_summary(trained.fit)
        return full
