"""`knn`: cosine k-nearest-neighbour classification on frozen embeddings (no training at all).

Embeddings are eval-mode encoder outputs, L2-normalised per modality; for several modalities the normalised
embeddings are concatenated (every modality weighs the same). The gallery is the train part. With
`k="val"` (default) k is chosen among `ks` by the validation main metric (val clips as queries against the
train gallery; ties go to the smaller k); an integer `k` fixes it. The test part is encoded once and scored
for every k in `ks` ("knn<k>/accuracy", "knn<k>/f1_macro"); "accuracy"/"f1_macro" are those of the chosen k
(artifact "knn_k"). Votes are majority votes, ties broken by summed similarity (`metrics.knn_predict`).
A 2-D t-SNE map of the test embeddings (fixed seed) is stored as artifact "embedding_2d".
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmark.engine import ConfigError, resolve_device
from benchmark.metrics import classification_scores, knn_predict
from benchmark.protocols.base import (
    EvalResult,
    Protocol,
    check_split,
    encode,
    fused_embedding,
    labels_of,
    main_metric_key,
    prefixed,
    scored,
)
from benchmark.registry import PROTOCOLS

if TYPE_CHECKING:
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained


def tsne_map(x: torch.Tensor, labels: torch.Tensor, class_names: list[str], seed: int,
             perplexity: float) -> dict[str, Any]:
    """{"xy": [[x, y], ...], "labels": [...], "class_names": [...]}: a seeded 2-D t-SNE of the rows of x.

    For speed the rows are first reduced to at most 50 PCA components, t-SNE runs 500 iterations, and
    up to 1000 points use the exact gradient (faster than Barnes-Hut at that size).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = x.shape[0]
    if n < 3:
        return {"xy": [[0.0, 0.0]] * n, "labels": labels.tolist(), "class_names": list(class_names)}
    arr = x.detach().cpu().numpy().astype(np.float64)
    if arr.shape[1] > 50 and n > 50:
        arr = PCA(n_components=50, random_state=seed).fit_transform(arr)
    perp = float(min(perplexity, (n - 1) / 3))
    xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, max_iter=500,
              method="exact" if n <= 1000 else "barnes_hut").fit_transform(arr)
    return {"xy": np.round(xy, 4).tolist(), "labels": labels.cpu().tolist(), "class_names": list(class_names),
            "perplexity": perp}


@PROTOCOLS.register("knn")
class KNN(Protocol):
    """Cosine k-NN on frozen, L2-normalised (fused) embeddings; k chosen on val; train part is the gallery."""

    name = "knn"
    defaults = {"k": "val", "ks": [1, 5, 10, 20], "tsne": True, "tsne_perplexity": 15.0}
    types = {"k": (str, int)}

    @classmethod
    def validate(cls, cfg: dict[str, Any]) -> None:
        k, ks = cfg["k"], cfg["ks"]
        if not ks or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in ks):
            raise ConfigError(f"knn.ks must be a non-empty list of integers >= 1, got {ks!r}")
        if isinstance(k, str) and k != "val":
            raise ConfigError(f"knn.k must be 'val' (choose on validation) or an integer >= 1, got {k!r}")
        if isinstance(k, int) and k < 1:
            raise ConfigError(f"knn.k must be 'val' or an integer >= 1, got {k!r}")
        if not cfg["tsne_perplexity"] > 0:
            raise ConfigError(f"knn.tsne_perplexity must be > 0, got {cfg['tsne_perplexity']!r}")

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        self.check_applicable(pre)
        check_split(split, need_val=cfg["k"] == "val")
        dev = resolve_device(device)
        encoders = pre.encoders()
        main = main_metric_key(data)
        n_cls = data.num_classes
        gallery = fused_embedding(encode(encoders, data, split.train, dev))
        y_gal = labels_of(data, split.train, dev)
        ks = sorted(set(cfg["ks"]) | ({cfg["k"]} if isinstance(cfg["k"], int) else set()))
        val_scores: dict[str, float] = {}
        if cfg["k"] == "val":
            val_q = fused_embedding(encode(encoders, data, split.val, dev))
            y_val = labels_of(data, split.val, dev)
            sim_val = val_q @ gallery.T
            for k in ks:
                val_scores[str(k)] = classification_scores(y_val, knn_predict(sim_val, y_gal, k, n_cls),
                                                           data.class_names)[0][main]
            chosen = max(ks, key=lambda k: (val_scores[str(k)], -k))
        else:
            chosen = int(cfg["k"])
        test_q = fused_embedding(encode(encoders, data, split.test, dev))
        y_test = labels_of(data, split.test, dev)
        sim_test = test_q @ gallery.T
        metrics: dict[str, float] = {}
        result = EvalResult(metrics={})
        for k in ks:
            res = scored(y_test, knn_predict(sim_test, y_gal, k, n_cls), data.class_names)
            metrics.update(prefixed(res.metrics, f"knn{k}"))
            if k == chosen:
                result = res
        result.metrics = {**result.metrics, **metrics}
        result.artifacts["knn_k"] = chosen
        if val_scores:
            result.artifacts["knn_val_scores"] = val_scores
        if cfg["tsne"]:
            result.artifacts["embedding_2d"] = tsne_map(test_q, y_test, data.class_names, seed,
                                                        cfg["tsne_perplexity"])
        return result
