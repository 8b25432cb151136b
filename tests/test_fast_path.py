"""The fast training path: dropout masks (distribution, not stream), the fused Transformer layer, precision."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from benchmark import hardware
from benchmark.backbones.fast_ops import FastDropout, dropout, keep_mask, keep_threshold, kernel_mode, relu_dropout
from benchmark.backbones.inertial import InertialCNNTransformer
from benchmark.backbones.transformer import FastEncoderLayer, FastTransformerEncoder


# -- keep masks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_has_the_bernoulli_distribution(p: float) -> None:
    torch.manual_seed(0)
    n = 400_000
    t, scale = keep_threshold(p)
    k = t / 2**16
    assert abs(k - (1 - p)) <= 2**-17 and scale == pytest.approx(1 / k)
    mask = keep_mask((n,), p).float()
    sd = (k * (1 - k) / n) ** 0.5
    assert abs(mask.mean().item() - k) < 5 * sd  # kept fraction
    # each of the four 16-bit chunks of a 64-bit word is uniform (random_() without a range leaves a sign bit 0)
    for j in range(4):
        assert abs(mask.view(-1, 4)[:, j].mean().item() - k) < 5 * 2 * sd
    # neighbours are independent: P(both kept) = k^2
    both = (mask[:-1] * mask[1:]).mean().item()
    assert abs(both - k * k) < 5 * (k * k * (1 - k * k) / n) ** 0.5
    # the kept fraction of many small masks varies like a binomial's
    fractions = torch.stack([keep_mask((256,), p).float().mean() for _ in range(2000)])
    assert fractions.var().item() == pytest.approx(k * (1 - k) / 256, rel=0.15)


def test_keep_mask_follows_the_seed_and_edge_probabilities() -> None:
    torch.manual_seed(3)
    a = keep_mask((1000,), 0.3)
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask((1000,), 0.3))
    assert keep_mask((77,), 0.0).all() and not keep_mask((77,), 1.0).any()
    with pytest.raises(ValueError, match="dropout probability"):
        keep_threshold(1.5)


def test_dropout_is_unbiased_and_identity_in_eval() -> None:
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.25)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    values = torch.unique(y).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(keep_threshold(0.25)[1])
    m = FastDropout(0.25).eval()
    assert torch.equal(m(x), x)
    assert isinstance(m, nn.Dropout) and m.p == 0.25  # code that inspects nn.Dropout modules still finds it


def test_relu_dropout_gradient_is_the_mask() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 32, requires_grad=True)
    h, scale = relu_dropout(x, 0.5)
    (h * scale).sum().backward()
    kept = h.detach() != 0
    assert torch.all(x.detach()[kept] > 0)
    assert torch.allclose(x.grad, kept.float() * scale)
    y, s1 = relu_dropout(x, 0.5, training=False)
    assert s1 == 1.0 and torch.equal(y, torch.relu(x))


# -- the fused Transformer layer ----------------------------------------------------------------------------------
def _reference_encoder(d: int = 32, heads: int = 2, ff: int = 64, p: float = 0.1, layers: int = 2) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=p, activation="relu", batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def test_fast_encoder_has_the_reference_parameters_and_initial_weights() -> None:
    torch.manual_seed(0)
    ref = _reference_encoder()
    torch.manual_seed(0)
    fast = FastTransformerEncoder(FastEncoderLayer(32, 2, 64, 0.1), 2)
    a, b = ref.state_dict(), fast.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_fast_encoder_is_the_same_math_without_dropout() -> None:
    torch.manual_seed(0)
    ref = _reference_encoder(p=0.0)
    fast = FastTransformerEncoder(FastEncoderLayer(32, 2, 64, 0.0), 2)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(5, 7, 32)
    ya, yb = ref(x), fast(x)
    torch.testing.assert_close(yb, ya, atol=1e-5, rtol=1e-5)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (name, pa), pb in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, atol=1e-4, rtol=1e-4, msg=name)
    ref.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), atol=1e-5, rtol=1e-5)


def test_fast_encoder_dropout_keeps_the_expected_output() -> None:
    """With dropout on, the mean output over many draws matches the reference's (same distribution)."""
    torch.manual_seed(0)
    ref = _reference_encoder(p=0.3, layers=1)
    fast = FastTransformerEncoder(FastEncoderLayer(32, 2, 64, 0.3), 1)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(1, 6, 32).expand(4000, 6, 32)
    with torch.no_grad():
        ma, mb = ref(x).mean(0), fast(x).mean(0)
        sa, sb = ref(x).std(0), fast(x).std(0)
    assert (ma - mb).abs().max().item() < 0.08
    assert (sa - sb).abs().max().item() < 0.08


def test_kernel_mode_selects_the_implementation() -> None:
    assert isinstance(InertialCNNTransformer(6, 50).transformer, FastTransformerEncoder)
    with kernel_mode("reference"):
        enc = InertialCNNTransformer(6, 50)
    assert isinstance(enc.transformer, nn.TransformerEncoder)
    assert type(enc.positional_encoding.dropout) is nn.Dropout
    with pytest.raises(ValueError, match="kernel mode"), kernel_mode("turbo"):
        pass


def test_fast_and_reference_encoders_load_each_others_weights() -> None:
    fast = InertialCNNTransformer(6, 50)
    with kernel_mode("reference"):
        ref = InertialCNNTransformer(6, 50)
    ref.load_state_dict(copy.deepcopy(fast.state_dict()))  # strict
    fast.eval(), ref.eval()
    x = torch.randn(3, 6, 50)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), atol=1e-4, rtol=1e-4)


# -- precision --------------------------------------------------------------------------------------------------
def test_auto_precision_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"native_bf16": True})
    assert hardware.resolve_precision("auto", cpu) == "bf16" and hardware.resolve_precision(None, cpu) == "bf16"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"native_bf16": False})
    assert hardware.resolve_precision("auto", cpu) == "fp32"
    assert hardware.resolve_precision("bf16", cpu) == "bf16" and hardware.resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(hardware.PrecisionError, match="unknown precision 'fp16'"):
        hardware.resolve_precision("fp16", cpu)


def test_cpu_info_names_the_model_and_bf16_flags() -> None:
    info = hardware.cpu_info()
    assert info["model"] and isinstance(info["native_bf16"], bool)
    assert set(info["flags"]) <= {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "bf16"}


def test_autocast_for_follows_the_process_precision() -> None:
    cpu = torch.device("cpu")
    a = torch.randn(4, 4)
    before = hardware.current_precision()
    try:
        hardware.set_precision("bf16")
        with hardware.autocast_for(cpu):
            assert (a @ a).dtype == torch.bfloat16
        hardware.set_precision("fp32")
        with hardware.autocast_for(cpu):
            assert (a @ a).dtype == torch.float32
        with pytest.raises(hardware.PrecisionError):
            hardware.set_precision("auto")  # only resolved precisions
    finally:
        hardware.set_precision(before)


def test_tune_allocator_is_idempotent() -> None:
    first = hardware.tune_allocator()
    assert hardware.tune_allocator() == first
