"""Representation health of a frozen encoder: the collapse monitors of more_methods_spec.md (item 7).

A self-supervised encoder can score below a never-trained one when its features collapse: all clips map to
(nearly) one point (complete collapse) or into a few directions (dimensional collapse). Three numbers on the
un-augmented training clips of the split, in eval mode, tell which:

- `rankme`: RankMe (Garrido et al., ICML 2023), exp of the entropy of the normalised singular values
  p_k = s_k / sum(s) of the centred feature matrix; between 1 (one direction) and min(N, D).
- `z_std`: the mean over dimensions of the batch std of the L2-normalised features (solo-learn's `z_std`,
  `solo/methods/byol.py`); 0 on complete collapse, about 1/sqrt(D) when the features spread over all D
  dimensions. `z_std_ratio` = z_std x sqrt(D) puts it on a 0..1 scale.
- `top_share`: the fraction of the centred features' variance along the first principal direction.

Computed in fp32 on whatever device the encoder is on; records store it per encoder (`feature_health`).
For folders whose records predate that field, measure the stored checkpoints:

    python -m benchmark.health results/utd_mhad/more_methods [--filter byol] [--data-root DIR]

prints the table of `findings.md`'s feature-health section and writes it to `<folder>/feature_health.md`.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn


def feature_health(features: torch.Tensor) -> dict[str, float]:
    """The collapse monitors (see the module docstring) of a feature matrix [N, D] (N >= 2)."""
    f = features.detach().flatten(1).to(torch.float32)
    if f.shape[0] < 2:
        raise ValueError(f"feature_health needs at least 2 samples, got {f.shape[0]}")
    if not bool(torch.isfinite(f).all()):
        return {"dim": int(f.shape[1]), "rankme": float("nan"), "z_std": float("nan"), "z_std_ratio": float("nan"),
                "top_share": float("nan"), "finite": 0.0}
    dim = int(f.shape[1])
    centred = f - f.mean(0, keepdim=True)
    s = torch.linalg.svdvals(centred.double())
    total = float(s.sum())
    if total <= 0.0:  # every sample the same point: complete collapse
        rankme, top = 1.0, 1.0
    else:
        p = s / total
        p = p[p > 0]
        rankme = float(torch.exp(-(p * p.log()).sum()))
        var = s ** 2
        top = float(var[0] / var.sum())
    z = nn.functional.normalize(f, dim=1)
    z_std = float(z.std(0).mean())
    return {"dim": dim, "rankme": rankme, "z_std": z_std, "z_std_ratio": z_std * math.sqrt(dim), "top_share": top,
            "finite": 1.0}


def encoder_health(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    """`feature_health` of `encoder`'s frozen features of the clips `x`."""
    from benchmark.pretrain import embed

    return feature_health(embed(encoder, x, batch_size))


HEALTH_CLIPS = 1024  # at most this many training clips (evenly spaced) enter the monitors


def training_clips(split: object) -> torch.Tensor:
    """The split's training indices used for the monitors: all of them, or HEALTH_CLIPS evenly spaced."""
    train = np.asarray(split.train, dtype=np.int64)  # type: ignore[attr-defined]
    if train.size > HEALTH_CLIPS:
        train = train[np.linspace(0, train.size - 1, HEALTH_CLIPS).round().astype(np.int64)]
    return torch.as_tensor(train)


def main(argv: list[str] | None = None) -> int:
    """The checkpoint tool (module docstring); exit 2 with one paragraph on bad input."""
    from benchmark.export import ExportError, stored_units
    from benchmark.plugins import load_plugins
    from benchmark.report.entries import ReportError
    from benchmark.report.health import health_markdown, rows_from_monitors
    from benchmark.store import atomic_write_text

    p = argparse.ArgumentParser(prog="python -m benchmark.health", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="a results folder with records/ and checkpoints/")
    p.add_argument("--filter", default=None, help="only variants containing this text")
    p.add_argument("--data-root", default=None, help="data root (default: $MMHAR_DATA, ./data)")
    args = p.parse_args(argv)
    try:
        load_plugins()
        items = []
        for _key, rec, data, pre in stored_units(args.results, args.filter, args.data_root,
                                                 log=lambda m: print(m, file=sys.stderr)):
            idx = training_clips(data.split(rec["cell"]["split"]))
            for m, enc in sorted(pre.encoders().items()):
                items.append((rec, m, encoder_health(enc, data.modalities[m][idx])))
    except (ExportError, ReportError, OSError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    text = health_markdown(rows_from_monitors(items), heading="# Feature health (collapse monitors), from checkpoints")
    if not text:
        print(f"Error: {args.results}: no checkpoint matched; nothing measured", file=sys.stderr)
        return 2
    atomic_write_text(args.results / "feature_health.md", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["HEALTH_CLIPS", "encoder_health", "feature_health", "main", "training_clips"]
