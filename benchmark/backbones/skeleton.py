"""Skeleton encoder: the HCN-style two-stream co-occurrence CNN used by CMC-CMKM (spec 3.2).

Input [N, C, T, J]. A "joints" stream sees the coordinates, a "motions" stream the frame differences
(m_0 = 0). Per stream: conv1 1x1 (+BN, ReLU), conv2 3x1 over time (+BN), then joints become channels
([N, J, 32, T-2]: height = conv2's 32 features, width = time), conv3 and conv4 3x3 (+BN, max-pool 2, no ReLU).
The streams are concatenated along the height, then conv5 and conv6 3x3 (+BN, ReLU, max-pool 2).
No convolution is padded. UTD-MHAD (3, 50, 20): conv3 -> (32, 15, 23), conv4 -> (64, 6, 10),
fused (64, 12, 10), conv5 -> (128, 5, 4), conv6 -> (256, 1, 1): a 256-d output, 432,000 parameters.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from benchmark.registry import BACKBONES

PoolSize = int | tuple[int, int]


def motion(x: torch.Tensor) -> torch.Tensor:
    """Frame differences along time of [N, C, T, J]: m_t = x_t - x_{t-1}, m_0 = 0 (the motion stream's input)."""
    m = torch.zeros_like(x)
    m[:, :, 1:] = x[:, :, 1:] - x[:, :, :-1]
    return m


def _pair(p: PoolSize) -> tuple[int, int]:
    return (p, p) if isinstance(p, int) else (int(p[0]), int(p[1]))


def _conv_pool(hw: tuple[int, int], kernel: tuple[int, int], pool: PoolSize | None) -> tuple[int, int]:
    h, w = hw[0] - kernel[0] + 1, hw[1] - kernel[1] + 1
    if pool is not None:
        ph, pw = _pair(pool)
        h, w = h // ph, w // pw
    return h, w


class _StreamCNN(nn.Module):
    """One stream (joints or motions) up to conv4: [N, C, T, J] -> [N, c4, H, W]."""

    def __init__(self, in_channels: int, joints: int, channels: Sequence[int], pools: Sequence[PoolSize]) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, c1, (1, 1)), nn.BatchNorm2d(c1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, (3, 1)), nn.BatchNorm2d(c2))
        self.conv3 = nn.Sequential(nn.Conv2d(joints, c3, (3, 3)), nn.BatchNorm2d(c3), nn.MaxPool2d(pools[0]))
        self.conv4 = nn.Sequential(nn.Conv2d(c3, c4, (3, 3)), nn.BatchNorm2d(c4), nn.MaxPool2d(pools[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.conv1(x))  # [N, c2, T-2, J]
        h = h.permute(0, 3, 1, 2)  # co-occurrence: joints become channels -> [N, J, c2, T-2]
        return self.conv4(self.conv3(h))


@BACKBONES.register("skeleton_cooccurrence")
class SkeletonCooccurrence(nn.Module):
    """Two-stream co-occurrence CNN: [N, C, T, J] -> [N, 256 * h * w] (256-d for T = 50)."""

    layout = "skeleton"

    def __init__(
        self,
        in_channels: int,
        length: int,
        joints: int,
        out_channels: Sequence[int] = (64, 32, 32, 64, 128, 256),
        pool_sizes: Sequence[PoolSize] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        if len(out_channels) != 6 or len(pool_sizes) != 4:
            raise ValueError(
                f"skeleton_cooccurrence needs 6 out_channels (conv1..conv6) and 4 pool_sizes (conv3..conv6), "
                f"got {list(out_channels)} and {list(pool_sizes)}"
            )
        self.in_channels, self.length, self.joints = int(in_channels), int(length), int(joints)
        c1, c2, c3, c4, c5, c6 = (int(c) for c in out_channels)
        self.joints_stream = _StreamCNN(self.in_channels, self.joints, (c1, c2, c3, c4), pool_sizes[:2])
        self.motions_stream = _StreamCNN(self.in_channels, self.joints, (c1, c2, c3, c4), pool_sizes[:2])
        self.conv5 = nn.Sequential(nn.Conv2d(c4, c5, (3, 3)), nn.BatchNorm2d(c5), nn.ReLU(), nn.MaxPool2d(pool_sizes[2]))
        self.conv6 = nn.Sequential(nn.Conv2d(c5, c6, (3, 3)), nn.BatchNorm2d(c6), nn.ReLU(), nn.MaxPool2d(pool_sizes[3]))
        self.out_shape = self._output_shape(c2, c6, pool_sizes)
        self.out_dim = self.out_shape[0] * self.out_shape[1] * self.out_shape[2]

    def _output_shape(self, c2: int, c6: int, pools: Sequence[PoolSize]) -> tuple[int, int, int]:
        """(channels, height, width) of conv6's output, computed from the shapes (no dry-run forward pass)."""
        hw = (c2, self.length - 2)  # after conv2 and the permute: height = conv2 features, width = time
        hw = _conv_pool(_conv_pool(hw, (3, 3), pools[0]), (3, 3), pools[1])
        hw = (2 * hw[0], hw[1])  # the two streams are stacked along the height
        hw = _conv_pool(_conv_pool(hw, (3, 3), pools[2]), (3, 3), pools[3])
        if min(hw) < 1:
            raise ValueError(
                f"skeleton_cooccurrence: input length {self.length} is too short for the conv/pool stack "
                f"(conv6 output would be {hw}); use at least ~40 frames or smaller pool_sizes"
            )
        return c6, hw[0], hw[1]

    @classmethod
    def from_shape(cls, shape: Sequence[int], **kwargs: object) -> "SkeletonCooccurrence":
        """Build for one sample of shape (C, T, J)."""
        c, t, j = shape
        return cls(in_channels=c, length=t, joints=j, **kwargs)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, T, J] -> features [N, out_dim] (non-negative: after ReLU and max-pool)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, self.length, self.joints):
            raise ValueError(
                f"skeleton_cooccurrence expects [N, {self.in_channels}, {self.length}, {self.joints}] "
                f"(batch, coordinates, time, joints), got {list(x.shape)}"
            )
        fused = torch.cat((self.joints_stream(x), self.motions_stream(motion(x))), dim=2)
        return self.conv6(self.conv5(fused)).flatten(1)
