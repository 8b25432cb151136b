"""Backbones and heads: exact parameter counts (spec 3 / 9), shapes, reference-equivalent math, errors."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.backbones import (
    FusionClassifier,
    InertialCNNTransformer,
    LinearClassifier,
    ProjectionHead,
    SkeletonCooccurrence,
    build_encoder,
    count_parameters,
)
from benchmark.backbones.skeleton import motion
from benchmark.registry import BACKBONES


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize(
    "layout, shape, kwargs, params, out_dim",
    [
        ("inertial", (6, 50), {}, 1_238_880, 5632),  # UTD-MHAD, SSL kernel 5
        ("inertial", (12, 50), {}, 1_239_840, 5632),  # MMAct
        ("inertial", (6, 50), {"kernel_size": 3}, 1_218_016, 6400),  # supervised multimodal config: 128 x 50
        ("skeleton", (3, 50, 20), {}, 432_000, 256),  # UTD-MHAD
        ("skeleton", (2, 50, 17), {}, 430_144, 256),  # MMAct
    ],
)
def test_encoder_parameter_counts_and_output(layout, shape, kwargs, params, out_dim) -> None:
    enc = build_encoder(layout, shape, **kwargs)
    assert count_parameters(enc) == params
    assert enc.out_dim == out_dim
    enc.eval()
    with torch.no_grad():
        assert enc(torch.randn(3, *shape)).shape == (3, out_dim)


@pytest.mark.parametrize(
    "head, params",
    [
        (lambda: ProjectionHead(5632), 1_475_456),
        (lambda: ProjectionHead(256), 99_200),
        (lambda: FusionClassifier({"inertial": 5632, "skeleton": 256}, 27), 1_522_715),
        (lambda: FusionClassifier({"inertial": 5632, "skeleton": 256}, 36), 1_527_332),
        (lambda: LinearClassifier(5632, 27), 152_091),
        (lambda: LinearClassifier(256, 27), 6_939),
        (lambda: LinearClassifier(5632, 36), 202_788),
        (lambda: LinearClassifier(256, 36), 9_252),
    ],
)
def test_head_parameter_counts(head, params) -> None:
    assert count_parameters(head()) == params


def test_backbones_are_registered_by_name() -> None:
    assert BACKBONES.get("inertial_cnn_transformer") is InertialCNNTransformer
    assert BACKBONES.get("skeleton_cooccurrence") is SkeletonCooccurrence


def test_inertial_matches_sequence_first_reference_forward() -> None:
    """Batch-first is the same math as the reference's sequence-first pass, incl. channel-major flattening."""
    enc = InertialCNNTransformer(in_channels=6, length=50).eval()
    layer = enc.transformer.layers[0]
    assert (len(enc.transformer.layers), layer.self_attn.num_heads, layer.linear1.out_features) == (2, 2, 2048)
    assert not layer.norm_first and layer.dropout.p == 0.1 and enc.positional_encoding.dropout.p == 0.1
    ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(128, 2), 2, enable_nested_tensor=False).eval()
    ref.load_state_dict(enc.transformer.state_dict())
    x = torch.randn(4, 6, 50)
    with torch.no_grad():
        h = enc.conv(x)  # [N, 128, 44]
        assert h.shape == (4, 128, 44)
        seq = h.permute(2, 0, 1) + enc.positional_encoding.pe[:44].unsqueeze(1)  # [L, N, d]
        want = ref(seq).permute(1, 2, 0).flatten(1)
        got = enc(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_positional_encoding_values() -> None:
    pe = InertialCNNTransformer(6, 50).positional_encoding.pe
    assert pe.shape == (50, 128)
    torch.testing.assert_close(pe[0, 0::2], torch.zeros(64))
    torch.testing.assert_close(pe[0, 1::2], torch.ones(64))
    t, i = 7, 5  # dims 2i and 2i + 1 at position t
    freq = 10000.0 ** (-2 * i / 128)
    assert pe[t, 2 * i].item() == pytest.approx(math.sin(t * freq), abs=1e-6)
    assert pe[t, 2 * i + 1].item() == pytest.approx(math.cos(t * freq), abs=1e-6)


def test_skeleton_intermediate_shapes_match_spec() -> None:
    enc = SkeletonCooccurrence(in_channels=3, length=50, joints=20)
    seen: dict[str, tuple[int, ...]] = {}
    for name in ("conv3", "conv4"):
        getattr(enc.joints_stream, name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, o.shape[1:]))
    for name in ("conv5", "conv6"):
        getattr(enc, name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, o.shape[1:]))
    enc.conv5.register_forward_pre_hook(lambda m, i: seen.__setitem__("fused", i[0].shape[1:]))
    out = enc(torch.randn(2, 3, 50, 20))
    assert seen == {"conv3": (32, 15, 23), "conv4": (64, 6, 10), "fused": (64, 12, 10), "conv5": (128, 5, 4),
                    "conv6": (256, 1, 1)}
    assert enc.out_shape == (256, 1, 1)
    assert (out >= 0).all()  # after ReLU and max-pool: the spec's non-negative skeleton features


def test_motion_stream_input() -> None:
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).view(2, 3, 5, 4) ** 2
    m = motion(x)
    assert (m[:, :, 0] == 0).all()
    torch.testing.assert_close(m[:, :, 1:], x[:, :, 1:] - x[:, :, :-1])


def test_rectangular_pooling_changes_output_size() -> None:
    enc = SkeletonCooccurrence(2, 50, 17, pool_sizes=((2, 1), (2, 1), (2, 1), (2, 1)))
    enc.eval()
    with torch.no_grad():
        assert enc(torch.randn(2, 2, 50, 17)).shape == (2, enc.out_dim)
    assert enc.out_dim != 256


def test_fusion_classifier_is_order_independent() -> None:
    a = FusionClassifier({"skeleton": 4, "inertial": 6}, n_classes=3, hidden=8).eval()
    b = FusionClassifier({"inertial": 6, "skeleton": 4}, n_classes=3, hidden=8).eval()
    assert a.modalities == b.modalities == ["inertial", "skeleton"]
    b.load_state_dict(a.state_dict())
    feats = {"inertial": torch.randn(5, 6), "skeleton": torch.randn(5, 4)}
    with torch.no_grad():
        out1 = a(feats)
        out2 = b({"skeleton": feats["skeleton"], "inertial": feats["inertial"]})
    assert out1.shape == (5, 3)
    torch.testing.assert_close(out1, out2)
    with pytest.raises(KeyError, match="missing \\['skeleton'\\]"):
        a({"inertial": feats["inertial"]})


def test_build_encoder_accepts_batch_shapes_and_rejects_bad_input() -> None:
    assert build_encoder("inertial", (32, 6, 50)).out_dim == 5632
    assert build_encoder("skeleton", (8, 3, 50, 20)).out_dim == 256
    with pytest.raises(ValueError, match="Known modality layouts: inertial, skeleton"):
        build_encoder("depth", (3, 50))
    with pytest.raises(ValueError, match=r"\(C, T, J\)"):
        build_encoder("skeleton", (50,))
    with pytest.raises(ValueError, match="is for layout 'inertial'"):
        build_encoder("skeleton", (3, 50, 20), backbone="inertial_cnn_transformer")
    with pytest.raises(ValueError, match=r"expects \[N, 6, 50\]"):
        build_encoder("inertial", (6, 50))(torch.randn(2, 6, 40))
    with pytest.raises(ValueError, match=r"expects \[N, 3, 50, 20\]"):
        build_encoder("skeleton", (3, 50, 20))(torch.randn(2, 3, 50, 17))
    with pytest.raises(ValueError, match="too short"):
        SkeletonCooccurrence(3, 20, 20)


def test_gradients_reach_first_layers_and_count_trainable() -> None:
    inertial, skeleton = build_encoder("inertial", (6, 50)), build_encoder("skeleton", (3, 50, 20))
    loss = inertial(torch.randn(4, 6, 50)).pow(2).mean() + skeleton(torch.randn(4, 3, 50, 20)).pow(2).mean()
    loss.backward()
    assert inertial.conv[0].weight.grad.abs().sum() > 0
    assert skeleton.joints_stream.conv1[0].weight.grad.abs().sum() > 0
    assert skeleton.motions_stream.conv1[0].weight.grad.abs().sum() > 0
    for p in skeleton.joints_stream.parameters():
        p.requires_grad_(False)
    assert count_parameters(skeleton, trainable_only=True) == 432_000 - 31_104  # one stream up to conv4
