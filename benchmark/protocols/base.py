"""The evaluation-protocol contract (`Protocol`, `EvalResult`) and the pieces every protocol shares.

A protocol gets a `Pretrained` (trained method + its encoders), the data, a `Split`, its resolved config
and a seed, and returns an `EvalResult`. Rules every protocol follows:
- model selection and early stopping look at the validation part only; the test part is encoded and
  scored once, after training (enforced at run time: `benchmark.protocols.split_guard`);
- all training goes through `benchmark.engine.fit`;
- the pretrained encoders are never mutated (protocols that train or adapt them work on deep copies), because
  the same checkpoint is reused by every protocol of a (dataset, split, method, config, seed).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.heads import FusionClassifier, LinearClassifier
from benchmark.blocks import frozen_copy
from benchmark.config import ConfigError, resolve
from benchmark.engine import FitResult, TrainConfig, autocast_for, fit
from benchmark.metrics import accuracy, classification_scores, f1_macro, l2_normalize
from benchmark.protocols.features import active_cache
from benchmark.protocols.split_guard import guard_run, note_read

if TYPE_CHECKING:  # imported for annotations only: pretrain imports the method machinery
    from benchmark.contracts.method import DataInfo
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained

KINDS = ("unimodal", "multimodal", "supervised")
EVAL_BATCH = 256
# Early stopping of our heads (docs/cost.md part 4): stop once the validation main metric (the selection metric) has
# not improved for HEAD_PATIENCE epochs, so a head runs at most best_epoch + HEAD_PATIENCE + 1 epochs. "val_loss" with
# patience 50 is the reference's rule (kept by `paper_head`), under which the heads ran ~88 of 100 epochs. 25 was
# tried and cost the self-supervised rows' trained heads 1.2-1.6 points on real UTD-MHAD (late bests lost), so 50.
HEAD_PATIENCE = 50
STOP_ON = ("main", "val_loss")
HEAD_STOPPING: dict[str, Any] = {"early_stop_on": "main", "early_stop_patience": HEAD_PATIENCE}


@dataclass
class EvalResult:
    """What a protocol returns: flat metrics (fractions), per-class scores and JSON-serialisable artifacts.

    `predictions` are the predicted labels of the split's test clips, in the order of `split.test`, behind the
    main metrics (set by `scored`); the runner stores them per clip in the record (`test_predictions`), with
    `query_ap` (retrieval protocols: per-query average precision in the main space) as its "ap" list.
    """

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    predictions: list[int] | None = None
    query_ap: list[float | None] | None = None  # retrieval: each test query's average precision (None: no relevant item)


class Protocol:
    """Base class of evaluation protocols (registered in PROTOCOLS with `@PROTOCOLS.register(name)`)."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}  # allowed values of enumerated keys
    types: ClassVar[dict[str, tuple[type, ...]]] = {}  # accepted types where the default's type is not enough
    kinds: ClassVar[tuple[str, ...]] = KINDS  # method kinds the protocol applies to

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every protocol's `run` reads the test split exactly once (benchmark.protocols.split_guard)."""
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not getattr(run, "__mmhar_guarded__", False):
            cls.run = guard_run(run)  # type: ignore[method-assign]

    @classmethod
    def resolve_config(cls, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with `overrides`; an unknown key or ill-typed value raises ConfigError naming it."""
        cfg = resolve(cls.name, cls.defaults, [("", overrides)], choices=cls.choices, types=cls.types,
                      what=f"protocol {cls.name!r}")
        cls.validate(cfg)
        return cfg

    @classmethod
    def validate(cls, cfg: dict[str, Any]) -> None:
        """Extra value checks of a protocol (ranges, combinations); raise ConfigError naming the key."""
        if "epochs" in cfg and (cfg["epochs"] is not None and cfg["epochs"] < 0):
            raise ConfigError(f"{cls.name}.epochs must be >= 0, got {cfg['epochs']!r}")
        for key in ("batch_size", "early_stop_patience"):
            if key in cfg and cfg[key] < 1:
                raise ConfigError(f"{cls.name}.{key} must be >= 1, got {cfg[key]!r}")
        if "lr" in cfg and not cfg["lr"] > 0:
            raise ConfigError(f"{cls.name}.lr must be > 0, got {cfg['lr']!r}")

    @classmethod
    def expand(cls, cfg: dict[str, Any], info: "DataInfo | None" = None) -> list[dict[str, Any]]:
        """The cells one configuration stands for (default: itself) on the data `info` describes."""
        return [cfg]

    @classmethod
    def variant_name(cls, cfg: dict[str, Any]) -> str:
        """Display name of a configured protocol (e.g. 'semisup[per_class=2]')."""
        return cls.name

    @classmethod
    def applies_to(cls, kind: str) -> bool:
        """Whether the protocol evaluates methods of this kind."""
        return kind in cls.kinds

    def check_applicable(self, pre: "Pretrained") -> None:
        """Raise ConfigError when `pre` is of a kind this protocol does not evaluate."""
        if not self.applies_to(pre.kind):
            raise ConfigError(f"protocol {self.name!r} evaluates methods of kind {', '.join(self.kinds)}; "
                              f"{pre.variant} is {pre.kind!r}. Drop this (method, protocol) pair from the suite.")

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        raise NotImplementedError


# -- data and devices ------------------------------------------------------------------------------
def main_metric_key(data: "MultimodalData") -> str:
    """The metric a dataset is scored by, as an EvalResult key: 'accuracy' or 'f1_macro' (MMAct)."""
    main = str(data.meta.get("main_metric", "accuracy")).lower()
    if main in ("accuracy", "acc"):
        return "accuracy"
    if main in ("f1", "f1_macro", "f1-score", "macro_f1"):
        return "f1_macro"
    raise ConfigError(f"dataset {data.name!r} declares main_metric {main!r}; use 'accuracy' or 'f1'")


def check_split(split: "Split", *, need_val: bool = True) -> None:
    """Fail early, naming the split, when a part the protocol needs is empty."""
    parts = ("train", "val", "test") if need_val else ("train", "test")
    for part in parts:
        if len(split.part(part)) == 0:
            raise ConfigError(f"split {split.name!r} has an empty {part} part; protocols select models on val and "
                              f"score on test, so every part needs samples")


def gather(data: "MultimodalData", idx: np.ndarray, modalities: Sequence[str],
           device: torch.device) -> dict[str, torch.Tensor]:
    """{modality: data rows `idx`} on `device` (checked by the test-split guard)."""
    note_read(idx)
    index = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    out = {}
    for m in modalities:
        if m not in data.modalities:
            raise ConfigError(f"the method's encoder reads modality {m!r}, which {data.name} lacks "
                              f"(it has {sorted(data.modalities)})")
        t = data.modalities[m]
        out[m] = t[index.to(t.device)].to(device)
    return out


def labels_of(data: "MultimodalData", idx: np.ndarray, device: torch.device) -> torch.Tensor:
    """Integer labels of rows `idx` on `device`."""
    return data.labels[torch.as_tensor(np.asarray(idx), dtype=torch.long).to(data.labels.device)].long().to(device)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules (and all their children) in eval mode, and restore each submodule's mode afterwards."""
    saved = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def flat_output(module: nn.Module, modality: str, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """module(batch[modality]) flattened to [N, d] (for `batched_forward` via functools.partial)."""
    return module(batch[modality]).flatten(1)


def batched_forward(fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], inputs: Mapping[str, torch.Tensor],
                    device: torch.device, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """fn over `inputs` in batches, without gradients, in float32; results concatenated along dim 0.

    Evaluation never uses bf16 autocast: validation (model selection) and test must be scored in the same
    precision (pretraining's validation runs in float32 too).
    """
    n = len(next(iter(inputs.values())))
    outs = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = {k: v[start:start + batch_size] for k, v in inputs.items()}
            outs.append(fn(batch).float())
    return torch.cat(outs) if outs else torch.empty(0)


def encode(encoders: Mapping[str, nn.Module], data: "MultimodalData", idx: np.ndarray, device: torch.device,
           batch_size: int = EVAL_BATCH) -> dict[str, torch.Tensor]:
    """Eval-mode, flattened encoder features {modality: [len(idx), d]} of rows `idx` (no grad, modes restored).

    Inside a work unit the pretrained encoders' features come from its shared `FeatureCache` (computed once,
    here, the same way: `benchmark.protocols.features`).
    """
    cache = active_cache()
    feats: dict[str, torch.Tensor] = {}
    if cache is not None:
        for m, enc in encoders.items():
            hit = cache.lookup(m, enc, idx, device, batch_size)
            if hit is not None:
                feats[m] = hit
    todo = {m: enc for m, enc in encoders.items() if m not in feats}
    if not todo:
        note_read(idx)  # served from the cache: still one read of these rows for the test-split guard
        return {m: feats[m] for m in encoders}
    x = gather(data, idx, list(todo), device)
    with eval_mode(*todo.values()):
        for m, enc in todo.items():
            feats[m] = batched_forward(functools.partial(flat_output, enc, m), {m: x[m]}, device, batch_size)
            if cache is not None:
                cache.put(m, enc, idx, device, batch_size, feats[m])
    return {m: feats[m] for m in encoders}


def fused_embedding(feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Concatenation (sorted modality order) of per-modality L2-normalised embeddings, renormalised (float64)."""
    return l2_normalize(torch.cat([l2_normalize(feats[m].double()) for m in sorted(feats)], dim=1))


def feature_dims(encoders: Mapping[str, nn.Module], data: "MultimodalData", train_idx: np.ndarray,
                 device: torch.device) -> dict[str, int]:
    """Flattened output size of each encoder (its `out_dim`, else measured on two train clips in eval mode)."""
    dims = {}
    for m, enc in encoders.items():
        d = getattr(enc, "out_dim", None)
        if d is None:
            d = encode({m: enc}, data, np.asarray(train_idx)[:2], device)[m].shape[1]
        dims[m] = int(d)
    return dims


# -- classifier training -----------------------------------------------------------------------------
class Probe(nn.Module):
    """Optional encoders -> flattened features -> head: the model every head-training protocol fits.

    With `encoders=None` the inputs are precomputed features {modality: [N, d]}. A head over several
    modalities (`fusion=True`) gets the feature dict; a single-modality head gets that modality's tensor.
    """

    def __init__(self, head: nn.Module, modalities: Sequence[str], encoders: Mapping[str, nn.Module] | None = None,
                 fusion: bool = False) -> None:
        super().__init__()
        if not fusion and len(modalities) != 1:
            raise ValueError(f"a single-input head needs exactly one modality, got {list(modalities)}")
        self.head = head
        self.modalities = list(modalities)
        self.fusion = fusion
        self.encoders = nn.ModuleDict(dict(encoders)) if encoders is not None else None

    def held_encoders(self) -> dict[str, nn.Module]:
        """The encoders this probe holds (the modules themselves), by modality; a probe over precomputed
        features holds none (an error)."""
        if self.encoders is None:
            raise ConfigError("this probe holds no encoders: it was built over precomputed features")
        return dict(self.encoders.items())

    def features(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Encoder features of raw inputs (identity when the probe holds no encoders)."""
        if self.encoders is None:
            return {m: x[m] for m in self.modalities}
        return {m: self.encoders[m](x[m]).flatten(1) for m in self.modalities}

    def classify(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits from features."""
        return self.head(feats) if self.fusion else self.head(feats[self.modalities[0]])

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.classify(self.features(x))


def build_head(dims: Mapping[str, int], n_classes: int) -> tuple[nn.Module, bool]:
    """The reference's downstream head: FusionClassifier for several modalities, one Linear for one."""
    if len(dims) > 1:
        return FusionClassifier(dims, n_classes), True
    (d,) = dims.values()
    return LinearClassifier(d, n_classes), False


def frozen_copies(encoders: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    """Deep copies of the encoders with gradients off (the originals stay untouched)."""
    return {m: frozen_copy(enc) for m, enc in encoders.items()}


def select_key(data: "MultimodalData") -> str:
    """Validation metric for best-checkpoint selection: the dataset's main metric."""
    return f"val_{main_metric_key(data)}"


def classifier_train_config(cfg: Mapping[str, Any], n_train: int, *, select: str, scheduler: str = "none",
                            monitor: str = "val_accuracy", desc: str = "") -> TrainConfig:
    """TrainConfig of a supervised head: Adam, best `select` on val restored, early stop on `select`
    (`early_stop_on="main"`) or on val_loss (`"val_loss"`, the reference's; the default where the key is absent)
    after `early_stop_patience` epochs without improvement.

    The short last batch is kept (all labelled clips are used) unless it would hold a single clip,
    which BatchNorm cannot train on; then it is dropped.
    """
    bs = int(cfg["batch_size"])
    on = cfg.get("early_stop_on", "val_loss")
    if on not in STOP_ON:
        raise ConfigError(f"early_stop_on must be one of {STOP_ON}, got {on!r}")
    stop, stop_mode = (select, "max") if on == "main" else ("val_loss", "min")
    return TrainConfig(
        epochs=int(cfg["epochs"]), batch_size=bs, optimizer="adam", lr=float(cfg["lr"]),
        weight_decay=float(cfg.get("weight_decay", 0.0)), scheduler=scheduler, monitor=monitor,
        monitor_mode="max", plateau_factor=float(cfg.get("plateau_factor", 0.5)),
        plateau_patience=int(cfg.get("plateau_patience", 5)), early_stop=stop, early_stop_mode=stop_mode,
        early_stop_patience=int(cfg["early_stop_patience"]), select=select, select_mode="max",
        drop_last=(n_train % bs == 1 and n_train > 1), quiet=True, desc=desc,
    )


def fit_classifier(model: nn.Module, train_x: Mapping[str, torch.Tensor], train_y: torch.Tensor,
                   val_x: Mapping[str, torch.Tensor], val_y: torch.Tensor, tcfg: TrainConfig, seed: int,
                   device: torch.device, params: list | None = None) -> FitResult:
    """Cross-entropy training of `model(inputs) -> logits` with engine.fit; val metrics each epoch.

    Each epoch records val_loss, val_accuracy and val_f1_macro (validation part only); the engine restores
    the best epoch by `tcfg.select`.
    """
    def step(pos: torch.Tensor) -> torch.Tensor:
        pos = pos.to(device)
        with autocast_for(device):
            logits = model({k: v[pos] for k, v in train_x.items()})
        return F.cross_entropy(logits.float(), train_y[pos])

    def evaluate() -> dict[str, float]:
        logits = batched_forward(model, val_x, device)
        pred = logits.argmax(1)
        return {"val_loss": float(F.cross_entropy(logits, val_y)),
                "val_accuracy": accuracy(val_y, pred), "val_f1_macro": f1_macro(val_y, pred)}

    return fit(model, step, len(train_y), tcfg, evaluate=evaluate, params=params, seed=seed)


def scored(y_true: torch.Tensor, pred: torch.Tensor, class_names: Sequence[str]) -> EvalResult:
    """EvalResult with accuracy, macro-F1, per-class F1 and the confusion matrix of predictions."""
    metrics, per_class, cm = classification_scores(y_true, pred, class_names)
    return EvalResult(metrics=metrics, per_class={"f1": per_class},
                      artifacts={"confusion": cm, "class_names": list(class_names)},
                      predictions=[int(v) for v in pred.reshape(-1).tolist()])


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    """{'<prefix>/<key>': value}."""
    return {f"{prefix}/{k}": v for k, v in metrics.items()}


def history_summary(result: FitResult) -> dict[str, Any]:
    """A small JSON-able summary of a head's training: best epoch, epochs run, early stop, the stopping rule
    (metric and patience, the cap on epochs without improvement) and the epochs where the selection metric
    improved (from which any other patience's stop can be replayed: docs/cost.md)."""
    out: dict[str, Any] = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                           "stopped_early": result.stopped_early,
                           "best": {k: v for k, v in result.best.items() if k.startswith("val_")}}
    tcfg = result.config
    if tcfg is not None:
        out.update({"early_stop": tcfg.early_stop, "patience": tcfg.early_stop_patience, "max_epochs": tcfg.epochs,
                    "select": tcfg.select})
        if tcfg.select is not None:
            out["improved_at"] = improvement_epochs(result.history, tcfg.select, tcfg.select_mode)
    return out


def improvement_epochs(history: Sequence[Mapping[str, float]], key: str, mode: str = "max") -> list[int]:
    """Epochs at which `key` strictly improved on every earlier epoch (the first epoch counts)."""
    out: list[int] = []
    best: float | None = None
    for rec in history:
        v = rec.get(key)
        if v is None or v != v:
            continue
        if best is None or (v > best if mode == "max" else v < best):
            best = v
            out.append(int(rec["epoch"]))
    return out
