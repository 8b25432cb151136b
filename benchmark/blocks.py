"""Building blocks that method plugins share: momentum (EMA) updates, a key queue, frozen copies, the
per-modality encoder + projection head networks of the cross-modal contrastive methods, and the reference's
supervised schedule and train-only skeleton transforms (end-to-end and frozen-encoder supervised methods).

They live in the harness so that plugins never import each other.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from benchmark.augment import Augmenter
from benchmark.backbones import ProjectionHead, build_encoder
from benchmark.contracts.dataset import TrainingProfile
from benchmark.contracts.method import DataInfo, Method
from benchmark.losses import unit

PROJECTION_DEFAULTS: dict[str, Any] = {"temperature": 0.1, "proj_hidden": 256, "proj_dim": 128}


class KeyQueue(nn.Module):
    """A FIFO queue of unit keys [K, d] with the dataset index each key came from (-1: an initial random key)."""

    keys: torch.Tensor
    indices: torch.Tensor
    ptr: torch.Tensor
    primed: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue_size must be >= 1, got {size}")
        self.size = int(size)
        self.register_buffer("keys", nn.functional.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("indices", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("primed", torch.zeros((), dtype=torch.bool))
        self._primed_seen = False

    @torch.no_grad()
    def push(self, keys: torch.Tensor, indices: torch.Tensor) -> None:
        """Enqueue a batch of keys in place of the oldest ones (only the newest K if the batch is larger)."""
        keys, indices = keys[-self.size:], indices[-self.size:]
        pos = (self.ptr + torch.arange(keys.shape[0], device=self.keys.device)) % self.size
        self.keys[pos] = unit(keys.detach()).to(self.keys.dtype)
        self.indices[pos] = indices.to(self.indices.device, torch.long)
        self.ptr.copy_((self.ptr + keys.shape[0]) % self.size)
        self.primed.fill_(True)

    @torch.no_grad()
    def prime(self, keys: torch.Tensor, indices: torch.Tensor) -> None:
        """Fill the whole queue with copies of one batch of keys (tiled), replacing the random initial keys."""
        reps = -(-self.size // keys.shape[0])
        self.keys.copy_(unit(keys.detach()).repeat(reps, 1)[: self.size].to(self.keys.dtype))
        self.indices.copy_(indices.to(self.indices.device, torch.long).repeat(reps)[: self.size])
        self.ptr.zero_()
        self.primed.fill_(True)

    def is_primed(self) -> bool:
        """Whether real keys were ever stored (cached once true: avoids a device sync per step)."""
        if not self._primed_seen:
            self._primed_seen = bool(self.primed)
        return self._primed_seen

    def same_sample(self, indices: torch.Tensor) -> torch.Tensor:
        """[B, K] mask: queue entries that are (stale) keys of the query's own sample."""
        return indices.to(self.indices.device).view(-1, 1) == self.indices.view(1, -1)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """EMA of the parameters: target <- m * target + (1 - m) * online."""
    for p_o, p_t in zip(online.parameters(), target.parameters()):
        p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy that receives no gradient (the momentum key network)."""
    return copy.deepcopy(module).requires_grad_(False)


def frozen_encoder_copy(info: DataInfo, modality: str, source: nn.Module, owner: str = "") -> nn.Module:
    """A fresh encoder of `modality` loaded strictly from `source`, in eval mode and without gradients."""
    enc = build_encoder(info.kinds[modality], info.shapes[modality])
    try:
        enc.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as exc:
        raise RuntimeError(f"{owner}: the teacher encoder of {modality} does not match the {modality} encoder "
                           f"this data needs (strict load failed): {exc}") from exc
    enc.to(next(source.parameters()).device)
    return enc.eval().requires_grad_(False)


def encoders_and_heads(info: DataInfo, modalities: list[str], hidden: int, out: int) -> tuple[nn.ModuleDict,
                                                                                            nn.ModuleDict]:
    """One encoder (of each modality's kind) and one projection head Linear(d->hidden), BN, ReLU, Linear(->out)
    per modality: the networks of every SSL method."""
    encs = nn.ModuleDict({m: build_encoder(info.kinds[m], info.shapes[m]) for m in modalities})
    heads = nn.ModuleDict({m: ProjectionHead(encs[m].out_dim, hidden, out) for m in modalities})  # type: ignore[arg-type]
    return encs, heads


class CrossModalProjections(Method):
    """Base of cross-modal methods: one encoder and one projection head per modality (every modality of the
    data, in the data's order), `project(x)` into the shared space; the encoders are evaluated."""

    kind = "multimodal"
    n_views = 1

    def __init__(self, info: DataInfo, cfg: dict[str, Any], deps: dict[str, Method] | None = None) -> None:
        super().__init__(info, cfg, deps)
        self.modalities = list(info.shapes)
        if len(self.modalities) < 2:
            raise ValueError(f"{self.name} needs at least two modalities; the data has {self.modalities}")
        self.encoder_modules = nn.ModuleDict(
            {m: build_encoder(info.kinds[m], info.shapes[m]) for m in self.modalities})
        self.heads = nn.ModuleDict({
            m: ProjectionHead(self.encoder_modules[m].out_dim, cfg["proj_hidden"], cfg["proj_dim"])  # type: ignore[arg-type]
            for m in self.modalities
        })

    def project(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{modality: projection} of a batch {modality: input}."""
        return {m: self.heads[m](self.encoder_modules[m](x[m])) for m in self.modalities}

    def encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoder_modules)

    def projectors(self) -> dict[str, nn.Module]:
        return dict(self.heads)


# -- the reference's supervised training (methods/supervised.py documents it) --------------------------------
AUG_PIPELINE = "supervised_skeleton"  # the name under which a dataset's profile may change the train transforms
TRAIN_AUGMENT: dict[str, dict[str, Any]] = {
    "jittering": {"sigma": 0.01, "probability": 1.0},
    "crop_and_resize": {"min_p": 0.7, "max_p": 1.0, "probability": 1.0},
    "scaling": {"apply": False},
    "rotation": {"apply": True, "start": -5, "end": 5, "step": 1, "probability": 1.0},
    "shear": {"apply": False},
}


def reference_schedule(main_metric: str, fused: bool) -> dict[str, Any]:
    """The reference's epochs, plateau, early-stopping and selection settings (selection on val_<main metric>)."""
    main = "val_" + ("f1" if str(main_metric).lower() in ("f1", "f1_macro") else "accuracy")
    common = {"scheduler": "plateau", "monitor_mode": "max", "select": main, "select_mode": "max",
              "early_stop_patience": 50, "batch_size": 64}
    if fused:
        return {**common, "epochs": 100, "monitor": "val_accuracy", "plateau_patience": 5,
                "early_stop": "val_loss", "early_stop_mode": "min"}
    return {**common, "epochs": 100, "monitor": main, "plateau_patience": 10,
            "early_stop": "val_accuracy", "early_stop_mode": "max"}


def skeleton_train_augmenter(training: TrainingProfile, label: str = "") -> Augmenter:
    """The reference's train-only skeleton transforms of the supervised configs (see the module docstring)."""
    layers: list[Any] = [TRAIN_AUGMENT] + ([training.augmentations[AUG_PIPELINE]]
                                           if AUG_PIPELINE in training.augmentations else [])
    return Augmenter("skeleton", "reference", layers, label or AUG_PIPELINE)


def supervised_loss(method: Method, augmenters: dict[str, Augmenter], batch: dict[str, Any]) -> torch.Tensor:
    """Cross-entropy of `method.classify` on the batch's inputs, the train-only `augmenters` applied in training
    (the supervised configs' loss; shared by the end-to-end and the frozen-encoder supervised methods)."""
    import torch.nn.functional as F

    x = dict(batch["x"])
    if method.training and augmenters:
        x.update({m: aug(x[m], batch["generator"]) for m, aug in augmenters.items()})
    return F.cross_entropy(method.classify(x).float(), batch["y"])
