"""Encoder export: the pretrained encoders of a results folder as `safetensors` files usable without the suite's
runner, and `load_encoder` to rebuild one as a ready `nn.Module`.

    python run_all.py --export results/paper[/FILTER] --to exported/

writes, for every pretraining checkpoint of the folder (FILTER: only variants containing it, e.g.
`results/paper/cmc_cmkm`), one `<variant>-seed<k>-<modality>-<key>.safetensors` per encoder and a JSON beside
it with what rebuilds and feeds it: backbone name and arguments, modality and its kind, input shape,
preprocessing (dataset, options, split, clip length, standardisation), method, resolved config, seed, data
fingerprint, code version and commit. Then, outside the suite:

    from benchmark import load_encoder
    encoder = load_encoder("exported/simclr-inertial-seed0-inertial-1a2b3c4d.safetensors")
    features = encoder(x)  # x: [N, C, T] inertial or [N, C, T, J] skeleton, preprocessed as the JSON says
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from benchmark import store
from benchmark.atomic import atomic_write


class ExportError(ValueError):
    """A results folder without checkpoints or records, or an exported file that cannot be rebuilt."""


def _write_bytes(path: Path, blob: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(blob))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "-", text).strip("-")[:80] or "encoder"


def stored_units(results_dir: Path, filter_text: str | None = None, data_root: str | None = None,
                 log: Any = print) -> Iterator[tuple[str, dict[str, Any], Any, Any]]:
    """(pretraining key, one of its records, dataset, Pretrained) for every checkpoint of `results_dir` (only
    variants containing `filter_text`), each rebuilt on the CPU from the dataset its records name; checkpoints
    that are missing are logged and skipped."""
    from benchmark.contracts.method import DataInfo
    from benchmark.data import load_dataset
    from benchmark.pretrain import load_checkpoint
    from benchmark.report.entries import load_records

    results_dir = Path(results_dir)
    units: dict[str, dict[str, Any]] = {}
    for _, rec in load_records(results_dir):
        pre = rec.get("pretrain") or {}
        if pre.get("key") and pre["key"] not in units:
            units[pre["key"]] = rec
    if not units:
        raise ExportError(f"{results_dir}: no record names a pretraining checkpoint; run a suite first")
    datasets: dict[str, Any] = {}
    for key, rec in sorted(units.items(), key=lambda kv: (kv[1]["cell"]["variant"], kv[1]["cell"]["seed"], kv[0])):
        cell = rec["cell"]
        if filter_text and filter_text not in cell["variant"]:
            continue
        ckpt = store.checkpoint_path(results_dir, key)
        if not ckpt.is_file():
            log(f"skipped {cell['variant']} seed {cell['seed']}: no checkpoint {ckpt.name}")
            continue
        ident = json.dumps([cell["dataset"], rec.get("dataset_options") or {}], sort_keys=True)
        if ident not in datasets:
            datasets[ident] = load_dataset(cell["dataset"], data_root, **(rec.get("dataset_options") or {}))
        data = datasets[ident]
        yield key, rec, data, load_checkpoint(ckpt, DataInfo.from_data(data, data.split(cell["split"])), device="cpu")


def export_encoders(results_dir: Path, to: Path, filter_text: str | None = None, data_root: str | None = None,
                    log: Any = print) -> list[Path]:
    """Export every checkpointed encoder of `results_dir` (see the module docstring); returns the written files."""
    from safetensors.torch import save

    to = Path(to)
    written: list[Path] = []
    for key, rec, data, pre in stored_units(results_dir, filter_text, data_root, log):
        cell = rec["cell"]
        for modality, enc in sorted(pre.encoders().items()):
            spec = getattr(enc, "build_spec", None)
            if spec is None:
                log(f"skipped {cell['variant']} {modality}: its encoder was not built by build_encoder")
                continue
            meta = {"format": 1, **spec, "modality": modality, "method": cell["method"], "variant": cell["variant"],
                    "config": rec.get("pretrain", {}).get("method_resolved"), "seed": cell["seed"],
                    "preprocessing": {"dataset": cell["dataset"], "options": rec.get("dataset_options") or {},
                                      "split": cell["split"], "length": data.meta.get("length"),
                                      "modality_spec": data.meta["modality_specs"][modality]},
                    "data_fingerprint": rec.get("data_fingerprint"), "code_version": rec.get("code_version"),
                    "commit": (rec.get("git") or {}).get("commit"), "pretrain_key": key}
            base = to / f"{_safe(cell['variant'])}-seed{cell['seed']}-{_safe(modality)}-{key[:8]}"
            weights = {k: v.detach().cpu().contiguous() for k, v in enc.state_dict().items()}
            _write_bytes(base.with_suffix(".safetensors"), save(weights, metadata={"mmhar": json.dumps(meta,
                                                                                                   sort_keys=True)}))
            _write_bytes(base.with_suffix(".json"), json.dumps(meta, indent=1).encode())
            written += [base.with_suffix(".safetensors"), base.with_suffix(".json")]
            log(f"exported {cell['variant']} seed {cell['seed']} {modality} -> {base.with_suffix('.safetensors')}")
    return written


def load_encoder(path: str | Path, device: str = "cpu") -> nn.Module:
    """The encoder stored at `path` (a .safetensors file written by `export_encoders`), rebuilt, weights loaded
    strictly, in eval mode; its `export_info` holds the JSON metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from benchmark.backbones import build_encoder

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist; export encoders with python run_all.py --export RESULTS --to DIR")
    with safe_open(str(path), framework="pt") as fh:
        raw = (fh.metadata() or {}).get("mmhar")
    if raw is None:
        raise ExportError(f"{path} is not an mmhar-bench encoder export (no 'mmhar' metadata)")
    meta = json.loads(raw)
    enc = build_encoder(meta["layout"], meta["shape"], meta["backbone"], **meta.get("kwargs", {}))
    enc.load_state_dict(load_file(str(path), device=device), strict=True)
    enc.export_info = meta
    return enc.to(device).eval()
