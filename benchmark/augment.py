"""Batched, on-device SSL augmentations for inertial [N, C, T] and skeleton [N, C, T, J] batches (spec 4.3).

Why: the reference augments one sample at a time in data-loader workers; here a whole batch is augmented
with tensor ops on the batch's device, with all randomness drawn from a `torch.Generator` passed in, so a
seed fixes the result. Each op is wrapped like torchvision's RandomApply, but per sample: a Bernoulli(p)
mask decides which samples of the batch get the op. Ops run in the reference's YAML key order.

The reference pipelines (`REFERENCE_PIPELINES`, one per modality kind) hold the reference's UTD-MHAD YAML
values; a dataset changes them through its `TrainingProfile.augmentations` (MMAct declares its own values),
and ops with apply=False are kept (and can be switched on through overrides):

    inertial: jittering(sigma=1) scaling(sigma=1) [rotation off] permutation(max_segments=3) channel_shuffle,
              all p=0.75
    skeleton: jittering(sigma=0.1, p=1) crop_and_resize(0.8, 0.9) scaling(0.7, 1.2)
              rotation(-10..10 step 2) shear(beta=0.2), p=0.75 except jittering

Inertial semantics per `layout`:

    op               layout="reference" (what the reference code does    layout="intended" (what the name means)
                     on the (C, T) tensors it receives)
    jittering        x + N(0, sigma^2) per element                        same
    scaling          x * F, F ~ N(1, sigma^2) per element                 one factor per channel, constant in time
    rotation         x * S, S uniform in {-1, +1} per element             one uniformly random 3-D rotation per
                     (sign flips, not a rotation)                         sample, applied to every xyz triplet of
                                                                          channels (acc and gyro alike); C % 3 == 0,
                                                                          or only to the triplets the modality
                                                                          declares as vectors (`ModalitySpec.vectors`;
                                                                          MMAct: not its orientation angles)
    permutation      channels split into n in {1..max_segments-1}         the same split-and-permute along time
                     near-equal contiguous groups, groups permuted        (segment permutation, Um et al. 2017)
                     (UTD: swaps the acc and gyro blocks)
    channel_shuffle  one random permutation of the T time steps,          one random permutation of the x/y/z
                     shared by all channels (a full temporal shuffle)     axes per sample, applied inside every
                                                                          triplet (sensors and units never mix;
                                                                          the code's own (T, C) reading would
                                                                          shuffle all channels, mixing acc & gyro);
                                                                          with declared vectors, inside those only

Skeleton ops are the same in both layouts (C = 2 or 3 coordinates):
    jittering        x + N(0, sigma^2) per element
    crop_and_resize  crop length floor(U(min_p, max_p) * T) at a uniform start, FFT-resampled (scipy's
                     `signal.resample` math) back to T frames
    scaling          diag(s), s_d ~ U(min_p, max_p) per axis, about joint `pivot_joint` of each frame
    rotation         angles from {start, start+step, .., end} degrees; 3-D: R = Rx Ry Rz with independent
                     angles, 2-D: one angle; about joint `pivot_joint` of each frame
    shear            3-D [[1, a, a], [b, 1, b], [c, c, 1]], 2-D [[1, a], [b, 1]], (a, b, c) ~ N(0, beta^2),
                     about the origin (the reference does not pivot shear)

Deliberate differences from the reference in both layouts: outputs keep the input dtype (the reference's
inertial scaling returned float64); crop_and_resize always resamples to the input length (the reference's
`size` always equals it); the reference stores an `anchor_joint` and ignores it, pivoting on joint 0 —
we expose that pivot as `pivot_joint` (default 0, the reference behaviour); random numbers come from
torch generators, so the distributions match the reference but the individual draws do not.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from benchmark.augment_ops import (
    _GEOMETRIC,
    _NEEDS_TRIPLETS,
    OP_FUNCTIONS,
    _rand,
    crop_and_resize_frames,
    fft_resample_matrix,
    permute_segments,
    random_rotations_3d,
    rotation_matrix_2d,
    rotation_matrix_3d,
)
from benchmark.registry import unknown_name_message

LAYOUTS = ("reference", "intended")
MODALITIES = ("inertial", "skeleton")


class AugmentationError(ValueError):
    """Unknown modality kind, layout, op or parameter, or a batch the ops cannot handle."""


@dataclass(frozen=True)
class OpConfig:
    """One augmentation op as configured: whether it is on, its per-sample probability and its parameters."""

    name: str
    apply: bool
    probability: float
    params: Mapping[str, Any] = field(default_factory=dict)


def _ops(*rows: tuple[str, bool, float, dict[str, Any]]) -> tuple[OpConfig, ...]:
    return tuple(OpConfig(n, a, p, dict(kw)) for n, a, p, kw in rows)


# The reference YAML files (configs/{inertial,skeleton}_augmentations/augmentations_utd.yaml), in key order.
REFERENCE_PIPELINES: dict[str, tuple[OpConfig, ...]] = {
    "inertial": _ops(
        ("jittering", True, 0.75, {"sigma": 1.0}),
        ("scaling", True, 0.75, {"sigma": 1.0}),
        ("rotation", False, 0.75, {}),
        ("permutation", True, 0.75, {"max_segments": 3}),
        ("channel_shuffle", True, 0.75, {}),
    ),
    "skeleton": _ops(
        ("jittering", True, 1.0, {"sigma": 0.1}),
        ("crop_and_resize", True, 0.75, {"min_p": 0.8, "max_p": 0.9}),
        ("scaling", True, 0.75, {"min_p": 0.7, "max_p": 1.2}),
        ("rotation", True, 0.75, {"start": -10, "end": 10, "step": 2}),
        ("shear", True, 0.75, {"beta": 0.2}),
    ),
}

# Parameters that an op accepts without the profile naming them (the reference's implicit choices).
_IMPLICIT_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("skeleton", "scaling"): {"pivot_joint": 0},
    ("skeleton", "rotation"): {"pivot_joint": 0},
}

# Parameters an op accepts when given but does not have by default: the vector triplets a modality declares
# (`ModalitySpec.vectors`, handed over by `TrainingProfile.with_vectors`); the reference layout ignores them.
_OPTIONAL_PARAMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("inertial", "rotation"): ("vectors",),
    ("inertial", "channel_shuffle"): ("vectors",),
}

# name: (type, predicate, what it must be)
_PARAM_RULES: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "sigma": (float, lambda v: v >= 0, "a number >= 0"),
    "beta": (float, lambda v: v >= 0, "a number >= 0"),
    "min_p": (float, lambda v: v > 0, "a number > 0"),
    "max_p": (float, lambda v: v > 0, "a number > 0"),
    "max_segments": (int, lambda v: v >= 2, "an integer >= 2"),
    "start": (int, lambda v: True, "an integer (degrees)"),
    "end": (int, lambda v: True, "an integer (degrees)"),
    "step": (int, lambda v: v > 0, "an integer > 0 (degrees)"),
    "pivot_joint": (int, lambda v: v >= 0, "a joint index >= 0"),
}


# -- configuration -------------------------------------------------------------------------------------------
def _check_vectors(where: str, value: Any) -> tuple[tuple[int, int, int], ...]:
    """Channel index triplets: a list of 3-element lists of distinct non-negative integers."""
    what = "a list of [i, j, k] channel index triplets, each channel in at most one"
    if isinstance(value, (str, bytes)):
        raise AugmentationError(f"{where}: parameter 'vectors' must be {what}, got {value!r}")
    try:
        groups = tuple(tuple(group) for group in value)
    except TypeError:
        raise AugmentationError(f"{where}: parameter 'vectors' must be {what}, got {value!r}") from None
    flat = [c for group in groups for c in group]
    if (any(len(group) != 3 for group in groups) or len(set(flat)) != len(flat)
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in flat)):
        raise AugmentationError(f"{where}: parameter 'vectors' must be {what}, got {value!r}")
    return groups  # type: ignore[return-value]


def _check_param(where: str, key: str, value: Any) -> Any:
    if key == "vectors":
        return _check_vectors(where, value)
    kind, ok, what = _PARAM_RULES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise AugmentationError(f"{where}: parameter {key!r} must be {what}, got {value!r}")
    value = kind(value)
    if not ok(value):
        raise AugmentationError(f"{where}: parameter {key!r} must be {what}, got {value!r}")
    return value


def _resolve_op(modality: str, base: OpConfig, override: Any, where: str) -> OpConfig:
    """Merge one op's override {'apply', 'probability', params...} into its profile entry, validating each key."""
    params = {**_IMPLICIT_PARAMS.get((modality, base.name), {}), **base.params}
    apply, prob = base.apply, base.probability
    optional = _OPTIONAL_PARAMS.get((modality, base.name), ())
    if override is not None:
        if not isinstance(override, Mapping):
            raise AugmentationError(f"{where}: override must be a dict like {{'apply': True, 'probability': 0.5}}, "
                                    f"got {override!r}")
        valid = ["apply", "probability", *params, *(k for k in optional if k not in params)]
        for key, value in override.items():
            if key == "apply":
                if not isinstance(value, bool):
                    raise AugmentationError(f"{where}: 'apply' must be true or false, got {value!r}")
                apply = value
            elif key == "probability":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise AugmentationError(f"{where}: 'probability' must be a number in [0, 1], got {value!r}")
                prob = float(value)
            elif key in params or key in optional:
                params[key] = value
            else:
                raise AugmentationError(f"{where}: " + unknown_name_message("parameter", key, valid))
    params = {k: _check_param(where, k, v) for k, v in params.items()}
    if "min_p" in params and params["min_p"] > params["max_p"]:
        raise AugmentationError(f"{where}: min_p {params['min_p']} must not exceed max_p {params['max_p']}")
    if base.name == "crop_and_resize" and params["max_p"] > 1:
        raise AugmentationError(f"{where}: max_p {params['max_p']} must be <= 1 (a crop cannot exceed the clip)")
    if "start" in params and params["start"] > params["end"]:
        raise AugmentationError(f"{where}: rotation start {params['start']} must not exceed end {params['end']}")
    return replace(base, apply=apply, probability=prob, params=params)


class Augmenter:
    """The SSL augmentation pipeline of one modality kind: `aug(x, generator) -> augmented x`.

    `overrides` ({op: {'apply'|'probability'|param: value}}) change the reference pipeline of the kind; a list
    of override dicts is applied in order (e.g. the dataset's, then a method's). `label` names the pipeline in
    messages (e.g. 'my_data/skeleton').
    """

    def __init__(self, modality: str, layout: str = "reference",
                 overrides: Mapping[str, Mapping[str, Any]] | list[Mapping[str, Mapping[str, Any]]] | None = None,
                 label: str = "") -> None:
        if modality not in MODALITIES:
            raise AugmentationError(unknown_name_message("augmentation modality kind", modality, list(MODALITIES)))
        if layout not in LAYOUTS:
            raise AugmentationError(unknown_name_message("augmentation layout", layout, list(LAYOUTS)))
        self.modality, self.layout, self.label = modality, layout, label or modality
        ops = REFERENCE_PIPELINES[modality]
        names = [op.name for op in ops]
        layers: list[Any] = \
            (overrides if isinstance(overrides, list) else [overrides]) or [{}]
        for layer in layers:
            layer = layer or {}
            for key in layer:
                if key not in names:
                    raise AugmentationError(
                        f"{self.label} augmentations: " + unknown_name_message("op", key, names))
            ops = tuple(_resolve_op(modality, op, layer.get(op.name), f"{self.label}/{op.name}") for op in ops)
        self.ops: tuple[OpConfig, ...] = ops
        self._functions = OP_FUNCTIONS[(modality, layout)]

    @property
    def active_ops(self) -> tuple[OpConfig, ...]:
        """The ops that run (apply=True and probability > 0), in order."""
        return tuple(op for op in self.ops if op.apply and op.probability > 0)

    def config(self) -> dict[str, Any]:
        """A JSON-able description (for cell keys and records)."""
        return {
            "modality": self.modality, "layout": self.layout,
            "ops": [{"name": o.name, "apply": o.apply, "probability": o.probability, "params": dict(o.params)}
                    for o in self.ops],
        }

    def __repr__(self) -> str:
        ops = ", ".join(f"{o.name}(p={o.probability:g})" for o in self.active_ops) or "identity"
        return f"Augmenter({self.label}/{self.layout}: {ops})"

    def _check_batch(self, x: torch.Tensor, generator: torch.Generator) -> None:
        if not isinstance(generator, torch.Generator):
            raise AugmentationError(f"pass a torch.Generator (e.g. torch.Generator().manual_seed(0)), got {generator!r}")
        ndim = 3 if self.modality == "inertial" else 4
        layout = "[N, C, T]" if ndim == 3 else "[N, C, T, J]"
        if x.dim() != ndim or not x.is_floating_point():
            raise AugmentationError(f"{self.modality} augmentations need a floating {layout} batch, "
                                    f"got {x.dtype} {list(x.shape)}")
        active = {o.name for o in self.active_ops}
        if self.modality == "inertial":
            for op in self.active_ops:
                if (self.layout, op.name) not in _NEEDS_TRIPLETS:
                    continue
                vectors = op.params.get("vectors")
                if vectors is None and x.shape[1] % 3:
                    raise AugmentationError(f"intended inertial rotation/channel_shuffle need xyz channel triplets; "
                                            f"{x.shape[1]} channels is not a multiple of 3 (turn those ops off, or "
                                            f"declare the triplets as ModalitySpec.vectors)")
                if vectors and max(c for group in vectors for c in group) >= x.shape[1]:
                    raise AugmentationError(f"{op.name}: vectors {[list(g) for g in vectors]} name a channel beyond "
                                            f"the {x.shape[1]} channels of the batch {list(x.shape)}")
            return
        if active & _GEOMETRIC and x.shape[1] not in (2, 3):
            raise AugmentationError(f"skeleton scaling/rotation/shear need 2 or 3 coordinates per joint, "
                                    f"got C = {x.shape[1]} in {list(x.shape)}")
        for op in self.active_ops:
            pivot = op.params.get("pivot_joint", 0)
            if pivot >= x.shape[3]:
                raise AugmentationError(f"{op.name}: pivot_joint {pivot} is out of range for {x.shape[3]} joints")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment batch `x` (a new tensor on x's device, same dtype); each op hits each sample with its p."""
        self._check_batch(x, generator)
        n = x.shape[0]
        for op in self.active_ops:
            out = self._functions[op.name](x, generator, **op.params)
            if op.probability < 1:
                hit = _rand(generator, (n,), x) < op.probability
                out = torch.where(hit.view(n, *[1] * (x.dim() - 1)), out, x)
            x = out
        return x


def build_augmenters(kinds: Mapping[str, str], layout: str = "reference",
                     overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                     label: str = "") -> dict[str, Augmenter]:
    """One Augmenter per modality of `kinds` ({name: 'inertial' | 'skeleton'}).

    `overrides` is {modality name or kind: {op: {...}}} (a dataset's `TrainingProfile.augmentations`); the kind's
    entry applies first, then the modality name's.
    """
    overrides = dict(overrides or {})
    out = {}
    for name, kind in kinds.items():
        layers = [overrides[k] for k in dict.fromkeys((kind, name)) if k in overrides]
        out[name] = Augmenter(kind, layout, layers, f"{label}/{name}" if label else name)
    return out


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded generator on `device` (use the batch's device to keep the random draws there too)."""
    return torch.Generator(device=device).manual_seed(int(seed))


__all__ = [
    "AugmentationError", "Augmenter", "LAYOUTS", "OpConfig", "REFERENCE_PIPELINES", "build_augmenters",
    "crop_and_resize_frames", "fft_resample_matrix", "make_generator", "permute_segments",
    "random_rotations_3d", "rotation_matrix_2d", "rotation_matrix_3d",
]
