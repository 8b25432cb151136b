"""UTD-MHAD plugin: golden counts and shapes on the real files, integrity errors, cache, faithful preprocessing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.signal

from benchmark.data import load_dataset, normalise_skeleton
from benchmark.registry import DATASETS
from datasets.base import DataNotFoundError, DatasetError

realdata = pytest.mark.realdata
SUBJECT_COUNTS = [107, 108, 108, 108, 108, 107, 108, 107]


def plugin_cls():
    return DATASETS.get("utd_mhad")


def write_clip(folder: Path, a: int, s: int, t: int, t_in: int = 40, t_sk: int = 25, seed: int = 0) -> None:
    """One synthetic clip pair in the original layout."""
    rng = np.random.default_rng(seed + 100 * a + 10 * s + t)
    (folder / "Inertial").mkdir(parents=True, exist_ok=True)
    (folder / "Skeleton").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "Inertial" / f"a{a}_s{s}_t{t}_inertial.mat", {"d_iner": rng.normal(size=(t_in, 6))})
    scipy.io.savemat(folder / "Skeleton" / f"a{a}_s{s}_t{t}_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, t_sk))})


def copy_real(utd_root: Path, dest: Path, clips: list[str]) -> Path:
    """Copy a few real clip pairs into `dest/utd_mhad` (never write into the shared data folder)."""
    folder = dest / "utd_mhad"
    for sub, suffix in (("Inertial", "inertial"), ("Skeleton", "skeleton")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for c in clips:
            shutil.copy2(utd_root / "utd_mhad" / sub / f"{c}_{suffix}.mat", folder / sub / f"{c}_{suffix}.mat")
    return folder


def fail_read(self, folder):
    raise AssertionError("read() was called: the cache was not used")


# -- real data: golden numbers ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def utd_raw(utd_root):
    return plugin_cls()().read(utd_root / "utd_mhad")


@pytest.fixture(scope="module")
def utd_data(utd_root):
    return load_dataset("utd_mhad", root=utd_root)


@realdata
def test_861_pairs_and_subject_counts(utd_raw):
    assert len(utd_raw.ids) == 861
    assert np.bincount(utd_raw.groups["subject"])[1:].tolist() == SUBJECT_COUNTS
    assert not {"a8_s1_t4", "a23_s6_t4", "a27_s8_t4"} & set(utd_raw.ids)
    assert utd_raw.ids[:2] == ["a1_s1_t1", "a1_s1_t2"] and utd_raw.ids[-1] == "a27_s8_t3"
    assert np.bincount(utd_raw.labels).tolist() == [32] * 7 + [31] + [32] * 14 + [31] + [32] * 3 + [31]
    assert utd_raw.skipped == []


@realdata
def test_raw_clip_shapes(utd_raw, utd_root):
    idx = {c: i for i, c in enumerate(utd_raw.ids)}
    assert utd_raw.samples["inertial"][idx["a1_s2_t2"]].shape == (156, 6)
    i = idx["a23_s5_t4"]
    assert utd_raw.samples["inertial"][i].shape == (184, 6)
    d_skel = scipy.io.loadmat(utd_root / "utd_mhad" / "Skeleton" / "a23_s5_t4_skeleton.mat")["d_skel"]
    assert d_skel.shape == (20, 3, 72)
    np.testing.assert_array_equal(utd_raw.samples["skeleton"][i], d_skel.transpose(2, 0, 1))
    assert utd_raw.labels[i] == 22 and utd_raw.groups["subject"][i] == 5 and utd_raw.groups["trial"][i] == 4


@realdata
def test_tensors_splits_and_meta(utd_data):
    assert tuple(utd_data.modalities["inertial"].shape) == (861, 6, 50)
    assert tuple(utd_data.modalities["skeleton"].shape) == (861, 3, 50, 20)
    assert {str(t.dtype) for t in utd_data.modalities.values()} == {"torch.float32"}
    xsub = utd_data.split("xsub")
    assert (len(xsub.train), len(xsub.val), len(xsub.test)) == (323, 108, 430)
    assert utd_data.split().name == "xsub"
    alt = utd_data.split("xsub_6v2")
    assert (len(alt.train), len(alt.val), len(alt.test)) == (539, 107, 215)
    assert set(utd_data.subjects[alt.val].tolist()) == {6}
    assert utd_data.meta["training"].is_generic() and utd_data.meta["main_metric"] == "accuracy"
    assert set(utd_data.groups) == {"subject", "trial"}


def test_class_names():
    names = plugin_cls().class_names
    assert len(names) == len(set(names)) == 27
    assert (names[0], names[8], names[20], names[26]) == ("swipe_left", "draw_circle_CW", "pickup_throw", "squat")


@realdata
def test_second_load_is_served_from_cache(utd_root, utd_data, monkeypatch):
    monkeypatch.setattr(plugin_cls(), "read", fail_read)
    again = load_dataset("utd_mhad", root=utd_root)
    assert again.fingerprint == utd_data.fingerprint and again.ids == utd_data.ids
    for m in utd_data.modalities:
        assert again.modalities[m].equal(utd_data.modalities[m])


@realdata
def test_option_change_or_touched_file_invalidates_cache(utd_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    folder = copy_real(utd_root, tmp_path, ["a1_s1_t1", "a2_s3_t2"])
    cls = plugin_cls()
    calls = []
    original = cls.read
    monkeypatch.setattr(cls, "read", lambda self, f: calls.append(1) or original(self, f))

    def load(**kw):
        return load_dataset("utd_mhad", root=tmp_path, require_complete=False, **kw)

    first = load()
    load()
    assert len(calls) == 1
    load(skip_bad=True)
    assert len(calls) == 2
    assert load(length=30).modalities["inertial"].shape[-1] == 30
    assert len(calls) == 3
    f = folder / "Skeleton" / "a2_s3_t2_skeleton.mat"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert load().fingerprint == first.fingerprint and len(calls) == 3  # touched, same bytes: same data
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01  # one byte of a .mat changed, size and modification time restored
    f.write_bytes(bytes(raw))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    # the stale cache is not served: the file is read again (and, its compressed stream now broken, named)
    with pytest.raises(DatasetError, match="a2_s3_t2_skeleton.mat is not a readable .mat file"):
        load()
    assert len(calls) == 4


@realdata
def test_preprocessing_matches_reference(utd_root, utd_raw, utd_data):
    norm = plugin_cls().skeleton_norm
    assert (norm.anchor, norm.scale_pair) == (2, (1, 2))  # spine; shoulder_center-spine
    for clip in ("a1_s1_t1", "a23_s5_t4", "a27_s8_t3"):
        i = utd_raw.ids.index(clip)
        skel = scipy.io.loadmat(utd_root / "utd_mhad" / "Skeleton" / f"{clip}_skeleton.mat")["d_skel"]
        iner = scipy.io.loadmat(utd_root / "utd_mhad" / "Inertial" / f"{clip}_inertial.mat")["d_iner"]
        x = skel.transpose(2, 0, 1)  # (T, 20, 3)
        n = normalise_skeleton(x, norm)
        np.testing.assert_array_equal(n[0, 2], 0.0)  # recentred on joint 2 of frame 0
        assert np.linalg.norm(n[0, 1] - n[0, 2]) == pytest.approx(1.0, abs=1e-12)
        want_skel = scipy.signal.resample((x - x[0, 2]) / np.linalg.norm(x[0, 1] - x[0, 2]), 50, axis=0)
        np.testing.assert_allclose(utd_data.modalities["skeleton"][i].numpy(), want_skel.transpose(2, 0, 1),
                                   rtol=1e-5, atol=1e-5)
        want_iner = scipy.signal.resample(iner, 50, axis=0).T
        np.testing.assert_allclose(utd_data.modalities["inertial"][i].numpy(), want_iner, rtol=1e-5, atol=1e-4)


# -- integrity errors ------------------------------------------------------------------------------
def one_paragraph(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_bad_root_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as exc:
        load_dataset("utd_mhad", root=tmp_path / "nowhere")
    msg = one_paragraph(exc)
    assert str(tmp_path / "nowhere") in msg and "--download utd_mhad" in msg


@realdata
def test_corrupt_mat_names_the_file(utd_root, tmp_path):
    folder = copy_real(utd_root, tmp_path, ["a1_s1_t1", "a1_s1_t2"])
    bad = folder / "Skeleton" / "a1_s1_t2_skeleton.mat"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DatasetError) as exc:
        load_dataset("utd_mhad", root=tmp_path, require_complete=False)
    msg = one_paragraph(exc)
    assert str(bad) in msg and "not a readable .mat" in msg and "utd_mhad[skip_bad=true]" in msg


@realdata
def test_skip_bad_lists_and_prints_the_skipped_clip(utd_root, tmp_path, capsys):
    folder = copy_real(utd_root, tmp_path, ["a1_s1_t1", "a1_s1_t2"])
    (folder / "Inertial" / "a1_s1_t1_inertial.mat").write_bytes(b"garbage")
    data = load_dataset("utd_mhad", root=tmp_path, require_complete=False, skip_bad=True)
    assert data.ids == ["a1_s1_t2"]
    assert len(data.meta["skipped"]) == 1 and "a1_s1_t1_inertial.mat" in data.meta["skipped"][0]
    out = capsys.readouterr().out
    assert "[utd_mhad] skipped 1 sample(s):" in out and "a1_s1_t1_inertial.mat" in out


def test_wrong_variable_name(tmp_path):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 1, 1, 1)
    bad = folder / "Inertial" / "a1_s1_t1_inertial.mat"
    scipy.io.savemat(bad, {"inertial": np.zeros((30, 6))})
    with pytest.raises(DatasetError) as exc:
        load_dataset("utd_mhad", root=tmp_path, require_complete=False)
    msg = one_paragraph(exc)
    assert str(bad) in msg and "'d_iner'" in msg and "['inertial']" in msg


@pytest.mark.parametrize("sub,var,value,needle", [
    ("Inertial", "d_iner", np.zeros((30, 5)), "shape (30, 5)"),
    ("Skeleton", "d_skel", np.zeros((3, 20, 30)), "shape (3, 20, 30)"),
    ("Inertial", "d_iner", np.full((30, 6), np.nan), "NaN"),
])
def test_wrong_shape_or_nan(tmp_path, sub, var, value, needle):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 2, 3, 1)
    bad = folder / sub / f"a2_s3_t1_{sub.lower()}.mat"
    scipy.io.savemat(bad, {var: value})
    with pytest.raises(DatasetError) as exc:
        plugin_cls()(require_complete=False).read(folder)
    msg = one_paragraph(exc)
    assert str(bad) in msg and needle in msg


@pytest.mark.parametrize("remove", ["Inertial/a1_s2_t1_inertial.mat", "Skeleton/a1_s2_t1_skeleton.mat"])
def test_missing_counterpart(tmp_path, remove):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 1, 2, 1)
    write_clip(folder, 1, 2, 2)
    (folder / remove).unlink()
    with pytest.raises(DatasetError) as exc:
        plugin_cls()(require_complete=False).read(folder)
    msg = one_paragraph(exc)
    assert f"{folder / remove} is missing" in msg and "counterpart" in msg
    raw = plugin_cls()(require_complete=False, skip_bad=True).read(folder)
    assert raw.ids == ["a1_s2_t2"] and len(raw.skipped) == 1


def test_incomplete_copy_is_an_error_unless_allowed(tmp_path):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 1, 1, 1)
    with pytest.raises(DatasetError) as exc:
        plugin_cls()().read(folder)
    msg = one_paragraph(exc)
    assert "860 clip(s)" in msg and "a1_s1_t2" in msg and "require_complete=False" in msg


def test_extra_files_are_ignored_and_layout_is_parsed(tmp_path):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 3, 4, 2, t_in=33, t_sk=21)
    write_clip(folder, 1, 2, 1)
    (folder / "Skeleton" / "Skeleton_joint_order.txt").write_text("1. head;\n")
    (folder / "Inertial" / ".DS_Store").write_bytes(b"\0\1")
    (folder / "Inertial" / "a1_s2_t1_inertial (1).mat").write_bytes(b"copy")
    (folder / "Inertial" / "subdir").mkdir()
    raw = plugin_cls()(require_complete=False).read(folder)
    assert raw.ids == ["a1_s2_t1", "a3_s4_t2"]
    assert raw.labels.tolist() == [0, 2]
    assert raw.groups["subject"].tolist() == [2, 4] and raw.groups["trial"].tolist() == [1, 2]
    assert raw.samples["inertial"][1].shape == (33, 6) and raw.samples["skeleton"][1].shape == (21, 20, 3)
    assert len(plugin_cls()().raw_files(folder)) == 4


def test_unknown_action_number_is_an_error(tmp_path):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 28, 1, 1)
    with pytest.raises(DatasetError, match="actions 1-27"):
        plugin_cls()(require_complete=False).read(folder)


@pytest.mark.parametrize("clip,needle", [((1, 9, 1), "names subject 9, but UTD-MHAD has subjects 1-8"),
                                         ((1, 1, 7), "names trial 7, but UTD-MHAD has trials 1-4")])
def test_stray_subject_or_trial_number_is_an_error_naming_the_file(tmp_path, clip, needle):
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 1, 1, 1)
    write_clip(folder, *clip)
    with pytest.raises(DatasetError, match=needle) as exc:
        plugin_cls()(require_complete=False).read(folder)
    assert f"a{clip[0]}_s{clip[1]}_t{clip[2]}_" in str(exc.value)


def test_unknown_option_is_rejected():
    with pytest.raises(DatasetError, match="skip_bad"):
        plugin_cls()(skip_broken=True)


def test_a_clip_stored_twice_under_two_names_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 1, 1, 1)
    write_clip(folder, 2, 1, 1)
    for sub, suffix in (("Inertial", "inertial"), ("Skeleton", "skeleton")):
        shutil.copy(folder / sub / f"a1_s1_t1_{suffix}.mat", folder / sub / f"a1_s1_t2_{suffix}.mat")
    load_dataset("utd_mhad", root=tmp_path, require_complete=False)
    err = capsys.readouterr().err
    assert "identical content" in err and "a1_s1_t1_inertial.mat" in err and "a1_s1_t2_inertial.mat" in err


def test_an_all_zero_skeleton_names_the_clip(tmp_path, monkeypatch):
    monkeypatch.setenv("MMHAR_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "utd_mhad"
    write_clip(folder, 1, 1, 1)
    write_clip(folder, 2, 3, 4)
    scipy.io.savemat(folder / "Skeleton" / "a2_s3_t4_skeleton.mat", {"d_skel": np.zeros((20, 3, 25))})
    with pytest.raises(DatasetError, match=r"clip a2_s3_t4, modality skeleton: .*all-zero"):
        load_dataset("utd_mhad", root=tmp_path, require_complete=False)
