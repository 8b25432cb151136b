"""The run-time guard: a protocol reads the test split exactly once per evaluation, never mixed with others."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmark.data import load_dataset
from benchmark.pretrain import pretrain
from benchmark.protocols.base import EvalResult, Protocol, encode, gather, labels_of, scored
from benchmark.protocols.split_guard import TestSplitReadError
from benchmark.registry import PROTOCOLS


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("synthetic")
    split = data.split("xsub")
    pre = pretrain("simclr", data, split, {"epochs": 1, "batch_size": 16}, 0, device="cpu")
    return pre, data, split


class _Reads(Protocol):
    name = "reads"

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan

    def run(self, pre: Any, data: Any, split: Any, cfg: dict, seed: int, *, device: Any = "cpu") -> EvalResult:
        for part in self.plan:
            idx = {"test": split.test, "train": split.train, "mixed": np.concatenate([split.train, split.test[:3]])}[part]
            feats = encode(pre.encoders(), data, idx, "cpu")
        y = labels_of(data, split.test, "cpu")
        return scored(y, y * 0 if not feats else y, data.class_names)


def test_one_test_read_passes(setup):
    pre, data, split = setup
    assert _Reads(["train", "test"]).run(pre, data, split, {}, 0).metrics["accuracy"] == 1.0


@pytest.mark.parametrize("plan,match", [(["test", "test"], "2 time"), (["train"], "0 time"),
                                        (["mixed"], "3 test clip")])
def test_reading_test_twice_never_or_mixed_fails(setup, plan, match):
    pre, data, split = setup
    with pytest.raises(TestSplitReadError, match=match):
        _Reads(plan).run(pre, data, split, {}, 0)


def test_registered_protocols_are_guarded_and_reads_outside_protocols_are_free(setup):
    _, data, split = setup
    assert all(getattr(PROTOCOLS.get(n).run, "__mmhar_guarded__", False) for n in PROTOCOLS.names())
    gather(data, np.concatenate([split.train, split.test]), ["inertial"], "cpu")  # no protocol running: no check


def test_a_plugin_protocol_reading_data_directly_is_not_observed_but_a_builtin_must_read_once(setup):
    pre, data, split = setup

    class Direct(Protocol):
        name = "direct"

        def run(self, pre, data, split, cfg, seed, *, device="cpu"):
            y = labels_of(data, split.test, "cpu")
            return scored(y, y, data.class_names)

    assert Direct().run(pre, data, split, {}, 0).metrics["accuracy"] == 1.0
    Direct.__module__ = "benchmark.protocols.direct"  # as if it were one of the harness's own
    Strict = type("Strict", (Direct,), {"run": Direct.__dict__["run"].__wrapped__, "__module__": Direct.__module__})
    with pytest.raises(TestSplitReadError, match="0 time"):
        Strict().run(pre, data, split, {}, 0)

