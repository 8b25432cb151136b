"""Metrics against sklearn and hand-computed values (classification, retrieval, k-NN votes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from benchmark import metrics as M


@pytest.fixture()
def preds() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 7, size=200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 7, size=200))
    p[p == 6] = 5  # class 6 is never predicted; class 7.. never occurs
    return y, p


def test_accuracy_and_confusion_match_sklearn(preds):
    y, p = preds
    assert M.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    np.testing.assert_array_equal(M.confusion_matrix(y, p, 9), skm.confusion_matrix(y, p, labels=range(9)))


def test_f1_macro_uses_present_classes_like_sklearn_default(preds):
    y, p = preds
    assert M.f1_macro(y, p) == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    # the absent classes 7 and 8 are not averaged in (they would pull the macro mean down)
    with_absent = skm.f1_score(y, p, average="macro", labels=range(9), zero_division=0)
    assert M.f1_macro(y, p) > with_absent


def test_f1_macro_hand_values():
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 1, fp 1, fn 0 -> 2/3; class 2 absent (not averaged);
    # class 3: tp 0, fp 0, fn 1 -> 0
    y = [0, 0, 1, 3]
    p = [0, 1, 1, 0]
    assert M.f1_macro(y, p) == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    assert M.per_class_f1(y, p, ["a", "b", "c", "d"]) == pytest.approx({"a": 0.5, "b": 2 / 3, "d": 0.0})


def test_classification_scores_bundle(preds):
    y, p = preds
    names = [f"c{i}" for i in range(9)]
    scores, per_class, cm = M.classification_scores(torch.as_tensor(y), torch.as_tensor(p), names)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    sk = skm.f1_score(y, p, average=None, labels=range(7))
    assert list(per_class) == [f"c{i}" for i in range(7)]
    np.testing.assert_allclose([per_class[f"c{i}"] for i in range(7)], sk)
    assert np.asarray(cm).sum() == 200 and np.asarray(cm).shape == (9, 9)


def test_classification_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        M.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        M.f1_macro([], [])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        M.confusion_matrix([0, 3], [0, 1], 3)


# -- retrieval ------------------------------------------------------------------------------------------
# Two queries against a gallery of five items; similarities written out so the ranking is explicit.
SIM = np.array([
    [0.9, 0.8, 0.7, 0.1, 0.5],  # ranking: g0 g1 g2 g4 g3
    [0.2, 0.3, 0.9, 0.4, 0.4],  # ranking: g2 g3 g4 (tie kept in gallery order) g1 g0
])
GALLERY = np.array([0, 1, 0, 1, 0])
QUERIES = np.array([0, 1])


def test_precision_at_k_hand_values():
    # q0 relevant (label 0) at ranks 1, 3, 4; q1 relevant (label 1) at ranks 2 and 4
    p = M.precision_at_k(SIM, QUERIES, GALLERY, ks=(1, 2, 3, 5))
    assert p[1] == pytest.approx((1 + 0) / 2)
    assert p[2] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert p[3] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert p[5] == pytest.approx((3 / 5 + 2 / 5) / 2)
    assert M.precision_at_k(SIM, QUERIES, GALLERY, ks=(10,))[10] == pytest.approx(0.5)  # k capped at 5


def test_map_hand_values():
    ap0 = (1 / 1 + 2 / 3 + 3 / 4) / 3
    ap1 = (1 / 2 + 2 / 4) / 2
    np.testing.assert_allclose(M.average_precision(SIM, QUERIES, GALLERY), [ap0, ap1])
    assert M.mean_average_precision(SIM, QUERIES, GALLERY) == pytest.approx((ap0 + ap1) / 2)
    # sklearn agrees on the tie-free query
    assert ap0 == pytest.approx(skm.average_precision_score(GALLERY == 0, SIM[0]))


def test_retrieval_metrics_skips_queries_without_relevant_items():
    sim = np.vstack([SIM, [[0.1, 0.2, 0.3, 0.4, 0.5]]])
    out = M.retrieval_metrics(sim, np.array([0, 1, 2]), GALLERY, ks=(1,))
    assert out["queries_without_relevant"] == 1
    assert out["map"] == pytest.approx(M.mean_average_precision(SIM, QUERIES, GALLERY))
    assert out["p@1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="undefined"):
        M.mean_average_precision(sim[2:], np.array([2]), GALLERY)


def test_cosine_similarity_matrix():
    q = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    g = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(M.cosine_similarity_matrix(q, g).numpy(), [[0.8, -0.6], [0.0, -1.0]], atol=1e-12)


def test_knn_votes_and_tie_break():
    gallery_labels = torch.tensor([0, 1, 1, 0, 2])
    sim = torch.tensor([
        [0.9, 0.8, 0.7, 0.1, 0.0],  # k=3: votes 0:1, 1:2 -> class 1
        [0.9, 0.5, 0.4, 0.6, 0.0],  # k=4: votes 0:2 (1.5), 1:2 (0.9) -> tie broken by similarity -> 0
        [0.1, 0.2, 0.3, 0.4, 0.5],  # k=1: nearest is g4 -> class 2
    ], dtype=torch.float64)
    assert M.knn_predict(sim[:1], gallery_labels, 3, 3).tolist() == [1]
    assert M.knn_predict(sim[1:2], gallery_labels, 4, 3).tolist() == [0]
    assert M.knn_predict(sim[2:], gallery_labels, 1, 3).tolist() == [2]
    assert M.knn_predict(sim, gallery_labels, 50, 3).shape == (3,)  # k capped at the gallery size
