"""`download_dataset` against a local HTTP server serving generated UTD-MHAD archives."""
from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from benchmark.data import load_dataset
from benchmark.download import DownloadError, download_dataset, fetch, main
from benchmark.registry import DATASETS
from datasets.base import DatasetError

CLIPS = [(1, 1, 1), (1, 2, 1), (5, 3, 2), (27, 8, 1)]


def mat_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, arrays)
    return buf.getvalue()


def make_zip(modality: str, clips=CLIPS, *, prefix: str | None = None, broken: str | None = None) -> bytes:
    """An archive in the official layout: `<Modality>/aA_sS_tT_<modality>.mat`, plus harmless extras."""
    sub = modality.capitalize()
    prefix = f"{sub}/" if prefix is None else prefix
    rng = np.random.default_rng(len(clips))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{sub}/", "")
        for a, s, t in clips:
            name = f"a{a}_s{s}_t{t}_{modality}"
            if modality == "inertial":
                content = mat_bytes(d_iner=rng.normal(size=(40 + a, 6)))
            else:
                content = mat_bytes(d_skel=rng.normal(size=(20, 3, 20 + s)))
            zf.writestr(prefix + name + ".mat", b"broken" if broken == name else content)
        zf.writestr(f"{prefix}Skeleton_joint_order.txt", "1. head;\n")
        zf.writestr(f"__MACOSX/{prefix}._a1_s1_t1_{modality}.mat", b"resource fork")
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        cut = self.path.startswith("/cut/")
        body = self.files.get(self.path.removeprefix("/cut"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 3] if cut else body)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def httpd_url():
    """One quiet local HTTP server for the module, serving `Handler.files`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def server(httpd_url, monkeypatch):
    """Base URL of the local server, with no proxy in the way and a 4-clip expected archive size."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(DATASETS.get("utd_mhad"), "archive_expected_files", len(CLIPS))
    Handler.files = {}
    return httpd_url


def serve_good(prefix: str = "/good") -> None:
    Handler.files[f"{prefix}/Inertial.zip"] = make_zip("inertial")
    Handler.files[f"{prefix}/Skeleton.zip"] = make_zip("skeleton", prefix="")  # flat archive also works


def test_good_download_lands_and_loads(server, tmp_path):
    serve_good()
    root = tmp_path / "data"
    folder = download_dataset("utd_mhad", root=root, url=f"{server}/good/")
    assert folder == root / "utd_mhad"
    assert sorted(p.name for p in root.iterdir()) == ["utd_mhad"]  # no temporary folder left
    assert sorted(p.name for p in (folder / "Inertial").iterdir()) == [
        "a1_s1_t1_inertial.mat", "a1_s2_t1_inertial.mat", "a27_s8_t1_inertial.mat", "a5_s3_t2_inertial.mat"]
    data = load_dataset("utd_mhad", root=root, require_complete=False)
    assert data.ids == ["a1_s1_t1", "a1_s2_t1", "a5_s3_t2", "a27_s8_t1"]
    assert data.labels.tolist() == [0, 0, 4, 26]
    assert tuple(data.modalities["skeleton"].shape) == (4, 3, 50, 20)
    # a second download finds the dataset and leaves it alone
    Handler.files.clear()
    assert download_dataset("utd_mhad", root=root, url=f"{server}/good") == folder


def test_url_may_be_a_local_folder(server, tmp_path):
    src = tmp_path / "archives"
    src.mkdir()
    (src / "Inertial.zip").write_bytes(make_zip("inertial"))
    (src / "Skeleton.zip").write_bytes(make_zip("skeleton"))
    folder = download_dataset("utd_mhad", root=tmp_path / "data", url=str(src))
    assert len(list((folder / "Skeleton").iterdir())) == len(CLIPS)


def assert_nothing_left(root: Path) -> None:
    assert not root.exists() or list(root.iterdir()) == []


def test_truncated_archive_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    serve_good()
    full = Handler.files["/good/Skeleton.zip"]
    Handler.files["/good/Skeleton.zip"] = full[: len(full) // 2]
    root = tmp_path / "data"
    with pytest.raises(DatasetError) as exc:
        download_dataset("utd_mhad", root=root, url=f"{server}/good/")
    msg = str(exc.value)
    assert "Skeleton.zip is not a valid zip file, probably truncated" in msg and "\n" not in msg
    assert_nothing_left(root)


def test_transfer_cut_short_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    serve_good()
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as exc:
        download_dataset("utd_mhad", root=root, url=f"{server}/cut/good/")
    assert f"{server}/cut/good/Inertial.zip" in str(exc.value) and "cut short" in str(exc.value)
    assert_nothing_left(root)


@pytest.mark.parametrize("bad", ["count", "mat", "missing"])
def test_archive_that_fails_validation_is_not_installed(server, tmp_path, bad):
    serve_good()
    if bad == "count":
        Handler.files["/good/Inertial.zip"] = make_zip("inertial", CLIPS[:3])
        needle = "holds 3 Inertial clip files, expected 4"
    elif bad == "mat":
        Handler.files["/good/Inertial.zip"] = make_zip("inertial", broken="a5_s3_t2_inertial")
        needle = "a5_s3_t2_inertial.mat is not a readable .mat file"
    else:
        del Handler.files["/good/Skeleton.zip"]
        needle = "HTTP Error 404"
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match=needle):
        download_dataset("utd_mhad", root=root, url=f"{server}/good/")
    assert_nothing_left(root)


def test_leftover_non_dataset_folder_is_refused(server, tmp_path):
    serve_good()
    (tmp_path / "data" / "utd_mhad").mkdir(parents=True)
    with pytest.raises(DatasetError, match="exists but does not hold the dataset"):
        download_dataset("utd_mhad", root=tmp_path / "data", url=f"{server}/good/")


def test_fetch_checks_sha256_and_keeps_nothing_on_mismatch(server, tmp_path):
    Handler.files["/blob"] = b"x" * 5000
    dest = tmp_path / "blob.bin"
    fetch(f"{server}/blob", dest, sha256=hashlib.sha256(b"x" * 5000).hexdigest())
    assert dest.read_bytes() == b"x" * 5000
    with pytest.raises(DownloadError, match="sha256"):
        fetch(f"{server}/blob", tmp_path / "other.bin", sha256="0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]


def test_cli_entry(server, tmp_path, capsys):
    serve_good()
    assert main(["utd_mhad", "--root", str(tmp_path / "data"), "--url", f"{server}/good/"]) == 0
    assert "utd_mhad is ready in" in capsys.readouterr().out
    assert main(["mmact", "--root", str(tmp_path / "data")]) == 1
    assert "licensed on request" in capsys.readouterr().err
