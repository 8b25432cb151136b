"""`semisup`: evaluation with few labels. Each label budget is its own cell (`expand`).

Label subsets (`label_subset`) are drawn from the split's train part, stratified per class:
- `budget_type="per_class"`: min(budget, n_c) clips of every class c;
- `budget_type="fraction"`: max(1, floor(budget * n_c)) clips of every class (the reference's `limited_k`).
The draw depends only on (dataset, split, seed): every class's train clips are shuffled once per seed and
the first clips are taken, so every method sees the same subset (paired design) and, for one seed, smaller
budgets are subsets of larger ones. Subsets are saved as JSON index files under `<results>/subsets/`
(results folder: the `subsets_dir` key, else `$MMHAR_RESULTS`; none given: nothing is written) and read
back from there when present, so later runs reuse exactly the same clips.

Default budgets come from the dataset's `TrainingProfile` (budget type and budgets; generic: clips per class
1, 2, 3, 5, 8, chosen for UTD-MHAD's ~12 train clips per class so that every point is a distinct subset;
MMAct's plugin declares the fractions 1, 5, 10, 25, 50 % of the reference's fork). Default per-class budgets
above the mean train clips per class are dropped at planning (they would repeat the full train part). The
evaluators (default `paper_head` and `finetune`) train on the subset and select models on a labelled validation
subset of the same budget, drawn the same way from the val part and saved as `<split>-val` subset files
(`val_labels="budget"`, default: at 1 clip per class, 1 validation clip per class), or on the whole val part
(`val_labels="full"`, the behaviour before); the test part is the full test part. The evaluators run for `epochs`
and stop by semisup's rule (`early_stop_on`, `early_stop_patience`: the validation main metric, patience
`HEAD_PATIENCE`, also for `paper_head`, whose own default is the reference's val_loss rule). Metrics "<evaluator>/accuracy",
...; "accuracy"/"f1_macro" are the first evaluator's. Supervised methods are retrained from scratch on the
subset (`benchmark.pretrain.pretrain(..., train_idx=subset)`) and scored by their own classifier, reported
under the "paper_head" evaluator as in the `paper_head` protocol (fine-tuning it again would be redundant).
That retraining keeps the method's own (the reference's) schedule, early stopping included: trained from scratch
on a few clips, these models often improve only after a plateau of 25-45 epochs, which a patience of 25 cut
(docs/cost.md part 4, paired run e).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmark.atomic import atomic_write_json
from benchmark.config import ConfigError
from benchmark.contracts.dataset import BUDGET_TYPES, DEFAULT_BUDGETS, TrainingProfile
from benchmark.engine import resolve_device
from benchmark.protocols.base import HEAD_STOPPING, STOP_ON, EvalResult, Protocol, check_split, prefixed
from benchmark.registry import PROTOCOLS

if TYPE_CHECKING:
    from benchmark.contracts.method import DataInfo
    from benchmark.data import MultimodalData, Split
    from benchmark.pretrain import Pretrained

EVALUATORS = ("paper_head", "finetune", "linear", "knn")
VAL_LABELS = ("budget", "full")  # labelled validation clips: the same per-class budget (default) or all of them
SUBSET_SCHEMA = 1


def resolve_budget_type(budget_type: str, training: TrainingProfile | None) -> str:
    """'auto' becomes the dataset's declared budget type ('per_class' when no profile is given)."""
    if budget_type != "auto":
        return budget_type
    return training.semisup_budget_type if training is not None else "per_class"


def default_budgets(btype: str, info: "DataInfo | None") -> list[float]:
    """The dataset's budgets of this type (generic ones where it declares another type), without per-class
    budgets above the mean train clips per class."""
    training = info.training if info is not None else None
    budgets = list(training.budgets() if training is not None and training.semisup_budget_type == btype
                   else DEFAULT_BUDGETS[btype])
    if btype == "per_class" and info is not None and info.train_size:
        cap = info.train_size / max(1, info.num_classes)
        budgets = [b for b in budgets if b <= cap] or budgets[:1]
    return budgets


def check_budget(budget_type: str, budget: Any) -> None:
    """Raise ConfigError unless `budget` is valid for `budget_type`."""
    if budget_type == "per_class":
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ConfigError(f"semisup.budget for budget_type 'per_class' must be an integer >= 1 (clips per "
                              f"class), got {budget!r}")
    elif budget_type == "fraction":
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1:
            raise ConfigError(f"semisup.budget for budget_type 'fraction' must be in (0, 1], got {budget!r}")
    else:
        raise ConfigError(f"semisup.budget_type must be one of {BUDGET_TYPES}, got {budget_type!r}")


def _budget_text(budget: float) -> str:
    return f"{budget:g}"


def subsets_folder(store_dir: str | Path | None = None) -> Path | None:
    """Where subset files live: `store_dir`, else `$MMHAR_RESULTS/subsets`, else None (not stored)."""
    if store_dir:
        return Path(store_dir)
    env = os.environ.get("MMHAR_RESULTS")
    return Path(env) / "subsets" if env else None


def subset_path(folder: Path, dataset: str, split: str, budget_type: str, budget: float, seed: int) -> Path:
    """The index file of one (dataset, split, budget, seed) subset."""
    return folder / f"{dataset}-{split}-{budget_type}-{_budget_text(budget)}-seed{seed}.json"


def draw_label_subset(labels: np.ndarray, train_idx: np.ndarray, budget_type: str, budget: float,
                      draw_key: str) -> np.ndarray:
    """Stratified subset of `train_idx` (sorted): per class a seeded shuffle of its clips, then the first n."""
    check_budget(budget_type, budget)
    base = int(hashlib.sha256(draw_key.encode()).hexdigest()[:15], 16)
    train_idx = np.sort(np.asarray(train_idx, dtype=np.int64))
    y = np.asarray(labels)[train_idx]
    chosen = []
    for c in np.unique(y):
        members = train_idx[y == c]
        order = np.random.default_rng([base, int(c)]).permutation(members)
        if budget_type == "per_class":
            n = min(int(budget), len(members))
        else:  # the epsilon keeps e.g. 0.29 * 100 from flooring to 28
            n = max(1, math.floor(float(budget) * len(members) + 1e-9))
        chosen.append(order[:n])
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def label_subset(data: "MultimodalData", split: "Split | str", budget_type: str, budget: float, seed: int,
                 store_dir: str | Path | None = None) -> np.ndarray:
    """Indices (into `data`) of the labelled subset of the split's train part for (budget, seed).

    Reads the subset's index file when it exists (checking that it names the same clips), else draws it
    deterministically and writes the file, so every method and every later run reuses the same clips.
    """
    sp = data.split(split) if isinstance(split, str) else split
    labels = data.labels.cpu().numpy()
    folder = subsets_folder(store_dir)
    path = subset_path(folder, data.name, sp.name, budget_type, budget, seed) if folder else None
    if path is not None and path.exists():
        try:
            stored = json.loads(path.read_text())
            idx = np.asarray(stored["indices"], dtype=np.int64)
            ids = stored["ids"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"label-subset file {path} is unreadable ({exc!r}); delete it to redraw") from exc
        train = set(sp.train.tolist())
        if (idx.size == 0 or idx.max() >= len(data) or [data.ids[i] for i in idx] != list(ids)
                or not set(idx.tolist()) <= train):
            raise ConfigError(f"label-subset file {path} does not match the clips of {data.name} split {sp.name!r} "
                              f"(the data changed?); delete it to redraw (records that used it are then unpaired)")
        return idx
    idx = draw_label_subset(labels, sp.train, budget_type, budget, f"{data.name}|{sp.name}|seed{seed}")
    if path is not None:
        atomic_write_json(path, {
            "schema": SUBSET_SCHEMA, "dataset": data.name, "split": sp.name, "budget_type": budget_type,
            "budget": budget, "seed": seed, "data_fingerprint": data.meta.get("fingerprint"), "n": int(idx.size),
            "indices": idx.tolist(), "ids": [data.ids[i] for i in idx],
        })
    return idx


@PROTOCOLS.register("semisup")
class SemiSup(Protocol):
    """One label budget: evaluators trained on a stratified labelled subset, scored on the full test part."""

    name = "semisup"
    defaults = {"budget_type": "auto", "budget": None, "budgets": None, "evaluators": ["paper_head", "finetune"],
                "epochs": 100, "subsets_dir": None, "val_labels": "budget", **HEAD_STOPPING}
    choices = {"budget_type": ("auto",) + BUDGET_TYPES, "val_labels": VAL_LABELS, "early_stop_on": STOP_ON}
    types = {"budget": (int, float, type(None)), "budgets": (list, type(None)), "subsets_dir": (str, type(None))}

    @classmethod
    def validate(cls, cfg: dict[str, Any]) -> None:
        super().validate(cfg)
        ev = cfg["evaluators"]
        if not ev or len(set(ev)) != len(ev) or any(e not in EVALUATORS for e in ev):
            raise ConfigError(f"semisup.evaluators must be a non-empty list of distinct names from {EVALUATORS}, "
                              f"got {ev!r}")
        budgets = cfg["budgets"]
        if budgets is not None and (not budgets or len(set(budgets)) != len(budgets) or any(
                isinstance(b, bool) or not isinstance(b, (int, float)) or b <= 0 for b in budgets)):
            raise ConfigError(f"semisup.budgets must be null or a non-empty list of distinct positive numbers, "
                              f"got {budgets!r}")
        if cfg["budget"] is not None and cfg["budget_type"] != "auto":
            check_budget(cfg["budget_type"], cfg["budget"])

    @classmethod
    def expand(cls, cfg: dict[str, Any], info: "DataInfo | None" = None) -> list[dict[str, Any]]:
        """One config per budget: the given one, the listed `budgets`, or the dataset's default budgets.

        Expanded configs carry `budgets: None`, so a cell's key depends only on its own budget.
        """
        btype = resolve_budget_type(cfg["budget_type"], info.training if info is not None else None)
        if cfg["budget"] is not None:
            return [{**cfg, "budget_type": btype} if info is not None else cfg]
        budgets = cfg["budgets"] or default_budgets(btype, info)
        return [{**cfg, "budget_type": btype, "budget": b, "budgets": None} for b in budgets]

    @classmethod
    def variant_name(cls, cfg: dict[str, Any]) -> str:
        if cfg.get("budget") is None:
            return cls.name
        return f"{cls.name}[{cfg['budget_type']}={_budget_text(cfg['budget'])}]"

    def run(self, pre: "Pretrained", data: "MultimodalData", split: "Split", cfg: dict[str, Any], seed: int, *,
            device: str | torch.device = "auto") -> EvalResult:
        from benchmark.data import Split

        self.check_applicable(pre)
        check_split(split)
        if cfg["budget"] is None:
            raise ConfigError("semisup evaluates one label budget per cell: set semisup.budget, or expand the "
                              "config with SemiSup.expand(cfg, info) first")
        btype = resolve_budget_type(cfg["budget_type"], data.meta.get("training"))
        check_budget(btype, cfg["budget"])
        dev = resolve_device(device)
        subset = label_subset(data, split, btype, cfg["budget"], seed, cfg["subsets_dir"])
        val = split.val
        if cfg["val_labels"] == "budget" and len(split.val):
            # as few validation labels as training labels: drawn from the val part, saved and shared the same way
            val = label_subset(data, Split(f"{split.name}-val", split.val, split.val[:0], split.test), btype,
                               cfg["budget"], seed, cfg["subsets_dir"])
        sub_split = Split(split.name, subset, val, split.test)
        evaluations: dict[str, EvalResult] = {}
        notes: dict[str, str] = {}
        if pre.kind == "supervised":
            paper_head = PROTOCOLS.get("paper_head")
            retrained = self._retrain_supervised(pre, data, sub_split, subset, seed, dev)
            evaluations["paper_head"] = paper_head().run(retrained, data, sub_split, paper_head.resolve_config(),
                                                         seed, device=dev)
            notes["supervised"] = "retrained from scratch on the subset; scored by its own classifier"
        else:
            for name in cfg["evaluators"]:
                proto = PROTOCOLS.get(name)
                # the evaluators train for semisup's epochs and stop by semisup's rule (also paper_head)
                overrides = {k: cfg[k] for k in ("epochs", "early_stop_on", "early_stop_patience")
                             if k in proto.defaults}
                evaluations[name] = proto().run(pre, data, sub_split, proto.resolve_config(overrides), seed,
                                                device=dev)
        first = next(iter(evaluations.values()))
        metrics = {**first.metrics}
        metrics = {k: metrics[k] for k in ("accuracy", "f1_macro")}
        for name, res in evaluations.items():
            metrics.update(prefixed(res.metrics, name))
        counts = np.bincount(data.labels.cpu().numpy()[subset], minlength=data.num_classes)
        artifacts: dict[str, Any] = {
            "confusion": first.artifacts.get("confusion"),
            "subset": {"budget_type": btype, "budget": cfg["budget"], "n_labelled": int(subset.size),
                       "file": subset_path(Path("subsets"), data.name, split.name, btype, cfg["budget"], seed).as_posix(),
                       "ids_sha256": hashlib.sha256(json.dumps([data.ids[i] for i in subset]).encode()).hexdigest(),
                       "n_train": int(len(split.train)), "per_class_min": int(counts[counts > 0].min()),
                       "val_labels": cfg["val_labels"], "n_val": int(len(val)),
                       "per_class_max": int(counts.max())},
            "evaluators": {n: {k: v for k, v in r.artifacts.items() if k not in ("confusion", "embedding_2d")}
                           for n, r in evaluations.items()},
        }
        if notes:
            artifacts["notes"] = notes
        return EvalResult(metrics=metrics, per_class=first.per_class, artifacts=artifacts,
                          predictions=first.predictions)

    @staticmethod
    def _retrain_supervised(pre: "Pretrained", data: "MultimodalData", split: "Split", subset: np.ndarray,
                            seed: int, device: torch.device) -> "Pretrained":
        """The supervised method trained from scratch on the labelled subset (same config)."""
        from benchmark.pretrain import pretrain

        overrides = dict(pre.cfg)
        if "batch_size" in overrides:  # a full batch must exist (drop_last) on tiny subsets
            overrides["batch_size"] = min(int(overrides["batch_size"]), int(subset.size))
        return pretrain(pre.name, data, split, overrides, seed, device=device, train_idx=subset, quiet=True)
