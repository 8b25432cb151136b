"""Evaluation protocols end to end on `synthetic` data with tiny stand-in methods.

A forward hook on every encoder records which data rows it sees, which lets the tests check that the test
part is encoded exactly once, that the pretrained encoders are never mutated, and that few-label training
only ever sees the labelled subset.
"""
from __future__ import annotations

import collections
import json
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.contracts import DataInfo, Method
from benchmark.data import Split, load_dataset
from benchmark.engine import ConfigError
from benchmark.metrics import l2_normalize, mean_average_precision, precision_at_k
from benchmark.pretrain import Pretrained, pretrain
from benchmark.protocols.base import EvalResult
from benchmark.protocols.semisup import DEFAULT_BUDGETS, SemiSup, label_subset
from benchmark.registry import METHODS, PROTOCOLS

FAST = {"epochs": 3, "batch_size": 32}


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic")


@pytest.fixture(scope="module")
def split(data) -> Split:
    return data.split("xsub")


class RowRecorder:
    """Counts, per encoder, how often each data row went through it."""

    def __init__(self) -> None:
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def hook(self, modality: str):
        def record(module: nn.Module, inputs: tuple, output: Any) -> None:
            for row in inputs[0].detach().cpu().flatten(1).numpy():
                self.counts[modality][row.tobytes()] += 1

        return record

    def seen(self, data, modality: str, idx: np.ndarray) -> np.ndarray:
        """How often each of the rows `idx` of `data` was seen by the `modality` encoder."""
        x = data.modalities[modality][torch.as_tensor(idx)].flatten(1).numpy()
        return np.array([self.counts[modality][r.tobytes()] for r in x])

    def rows_seen(self, data, modality: str) -> set[int]:
        x = data.modalities[modality].flatten(1).numpy()
        return {i for i, r in enumerate(x) if self.counts[modality][r.tobytes()] > 0}


class TinyMethod(Method):
    """A stand-in method with small encoders (BN + dropout, like the real ones), projections and a classifier."""

    name = "tiny"
    kind = "multimodal"
    mods = ("inertial", "skeleton")

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps=None) -> None:
        super().__init__(info, cfg, deps)
        enc: dict[str, nn.Module] = {}
        if "inertial" in self.mods:
            enc["inertial"] = nn.Sequential(nn.Conv1d(6, 8, 5, stride=3), nn.BatchNorm1d(8), nn.ReLU(),
                                            nn.Dropout(0.2), nn.Flatten())  # 8 x 16 = 128-d
        if "skeleton" in self.mods:
            enc["skeleton"] = nn.Sequential(nn.Flatten(), nn.Linear(3 * 50 * 20, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.encs = nn.ModuleDict(enc)
        dims = {"inertial": 128, "skeleton": 32}
        self.projs = nn.ModuleDict({m: nn.Linear(dims[m], 8) for m in self.encs})
        self.head = nn.Linear(sum(dims[m] for m in self.encs), info.num_classes)

    def modalities_used(self) -> list[str]:
        return sorted(self.encs)

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encs)

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.projs)

    def classify(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([self.encs[m](x[m]).flatten(1) for m in sorted(self.encs)], dim=1))


class TinyUnimodal(TinyMethod):
    kind = "unimodal"
    mods = ("inertial",)


class TinySupervised(TinyMethod):
    kind = "supervised"


def make_pre(data, cls: type[TinyMethod] = TinyMethod, recorder: RowRecorder | None = None) -> Pretrained:
    torch.manual_seed(0)
    info = DataInfo.from_data(data)
    method = cls(info, cls.resolve_config(info, {}))
    if recorder is not None:
        for m, enc in method.encs.items():
            enc.register_forward_hook(recorder.hook(m))
    return Pretrained(cls.name, cls.name, method.eval(), method.cfg, 0)


def snapshot(pre: Pretrained) -> tuple[dict[str, torch.Tensor], list[bool]]:
    return ({k: v.clone() for k, v in pre.method.state_dict().items()}, [m.training for m in pre.method.modules()])


def assert_untouched(pre: Pretrained, snap) -> None:
    state, modes = snap
    now = pre.method.state_dict()
    for k, v in state.items():
        assert torch.equal(now[k], v), f"pretrained tensor {k} changed"
    assert [m.training for m in pre.method.modules()] == modes, "pretrained modules changed train/eval mode"


def run(name: str, pre: Pretrained, data, split, seed: int = 0, **overrides) -> EvalResult:
    proto = PROTOCOLS.get(name)
    return proto().run(pre, data, split, proto.resolve_config(overrides), seed, device="cpu")


def check_result(res: EvalResult, data, split) -> None:
    assert 0.0 <= res.metrics["accuracy"] <= 1.0 and 0.0 <= res.metrics["f1_macro"] <= 1.0
    cm = np.asarray(res.artifacts["confusion"])
    assert cm.shape == (data.num_classes, data.num_classes) and cm.sum() == len(split.test)
    assert res.metrics["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert set(res.per_class["f1"]) <= set(data.class_names)
    json.dumps({"m": res.metrics, "p": res.per_class, "a": res.artifacts})  # records must be serialisable


# -- configuration ------------------------------------------------------------------------------------------
def test_registered_protocols_and_config_validation():
    assert set(PROTOCOLS.names()) >= {"paper_head", "linear", "finetune", "knn", "retrieval", "semisup",
                                      "missing_modality"}
    for name in PROTOCOLS.names():
        proto = PROTOCOLS.get(name)
        assert proto.resolve_config() == proto.resolve_config({})
        with pytest.raises(ConfigError, match="unknown config key 'nope'.*valid keys"):
            proto.resolve_config({"nope": 1})
    with pytest.raises(ConfigError, match="bn_mode"):
        PROTOCOLS.get("paper_head").resolve_config({"bn_mode": "eval"})
    with pytest.raises(ConfigError, match="paper_head.epochs must be int"):
        PROTOCOLS.get("paper_head").resolve_config({"epochs": "ten"})
    with pytest.raises(ConfigError, match="knn.k"):
        PROTOCOLS.get("knn").resolve_config({"k": "best"})
    assert PROTOCOLS.get("knn").resolve_config({"k": 3})["k"] == 3
    assert PROTOCOLS.get("paper_head").resolve_config({"lr": 1})["lr"] == 1.0
    with pytest.raises(ConfigError, match="evaluators"):
        SemiSup.resolve_config({"evaluators": ["paper_head", "paper_head"]})
    with pytest.raises(ConfigError, match="per_class.*integer"):
        SemiSup.resolve_config({"budget_type": "per_class", "budget": 0.5})
    # the training protocols take an epochs override (the suites shorten schedules with it)
    for name in ("paper_head", "linear", "finetune", "semisup", "missing_modality"):
        assert isinstance(PROTOCOLS.get(name).defaults["epochs"], int)
    assert PROTOCOLS.get("missing_modality").applies_to("multimodal")
    assert not PROTOCOLS.get("missing_modality").applies_to("unimodal")


# -- paper_head -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bn_mode", ["reference", "frozen"])
def test_paper_head_multimodal(data, split, bn_mode):
    rec = RowRecorder()
    pre = make_pre(data, TinyMethod, rec)
    snap = snapshot(pre)
    res = run("paper_head", pre, data, split, bn_mode=bn_mode, **FAST)
    check_result(res, data, split)
    assert_untouched(pre, snap)
    for m in ("inertial", "skeleton"):
        assert (rec.seen(data, m, split.test) == 1).all(), "the test part must be encoded exactly once"
    train_seen = rec.seen(data, "inertial", split.train)
    if bn_mode == "frozen":  # features computed once per part
        assert (train_seen == 1).all() and (rec.seen(data, "inertial", split.val) == 1).all()
    else:  # the encoders run in the training loop (BN adaptation) and on val every epoch
        assert (train_seen >= 2).all() and (rec.seen(data, "inertial", split.val) == 3).all()
    assert res.artifacts["head_training"]["epochs_run"] == 3


def test_paper_head_reference_mode_adapts_bn_only_on_copies(data, split):
    pre = make_pre(data)
    snap = snapshot(pre)
    a = run("paper_head", pre, data, split, bn_mode="reference", **FAST)
    b = run("paper_head", pre, data, split, bn_mode="reference", **FAST)
    assert_untouched(pre, snap)
    assert a.metrics == b.metrics  # seeded, and the second run starts from the same (unmutated) encoders
    c = run("paper_head", pre, data, split, seed=1, bn_mode="reference", **FAST)
    assert c.artifacts["confusion"] != a.artifacts["confusion"]


def test_paper_head_unimodal_and_supervised(data, split):
    rec = RowRecorder()
    uni = make_pre(data, TinyUnimodal, rec)
    res = run("paper_head", uni, data, split, **FAST)
    check_result(res, data, split)
    assert (rec.seen(data, "inertial", split.test) == 1).all()
    rec_sup = RowRecorder()
    sup = make_pre(data, TinySupervised, rec_sup)
    res = run("paper_head", sup, data, split, **FAST)
    check_result(res, data, split)
    # the supervised method's own classifier is scored: no head is trained, only the test part is touched
    assert rec_sup.rows_seen(data, "skeleton") == set(split.test.tolist())
    with torch.no_grad():
        x = {m: data.modalities[m][torch.as_tensor(split.test)] for m in ("inertial", "skeleton")}
        expected = (sup.method.classify(x).argmax(1) == data.labels[torch.as_tensor(split.test)]).float().mean()
    assert res.metrics["accuracy"] == pytest.approx(float(expected))


# -- linear, finetune ---------------------------------------------------------------------------------------
def test_linear(data, split):
    rec = RowRecorder()
    pre = make_pre(data, TinyMethod, rec)
    snap = snapshot(pre)
    res = run("linear", pre, data, split, **FAST)
    check_result(res, data, split)
    assert_untouched(pre, snap)
    assert res.artifacts["feature_dim"] == 128 + 32
    for m in ("inertial", "skeleton"):
        for part in ("train", "val", "test"):
            assert (rec.seen(data, m, split.part(part)) == 1).all(), f"{m} {part} should be encoded once"


def test_finetune_trains_copies_and_leaves_pretrained_encoders_alone(data, split):
    rec = RowRecorder()
    pre = make_pre(data, TinyMethod, rec)
    snap = snapshot(pre)
    res = run("finetune", pre, data, split, **FAST)
    check_result(res, data, split)
    assert_untouched(pre, snap)
    assert (rec.seen(data, "inertial", split.test) == 1).all()
    # encoder_lr_scale 0 freezes the encoder copies: finetune then differs from the default run
    frozen = run("finetune", pre, data, split, encoder_lr_scale=0.0, **FAST)
    assert frozen.artifacts["confusion"] != res.artifacts["confusion"]
    assert_untouched(pre, snap)


# -- knn, retrieval -------------------------------------------------------------------------------------------
def _features(pre: Pretrained, data, idx: np.ndarray) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {m: enc(data.modalities[m][torch.as_tensor(idx)]).flatten(1).double()
                for m, enc in pre.encoders().items()}


def test_knn_matches_hand_computed_nearest_neighbour(data, split):
    rec = RowRecorder()
    pre = make_pre(data, TinyMethod, rec)
    res = run("knn", pre, data, split, tsne=False)
    check_result(res, data, split)
    assert res.artifacts["knn_k"] in (1, 5, 10, 20)
    assert res.metrics["accuracy"] == res.metrics[f"knn{res.artifacts['knn_k']}/accuracy"]
    assert (rec.seen(data, "skeleton", split.test) == 1).all()
    tr, te = _features(pre, data, split.train), _features(pre, data, split.test)
    fuse = lambda f: torch.cat([l2_normalize(f["inertial"]), l2_normalize(f["skeleton"])], dim=1)  # noqa: E731
    nearest = (fuse(te) @ fuse(tr).T).argmax(1)
    y_tr, y_te = data.labels[torch.as_tensor(split.train)], data.labels[torch.as_tensor(split.test)]
    assert res.metrics["knn1/accuracy"] == pytest.approx(float((y_tr[nearest] == y_te).float().mean()))
    assert "embedding_2d" not in res.artifacts
    fixed = run("knn", pre, data, split, k=1, tsne=False)
    assert fixed.artifacts["knn_k"] == 1 and "knn_val_scores" not in fixed.artifacts
    assert fixed.metrics["accuracy"] == res.metrics["knn1/accuracy"]


def test_knn_embedding_map(data, split):
    small = Split(split.name, split.train, split.val, split.test[::4])  # t-SNE on 40 points keeps this fast
    res = run("knn", make_pre(data), data, small)
    emb = res.artifacts["embedding_2d"]
    assert np.asarray(emb["xy"]).shape == (40, 2) and np.isfinite(emb["xy"]).all()
    assert emb["labels"] == data.labels[torch.as_tensor(small.test)].tolist()
    assert emb["class_names"] == data.class_names


def test_retrieval_spaces_and_values(data, split):
    pre = make_pre(data)
    res = run("retrieval", pre, data, split)
    check_result(res, data, split)
    for space in ("fused", "inertial", "skeleton", "inertial->skeleton", "skeleton->inertial"):
        for k in ("p@1", "p@5", "p@10", "map"):
            assert 0.0 <= res.metrics[f"{space}/{k}"] <= 1.0
    assert res.metrics["accuracy"] == pytest.approx(res.metrics["fused/p@1"])
    assert res.metrics["map"] == res.metrics["fused/map"]
    assert res.artifacts["precision_at_k"] == {"1": res.metrics["fused/p@1"], "5": res.metrics["fused/p@5"],
                                               "10": res.metrics["fused/p@10"]}
    tr, te = _features(pre, data, split.train), _features(pre, data, split.test)
    y_tr, y_te = data.labels[torch.as_tensor(split.train)], data.labels[torch.as_tensor(split.test)]
    sim = l2_normalize(te["inertial"]) @ l2_normalize(tr["inertial"]).T
    assert res.metrics["inertial/map"] == pytest.approx(mean_average_precision(sim, y_te, y_tr))
    with torch.no_grad():
        zq = pre.method.projs["inertial"](te["inertial"].float()).double()
        zg = pre.method.projs["skeleton"](tr["skeleton"].float()).double()
    cross = l2_normalize(zq) @ l2_normalize(zg).T
    assert res.metrics["inertial->skeleton/p@5"] == pytest.approx(precision_at_k(cross, y_te, y_tr, (5,))[5])
    uni = run("retrieval", make_pre(data, TinyUnimodal), data, split, embedding="projection")
    assert res.metrics.keys() != uni.metrics.keys()
    assert uni.artifacts["main_space"] == "inertial" and "fused/map" not in uni.metrics
    assert uni.metrics["accuracy"] == pytest.approx(uni.metrics["inertial/p@1"])


# -- semisup -------------------------------------------------------------------------------------------------
def test_label_subsets_stratified_nested_deterministic_and_stored(data, split, tmp_path):
    y = data.labels.numpy()
    n_c = np.bincount(y[split.train], minlength=data.num_classes)
    sizes = []
    previous: set[int] = set()
    for b in DEFAULT_BUDGETS["per_class"]:
        idx = label_subset(data, split, "per_class", b, 0, store_dir=tmp_path)
        assert set(idx.tolist()) <= set(split.train.tolist())
        np.testing.assert_array_equal(np.bincount(y[idx], minlength=data.num_classes), np.minimum(b, n_c))
        assert previous <= set(idx.tolist())  # nested within one seed
        previous = set(idx.tolist())
        sizes.append(idx.size)
        np.testing.assert_array_equal(idx, label_subset(data, split, "per_class", b, 0))  # same draw, no file
    assert len(set(sizes)) == len(sizes), "default budgets must give distinct subsets"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"synthetic-xsub-per_class-{b}-seed0.json" for b in DEFAULT_BUDGETS["per_class"])
    other = label_subset(data, split, "per_class", 2, 1)
    assert not np.array_equal(other, label_subset(data, split, "per_class", 2, 0))
    frac = label_subset(data, split, "fraction", 0.25, 0)
    np.testing.assert_array_equal(np.bincount(y[frac], minlength=data.num_classes), np.maximum(1, n_c // 4))
    tiny = label_subset(data, split, "fraction", 0.01, 0)
    np.testing.assert_array_equal(np.bincount(y[tiny], minlength=data.num_classes), np.ones(data.num_classes))
    # a stored file is what later runs reuse; one that names other clips is refused
    path = tmp_path / "synthetic-xsub-per_class-2-seed0.json"
    stored = json.loads(path.read_text())
    assert stored["ids"] == [data.ids[i] for i in stored["indices"]]
    stored["ids"][0] = "someone-else"
    path.write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match="does not match"):
        label_subset(data, split, "per_class", 2, 0, store_dir=tmp_path)


def test_semisup_expand_and_variants():
    from benchmark.plugins import load_plugins
    from benchmark.registry import DATASETS

    load_plugins()
    kinds = {"inertial": "inertial", "skeleton": "skeleton"}

    def info(name: str, train: int | None = None) -> DataInfo:
        return DataInfo({"inertial": (6, 50), "skeleton": (3, 50, 20)}, kinds, 27, DATASETS.get(name).training,
                        name, train)

    cfg = SemiSup.resolve_config()
    utd = SemiSup.expand(cfg, info("utd_mhad", 323))
    assert [(c["budget_type"], c["budget"]) for c in utd] == [("per_class", b) for b in (1, 2, 3, 5, 8)]
    mmact = SemiSup.expand(cfg, info("mmact"))
    assert [c["budget"] for c in mmact] == [0.01, 0.05, 0.1, 0.25, 0.5]
    assert {c["budget_type"] for c in mmact} == {"fraction"}
    assert [SemiSup.variant_name(c) for c in utd][:2] == ["semisup[per_class=1]", "semisup[per_class=2]"]
    assert SemiSup.variant_name(mmact[1]) == "semisup[fraction=0.05]"
    one = SemiSup.resolve_config({"budget_type": "per_class", "budget": 3})
    assert SemiSup.expand(one, info("utd_mhad")) == [one]
    small = SemiSup.expand(cfg, info("utd_mhad", 27 * 4))  # 4 train clips per class: budgets 5 and 8 are dropped
    assert [c["budget"] for c in small] == [1, 2, 3]


def test_semisup_trains_only_on_the_shared_subset(data, split, tmp_path, monkeypatch):
    monkeypatch.setenv("MMHAR_RESULTS", str(tmp_path))
    subsets = {}
    for cls in (TinyMethod, TinyUnimodal):
        rec = RowRecorder()
        pre = make_pre(data, cls, rec)
        snap = snapshot(pre)
        res = run("semisup", pre, data, split, budget_type="per_class", budget=2, epochs=2)
        check_result(res, data, split)
        assert_untouched(pre, snap)
        assert res.metrics["accuracy"] == res.metrics["paper_head/accuracy"]
        assert {"finetune/accuracy", "finetune/f1_macro", "paper_head/f1_macro"} <= set(res.metrics)
        assert res.artifacts["subset"]["n_labelled"] == 2 * data.num_classes
        # paper_head and finetune each encode the test part once
        assert (rec.seen(data, "inertial", split.test) == 2).all()
        subset = label_subset(data, split, "per_class", 2, 0)
        labelled = rec.rows_seen(data, "inertial") - set(split.val.tolist()) - set(split.test.tolist())
        assert labelled == set(subset.tolist()), "training must see exactly the labelled subset"
        subsets[cls.__name__] = subset
    np.testing.assert_array_equal(subsets["TinyMethod"], subsets["TinyUnimodal"])
    assert sorted(p.name for p in (tmp_path / "subsets").iterdir()) == [
        "synthetic-xsub-per_class-2-seed0.json", "synthetic-xsub-val-per_class-2-seed0.json"]  # val: same budget
    val = json.loads((tmp_path / "subsets" / "synthetic-xsub-val-per_class-2-seed0.json").read_text())["indices"]
    assert set(val) <= set(split.val.tolist()) and len(val) == 2 * data.num_classes
    with pytest.raises(ConfigError, match="one label budget per cell"):
        run("semisup", make_pre(data), data, split)


class TinyTrainableSupervised(TinySupervised):
    """A registered supervised stand-in, so that `pretrain` can retrain it on a label subset."""

    name = "tiny_supervised_test"
    n_views = 0
    rows: list[set[int]] = []

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        TinyTrainableSupervised.rows.append(set(batch["index"].tolist()))
        return nn.functional.cross_entropy(self.classify(batch["x"]), batch["y"])


@pytest.fixture()
def tiny_supervised():
    METHODS.add(TinyTrainableSupervised.name, TinyTrainableSupervised)
    TinyTrainableSupervised.rows = []
    yield TinyTrainableSupervised.name
    METHODS.remove(TinyTrainableSupervised.name)


def test_semisup_retrains_supervised_methods_on_the_subset(data, split, tiny_supervised):
    pre = pretrain(tiny_supervised, data, split, {"epochs": 2}, 0, device="cpu")
    TinyTrainableSupervised.rows = []
    res = run("semisup", pre, data, split, budget_type="per_class", budget=1)
    check_result(res, data, split)
    assert "finetune/accuracy" not in res.metrics and "supervised" in res.artifacts["notes"]
    assert res.artifacts["subset"]["n_labelled"] == data.num_classes
    subset = set(label_subset(data, split, "per_class", 1, 0).tolist())
    assert TinyTrainableSupervised.rows and set().union(*TinyTrainableSupervised.rows) == subset


# -- missing_modality ---------------------------------------------------------------------------------------
def test_missing_modality(data, split):
    rec = RowRecorder()
    pre = make_pre(data, TinyMethod, rec)
    snap = snapshot(pre)
    res = run("missing_modality", pre, data, split, **FAST)
    check_result(res, data, split)
    assert_untouched(pre, snap)
    assert res.metrics["accuracy"] == res.metrics["full/accuracy"]
    assert {"no_inertial/accuracy", "no_skeleton/accuracy", "no_skeleton/f1_macro"} <= set(res.metrics)
    assert set(res.artifacts["confusion_by_condition"]) == {"full", "no_inertial", "no_skeleton"}
    assert (rec.seen(data, "skeleton", split.test) == 1).all()
    paper = run("paper_head", make_pre(data), data, split, **FAST)
    assert paper.metrics["accuracy"] == res.metrics["full/accuracy"]  # the same head, trained the same way
    zero = run("missing_modality", pre, data, split, impute="zero", **FAST)
    assert zero.metrics["full/accuracy"] == res.metrics["full/accuracy"]
    with pytest.raises(ConfigError, match="kind multimodal"):
        run("missing_modality", make_pre(data, TinyUnimodal), data, split, **FAST)
