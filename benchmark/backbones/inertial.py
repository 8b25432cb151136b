"""Inertial encoder: the CNN-Transformer of Khaertdinov et al. (IJCB 2021) as used by CMC-CMKM (spec 3.1).

Input [N, C, T]; three Conv1d blocks (no pooling) shorten T to L = T + 3 * (2 * padding - kernel_size + 1),
a sinusoidal positional encoding is added and a 2-layer post-LN Transformer encoder runs over the L steps.
The output is the (N, 128, L) sequence flattened channel-major, i.e. 5632-d for T = 50 and kernel 5.

The reference runs the Transformer sequence-first; we run it batch-first, which is the same math with the
same parameters (the layer's state dict is interchangeable with a sequence-first one).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from benchmark.backbones.fast_ops import current_kernel_mode, make_dropout
from benchmark.backbones.transformer import FastEncoderLayer, FastTransformerEncoder
from benchmark.registry import BACKBONES


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sin/cos position code of 'Attention is all you need' to a batch-first sequence."""

    pe: torch.Tensor  # a buffer [max_len, d]

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f"positional encoding needs an even d_model, got {d_model}")
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * inv_freq)
        pe[:, 1::2] = torch.cos(position * inv_freq)
        self.register_buffer("pe", pe, persistent=False)  # derived from the shape: never worth storing
        self.dropout = make_dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, L, d] -> x + pe[:L], then dropout."""
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} steps exceeds the positional encoding's {self.pe.shape[0]}")
        return self.dropout(x + self.pe[: x.shape[1]].to(x.dtype))


def conv_output_length(length: int, n_layers: int, kernel_size: int, padding: int, stride: int = 1) -> int:
    """Length after `n_layers` identical Conv1d layers (PyTorch's formula, dilation 1)."""
    for _ in range(n_layers):
        length = (length + 2 * padding - kernel_size) // stride + 1
    return length


@BACKBONES.register("inertial_cnn_transformer")
class InertialCNNTransformer(nn.Module):
    """CNN-Transformer inertial encoder: [N, C, T] -> [N, conv_channels[-1] * L] (5632-d on UTD-MHAD)."""

    layout = "inertial"

    def __init__(
        self,
        in_channels: int,
        length: int,
        kernel_size: int = 5,
        conv_channels: Sequence[int] = (32, 64, 128),
        padding: int = 1,
        num_layers: int = 2,
        num_heads: int = 2,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.length = int(length)
        self.out_length = conv_output_length(self.length, len(conv_channels), kernel_size, padding)
        if self.out_length < 1:
            raise ValueError(
                f"inertial_cnn_transformer: length {length} is too short for {len(conv_channels)} convolutions "
                f"with kernel {kernel_size} and padding {padding}; use longer windows or a smaller kernel"
            )
        blocks: list[nn.Module] = []
        c_in = self.in_channels
        for c_out in conv_channels:
            blocks += [nn.Conv1d(c_in, c_out, kernel_size, stride=1, padding=padding), nn.BatchNorm1d(c_out), nn.ReLU()]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        d_model = int(conv_channels[-1])
        self.positional_encoding = SinusoidalPositionalEncoding(d_model, max(self.length, self.out_length), dropout)
        self.transformer: nn.Module
        if current_kernel_mode() == "reference":
            layer = nn.TransformerEncoderLayer(
                d_model, num_heads, dim_feedforward=dim_feedforward, dropout=dropout, activation="relu",
                batch_first=True, norm_first=False,
            )
            self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        else:  # same parameters and initial weights, fused blocks and cheap dropout masks (backbones/transformer.py)
            self.transformer = FastTransformerEncoder(
                FastEncoderLayer(d_model, num_heads, dim_feedforward, dropout), num_layers)
        self.d_model = d_model
        self.out_dim = d_model * self.out_length

    @classmethod
    def from_shape(cls, shape: Sequence[int], **kwargs: object) -> "InertialCNNTransformer":
        """Build for one sample of shape (C, T)."""
        c, t = shape
        return cls(in_channels=c, length=t, **kwargs)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, T] -> flattened features [N, out_dim] (channel-major, as the reference flattens)."""
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.length:
            raise ValueError(
                f"inertial_cnn_transformer expects [N, {self.in_channels}, {self.length}] (batch, channels, time), "
                f"got {list(x.shape)}"
            )
        h = self.conv(x)  # [N, d, L]
        h = self.positional_encoding(h.transpose(1, 2))  # [N, L, d]
        h = self.transformer(h)
        return h.transpose(1, 2).flatten(1)
