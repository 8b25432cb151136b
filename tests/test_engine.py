"""The one training loop: best-on-val restore, early stopping, schedules and configuration errors."""
from __future__ import annotations

import pytest
import torch

from benchmark.engine import ConfigError, TrainConfig, batches, fit


class Scalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.0))


def _scripted(values: list[float]):
    """An evaluate() returning the given val_accuracy per epoch and the weight seen at that epoch."""
    seen: list[float] = []

    def evaluate(model: Scalar) -> dict[str, float]:
        seen.append(float(model.w.detach()))
        return {"val_accuracy": values[len(seen) - 1]}

    return evaluate, seen


def test_best_epoch_on_validation_is_restored() -> None:
    model = Scalar()
    evaluate, seen = _scripted([0.1, 0.9, 0.5, 0.2])
    cfg = TrainConfig(epochs=4, batch_size=2, lr=0.1, optimizer="sgd", momentum=0.0, scheduler="none",
                      select="val_accuracy", select_mode="max", quiet=True)
    res = fit(model, lambda pos: (model.w - 10.0) ** 2, 4, cfg, evaluate=lambda: evaluate(model))
    assert res.best_epoch == 1 and res.best["val_accuracy"] == 0.9
    assert float(model.w.detach()) == pytest.approx(seen[1])  # the weights of epoch 1, not the last epoch
    assert seen[3] != seen[1]


def test_early_stopping_counts_patience_epochs() -> None:
    model = Scalar()
    evaluate, _ = _scripted([0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6])
    cfg = TrainConfig(epochs=7, batch_size=2, scheduler="none", early_stop="val_accuracy", early_stop_mode="max",
                      early_stop_patience=2, quiet=True)
    res = fit(model, lambda pos: (model.w - 1.0) ** 2, 4, cfg, evaluate=lambda: evaluate(model))
    assert res.stopped_early and len(res.history) == 4  # best at epoch 1, then 2 epochs without improvement


def test_plateau_halves_the_learning_rate_on_the_monitored_metric() -> None:
    model = Scalar()
    cfg = TrainConfig(epochs=4, batch_size=2, lr=1.0, scheduler="plateau", monitor="val_accuracy",
                      monitor_mode="max", plateau_patience=0, plateau_factor=0.5, quiet=True)
    res = fit(model, lambda pos: model.w ** 2, 4, cfg, evaluate=lambda: {"val_accuracy": 0.5})
    # epoch 0 sets the best; from epoch 1 on no improvement with patience 0 halves the rate for the next epoch
    assert [h["lr"] for h in res.history] == [1.0, 1.0, 0.5, 0.25]


def test_drop_last_batches_and_config_errors() -> None:
    out = list(batches(10, 4, torch.Generator().manual_seed(0), drop_last=True))
    assert [len(b) for b in out] == [4, 4] and len(set(torch.cat(out).tolist())) == 8
    model = Scalar()
    with pytest.raises(ConfigError, match="larger than the 3 training samples"):
        fit(model, lambda pos: model.w ** 2, 3, TrainConfig(epochs=1, batch_size=4, quiet=True))
    with pytest.raises(ConfigError, match="selection metric 'val_typo'"):
        fit(model, lambda pos: model.w ** 2, 4, TrainConfig(epochs=1, batch_size=2, scheduler="none",
                                                           select="val_typo", quiet=True),
            evaluate=lambda: {"val_loss": 1.0})
    with pytest.raises(ConfigError, match="invalid optimizer 'lamb'"):
        TrainConfig(optimizer="lamb")
