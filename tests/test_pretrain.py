"""pretrain(): batches, determinism, validation records; checkpoints round-trip strictly; embed()."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.contracts import DataInfo
from benchmark.data import load_dataset
from benchmark.pretrain import (
    CheckpointError,
    Pretrained,
    build_method,
    embed,
    load_checkpoint,
    pretrain,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def data():
    d = load_dataset("synthetic")
    split = d.split("xsub")
    return d, split, split.train[::4]  # 30 training clips


def _embeddings(pre: Pretrained, d) -> dict[str, torch.Tensor]:
    return {m: embed(e, d.modalities[m][:20]) for m, e in pre.encoders().items()}


def test_pretrain_is_deterministic_and_records_history(data):
    d, split, train = data
    runs = [pretrain("simclr", d, split, {"modality": "skeleton", "epochs": 2, "batch_size": 8}, 3, device="cpu",
                     train_idx=train) for _ in range(2)]
    assert runs[0].history == runs[1].history
    assert set(runs[0].history[0]) >= {"epoch", "train_loss", "train_loss_last", "lr", "val_loss"}
    a, b = _embeddings(runs[0], d)["skeleton"], _embeddings(runs[1], d)["skeleton"]
    assert torch.equal(a, b)
    other = pretrain("simclr", d, split, {"modality": "skeleton", "epochs": 2, "batch_size": 8}, 4, device="cpu",
                     train_idx=train)
    assert other.history[0]["train_loss"] != runs[0].history[0]["train_loss"]
    assert runs[0].variant == "simclr[skeleton]" and runs[0].seed == 3 and runs[0].seconds > 0


def test_supervised_records_val_metrics_and_keeps_best(data):
    d, split, train = data
    pre = pretrain("supervised", d, "xsub", {"modality": "skeleton", "epochs": 3, "batch_size": 8}, 0,
                   device="cpu", train_idx=train)
    assert all({"val_loss", "val_accuracy", "val_f1"} <= set(h) for h in pre.history)
    best = max(h["val_accuracy"] for h in pre.history)
    logits = pre.method.classify({"skeleton": d.modalities["skeleton"][split.val]})
    acc = (logits.argmax(1) == d.labels[split.val]).float().mean().item()
    assert acc == pytest.approx(best)  # the best-val epoch's weights were restored


def test_checkpoint_round_trip_gives_identical_embeddings(data, tmp_path):
    d, split, train = data
    pre = pretrain("moco", d, split, {"modality": "skeleton", "epochs": 1, "batch_size": 8, "queue_size": 16}, 0,
                   device="cpu", train_idx=train)
    path = tmp_path / "ckpt" / "moco.pt"
    save_checkpoint(pre, path)
    assert [p.name for p in path.parent.iterdir()] == ["moco.pt"]  # no temp file left behind
    loaded = load_checkpoint(path, DataInfo.from_data(d), device="cpu")
    assert (loaded.name, loaded.variant, loaded.seed, loaded.cfg) == (pre.name, pre.variant, pre.seed, pre.cfg)
    assert loaded.history == pre.history and not loaded.method.training
    for m, e in _embeddings(pre, d).items():
        assert torch.equal(e, _embeddings(loaded, d)[m])
    torch.testing.assert_close(loaded.method.queues["skeleton"].keys, pre.method.queues["skeleton"].keys)


def test_cmkm_checkpoint_loads_without_teachers(tmp_path):
    info = DataInfo({"inertial": (6, 50), "skeleton": (3, 50, 20)}, {"inertial": "inertial", "skeleton": "skeleton"},
                    10)
    method = build_method("cmc_cmkm", info).eval()
    pre = Pretrained("cmc_cmkm", "cmc_cmkm", method, method.cfg, 0)
    save_checkpoint(pre, tmp_path / "cmkm.pt")
    loaded = load_checkpoint(tmp_path / "cmkm.pt", info, device="cpu")
    x = torch.randn(5, 3, 50, 20)
    assert torch.equal(embed(loaded.encoders()["skeleton"], x), embed(method.encoders()["skeleton"], x))


def test_checkpoint_with_wrong_key_fails_loudly(data, tmp_path):
    d, _, _ = data
    info = DataInfo.from_data(d)
    method = build_method("simclr", info, {"modality": "skeleton"})
    path = tmp_path / "s.pt"
    save_checkpoint(Pretrained("simclr", "simclr[skeleton]", method, method.cfg, 0), path)
    payload = torch.load(path, weights_only=True)
    sd = payload["state_dict"]
    sd["encoder.renamed_weight"] = sd.pop(next(iter(sd)))
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="renamed_weight"):
        load_checkpoint(path, info, device="cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt", info)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a format"):
        load_checkpoint(tmp_path / "other.pt", info)
    wrong_shape = DataInfo({"skeleton": (2, 50, 17)}, {"skeleton": "skeleton"}, 10)
    save_checkpoint(Pretrained("simclr", "simclr[skeleton]", method, method.cfg, 0), path)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path, wrong_shape, device="cpu")


def test_embed_is_eval_mode_batched_and_restores_mode():
    info = DataInfo({"skeleton": (3, 50, 20)}, {"skeleton": "skeleton"}, 10)
    enc = build_method("simclr", info, {"modality": "skeleton"}).encoders()["skeleton"].train()
    x = torch.randn(11, 3, 50, 20)
    full = embed(enc, x)
    assert enc.training and full.shape == (11, 256) and not full.requires_grad
    torch.testing.assert_close(embed(enc, x, batch_size=4), full)
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(x), full)


def test_pretrain_rejects_empty_training_set(data):
    d, split, _ = data
    with pytest.raises(ValueError, match="no training samples"):
        pretrain("cmc", d, split, {"epochs": 1}, 0, device="cpu", train_idx=np.array([], dtype=int))


def test_train_bench_runner_and_table():
    from benchmark.bench import _Runner, format_table

    d = load_dataset("synthetic")
    r = _Runner("moco", {"modality": "skeleton"}, d, np.arange(len(d)), torch.device("cpu"))
    assert r.variant == "moco[skeleton]" and r.batch_size == 32  # the UTD paper batch of the skeleton config
    times, data_s = r.timed(1)
    assert len(times) == 1 and 0 <= data_s < times[0] and r.flops() > 1e9
    row = {"method": r.variant, "batch": 32, "step_ms": 100.0, "clips_per_s": 320.0, "gflop_per_step": 11.8,
           "gflops": 118.0, "fp32_matmul_gflops": 100.0, "bf16_matmul_gflops": 400.0, "data_fraction": 0.05}
    table = format_table([{"device": "cpu", "cpu": "test cpu", "threads": 1, "torch": "x", "precision": "fp32"}, row])
    assert "moco[skeleton]" in table and "118%" in table and "test cpu" in table
