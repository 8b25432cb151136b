"""Classification and retrieval metrics shared by the protocols (numpy, no sklearn in the hot path).

Conventions:
- macro-F1 averages over the *present* classes: those with tp + fp + fn > 0, i.e. the classes that occur
  in the true or the predicted labels. This is what the reference's torchmetrics macro did (it dropped
  classes that never occur, such as MMAct's missing label 24) and equals sklearn's
  `f1_score(average="macro")` with its default `labels=None` (union of y_true and y_pred).
- Retrieval ranks the gallery by descending similarity; ties keep gallery order (stable sort), so results
  are deterministic. Relevance is "same label". A query whose label never occurs in the gallery has no
  defined average precision and is left out of the mAP (`retrieval_metrics` reports how many).
All values are fractions in [0, 1].
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[int]


def _as_int_array(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_int_array(y_true, "y_true"), _as_int_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    if t.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of exact matches (micro accuracy)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] counts; rows are true classes, columns predicted classes."""
    t, p = _pair(y_true, y_pred)
    if t.min() < 0 or p.min() < 0 or max(t.max(), p.max()) >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}); got range [{min(t.min(), p.min())}, "
                         f"{max(t.max(), p.max())}]")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _f1_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 (0 where tp = 0) and the mask of present classes (tp + fp + fn > 0)."""
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    present = denom > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=present)
    return f1, present


def f1_macro(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Macro-F1 over the classes present in y_true or y_pred (the reference's convention)."""
    t, p = _pair(y_true, y_pred)
    n = int(max(t.max(), p.max())) + 1
    f1, present = _f1_from_confusion(confusion_matrix(t, p, n))
    return float(f1[present].mean())


def per_class_f1(y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str]) -> dict[str, float]:
    """{class name: F1} for the present classes (absent classes have no defined F1 and are omitted)."""
    f1, present = _f1_from_confusion(confusion_matrix(y_true, y_pred, len(class_names)))
    return {str(name): float(f1[i]) for i, name in enumerate(class_names) if present[i]}


def classification_scores(y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str]
                          ) -> tuple[dict[str, float], dict[str, float], list[list[int]]]:
    """(accuracy + f1_macro, per-class F1, confusion matrix as nested lists) in one pass."""
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    f1, present = _f1_from_confusion(cm)
    acc = float(np.trace(cm) / cm.sum())
    per_class = {str(name): float(f1[i]) for i, name in enumerate(class_names) if present[i]}
    return {"accuracy": acc, "f1_macro": float(f1[present].mean())}, per_class, cm.tolist()


# -- retrieval ------------------------------------------------------------------------------------
def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def cosine_similarity_matrix(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """[Q, G] cosine similarities of the (flattened) rows."""
    return l2_normalize(queries.flatten(1).double()) @ l2_normalize(gallery.flatten(1).double()).T


def _relevance_in_rank_order(similarity: ArrayLike, query_labels: ArrayLike, gallery_labels: ArrayLike
                             ) -> np.ndarray:
    """[Q, G] boolean matrix: is the gallery item at rank r relevant to query q (same label)?"""
    sim = similarity.detach().cpu().numpy() if isinstance(similarity, torch.Tensor) else np.asarray(similarity)
    q, g = _as_int_array(query_labels, "query_labels"), _as_int_array(gallery_labels, "gallery_labels")
    if sim.shape != (q.size, g.size):
        raise ValueError(f"similarity has shape {sim.shape}, expected (queries, gallery) = ({q.size}, {g.size})")
    order = np.argsort(-sim, axis=1, kind="stable")
    return g[order] == q[:, None]


def precision_at_k(similarity: ArrayLike, query_labels: ArrayLike, gallery_labels: ArrayLike,
                   ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """{k: mean over queries of (relevant items among the top k) / k}; k is capped at the gallery size."""
    rel = _relevance_in_rank_order(similarity, query_labels, gallery_labels)
    out = {}
    for k in ks:
        kk = min(int(k), rel.shape[1])
        if kk < 1:
            raise ValueError(f"precision@k needs k >= 1 and a non-empty gallery, got k={k}, gallery {rel.shape[1]}")
        out[int(k)] = float(rel[:, :kk].mean())
    return out


def average_precision(similarity: ArrayLike, query_labels: ArrayLike, gallery_labels: ArrayLike) -> np.ndarray:
    """Per-query average precision: mean of precision@rank over the ranks of the relevant items (NaN if none)."""
    rel = _relevance_in_rank_order(similarity, query_labels, gallery_labels)
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    n_rel = rel.sum(axis=1)
    prec_sum = (rel * (hits / ranks)).sum(axis=1)
    return np.divide(prec_sum, n_rel, out=np.full(rel.shape[0], np.nan), where=n_rel > 0)


def mean_average_precision(similarity: ArrayLike, query_labels: ArrayLike, gallery_labels: ArrayLike) -> float:
    """mAP over the queries that have at least one relevant gallery item."""
    ap = average_precision(similarity, query_labels, gallery_labels)
    if np.all(np.isnan(ap)):
        raise ValueError("no query has a relevant gallery item: mAP is undefined")
    return float(np.nanmean(ap))


def retrieval_metrics(similarity: ArrayLike, query_labels: ArrayLike, gallery_labels: ArrayLike,
                      ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """{"p@k": ..., "map": ..., "queries_without_relevant": count} for one query/gallery pair."""
    ap = average_precision(similarity, query_labels, gallery_labels)
    out: dict[str, float] = {f"p@{k}": v for k, v in precision_at_k(similarity, query_labels, gallery_labels,
                                                                       ks).items()}
    out["map"] = float(np.nanmean(ap)) if not np.all(np.isnan(ap)) else float("nan")
    out["queries_without_relevant"] = int(np.isnan(ap).sum())
    return out


def knn_predict(similarity: torch.Tensor, gallery_labels: torch.Tensor, k: int, n_classes: int) -> torch.Tensor:
    """Majority vote of the k most similar gallery items; ties go to the class with the larger summed similarity.

    The score of a class is votes + (summed similarity of its voters) / (k + 1): the second term lies in
    (-1, 1), so it only decides between classes with equal votes.
    """
    k = min(int(k), similarity.shape[1])
    if k < 1:
        raise ValueError(f"k-NN needs k >= 1 and a non-empty gallery, got k={k}, gallery {similarity.shape[1]}")
    sims, idx = torch.sort(similarity, dim=1, descending=True, stable=True)  # stable: ties keep gallery order
    sims, idx = sims[:, :k], idx[:, :k]
    labels = gallery_labels.to(similarity.device)[idx]
    score = torch.zeros(similarity.shape[0], n_classes, dtype=torch.float64, device=similarity.device)
    score.scatter_add_(1, labels, torch.ones_like(sims, dtype=torch.float64))
    score.scatter_add_(1, labels, sims.double() / (k + 1))
    return score.argmax(dim=1)
