"""MoCo v2 per modality (`moco`) and its cross-modal variant (`cmc_moco`). Not part of the reference (spec 2.4).

MoCo v2 (Chen et al. 2020): a query encoder + head trained with InfoNCE of each query against its positive
key (another view, encoded by an EMA "key" copy of the query network) and a FIFO queue of past keys.

Deviations from MoCo v2, all deliberate for this small-data setting (and configurable):
- queue_size K = 256 (UTD-MHAD, ~323 training clips; MMAct's plugin declares 4096) instead of 65,536;
- ema_momentum m = 0.99 (UTD-MHAD: ~5 steps per epoch; MMAct's plugin declares 0.999);
- head: the same Linear(d->256), BN, ReLU, Linear(256->128) as SimCLR/CMC, not MoCo's 2048-wide MLP;
- optimiser: Adam 1e-3, ReduceLROnPlateau on the train loss, 300 epochs, batch per modality as SimCLR
  (`moco`) or as CMC (`cmc_moco`), instead of SGD 0.03 with a cosine schedule (set optimizer='sgd',
  lr=0.03, scheduler='cosine', weight_decay=1e-4 for the paper recipe); tau 0.2 as MoCo v2;
- stale keys: every queued key remembers the dataset index it came from, and a query never sees keys of
  its own sample among its negatives (`exclude_stale`, default on). With a small dataset the queue would
  otherwise hold older copies of the anchor itself (false negatives) whenever K > n_train - batch size;
  excluding them is robust to any K, batch size or train subset;
- shuffle-BN: MoCo shuffles the key batch across GPUs so BatchNorm statistics cannot leak the positive.
  `shuffle_bn=True` emulates it on one device by permuting the key batch, encoding it in two halves
  (separate BN statistics) and un-permuting; off by default (omitted, as most single-GPU ports do);
- the key encoder's BatchNorm runs in train mode (batch statistics), as in MoCo; only parameters are EMA'd;
- queue start (`queue_init`): MoCo fills the queue with random unit vectors, which makes the first K/B
  steps contrast against meaningless, easy negatives (the loss starts low and rises as real keys arrive).
  By default ("first_batch") the first training step fills the whole queue with tiled copies of its own
  keys instead (own-sample copies excluded as stale), so every step sees real negatives; "random" is MoCo's;
- the loss is asymmetric (query view 1, key view 2), as MoCo v2.

`cmc_moco`: one view per modality; the query of one modality is contrasted with the momentum-encoded key of
the other modality and that modality's queue, in both directions (mean over the ordered modality pairs).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmark.backbones import ProjectionHead, build_encoder
from benchmark.blocks import KeyQueue, frozen_copy, momentum_update
from benchmark.contracts import DataInfo, Method
from benchmark.losses import infonce_queue
from benchmark.registry import METHODS

QUEUE_INITS = ("first_batch", "random")


class _MoCoBase(Method):
    """Query/key networks per modality, one queue per modality, momentum update after each step."""

    defaults = {"temperature": 0.2, "queue_size": 256, "ema_momentum": 0.99, "proj_hidden": 256, "proj_dim": 128,
                "exclude_stale": True, "shuffle_bn": False, "queue_init": "first_batch"}

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        if not 0.0 <= cfg["ema_momentum"] <= 1.0:
            raise ValueError(f"{self.name}.ema_momentum must be in [0, 1], got {cfg['ema_momentum']}")
        self.modalities = self.modalities_used()
        self.encoder_modules = nn.ModuleDict(
            {m: build_encoder(info.kinds[m], info.shapes[m]) for m in self.modalities})
        self.heads = nn.ModuleDict({m: ProjectionHead(self.encoder_modules[m].out_dim, cfg["proj_hidden"],
                                                      cfg["proj_dim"]) for m in self.modalities})
        self.key_encoders = nn.ModuleDict({m: frozen_copy(e) for m, e in self.encoder_modules.items()})
        self.key_heads = nn.ModuleDict({m: frozen_copy(h) for m, h in self.heads.items()})
        self.queues = nn.ModuleDict({m: KeyQueue(cfg["queue_size"], cfg["proj_dim"]) for m in self.modalities})

    def query(self, m: str, x: torch.Tensor) -> torch.Tensor:
        return self.heads[m](self.encoder_modules[m](x))

    @torch.no_grad()
    def key(self, m: str, x: torch.Tensor) -> torch.Tensor:
        """Momentum-encoded keys; with shuffle_bn (training only) the batch is encoded in two shuffled halves."""
        net = lambda t: self.key_heads[m](self.key_encoders[m](t))  # noqa: E731
        if not (self.cfg["shuffle_bn"] and self.training):
            return net(x)
        if x.shape[0] < 4:
            raise ValueError(f"shuffle_bn needs batches of at least 4 samples, got {x.shape[0]}")
        perm = torch.randperm(x.shape[0], device=x.device)
        k = torch.cat([net(part) for part in x[perm].chunk(2)], dim=0)
        return k[torch.argsort(perm)]

    def contrast(self, q: torch.Tensor, k: torch.Tensor, key_modality: str, index: torch.Tensor) -> torch.Tensor:
        """InfoNCE of queries against their keys and the key modality's queue (own-sample keys excluded)."""
        queue = self.queues[key_modality]
        if self.training and self.cfg["queue_init"] == "first_batch" and not queue.is_primed():
            queue.prime(k, index)
        exclude = queue.same_sample(index) if self.cfg["exclude_stale"] else None
        # a snapshot: the queue is updated in place after this loss is computed, before backward
        return infonce_queue(q, k, queue.keys.clone(), self.cfg["temperature"], exclude=exclude)

    def after_step(self) -> None:
        for m in self.modalities:
            momentum_update(self.encoder_modules[m], self.key_encoders[m], self.cfg["ema_momentum"])
            momentum_update(self.heads[m], self.key_heads[m], self.cfg["ema_momentum"])

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.heads)


@METHODS.register("moco")
class MoCo(_MoCoBase):
    """Unimodal MoCo v2: query = view 1, positive key = view 2 through the momentum network, queue negatives."""

    name = "moco"
    kind = "unimodal"
    n_views = 2
    defaults = {"modality": "inertial", "epochs": 300, **_MoCoBase.defaults}
    modality_defaults = {"inertial": {"batch_size": 128}, "skeleton": {"batch_size": 32}}  # SimCLR's (UTD-MHAD)
    choices = {"queue_init": QUEUE_INITS}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        m = self.modalities[0]
        q = self.query(m, batch["views"][0][m])
        k = self.key(m, batch["views"][1][m])
        loss = self.contrast(q, k, m, batch["index"])
        if self.training:
            self.queues[m].push(k, batch["index"])
        return loss


@METHODS.register("cmc_moco")
class CMCMoCo(_MoCoBase):
    """Cross-modal MoCo: query in one modality, key + queue of the other, both directions."""

    name = "cmc_moco"
    kind = "multimodal"
    n_views = 1
    defaults = {"epochs": 100, **_MoCoBase.defaults}
    choices = {"queue_init": QUEUE_INITS}

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        if len(self.modalities) < 2:
            raise ValueError(f"cmc_moco needs at least two modalities; the data has {self.modalities}")

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        x, index = batch["views"][0], batch["index"]
        q = {m: self.query(m, x[m]) for m in self.modalities}
        k = {m: self.key(m, x[m]) for m in self.modalities}
        pairs = [(a, b) for a in self.modalities for b in self.modalities if a != b]
        loss = sum(self.contrast(q[a], k[b], b, index) for a, b in pairs) / len(pairs)
        if self.training:
            for m in self.modalities:
                self.queues[m].push(k[m], index)
        return loss
