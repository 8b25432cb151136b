"""Tiny method and protocol plugins for the runner, store and CLI tests (fast, deterministic, dependency-aware).

They are registered only inside tests (`registered()` context manager), so other tests never see them.
Worker processes (joblib, dask) import this module by name and register them from the runner's payload.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.contracts import DataInfo, Dependency, Method
from benchmark.engine import TrainConfig, fit
from benchmark.protocols.base import EvalResult, Protocol
from benchmark.registry import METHODS, PROTOCOLS


class ToySSL(Method):
    """Unimodal contrastive toy: one linear encoder, InfoNCE between two augmented views."""

    name = "toy_ssl"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "dim": 8, "temperature": 0.5}

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**super().all_defaults(), "epochs": 3, "batch_size": 8}

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        m = cfg["modality"]
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(info.shapes[m]), cfg["dim"]))

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        m = self.cfg["modality"]
        z1 = F.normalize(self.encoder(batch["views"][0][m]), dim=1)
        z2 = F.normalize(self.encoder(batch["views"][1][m]), dim=1)
        logits = z1 @ z2.T / self.cfg["temperature"]
        return F.cross_entropy(logits, torch.arange(len(z1), device=z1.device))

    def encoders(self) -> dict[str, nn.Module]:
        return {self.cfg["modality"]: self.encoder}


class ToyStudent(Method):
    """Multimodal toy depending on one pretrained ToySSL teacher per modality (like CMC-CMKM's teachers)."""

    name = "toy_student"
    kind = "multimodal"
    n_views = 1
    defaults = {"dim": 8, "teacher_dim": 8}

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**super().all_defaults(), "epochs": 2, "batch_size": 8}

    @classmethod
    def dependencies(cls, cfg: dict[str, Any], info: DataInfo) -> list[Dependency]:
        return [Dependency(f"teacher_{m}", "toy_ssl", {"modality": m, "dim": cfg["teacher_dim"]})
                for m in ("inertial", "skeleton")]

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.enc = nn.ModuleDict({m: nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), cfg["dim"]))
                                  for m, s in info.shapes.items()})
        self.teachers = {m: self._deps[f"teacher_{m}"] for m in info.shapes if f"teacher_{m}" in self._deps}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        if len(self.teachers) != 2:
            raise RuntimeError("toy_student needs both teachers to train")
        v = batch["views"][0]
        zi = F.normalize(self.enc["inertial"](v["inertial"]), dim=1)
        zs = F.normalize(self.enc["skeleton"](v["skeleton"]), dim=1)
        with torch.no_grad():
            t = F.normalize(self.teachers["inertial"].encoder(v["inertial"]), dim=1)
        target = (t @ t.T).argmax(1)
        return F.cross_entropy(zi @ zs.T / 0.5, target)

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.enc)


class ToyProbe(Protocol):
    """Linear probe on frozen embeddings, trained with engine.fit; one cell per label budget (expand)."""

    name = "toy_probe"
    defaults = {"epochs": 4, "lr": 0.05, "budget": None}
    types = {"budget": (int, type(None))}
    calls = 0  # class-level counter (tests spy on it)

    @classmethod
    def expand(cls, cfg: dict[str, Any], info: Any = None) -> list[dict[str, Any]]:
        return [cfg] if cfg["budget"] is not None else [{**cfg, "budget": b} for b in (1, 3)]

    @classmethod
    def variant_name(cls, cfg: dict[str, Any]) -> str:
        return f"toy_probe[budget={cfg['budget']}]" if cfg.get("budget") is not None else cls.name

    def run(self, pre: Any, data: Any, split: Any, cfg: dict[str, Any], seed: int, *, device: Any = "cpu") -> EvalResult:
        ToyProbe.calls += 1
        encs = pre.encoders()
        with torch.no_grad():
            feats = {p: torch.cat([e(data.modalities[m][idx]).flatten(1) for m, e in encs.items()], 1)
                     for p, idx in (("train", split.train), ("test", split.test))}
        y = data.labels
        rng = np.random.default_rng(seed)
        keep = np.concatenate([rng.permutation(np.flatnonzero(y[split.train].numpy() == c))[: cfg["budget"]]
                               for c in range(data.num_classes)])
        xtr, ytr = feats["train"][keep], y[split.train][keep]
        head = nn.Linear(xtr.shape[1], data.num_classes)
        tcfg = TrainConfig(epochs=cfg["epochs"], batch_size=4, lr=cfg["lr"], scheduler="none", drop_last=False,
                           quiet=True)
        fit(head, lambda pos: F.cross_entropy(head(xtr[pos]), ytr[pos]), len(ytr), tcfg, seed=seed)
        with torch.no_grad():
            pred = head(feats["test"]).argmax(1)
        yt = y[split.test]
        acc = float((pred == yt).float().mean())
        return EvalResult(metrics={"accuracy": acc, "f1_macro": acc / 2, "margin": float(head.weight.detach().norm())},
                          per_class={"f1": {n: 0.5 for n in data.class_names}}, artifacts={"n_labelled": int(len(keep))})


class ToyMultiOnly(ToyProbe):
    """Like ToyProbe but only for multimodal methods (tests kind filtering)."""

    name = "toy_multi_only"
    kinds = ("multimodal",)
    defaults = {"epochs": 2, "lr": 0.05, "budget": 2}

    @classmethod
    def variant_name(cls, cfg: dict[str, Any]) -> str:
        return cls.name


PLUGINS = {METHODS: [ToySSL, ToyStudent], PROTOCOLS: [ToyProbe, ToyMultiOnly]}


def register_all() -> None:
    for reg, objs in PLUGINS.items():
        for obj in objs:
            reg.add(obj.name, obj)


def unregister_all() -> None:
    for reg, objs in PLUGINS.items():
        for obj in objs:
            reg.remove(obj.name)


@contextmanager
def registered() -> Iterator[None]:
    """Register the toy plugins for the duration of a test."""
    register_all()
    try:
        yield
    finally:
        unregister_all()
