"""A post-LN Transformer encoder with the parameters of `nn.TransformerEncoder`, built for a fast CPU step.

`FastEncoderLayer` holds the same submodules, in the same construction order, as
`nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="relu", batch_first=True,
norm_first=False)`: the same seed gives the same initial weights and the state dicts are interchangeable
(keys `self_attn.in_proj_weight`, `linear1.weight`, `norm1.weight`, ...). The math is the same; what differs:

- dropout masks come from `fast_ops.keep_mask` on CPU (same distribution, another random stream);
- the feed-forward block's relu and dropout are one multiply by a bool mask, and the dropout scale is folded
  into the second linear layer (addmm's alpha), so the large [N * L, dim_feedforward] activation is
  traversed once forward and once backward instead of four times each;
- attention runs through `scaled_dot_product_attention` (the same kernel nn.MultiheadAttention uses), its
  probability dropout inside that call on CUDA and as an explicit `keep_mask` on CPU.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.fast_ops import FastDropout, dropout, relu_dropout


class FastEncoderLayer(nn.Module):
    """One post-LN encoder layer (self-attention, then relu feed-forward), batch-first [N, L, d]."""

    norm_first = False  # post-LN, as nn.TransformerEncoderLayer(norm_first=False)

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model {d_model} is not divisible by nhead {nhead}")
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = FastDropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.dropout1 = FastDropout(dropout)
        self.dropout2 = FastDropout(dropout)
        self.nhead = nhead

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        heads = self.nhead
        qkv = F.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)  # [N, H, L, dh]
        p = self.self_attn.dropout if self.training else 0.0
        if p > 0.0 and x.device.type == "cpu":
            w = torch.softmax((q * (d // heads) ** -0.5) @ k.transpose(-2, -1), dim=-1)
            o = dropout(w, p) @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.self_attn.out_proj(o.transpose(1, 2).reshape(n, length, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, L, d] -> [N, L, d]."""
        x = self.norm1(x + self.dropout1(self._attention(x)))
        h, scale = relu_dropout(self.linear1(x), self.dropout.p, self.training)
        y = torch.addmm(self.linear2.bias, h.reshape(-1, h.shape[-1]), self.linear2.weight.t(), alpha=scale)
        return self.norm2(x + self.dropout2(y.view_as(x)))


class FastTransformerEncoder(nn.Module):
    """`num_layers` deep copies of one layer (as nn.TransformerEncoder: the layers start identical)."""

    def __init__(self, layer: nn.Module, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


__all__ = ["FastEncoderLayer", "FastTransformerEncoder"]
