"""The committed CMC-CMKM encoders load on a fresh clone and map clips of their declared shape to features."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark import load_encoder

RELEASED = Path(__file__).resolve().parent.parent / "results" / "released" / "cmc_cmkm_utd_mhad"


@pytest.mark.parametrize("modality", ["inertial", "skeleton"])
def test_released_cmc_cmkm_encoder_loads_and_encodes(modality: str) -> None:
    (weights,) = RELEASED.glob(f"cmc_cmkm-seed0-{modality}-*.safetensors")
    meta = json.loads(weights.with_suffix(".json").read_text())
    enc = load_encoder(weights)
    assert meta["method"] == "cmc_cmkm" and meta["modality"] == modality
    x = torch.randn(2, *meta["shape"])
    with torch.no_grad():
        out = enc(x)
    assert out.shape[0] == 2 and torch.isfinite(out).all()
