"""`retrieval`: activity retrieval. The paper's exact definition is not available (spec 5.3); this one is ours.

- Queries are the test clips, the gallery is the train clips; relevance = same activity label.
- Embeddings are eval-mode encoder outputs (`embedding="encoder"`, default) or, where the method has
  projection heads, their outputs (`embedding="projection"`); every embedding is L2-normalised and compared
  by cosine similarity. Ranking ties keep gallery order.
- Spaces: each modality on its own ("inertial/...", "skeleton/..."); for methods with several encoders also
  "fused" (concatenated per-modality normalised embeddings) and, when the method has projection heads into a
  shared space (`method.projectors()`, e.g. CMC, CMC-CMKM), cross-modal retrieval "a->b": queries of modality
  a against the gallery's modality b, both through their projection heads.
- Per space: precision@k for `ks` ("<space>/p@5") and mAP ("<space>/map"). Queries whose class is missing from
  the gallery have no average precision and are left out of the mAP (counted in artifact
  "queries_without_relevant").
- The main space is "fused" for several encoders, else the single modality. Top-level "map" and "p@k" are
  the main space's; "accuracy"/"f1_macro" are the 1-NN classification of the main space's retrieval (so
  "accuracy" equals its p@1). Artifact "precision_at_k" holds the main space's {"1": .., "5": .., "10": ..}.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from benchmark.engine import ConfigError, resolve_device
from benchmark.metrics import average_precision, knn_predict, l2_normalize, retrieval_metrics
from benchmark.protocols.base import (
    EvalResult,
    Protocol,
    batched_forward,
    check_split,
    encode,
    eval_mode,
    flat_output,
    fused_embedding,
    labels_of,
    prefixed,
    scored,
)
from benchmark.registry import PROTOCOLS

if TYPE_CHECKING:
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained


def project(projectors: Mapping[str, nn.Module], feats: Mapping[str, torch.Tensor],
            device: torch.device) -> dict[str, torch.Tensor]:
    """Projection-head outputs (eval mode) of encoder features, per modality."""
    out = {}
    for m, proj in projectors.items():
        with eval_mode(proj):
            out[m] = batched_forward(functools.partial(flat_output, proj, m), {m: feats[m]}, device)
    return out


@PROTOCOLS.register("retrieval")
class Retrieval(Protocol):
    """Test clips query the train gallery by cosine similarity: p@k and mAP per modality, fused, cross-modal."""

    name = "retrieval"
    defaults = {"ks": [1, 5, 10], "embedding": "encoder", "cross_modal": True}
    choices = {"embedding": ("encoder", "projection")}

    @classmethod
    def validate(cls, cfg: dict[str, Any]) -> None:
        ks = cfg["ks"]
        if not ks or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in ks):
            raise ConfigError(f"retrieval.ks must be a non-empty list of integers >= 1, got {ks!r}")

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        self.check_applicable(pre)
        check_split(split, need_val=False)
        dev = resolve_device(device)
        encoders = pre.encoders()
        mods = sorted(encoders)
        projectors = dict(pre.method.projectors() or {})
        gal = encode(encoders, data, split.train, dev)
        qry = encode(encoders, data, split.test, dev)
        y_gal, y_qry = labels_of(data, split.train, dev), labels_of(data, split.test, dev)
        if cfg["embedding"] == "projection":
            missing = [m for m in mods if m not in projectors]
            if missing:
                raise ConfigError(f"retrieval.embedding='projection' but {pre.variant} has no projection head for "
                                  f"{missing}; use embedding='encoder'")
            space_gal, space_qry = project(projectors, gal, dev), project(projectors, qry, dev)
        else:
            space_gal, space_qry = gal, qry
        sims: dict[str, torch.Tensor] = {
            m: l2_normalize(space_qry[m].double()) @ l2_normalize(space_gal[m].double()).T for m in mods
        }
        if len(mods) > 1:
            sims["fused"] = fused_embedding(space_qry) @ fused_embedding(space_gal).T
        notes: dict[str, Any] = {}
        if cfg["cross_modal"] and len(mods) > 1:
            have = [m for m in mods if m in projectors]
            if len(have) > 1:
                z_gal, z_qry = project(projectors, gal, dev), project(projectors, qry, dev)
                for a in have:
                    for b in have:
                        if a == b:
                            continue
                        if z_qry[a].shape[1] != z_gal[b].shape[1]:
                            notes[f"{a}->{b}"] = (f"skipped: projection sizes differ "
                                                  f"({z_qry[a].shape[1]} vs {z_gal[b].shape[1]})")
                            continue
                        sims[f"{a}->{b}"] = l2_normalize(z_qry[a].double()) @ l2_normalize(z_gal[b].double()).T
            else:
                notes["cross_modal"] = "skipped: the method has no projection heads into a shared space"
        main = "fused" if len(mods) > 1 else mods[0]
        metrics: dict[str, float] = {}
        without: dict[str, int] = {}
        for space, sim in sims.items():
            res = retrieval_metrics(sim, y_qry, y_gal, cfg["ks"])
            without[space] = int(res.pop("queries_without_relevant"))
            metrics.update(prefixed(res, space))
        result = scored(y_qry, knn_predict(sims[main], y_gal, 1, data.num_classes), data.class_names)
        ap = average_precision(sims[main], y_qry, y_gal)  # per query, in the order of split.test
        result.query_ap = [None if np.isnan(v) else round(float(v), 6) for v in np.asarray(ap, dtype=float)]
        main_scores = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(main + "/")}
        result.metrics = {**result.metrics, **main_scores, **metrics}
        result.artifacts["precision_at_k"] = {str(k): main_scores[f"p@{k}"] for k in cfg["ks"]}
        result.artifacts["main_space"] = main
        result.artifacts["queries_without_relevant"] = without
        if notes:
            result.artifacts["notes"] = notes
        return result
