"""benchmark.data: root resolution, the on-disk cache, split disjointness and train-only standardisation."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

import benchmark.data as data_mod
from benchmark.data import load_dataset, normalise_skeleton, resample_time, resolve_root, standardize
from benchmark.registry import DATASETS
from datasets.base import DataNotFoundError, DatasetError, DatasetPlugin, ModalitySpec, RawData, SkeletonNorm, SplitSpec

N_PER_SUBJECT = 3
SUBJECTS = [1, 2, 3, 4]


class ToyDataset(DatasetPlugin):
    """Four subjects x three clips stored in one .npz; counts its reads."""

    name = "toy_api"
    folder_name = "toy"
    modalities = {
        "inertial": ModalitySpec("inertial", channels=2, rate_hz=50.0),
        "skeleton": ModalitySpec("skeleton", channels=3, rate_hz=30.0, joints=4),
    }
    class_names = ["a", "b", "c"]
    splits = {
        "s": SplitSpec(train={"subject": [1, 2]}, val={"subject": [3]}, test={"subject": [4]}),
        "overlap": SplitSpec(train={"subject": [1, 2]}, val={"subject": [3]}, test={"subject": [2, 4]}),
        "leaky": SplitSpec(train={"trial": [0]}, val={"trial": [1]}, test={"trial": [2]}),  # subjects shared
        "by_trial": SplitSpec(train={"trial": [0]}, val={"trial": [1]}, test={"trial": [2]}, disjoint_on="trial"),
    }
    default_split = "s"
    skeleton_norm = SkeletonNorm(anchor=0, scale_pair=(0, 1))
    option_defaults = {"gain": 1.0}
    reads = 0

    def looks_present(self, folder: Path) -> bool:
        return (folder / "toy.npz").is_file()

    def raw_files(self, folder: Path) -> list[Path]:
        return [folder / "toy.npz"]

    def read(self, folder: Path | None) -> RawData:
        type(self).reads += 1
        with np.load(folder / "toy.npz") as z:
            iner, skel = z["inertial"] * self.options["gain"], z["skeleton"]
        subj = np.repeat(SUBJECTS, N_PER_SUBJECT)
        trial = np.tile(np.arange(N_PER_SUBJECT), len(SUBJECTS))
        return RawData({"inertial": list(iner), "skeleton": list(skel)}, labels=trial.copy(),
                       groups={"subject": subj, "trial": trial}, ids=[f"c{i}" for i in range(len(subj))])


def write_toy(root: Path, inertial: np.ndarray | None = None) -> Path:
    n = N_PER_SUBJECT * len(SUBJECTS)
    rng = np.random.default_rng(0)
    if inertial is None:
        inertial = rng.normal(size=(n, 30, 2)) * [1.0, 10.0] + [0.0, 5.0]
    skeleton = rng.normal(size=(n, 20, 4, 3))
    (root / "toy").mkdir(parents=True, exist_ok=True)
    np.savez(root / "toy" / "toy.npz", inertial=inertial, skeleton=skeleton)
    return root / "toy" / "toy.npz"


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A registered toy dataset under `tmp_path/root`, with its own cache folder."""
    DATASETS.add("toy_api", ToyDataset)
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ToyDataset, "reads", 0)
    write_toy(tmp_path / "root")
    yield tmp_path / "root"
    DATASETS.remove("toy_api")


# -- root resolution -------------------------------------------------------------------------------
def test_root_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "_DEFAULT_ROOT", None)
    monkeypatch.delenv("MMHAR_DATA", raising=False)
    assert resolve_root() == Path("data")
    monkeypatch.setenv("MMHAR_DATA", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    data_mod.set_default_root(tmp_path / "cli")
    assert resolve_root() == tmp_path / "cli"
    assert resolve_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_load_finds_data_through_env_and_dataset_subfolder(toy, monkeypatch):
    monkeypatch.setattr(data_mod, "_DEFAULT_ROOT", None)
    monkeypatch.setenv("MMHAR_DATA", str(toy))
    assert len(load_dataset("toy_api")) == 12
    assert len(load_dataset("toy_api", root=toy / "toy")) == 12  # the dataset folder itself also works
    with pytest.raises(DataNotFoundError, match="toy_api: no raw data found under"):
        load_dataset("toy_api", root=toy / "elsewhere")


# -- cache -----------------------------------------------------------------------------------------
def test_cache_hit_miss_and_invalidation(toy, tmp_path):
    first = load_dataset("toy_api", root=toy)
    cached = list((tmp_path / "cache").glob("toy_api-*.npz"))
    assert ToyDataset.reads == 1 and len(cached) == 1
    again = load_dataset("toy_api", root=toy)
    assert ToyDataset.reads == 1 and again.fingerprint == first.fingerprint
    assert torch.equal(again.modalities["skeleton"], first.modalities["skeleton"])
    assert again.ids == first.ids and np.array_equal(again.groups["trial"], first.groups["trial"])
    load_dataset("toy_api", root=toy, gain=2.0)  # option change
    load_dataset("toy_api", root=toy, length=20)  # preprocessing change
    assert ToyDataset.reads == 3
    f = toy / "toy" / "toy.npz"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))  # touched, same bytes: same data
    assert load_dataset("toy_api", root=toy).fingerprint == first.fingerprint and ToyDataset.reads == 3
    copy = tmp_path / "copy"
    shutil.copytree(toy, copy)  # a byte-identical copy elsewhere: same fingerprint, the cache is reused
    assert load_dataset("toy_api", root=copy).fingerprint == first.fingerprint and ToyDataset.reads == 3
    st = f.stat()
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF  # one byte changed, size and modification time restored
    f.write_bytes(bytes(raw))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert load_dataset("toy_api", root=toy).fingerprint != first.fingerprint
    assert ToyDataset.reads == 4
    load_dataset("toy_api", root=toy, use_cache=False)
    assert ToyDataset.reads == 5 and len(list((tmp_path / "cache").glob("toy_api-*.npz"))) == 4


def test_bad_options_and_length(toy):
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("toy_api", root=toy, colour="red")
    with pytest.raises(DatasetError, match="gain"):
        load_dataset("toy_api", root=toy, gain="loud")
    with pytest.raises(DatasetError, match="length"):
        load_dataset("toy_api", root=toy, length=1)


# -- preprocessing ---------------------------------------------------------------------------------
def test_layouts_and_resampling(toy):
    d = load_dataset("toy_api", root=toy, length=16)
    assert tuple(d.modalities["inertial"].shape) == (12, 2, 16)
    assert tuple(d.modalities["skeleton"].shape) == (12, 3, 16, 4)
    with np.load(toy / "toy" / "toy.npz") as z:
        want = scipy.signal.resample(z["inertial"][5], 16, axis=0).T
    np.testing.assert_allclose(d.modalities["inertial"][5].numpy(), want, rtol=1e-5, atol=1e-5)
    x = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(resample_time(x, 6), x)


def test_normalise_skeleton_rejects_zero_scale():
    x = np.zeros((5, 4, 3))
    with pytest.raises(DatasetError, match="joints 0 and 1"):
        normalise_skeleton(x, SkeletonNorm(anchor=0, scale_pair=(0, 1)))


# -- splits ----------------------------------------------------------------------------------------
def test_split_indices_are_disjoint_and_follow_the_spec(toy):
    d = load_dataset("toy_api", root=toy)
    s = d.split()
    assert s.name == "s"
    assert s.train.tolist() == [0, 1, 2, 3, 4, 5] and s.val.tolist() == [6, 7, 8] and s.test.tolist() == [9, 10, 11]
    assert s.part("val") is s.val
    t = d.split("by_trial")
    assert sorted(np.concatenate([t.train, t.val, t.test]).tolist()) == list(range(12))
    with pytest.raises((AssertionError, DatasetError), match="share samples"):
        d.split("overlap")
    with pytest.raises((AssertionError, DatasetError), match=r"train and test share subject values \[1, 2, 3, 4\]"):
        d.split("leaky")
    with pytest.raises(DatasetError, match="Known split of toy_api"):
        d.split("nope")


# -- standardisation -------------------------------------------------------------------------------
def test_standardisation_uses_train_statistics_only(toy, tmp_path):
    d = load_dataset("toy_api", root=toy, standardize_inertial="s")
    tr = d.split("s").train
    x = d.modalities["inertial"]
    assert torch.allclose(x[tr].mean(dim=(0, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x[tr].std(dim=(0, 2)), torch.ones(2), atol=1e-5)
    plain = load_dataset("toy_api", root=toy)
    raw_tr = plain.modalities["inertial"][tr]
    mean, std = raw_tr.mean(dim=(0, 2), keepdim=True), raw_tr.std(dim=(0, 2), keepdim=True)
    assert torch.allclose(x, (plain.modalities["inertial"] - mean) / std, atol=1e-5)
    assert torch.equal(d.modalities["skeleton"], plain.modalities["skeleton"])
    assert d.fingerprint != plain.fingerprint

    # changing only the test subject's data must not change the standardised training part
    with np.load(toy / "toy" / "toy.npz") as z:
        iner = z["inertial"].copy()
    iner[9:] = iner[9:] * 100 + 7
    other_root = tmp_path / "other"
    f = write_toy(other_root, inertial=iner)
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 5 * 10**9))  # same name and size: differ in mtime
    d2 = load_dataset("toy_api", root=other_root, standardize_inertial="s")
    assert torch.allclose(d2.modalities["inertial"][tr], x[tr], atol=1e-6)
    assert not torch.allclose(d2.modalities["inertial"][9:], x[9:])


def test_standardize_unknown_modality(toy):
    d = load_dataset("toy_api", root=toy)
    with pytest.raises(DatasetError, match="no modality 'depth'"):
        standardize(d, "s", modality="depth")


def test_to_device_keeps_everything(toy):
    d = load_dataset("toy_api", root=toy).to("cpu")
    assert len(d) == 12 and d.num_classes == 3 and d.modality_names == ["inertial", "skeleton"]
