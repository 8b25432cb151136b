"""Encode once: the shared-feature path gives exactly the predictions and metrics of the per-protocol path."""
from __future__ import annotations

import json

import pytest
import torch

from benchmark.data import load_dataset
from benchmark.protocols.base import encode
from benchmark.protocols.features import FeatureCache, active_cache, sharing_features
from benchmark.registry import PROTOCOLS
from tests.test_protocols import RowRecorder, TinyMethod, assert_untouched, make_pre, snapshot

FAST = {"epochs": 3, "batch_size": 32}
# every protocol (and configuration) that reads frozen eval-mode encoders, plus one that trains copies
CASES = [
    ("linear", FAST),
    ("knn", {"tsne": False}),
    ("retrieval", {}),
    ("paper_head", {**FAST, "bn_mode": "frozen"}),
    ("missing_modality", {**FAST, "bn_mode": "frozen"}),
    ("semisup", {"budget": 2, "epochs": 3, "evaluators": ["linear", "knn"]}),
    ("semisup", {"budget": 3, "epochs": 3, "evaluators": ["linear", "knn"]}),
    ("finetune", FAST),  # trains copies: never served from the cache
]


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic")


def _run_all(pre, data, split, cache: FeatureCache | None) -> list[str]:
    """Every case's predictions, metrics and artifacts as canonical JSON, run in order under `cache`."""
    out = []
    with sharing_features(cache):
        for name, overrides in CASES:
            proto = PROTOCOLS.get(name)
            torch.manual_seed(123)  # the worker seeds before each cell; protocols seed themselves too
            res = proto().run(pre, data, split, proto.resolve_config(overrides), 7, device="cpu")
            out.append(json.dumps({"p": res.predictions, "m": res.metrics, "a": res.artifacts, "c": res.per_class},
                                  sort_keys=True, default=str))
    return out


def test_shared_features_give_identical_results(data):
    split = data.split("xsub")
    recorder = RowRecorder()
    pre = make_pre(data, TinyMethod, recorder)
    snap = snapshot(pre)
    per_protocol = _run_all(pre, data, split, None)
    seen_alone = {m: recorder.seen(data, m, split.test).sum() for m in ("inertial", "skeleton")}
    recorder.counts.clear()
    cache = FeatureCache(pre.encoders())
    shared = _run_all(pre, data, split, cache)
    seen_shared = {m: recorder.seen(data, m, split.test).sum() for m in ("inertial", "skeleton")}
    for (name, cfg), a, b in zip(CASES, per_protocol, shared):
        assert a == b, f"{name} {cfg}: the shared-feature path changed the result"
    assert cache.hits > 0 and len(cache) > 0
    # the test part went through each pretrained encoder once for all frozen protocols (plus the copies' reads)
    assert all(seen_shared[m] < seen_alone[m] for m in seen_shared), (seen_alone, seen_shared)
    assert_untouched(pre, snap)
    assert active_cache() is None


def test_cache_serves_only_its_own_modules_and_copies(data):
    split = data.split("xsub")
    pre = make_pre(data, TinyMethod)
    encoders = pre.encoders()
    cache = FeatureCache(encoders)
    with sharing_features(cache):
        first = encode(encoders, data, split.val, torch.device("cpu"))
        first["inertial"].add_(1.0)  # a protocol altering its tensor must not alter the next one's
        second = encode(encoders, data, split.val, torch.device("cpu"))
        other = encode(encoders, data, split.val[:5], torch.device("cpu"))  # other clips: computed, not sliced
        copy = {m: torch.nn.Sequential(e) for m, e in encoders.items()}  # not the cached modules: encoded afresh
        encode(copy, data, split.val, torch.device("cpu"))
    plain = encode(encoders, data, split.val, torch.device("cpu"))
    assert cache.hits == 2 and len(cache) == 4  # second (2 modalities); stored: val and val[:5], 2 modalities each
    for m in plain:
        assert torch.equal(second[m], plain[m])
        # exact keys: a slice of the val features could differ in the last bits (other batch composition)
        assert torch.equal(other[m], encode(encoders, data, split.val[:5], torch.device("cpu"))[m])
