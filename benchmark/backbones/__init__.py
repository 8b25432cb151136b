"""Encoders (registered in BACKBONES by name) and heads; `build_encoder` picks the encoder for a modality layout."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from benchmark.backbones.heads import FusionClassifier, LinearClassifier, ProjectionHead
from benchmark.backbones.inertial import InertialCNNTransformer
from benchmark.backbones.skeleton import SkeletonCooccurrence
from benchmark.registry import BACKBONES, unknown_name_message

# The reference backbone of each modality layout; a method may name another registered one.
DEFAULT_BACKBONES: dict[str, str] = {"inertial": "inertial_cnn_transformer", "skeleton": "skeleton_cooccurrence"}
_SAMPLE_NDIM = {"inertial": 2, "skeleton": 3}  # (C, T) and (C, T, J)


def build_encoder(modality_layout: str, data_shape: Sequence[int], backbone: str | None = None,
                  **kwargs: Any) -> nn.Module:
    """The encoder for a modality: `data_shape` is one sample's (C, T) / (C, T, J) or a batch's [N, ...] shape.

    `backbone` names a registered backbone (default: the layout's reference one); `kwargs` go to its constructor.
    The returned module has `out_dim` (its flattened feature size) and `build_spec` (the arguments that rebuild it).
    """
    if modality_layout not in DEFAULT_BACKBONES:
        raise ValueError(unknown_name_message("modality layout", modality_layout, sorted(DEFAULT_BACKBONES)))
    shape = tuple(int(s) for s in data_shape)
    want = _SAMPLE_NDIM[modality_layout]
    if len(shape) == want + 1:  # a batch shape: drop N
        shape = shape[1:]
    if len(shape) != want:
        raise ValueError(
            f"data_shape {tuple(data_shape)} does not fit layout {modality_layout!r}: expected "
            f"{'(C, T)' if want == 2 else '(C, T, J)'} or the same with a leading batch size"
        )
    cls = BACKBONES.get(backbone or DEFAULT_BACKBONES[modality_layout])
    cls_layout = getattr(cls, "layout", None)
    if cls_layout != modality_layout:
        raise ValueError(f"backbone {backbone!r} is for layout {cls_layout!r}, not {modality_layout!r}")
    enc = cls.from_shape(shape, **kwargs)
    # how to build it again (benchmark.export writes it beside the weights; load_encoder reads it)
    enc.build_spec = {"layout": modality_layout, "shape": list(shape),
                      "backbone": backbone or DEFAULT_BACKBONES[modality_layout], "kwargs": dict(kwargs)}
    return enc


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BN statistics not included); optionally only trainable ones."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "DEFAULT_BACKBONES", "FusionClassifier", "InertialCNNTransformer", "LinearClassifier", "ProjectionHead",
    "SkeletonCooccurrence", "build_encoder", "count_parameters",
]
