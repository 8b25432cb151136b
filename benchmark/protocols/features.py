"""Encode once: eval-mode features of a work unit's pretrained encoders, shared by all its protocols.

Every protocol that reads frozen encoders in eval mode (linear, knn, retrieval, `paper_head[bn_mode=frozen]`,
semisup's linear/knn evaluators, ...) calls `benchmark.protocols.base.encode`. While a `FeatureCache` is active
(`sharing_features`, set by the runner's worker around a work unit's cells), `encode` serves the features of a
(pretrained encoder, exact clip indices, device, batch size) from the cache, computing them the first time in
exactly the way it always does, so every protocol gets the numbers it would compute itself.

Only the modules the cache was built with are served (checked by identity): fine-tuned or train-mode copies
that protocols make are always encoded afresh. Served tensors are copies, so a protocol cannot alter what
the next one reads.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from torch import nn

_ACTIVE: ContextVar["FeatureCache | None"] = ContextVar("mmhar_feature_cache", default=None)


class FeatureCache:
    """Features of given (frozen, eval-mode) encoder modules per (modality, clip indices, device, batch size)."""

    def __init__(self, encoders: Mapping[str, nn.Module]) -> None:
        self._encoders = dict(encoders)  # holding the modules keeps the identity checks valid
        self._store: dict[tuple[str, str, str, int], torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def covers(self, modality: str, module: nn.Module) -> bool:
        """Whether `module` is the cached encoder of `modality` (the very object, not a copy)."""
        return self._encoders.get(modality) is module

    @staticmethod
    def _key(modality: str, idx: np.ndarray, device: torch.device, batch_size: int) -> tuple[str, str, str, int]:
        ids = np.ascontiguousarray(np.asarray(idx, dtype=np.int64).reshape(-1))
        return modality, hashlib.sha256(ids.tobytes()).hexdigest(), str(device), int(batch_size)

    def lookup(self, modality: str, module: nn.Module, idx: np.ndarray, device: torch.device,
               batch_size: int) -> torch.Tensor | None:
        """A copy of the stored features, or None (not stored yet, or a module the cache does not cover)."""
        if not self.covers(modality, module):
            return None
        hit = self._store.get(self._key(modality, idx, device, batch_size))
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        return hit.clone()

    def put(self, modality: str, module: nn.Module, idx: np.ndarray, device: torch.device, batch_size: int,
            feats: torch.Tensor) -> None:
        """Store features just computed (ignored for modules the cache does not cover)."""
        if self.covers(modality, module):
            self._store[self._key(modality, idx, device, batch_size)] = feats.detach().clone()

    def __len__(self) -> int:
        return len(self._store)


def active_cache() -> FeatureCache | None:
    """The feature cache of the running work unit, if any."""
    return _ACTIVE.get()


@contextmanager
def sharing_features(cache: FeatureCache | None) -> Iterator[FeatureCache | None]:
    """Make `cache` the active feature cache inside the block (None: no sharing)."""
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)

