"""Encoder export: `--export` writes safetensors + JSON; `benchmark.load_encoder` gives the same embeddings bit for bit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark import cli, load_encoder, store
from benchmark.contracts import DataInfo
from benchmark.data import load_dataset
from benchmark.export import ExportError
from benchmark.pretrain import load_checkpoint
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow


def test_export_round_trips_embeddings_exactly(tmp_path: Path) -> None:
    suite = narrow(get_suite("smoke"), methods=["cmc", "simclr[skeleton]"], protocols=["knn"], seeds=[0])
    res = tmp_path / "smoke"
    plan = plan_suite(suite, res, device="cpu")
    assert execute(plan, RunSettings(device="cpu", quiet=True)).ok
    out = tmp_path / "exported"
    assert cli.main(["--export", str(res / "cmc"), "--to", str(out)]) == 0  # a filter: only cmc
    files = sorted(out.glob("*.safetensors"))
    assert [f.name.split("-")[2] for f in files] == ["inertial", "skeleton"]
    data = load_dataset("synthetic", **get_suite("smoke").dataset_options["synthetic"])
    unit = next(u for u in plan.units.values() if u.variant == "cmc")
    pre = load_checkpoint(store.checkpoint_path(res, unit.key), DataInfo.from_data(data, data.split()), device="cpu")
    for f in files:
        enc = load_encoder(f)
        meta = json.loads(f.with_suffix(".json").read_text())
        m = meta["modality"]
        assert meta["method"] == "cmc" and meta["seed"] == 0 and meta["preprocessing"]["dataset"] == "synthetic"
        assert enc.export_info["shape"] == list(data.modalities[m].shape[1:])
        x = data.modalities[m][:16]
        with torch.no_grad():
            assert torch.equal(enc(x), pre.encoders()[m].eval()(x))
    assert cli.main(["--export", str(res), "--to", str(tmp_path / "all")]) == 0
    assert len(list((tmp_path / "all").glob("*.safetensors"))) == 3


def test_load_encoder_names_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        load_encoder(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ExportError, match="not an mmhar-bench encoder export"):
        load_encoder(tmp_path / "x.safetensors")
