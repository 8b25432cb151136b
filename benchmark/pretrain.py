"""Pretraining a method plugin on a dataset split, checkpoints, and frozen-encoder embeddings.

`pretrain` is the only place that turns a method plugin into a trained model: it resolves the config for
the data (its modalities and declared training profile), seeds everything, trains missing dependencies (CMKM's
SimCLR teachers) first, builds
the batched on-device augmenters, and runs `engine.fit` over the split's train part with batches built
from indices into the in-memory data tensors (no data loader, no per-sample Python work).

Batches handed to `Method.loss` are {"views", "x", "y", "index", "generator", "groups"} (see
benchmark/contracts/method.py; the
seeded augmentation generator is there for methods that augment inside their loss, e.g. the supervised
baseline's train-only skeleton transforms). Validation runs every epoch on the split's val part, in full
batches of the method's batch size (one batch of all when the val part is smaller): SSL methods report
`val_loss` on un-augmented views, as the reference's val loader applies only the base transforms (a method
may set `val_augmented = True` to validate on augmented views); supervised methods report val_loss,
val_accuracy and val_f1 (macro over present classes) on the whole val part.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark import metrics
from benchmark.atomic import atomic_write
from benchmark.augment import build_augmenters, make_generator
from benchmark.config import ConfigError
from benchmark.contracts.method import DataInfo, Method
from benchmark.engine import autocast_for, fit, resolve_device, seed_everything
from benchmark.registry import METHODS

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, malformed, or does not match the method it is loaded into."""


@dataclass
class Pretrained:
    """A trained method plugin with its resolved config, seed, training history and wall time."""

    name: str
    variant: str
    method: Method
    cfg: dict[str, Any]
    seed: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def encoders(self) -> dict[str, nn.Module]:
        """{modality: encoder} to evaluate (eval mode, on the method's device)."""
        return self.method.encoders()

    @property
    def kind(self) -> str:
        return self.method.kind

    @property
    def device(self) -> torch.device:
        return next(self.method.parameters()).device


def _dep_methods(deps: Mapping[str, Any] | None) -> dict[str, Method]:
    """Accept Pretrained or Method values; hand the methods to the plugin."""
    return {k: (v.method if isinstance(v, Pretrained) else v) for k, v in (deps or {}).items()}


def _check_modalities(name: str, cfg: dict[str, Any], info: DataInfo) -> None:
    mod = cfg.get("modality")
    if mod not in (None, "all") and mod not in info.shapes:
        raise ConfigError(f"method {name!r} is configured for modality {mod!r}, but the data only has "
                          f"{sorted(info.shapes)}; set modality to one of them")


def build_method(name: str, info: DataInfo, overrides: dict | None = None,
                 deps: Mapping[str, Any] | None = None) -> Method:
    """An untrained method plugin `name` configured for `info` (overrides validated, deps attached)."""
    cls = METHODS.get(name)
    cfg = cls.resolve_config(info, overrides)
    _check_modalities(name, cfg, info)
    return cls(info, cfg, _dep_methods(deps))


# -- batches ---------------------------------------------------------------------------------------------
class _BatchMaker:
    """Builds method batches from dataset indices: un-augmented inputs, labels and n augmented views."""

    def __init__(self, method: Method, data: Any, device: torch.device, seed: int) -> None:
        self.method = method
        self.modalities = method.modalities_used()
        self.x = {m: data.modalities[m].to(device, torch.float32) for m in self.modalities}
        self.y = data.labels.to(device)
        # group values as integer codes (any dtype the dataset records)
        self.groups = {g: torch.as_tensor(np.unique(np.asarray(data.groups[g]), return_inverse=True)[1].reshape(-1),
                                          dtype=torch.long, device=device)
                       for g in getattr(method, "needs_groups", ())}
        self.n_views = int(getattr(method, "n_views", 0))
        info = method.info
        self.augmenters = build_augmenters({m: info.kinds[m] for m in self.modalities},
                                           layout=method.cfg.get("aug_layout", "reference"),
                                           overrides=info.training.augmentations,
                                           label=info.dataset) if self.n_views else {}
        self.generator = make_generator(seed, device)

    def __call__(self, index: torch.Tensor, augment: bool = True) -> dict[str, Any]:
        x = {m: t[index] for m, t in self.x.items()}
        if augment and self.n_views:
            # all views in one call (every sample draws its own parameters, so this is n independent views);
            # one call instead of n halves the kernel launches on GPU
            stacked = {m: self.augmenters[m](torch.cat([x[m]] * self.n_views), self.generator).chunk(self.n_views)
                       for m in self.modalities}
            views = [{m: stacked[m][v] for m in self.modalities} for v in range(self.n_views)]
        else:
            views = [dict(x) for _ in range(self.n_views)]
        return {"views": views, "x": x, "y": self.y[index], "index": index, "generator": self.generator,
                "groups": {g: t[index] for g, t in self.groups.items()}}


def _as_split(data: Any, split: Any) -> Any:
    return data.split(split) if isinstance(split, str) or split is None else split


def _val_batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive full batches (the reference drops the short tail); one batch of all if none is full."""
    if n < 2:
        return []
    if n < batch_size:
        return [slice(0, n)]
    return [slice(s, s + batch_size) for s in range(0, (n // batch_size) * batch_size, batch_size)]


def _make_evaluate(method: Method, make: _BatchMaker, val_idx: torch.Tensor, cfg: dict[str, Any],
                   device: torch.device):
    """The per-epoch validation callback: val_loss (+ val_accuracy, val_f1 for supervised methods)."""
    if len(val_idx) < 2:
        return None
    augment = bool(getattr(method, "val_augmented", False))

    def evaluate() -> dict[str, float]:
        if method.kind == "supervised":
            logits = torch.cat([method.classify({m: make.x[m][val_idx[s]] for m in make.modalities}).float()
                                for s in _slices(len(val_idx), 512)])
            y = make.y[val_idx]
            pred = logits.argmax(1).cpu().numpy()
            yt = y.cpu().numpy()
            return {"val_loss": float(F.cross_entropy(logits, y)), "val_accuracy": metrics.accuracy(yt, pred),
                    "val_f1": metrics.f1_macro(yt, pred)}
        losses = []
        for s in _val_batches(len(val_idx), cfg["batch_size"]):
            with autocast_for(device):
                losses.append(float(method.val_loss(make(val_idx[s], augment=augment))))
        return {"val_loss": float(np.mean(losses))}

    return evaluate


def _slices(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


# -- pretraining ---------------------------------------------------------------------------------------------
def pretrain(
    name: str,
    data: Any,
    split: Any,
    overrides: dict | None,
    seed: int,
    *,
    device: str | torch.device = "auto",
    deps: dict[str, Pretrained] | None = None,
    train_idx: np.ndarray | None = None,
    checkpoint: Path | None = None,
    quiet: bool = True,
) -> Pretrained:
    """Train method `name` on the train part of `split` (or on `train_idx`) and return it in eval mode.

    Missing dependencies are pretrained first with the same data, split, train indices and seed.
    Validation (loss, and accuracy/F1 for supervised methods) runs on the split's val part each epoch.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    split_obj = _as_split(data, split)
    info = DataInfo.from_data(data, split_obj)
    cls = METHODS.get(name)
    cfg = cls.resolve_config(info, overrides)
    _check_modalities(name, cfg, info)
    deps = dict(deps or {})
    for dep in cls.dependencies(cfg, info):
        if dep.key not in deps:
            deps[dep.key] = pretrain(dep.method, data, split_obj, dep.overrides, seed, device=dev,
                                     train_idx=train_idx, quiet=quiet)
    seed_everything(seed)
    method = cls(info, cfg, _dep_methods(deps)).to(dev)
    tr = np.asarray(split_obj.train if train_idx is None else train_idx, dtype=np.int64)
    if tr.size == 0:
        raise ConfigError(f"no training samples for {name!r} (split {getattr(split_obj, 'name', '?')!r}, "
                          f"train_idx of size {0 if train_idx is None else len(train_idx)})")
    train_index = torch.as_tensor(tr, device=dev)
    val_index = torch.as_tensor(np.asarray(split_obj.val, dtype=np.int64), device=dev)
    make = _BatchMaker(method, data, dev, seed)
    train_cfg = method.train_config()
    if method.kind == "supervised":  # the reference drops no labelled sample (but BN cannot take a batch of 1)
        train_cfg = replace(train_cfg, drop_last=len(tr) % train_cfg.batch_size == 1)
    variant = cls.variant_name(cfg)
    train_cfg = replace(train_cfg, quiet=quiet, desc=variant)

    def step(pos: torch.Tensor) -> torch.Tensor:
        batch = make(train_index[pos.to(dev)])
        with autocast_for(dev):
            loss = method.loss(batch)
        return loss.float()

    evaluate = _make_evaluate(method, make, val_index, cfg, dev)
    result = fit(method, step, len(tr), train_cfg, evaluate=evaluate, seed=seed)
    method.eval()
    pre = Pretrained(name, variant, method, cfg, seed, result.history, time.perf_counter() - t0)
    if checkpoint is not None:
        save_checkpoint(pre, Path(checkpoint))
    return pre


# -- checkpoints -----------------------------------------------------------------------------------------------
def save_checkpoint(pre: Pretrained, path: Path) -> None:
    """Write name, config, seed, state dict and history atomically (temp file in the same folder + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT, "name": pre.name, "variant": pre.variant, "cfg": pre.cfg, "seed": pre.seed,
        "history": pre.history, "seconds": pre.seconds,
        "state_dict": {k: v.detach().to("cpu") for k, v in pre.method.state_dict().items()},
    }
    atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: Path, info: DataInfo, deps: dict[str, Pretrained] | None = None,
                    device: str | torch.device = "auto") -> Pretrained:
    """Rebuild the method from a checkpoint and load its weights strictly (any key mismatch is an error)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pretrain the method first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc!r}); delete it and pretrain again") from exc
    missing = [k for k in ("format", "name", "cfg", "seed", "state_dict") if k not in payload]
    if missing or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a format-{CHECKPOINT_FORMAT} mmhar-bench checkpoint "
                              f"(missing {missing}, format {payload.get('format')!r}); delete it and pretrain again")
    method = build_method(payload["name"], info, payload["cfg"], deps)
    try:
        method.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not match method {payload['name']!r} on this data: {exc}. "
                              f"Delete it and pretrain again.") from exc
    method.to(resolve_device(device)).eval()
    return Pretrained(payload["name"], payload.get("variant", payload["name"]), method, method.cfg, payload["seed"],
                      list(payload.get("history", [])), float(payload.get("seconds", 0.0)))


# -- embeddings ------------------------------------------------------------------------------------------------
def embed(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Flattened float32 features of `x` in eval mode without gradients, on the encoder's device."""
    was_training = encoder.training
    dev = next(encoder.parameters()).device
    encoder.eval()
    try:
        with torch.no_grad():
            out = [encoder(x[s].to(dev, torch.float32)).flatten(1).float() for s in _slices(x.shape[0], batch_size)]
    finally:
        encoder.train(was_training)
    if not out:
        raise ValueError("embed got an empty input batch")
    return torch.cat(out)


__all__ = ["CheckpointError", "Pretrained", "build_method", "embed", "load_checkpoint", "pretrain", "save_checkpoint"]
