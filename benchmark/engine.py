"""The one training loop that every method and every protocol uses (`fit`), plus seeding and devices."""
from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from benchmark.config import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("plateau", "cosine", "none")
MODES = ("min", "max")


@dataclass
class TrainConfig:
    """Optimisation schedule for `fit`. Metric names refer to keys of the per-epoch record.

    Per-epoch records hold `train_loss` (epoch mean), `train_loss_last` (last step: what the reference's
    ReduceLROnPlateau sees) and whatever `evaluate()` returns (e.g. `val_loss`, `val_accuracy`).
    """

    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "plateau"
    monitor: str = "train_loss_last"
    monitor_mode: Literal["min", "max"] = "min"
    plateau_factor: float = 0.5
    plateau_patience: int = 20
    early_stop: str | None = None
    early_stop_mode: str = "min"
    early_stop_patience: int = 50
    select: str | None = None  # metric for best-checkpoint selection; None keeps the last epoch
    select_mode: str = "max"
    drop_last: bool = True
    grad_clip: float | None = None
    quiet: bool = False
    desc: str = ""

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("scheduler", self.scheduler, SCHEDULERS)
        for k in ("monitor_mode", "early_stop_mode", "select_mode"):
            _check_choice(k, getattr(self, k), MODES)
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"epochs must be an integer >= 0, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from the keys of `d` that are TrainConfig fields (others are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"invalid {key} {value!r}; choose one of {', '.join(choices)}")


@dataclass
class FitResult:
    """What `fit` returns: per-epoch history, the selected epoch and its record, and wall time."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_early: bool = False
    config: TrainConfig | None = None  # the schedule it ran with (stopping rule, patience, selection)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) for reproducible runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; 'cuda'/'cpu'/'cuda:1' force a device."""
    if isinstance(spec, torch.device):
        return spec
    if spec in (None, "", "auto"):
        spec = os.environ.get("MMHAR_DEVICE", "auto")
        if spec == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available; use --device cpu or auto")
    return dev


def autocast_for(device: torch.device, enabled: bool = True):
    """bf16 autocast on `device` when this process trains in bf16 (`hardware.set_precision`), else a no-op."""
    from benchmark.hardware import autocast_for as _autocast_for

    return _autocast_for(device, enabled)


def make_optimizer(params: list[nn.Parameter] | list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum) from the config."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _improved(value: float | None, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool, shuffle: bool = True):
    """Yield LongTensors of positions 0..n-1 in shuffled batches (drop_last drops the short tail)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def fit(
    model: nn.Module,
    step: Callable[[torch.Tensor], torch.Tensor],
    n_train: int,
    cfg: TrainConfig,
    *,
    evaluate: Callable[[], dict[str, float]] | None = None,
    params: list[nn.Parameter] | list[dict] | None = None,
    seed: int = 0,
    state_module: nn.Module | None = None,
) -> FitResult:
    """Train `model` for `cfg.epochs` epochs.

    `step(positions)` computes the loss of one batch, where `positions` index the n_train training
    samples (the caller maps them to its data and augments). The engine owns shuffling (seeded),
    drop-last batching, the optimizer, backward, the LR schedule, `model.after_step()` hooks,
    `evaluate()` at each epoch end (validation split only), early stopping, best-checkpoint selection
    (restored at the end; `state_module` is what gets saved/restored, default `model`) and the progress bar.
    """
    t0 = time.perf_counter()
    result = FitResult(config=cfg)
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    if cfg.epochs == 0 or n_train == 0:
        result.seconds = time.perf_counter() - t0
        return result
    steps_per_epoch = n_train // cfg.batch_size if cfg.drop_last else math.ceil(n_train / cfg.batch_size)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {n_train} training samples with drop_last: "
            f"no full batch; lower the batch size"
        )
    opt = make_optimizer(params, cfg)
    sched: Any = None
    if cfg.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=cfg.monitor_mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
    elif cfg.scheduler == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(seed)
    keep = state_module if state_module is not None else model
    best_sel: float | None = None
    best_stop: float | None = None
    since_best_stop = 0
    best_state: dict[str, torch.Tensor] | None = None
    after_step = getattr(model, "after_step", None)
    bar = _progress(cfg)
    for epoch in range(cfg.epochs):
        model.train()
        total, count, last = 0.0, 0, float("nan")
        for pos in batches(n_train, cfg.batch_size, gen, cfg.drop_last):
            loss = step(pos)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch} ({cfg.desc or 'fit'})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
            opt.step()
            if cfg.scheduler == "cosine":
                sched.step()
            if callable(after_step):
                after_step()
            last = float(loss.detach())
            total += last
            count += 1
        record: dict[str, float] = {"epoch": epoch, "train_loss": total / max(count, 1), "train_loss_last": last,
                                    "lr": opt.param_groups[0]["lr"]}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update({k: float(v) for k, v in evaluate().items()})
        result.history.append(record)
        if cfg.scheduler == "plateau":
            if cfg.monitor not in record:
                raise ConfigError(f"scheduler monitor {cfg.monitor!r} not in epoch record keys {sorted(record)}")
            sched.step(record[cfg.monitor])
        if cfg.select is not None and cfg.select not in record:
            raise ConfigError(f"selection metric {cfg.select!r} not in epoch record keys {sorted(record)}")
        if cfg.select is None or _improved(record.get(cfg.select), best_sel, cfg.select_mode):
            if cfg.select is not None:
                best_sel = record[cfg.select]
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in keep.state_dict().items()}
            result.best_epoch, result.best = epoch, dict(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", lr=f"{record['lr']:.2e}",
                            **({cfg.select: f"{record[cfg.select]:.4f}"} if cfg.select in record else {}))
        if cfg.early_stop is not None:
            if cfg.early_stop not in record:
                raise ConfigError(f"early-stop metric {cfg.early_stop!r} not in epoch record keys {sorted(record)}")
            if _improved(record[cfg.early_stop], best_stop, cfg.early_stop_mode):
                best_stop, since_best_stop = record[cfg.early_stop], 0
            else:
                since_best_stop += 1
                if since_best_stop >= cfg.early_stop_patience:
                    result.stopped_early = True
                    break
    if bar is not None:
        bar.close()
    if best_state is not None:
        keep.load_state_dict(best_state)
    result.seconds = time.perf_counter() - t0
    return result


class EpochLines:
    """Epoch progress as a line every `every_s` seconds once a fit has run that long (workers of a run print to
    one terminal, where several tqdm bars would overwrite each other); a fit shorter than that prints nothing."""

    def __init__(self, desc: str, total: int, every_s: float) -> None:
        self.desc, self.total, self.every_s = desc, total, every_s
        self.n, self.t0, self.last = 0, time.perf_counter(), time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            elapsed = now - self.t0
            left = elapsed / self.n * (self.total - self.n)
            print(f"  {self.desc}: epoch {self.n}/{self.total}, {elapsed / 60:.1f} min, ~{left / 60:.1f} min left "
                  f"(early stopping may end it sooner)", file=sys.stderr, flush=True)

    def set_postfix(self, **_: Any) -> None:
        """Nothing: the lines carry the epoch count only."""

    def close(self) -> None:
        """Nothing to clean up."""


def _progress(cfg: TrainConfig):
    every = os.environ.get("MMHAR_PROGRESS_S")  # set by the runner for its workers, unless the run is quiet
    if every:
        return EpochLines(cfg.desc or "fit", cfg.epochs, float(every))
    if cfg.quiet or os.environ.get("MMHAR_QUIET") == "1":
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs, desc=cfg.desc or "fit", unit="ep", leave=False, file=sys.stderr,
                dynamic_ncols=True)
