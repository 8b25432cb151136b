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

import hashlib
import json
import re
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark import store
from benchmark.atomic import atomic_write, remove_orphans

FORMAT = 2  # 2: the metadata holds the tensors' shapes and the sha256 of their bytes; the side-car the file's sha256


class ExportError(ValueError):
    """A results folder without checkpoints or records, or an exported file that cannot be rebuilt."""


def _write_bytes(path: Path, blob: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(blob))


def _tensor_digest(weights: dict[str, Any]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order (what the export metadata holds)."""
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_target(to: Path) -> None:
    """An ExportError, before anything is written, when `to` cannot be created or written."""
    to = Path(to)
    try:
        to.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=to, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ExportError(f"cannot write to {to} ({exc.strerror or exc}); pass another --to folder") from None


def _nothing_found(results_dir: Path, filter_text: str | None) -> str:
    """Why an export found no encoder: no checkpoints (not committed to git), or none matching the filter."""
    ckpts = store.checkpoint_path(results_dir, "x").parent
    if filter_text and ckpts.is_dir() and any(ckpts.glob("*.pt")):
        return f"{results_dir}: no checkpoint of a variant containing {filter_text!r}; check the name"
    from benchmark.cli import folder_suite

    rerun = f"python run_all.py --suite {folder_suite(Path(results_dir)) or 'SUITE'} --results NEW_FOLDER"
    return (f"{results_dir}: no pretraining checkpoints in {ckpts} (checkpoints are not committed to git); "
            f"produce them with {rerun}, then --export NEW_FOLDER")


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
    ckpts = store.checkpoint_path(results_dir, "x").parent
    if not (ckpts.is_dir() and any(ckpts.glob("*.pt"))):  # e.g. a committed folder: one line, not one per unit
        raise ExportError(_nothing_found(results_dir, None))
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
    check_target(to)
    for orphan in remove_orphans(to):  # what a killed export left: its partial temporary files
        log(f"removed {orphan}: a partial file left by a stopped export")
    written: list[Path] = []
    for key, rec, data, pre in stored_units(results_dir, filter_text, data_root, log):
        cell = rec["cell"]
        for modality, enc in sorted(pre.encoders().items()):
            spec = getattr(enc, "build_spec", None)
            if spec is None:
                log(f"skipped {cell['variant']} {modality}: its encoder was not built by build_encoder")
                continue
            weights = {k: v.detach().cpu().contiguous() for k, v in enc.state_dict().items()}
            meta = {"format": FORMAT, **spec, "modality": modality, "method": cell["method"], "variant": cell["variant"],
                    "config": rec.get("pretrain", {}).get("method_resolved"), "seed": cell["seed"],
                    "preprocessing": {"dataset": cell["dataset"], "options": rec.get("dataset_options") or {},
                                      "split": cell["split"], "length": data.meta.get("length"),
                                      "modality_spec": data.meta["modality_specs"][modality]},
                    "data_fingerprint": rec.get("data_fingerprint"), "code_version": rec.get("code_version"),
                    "commit": (rec.get("git") or {}).get("commit"), "pretrain_key": key,
                    "tensors": {k: list(v.shape) for k, v in sorted(weights.items())},
                    "weights_sha256": _tensor_digest(weights)}
            base = to / f"{_safe(cell['variant'])}-seed{cell['seed']}-{_safe(modality)}-{key[:8]}"
            blob = save(weights, metadata={"mmhar": json.dumps(meta, sort_keys=True)})
            side = {**meta, "file_sha256": hashlib.sha256(blob).hexdigest()}
            _write_bytes(base.with_suffix(".safetensors"), blob)  # each file atomic; the side-car last
            _write_bytes(base.with_suffix(".json"), json.dumps(side, indent=1).encode())
            written += [base.with_suffix(".safetensors"), base.with_suffix(".json")]
            log(f"exported {cell['variant']} seed {cell['seed']} {modality} -> {base.with_suffix('.safetensors')}")
    if not written:
        raise ExportError(_nothing_found(Path(results_dir), filter_text))
    return written


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """(safetensors header, size of the data section it describes); an ExportError for a short or garbled file."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise ExportError(f"{path}: truncated or not a safetensors file ({size} bytes); export it again")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise ExportError(f"{path}: its safetensors header is garbled (edited?); export it again") from None
    if not isinstance(header, dict):
        raise ExportError(f"{path}: its safetensors header is garbled (edited?); export it again")
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
            and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2]
    need = 8 + n + max(ends, default=0)
    if size < need:
        raise ExportError(f"{path}: truncated ({size} bytes, its header describes {need}); export it again")
    return header, n


def _verify(path: Path, header: dict[str, Any], meta: dict[str, Any], weights: dict[str, Any]) -> None:
    """Check the file against its side-car and its own metadata (sha256s, shapes); an ExportError names the fault."""
    shapes = {k: list(v.get("shape", [])) for k, v in header.items() if k != "__metadata__"}
    side_path = path.with_suffix(".json")
    if side_path.is_file():
        try:
            side = json.loads(side_path.read_text())
        except (OSError, ValueError) as exc:
            raise ExportError(f"{side_path}: unreadable side-car ({exc}); export the encoder again") from None
        want = side.get("file_sha256") if isinstance(side, dict) else None
        if want and hashlib.sha256(path.read_bytes()).hexdigest() != want:
            raise ExportError(f"{path}: sha256 differs from its side-car {side_path.name} (tampered or replaced); "
                              f"export it again")
        if isinstance(side, dict) and side.get("tensors") not in (None, shapes):
            raise ExportError(f"{path}: tensor shapes disagree with its side-car {side_path.name} (header edited?); "
                              f"export it again")
    if "tensors" in meta and meta["tensors"] != shapes:
        raise ExportError(f"{path}: tensor shapes in its header disagree with its metadata (header edited?); "
                          f"export it again")
    if "weights_sha256" in meta and _tensor_digest(weights) != meta["weights_sha256"]:
        raise ExportError(f"{path}: weights sha256 mismatch (tampered or corrupted); export it again")


def load_encoder(path: str | Path, device: str = "cpu") -> nn.Module:
    """The encoder stored at `path` (a .safetensors file written by `export_encoders`), verified (sha256 and
    shapes against its metadata and side-car JSON), rebuilt, weights loaded strictly, in eval mode; its
    `export_info` holds the JSON metadata. Any fault is an ExportError naming the file."""
    from safetensors.torch import load

    from benchmark.backbones import build_encoder

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist; export encoders with python run_all.py --export RESULTS --to DIR")
    header, _ = _read_header(path)
    raw = (header.get("__metadata__") or {}).get("mmhar") if isinstance(header.get("__metadata__"), dict) else None
    if raw is None:
        raise ExportError(f"{path} is not an mmhar-bench encoder export (no 'mmhar' metadata)")
    try:
        meta = json.loads(raw)
        weights = load(path.read_bytes())
    except Exception as exc:  # safetensors' own errors name no file
        raise ExportError(f"{path}: unreadable ({type(exc).__name__}: {exc}); export it again") from None
    _verify(path, header, meta, weights)
    try:
        enc = build_encoder(meta["layout"], meta["shape"], meta["backbone"], **meta.get("kwargs", {}))
    except Exception as exc:
        raise ExportError(f"{path}: its metadata does not rebuild an encoder ({type(exc).__name__}: {exc})") from None
    expected = {k: list(v.shape) for k, v in enc.state_dict().items()}
    got = {k: list(v.shape) for k, v in weights.items()}
    if expected != got:
        bad = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
        raise ExportError(f"{path}: tensor shapes disagree with the backbone its metadata describes ({bad[0]}: file "
                          f"{got.get(bad[0])}, backbone {expected.get(bad[0])}); export it again")
    enc.load_state_dict({k: v.to(device) for k, v in weights.items()}, strict=True)
    enc.export_info = meta
    return enc.to(device).eval()
