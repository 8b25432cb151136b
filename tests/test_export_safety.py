"""Exported encoders are verified on load (truncated, tampered, shapes edited) and export fails loudly and early."""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from benchmark import cli, load_encoder
from benchmark.export import ExportError
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(results folder, one exported .safetensors file) of a smoke run of SimCLR on the inertial modality."""
    base = tmp_path_factory.mktemp("export")
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]"], protocols=["knn"], seeds=[0])
    res = base / "smoke"
    assert execute(plan_suite(suite, res, device="cpu"), RunSettings(device="cpu", quiet=True)).ok
    assert cli.main(["--export", str(res), "--to", str(base / "out")]) == 0
    (f,) = sorted((base / "out").glob("*.safetensors"))
    return res, f


def _copy(src: Path, dst_dir: Path, side_car: bool = True) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    if side_car:
        shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _rewrite_header(path: Path, edit) -> None:
    blob = path.read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    edit(header)
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + blob[8 + n:])


def _flatten_first_matrix(header: dict) -> None:
    name = next(k for k, v in sorted(header.items()) if k != "__metadata__" and len(v["shape"]) >= 2)
    shape = header[name]["shape"]
    header[name]["shape"] = [shape[0] * shape[1], *shape[2:]]


def test_a_clean_export_loads_and_its_side_car_holds_the_sha_and_shapes(exported) -> None:
    _, f = exported
    side = json.loads(f.with_suffix(".json").read_text())
    assert len(side["file_sha256"]) == 64 and len(side["weights_sha256"]) == 64 and side["tensors"]
    enc = load_encoder(f)
    assert enc.export_info["tensors"] == side["tensors"]


def test_a_truncated_file_is_named_as_truncated(exported, tmp_path: Path) -> None:
    f = _copy(exported[1], tmp_path)
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ExportError, match=rf"{f.name}: truncated") as err:
        load_encoder(f)
    assert "\n" not in str(err.value)
    f.write_bytes(f.read_bytes()[:5])
    with pytest.raises(ExportError, match="truncated"):
        load_encoder(f)


@pytest.mark.parametrize("side_car", [True, False])
def test_tampered_weights_are_refused(exported, tmp_path: Path, side_car: bool) -> None:
    f = _copy(exported[1], tmp_path, side_car)
    blob = bytearray(f.read_bytes())
    for i in range(len(blob) - 200, len(blob) - 136):  # 64 bytes of tensor data flipped
        blob[i] ^= 0xFF
    f.write_bytes(bytes(blob))
    with pytest.raises(ExportError, match=rf"{f.name}: .*sha256 (differs|mismatch)"):
        load_encoder(f)


@pytest.mark.parametrize("side_car", [True, False])
def test_edited_header_shapes_are_refused(exported, tmp_path: Path, side_car: bool) -> None:
    f = _copy(exported[1], tmp_path, side_car)
    _rewrite_header(f, _flatten_first_matrix)
    with pytest.raises(ExportError, match=rf"{f.name}: .*(shapes in its header disagree|sha256 differs)"):
        load_encoder(f)


def test_shapes_that_disagree_with_the_backbone_are_named_not_a_size_mismatch_traceback(exported, tmp_path) -> None:
    f = _copy(exported[1], tmp_path, side_car=False)

    def edit(header: dict) -> None:  # an older export: no shapes, no sha in its metadata
        _flatten_first_matrix(header)
        meta = json.loads(header["__metadata__"]["mmhar"])
        meta.pop("tensors"), meta.pop("weights_sha256")
        header["__metadata__"]["mmhar"] = json.dumps(meta)

    _rewrite_header(f, edit)
    with pytest.raises(ExportError, match=rf"{f.name}: tensor shapes disagree with the backbone"):
        load_encoder(f)


def test_export_to_a_read_only_folder_stops_before_writing(exported, tmp_path, monkeypatch, capsys) -> None:
    def refuse(self, *args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert cli.main(["--export", str(exported[0]), "--to", str(tmp_path / "ro")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "Read-only file system" in err and "Traceback" not in err


def test_export_removes_the_partial_files_a_killed_export_left(exported, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead = 2**22 + 12345  # no such pid
    from benchmark.atomic import owner_tag

    host = owner_tag().split("-")[0]
    orphan = out / f".x.safetensors.tmp-{host}-{dead}-abc"
    orphan.write_bytes(b"partial")
    assert not os.path.exists(f"/proc/{dead}")
    assert cli.main(["--export", str(exported[0]), "--to", str(out)]) == 0
    assert not orphan.exists() and "partial file left by a stopped export" in capsys.readouterr().err


def test_export_without_checkpoints_says_why_and_fails(exported, tmp_path, capsys) -> None:
    res = tmp_path / "committed"
    shutil.copytree(exported[0] / "records", res / "records")  # as a clone holds it: records, no checkpoints
    assert cli.main(["--export", str(res), "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no pretraining checkpoints" in err and "not committed" in err and "python run_all.py --suite" in err
    assert cli.main(["--export", str(exported[0] / "nomatch"), "--to", str(tmp_path / "out")]) == 2
    assert "no checkpoint of a variant containing 'nomatch'" in capsys.readouterr().err
