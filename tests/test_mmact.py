"""MMAct plugin on small generated fixtures in the reference's preprocessed layout (the release layout:
test_mmact_release.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from benchmark.data import load_dataset
from benchmark.registry import DATASETS
from datasets.base import DatasetError

RIDS = [1, 23, 25, 34, 36]  # reference ids on both sides of the unused id 24
SUBJECTS = [1, 13, 16, 17]
SCENES = [1, 2]


def plugin(**options):
    return DATASETS.get("mmact")(**options)


def inertial_path(folder: Path, rid: int, s: int, t: int, ses: int, sc: int) -> Path:
    return folder / "Inertial" / f"a{rid}_s{s}_t{t}_ses{ses}_sc{sc}.csv"


def pose_path(folder: Path, rid: int, s: int, t: int, ses: int, sc: int) -> Path:
    return folder / "Skeleton" / f"a{rid}_s{s}_t{t}_ses{ses}_sc{sc}.npy"


def write_clip(folder: Path, rid: int, s: int, t: int, ses: int, sc: int, *, t_pose: int | None = None,
               rows: int = 60, frames: int = 35) -> None:
    """One clip pair: a headerless 12-column CSV and a (17, 2, F) .npy, as the reference preprocessing writes."""
    rng = np.random.default_rng(1000 * rid + 100 * s + 10 * sc + ses)
    for sub in ("Inertial", "Skeleton"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    np.savetxt(inertial_path(folder, rid, s, t, ses, sc), rng.normal(size=(rows, 12)), fmt="%.6f", delimiter=",")
    np.save(pose_path(folder, rid, s, t if t_pose is None else t_pose, ses, sc),
            rng.uniform(0, 1920, size=(17, 2, frames)))


@pytest.fixture
def mmact_root(tmp_path: Path) -> Path:
    folder = tmp_path / "mmact"
    for rid in RIDS:
        for s in SUBJECTS:
            for t, sc in enumerate(SCENES, start=1):
                write_clip(folder, rid, s, t, 1, sc, t_pose=t + 4)  # pose trials numbered differently
    return tmp_path


def test_class_names_fix_the_duplicate_using_phone():
    names = plugin().class_names
    assert len(names) == len(set(names)) == 35
    assert names.count("using_phone") == 1
    assert (names[22], names[23], names[32], names[34]) == (
        "transferring_object", "walking", "using_phone", "carrying_light")


def test_read_pairs_labels_and_groups(mmact_root):
    raw = plugin().read(mmact_root / "mmact")
    assert len(raw.ids) == len(RIDS) * len(SUBJECTS) * len(SCENES) == 40
    assert raw.skipped == []
    assert sorted(set(raw.labels.tolist())) == [0, 22, 23, 32, 34]
    i = raw.ids.index("a34_s16_t2_ses1_sc2")
    assert raw.labels[i] == 32
    assert (raw.groups["subject"][i], raw.groups["scene"][i], raw.groups["session"][i], raw.groups["trial"][i]) == (
        16, 2, 1, 2)  # trial from the inertial file, although the pose file says t6
    pose = np.load(pose_path(mmact_root / "mmact", 34, 16, 6, 1, 2))
    np.testing.assert_array_equal(raw.samples["skeleton"][i], pose.transpose(2, 0, 1))
    assert raw.samples["inertial"][i].shape == (59, 12)  # the reference drops the first row (drop_first_row)
    csv = np.loadtxt(inertial_path(mmact_root / "mmact", 34, 16, 2, 1, 2), delimiter=",")
    np.testing.assert_array_equal(raw.samples["inertial"][i], csv[1:])
    kept = plugin(drop_first_row=False).read(mmact_root / "mmact")
    np.testing.assert_array_equal(kept.samples["inertial"][i], csv)
    assert all(np.array_equal(a, b[1:]) for a, b in zip(raw.samples["inertial"], kept.samples["inertial"]))
    assert all(np.array_equal(a, b) for a, b in zip(raw.samples["skeleton"], kept.samples["skeleton"]))


def test_load_dataset_shapes_no_skeleton_normalisation(mmact_root):
    data = load_dataset("mmact", root=mmact_root)
    assert tuple(data.modalities["inertial"].shape) == (40, 12, 50)
    assert tuple(data.modalities["skeleton"].shape) == (40, 2, 50, 17)
    assert data.meta["training"].semisup_budget_type == "fraction" and data.meta["main_metric"] == "f1"
    assert set(data.groups) == {"subject", "scene", "session", "trial"}
    i = data.ids.index("a1_s1_t1_ses1_sc1")
    pose = np.load(pose_path(mmact_root / "mmact", 1, 1, 5, 1, 1)).transpose(2, 0, 1)  # raw pixels, (F, 17, 2)
    want = scipy.signal.resample(pose, 50, axis=0).transpose(2, 0, 1)
    np.testing.assert_allclose(data.modalities["skeleton"][i].numpy(), want, rtol=1e-5, atol=1e-2)


def test_splits(mmact_root):
    data = load_dataset("mmact", root=mmact_root)
    subj, scene = data.groups["subject"], data.groups["scene"]
    xsub = data.split("xsub")
    assert data.split().name == "xsub"
    assert set(subj[xsub.train]) == {1} and set(subj[xsub.val]) == {13} and set(subj[xsub.test]) == {17}
    assert 16 not in set(subj[np.concatenate([xsub.train, xsub.val, xsub.test])])
    alls = data.split("xsub_all")
    assert set(subj[alls.train]) == {1, 13} and set(subj[alls.val]) == {16} and set(subj[alls.test]) == {17}
    v4 = data.split("xsub_16v4")  # train 1-16 with a stratified 10 % validation carve-out, test 17-20
    assert set(subj[v4.train]) == {1, 13, 16} and set(subj[v4.val]) <= {1, 13, 16} and set(subj[v4.test]) == {17}
    assert len(v4.val) == 5 and len(v4.train) == 25  # one clip of each of the 5 classes (6 train clips each)
    assert not set(v4.train) & set(v4.val)
    assert sorted(np.concatenate([v4.train, v4.val]).tolist()) == np.flatnonzero(subj <= 16).tolist()
    xs = data.split("xscene")
    assert set(scene[xs.test]) == {2} and set(subj[xs.test]) == {1, 13, 16, 17}
    assert set(scene[xs.train]) == {1} and set(subj[xs.train]) == {1, 13, 16}
    assert set(scene[xs.val]) == {1} and set(subj[xs.val]) == {17}
    assert (len(xs.train), len(xs.val), len(xs.test)) == (15, 5, 20)


def test_split_specs_match_the_reference():
    sp = plugin().splits
    assert list(sp["xsub"].train["subject"]) == list(range(1, 13))
    assert list(sp["xsub"].val["subject"]) == [13, 14, 15]
    assert list(sp["xsub"].test["subject"]) == [17, 18, 19, 20]
    assert set(sp["xsub_all"].train["subject"]) | set(sp["xsub_all"].val["subject"]) == set(range(1, 17))
    assert not set(sp["xsub_all"].train["subject"]) & set(sp["xsub_all"].val["subject"])
    assert list(sp["xsub_all"].train["subject"]) == list(range(1, 15))  # 1-14 train, 15-16 validate
    assert "16-vs-4" not in sp["xsub_all"].description
    assert list(sp["xsub_16v4"].train["subject"]) == list(range(1, 17)) and sp["xsub_16v4"].val_fraction == 0.1
    assert list(sp["xsub_16v4"].test["subject"]) == [17, 18, 19, 20] and not sp["xsub_16v4"].disjoint_val
    assert sp["xscene"].disjoint_on == "scene" and list(sp["xscene"].test) == ["scene"]


def test_unpaired_clips_are_listed_or_rejected(mmact_root):
    folder = mmact_root / "mmact"
    lonely = pose_path(folder, 25, 17, 6, 1, 2)
    lonely.unlink()
    orphan = inertial_path(folder, 25, 17, 2, 1, 2)
    raw = plugin().read(folder)
    assert len(raw.ids) == 39 and "a25_s17_t2_ses1_sc2" not in raw.ids
    assert len(raw.skipped) == 1 and str(orphan) in raw.skipped[0] and "skeleton counterpart" in raw.skipped[0]
    with pytest.raises(DatasetError) as exc:
        plugin(drop_unpaired=False).read(folder)
    assert str(orphan) in str(exc.value) and "drop_unpaired=True" in str(exc.value)


@pytest.mark.parametrize("content,needle", [
    ("\n".join(",".join(["0.5"] * 11) for _ in range(5)) + "\n", "has 11 columns, expected 12"),
    ("ts,x,y,z,a,b,c,d,e,f,g,h\n" + ",".join(["0.5"] * 12) + "\n", "not a numeric headerless CSV"),
    ("1,2,3,4,5,6,7,8,9,10,11,12\n1,2,3,4,5,6,7,8,9,10,11,12,13\n", "not a numeric headerless CSV"),
])
def test_malformed_inertial_csv(mmact_root, content, needle):
    bad = inertial_path(mmact_root / "mmact", 23, 13, 1, 1, 1)
    bad.write_text(content)
    with pytest.raises(DatasetError) as exc:
        load_dataset("mmact", root=mmact_root)
    msg = str(exc.value)
    assert str(bad) in msg and needle in msg and "\n" not in msg
    raw = plugin(skip_bad=True).read(mmact_root / "mmact")
    assert len(raw.ids) == 39 and len(raw.skipped) == 2 and str(bad) in raw.skipped[0]
    assert "dropped, its inertial counterpart was skipped" in raw.skipped[1]


@pytest.mark.parametrize("content,needle", [
    ("\n".join(",".join(["0.5"] * 12) for _ in range(4)) + "\n" + ",".join(["nan"] * 12) + "\n", "NaN"),
    ("\n".join(",".join(["0.5"] * 12) for _ in range(4)) + "\n" + "0.5," * 11 + "\n", "NaN"),
    ("", "no inertial rows left"),
    (",".join(["0.5"] * 12) + "\n", "no inertial rows left after dropping the first"),
])
def test_unusable_inertial_is_skipped_and_listed_or_strict_error(mmact_root, content, needle):
    bad = inertial_path(mmact_root / "mmact", 23, 13, 1, 1, 1)
    bad.write_text(content)
    raw = plugin().read(mmact_root / "mmact")  # the reference's tolerance: skipped, listed
    assert "a23_s13_t1_ses1_sc1" not in raw.ids and len(raw.ids) == 39
    assert [m for m in raw.skipped if str(bad) in m and needle in m]
    with pytest.raises(DatasetError) as exc:
        plugin(strict=True).read(mmact_root / "mmact")
    assert str(bad) in str(exc.value) and needle in str(exc.value) and "strict=false" in str(exc.value)


def test_short_clips_kept_by_default_errors_when_strict(mmact_root):
    folder = mmact_root / "mmact"
    short = inertial_path(folder, 23, 13, 1, 1, 1)
    short.write_text("\n".join(",".join(["0.5"] * 12) for _ in range(2)) + "\n")  # one row after the drop
    one_frame = pose_path(folder, 36, 1, 6, 1, 2)
    np.save(one_frame, np.ones((17, 2, 1)))
    data = load_dataset("mmact", root=mmact_root)
    assert len(data) == 40
    i, j = data.ids.index("a23_s13_t1_ses1_sc1"), data.ids.index("a36_s1_t2_ses1_sc2")
    np.testing.assert_allclose(data.modalities["inertial"][i].numpy(), 0.5)  # resampled to a constant
    np.testing.assert_allclose(data.modalities["skeleton"][j].numpy(), 1.0)
    with pytest.raises(DatasetError, match="has 1 rows, fewer than 2"):
        plugin(strict=True).read(folder)
    short.unlink()
    with pytest.raises(DatasetError, match="has 1 frames, fewer than 2"):
        plugin(strict=True, drop_unpaired=True).read(folder)


@pytest.mark.parametrize("array,needle", [
    (np.zeros((17, 3, 20)) + 1, "has shape (17, 3, 20)"),
])
def test_malformed_pose(mmact_root, array, needle):
    bad = pose_path(mmact_root / "mmact", 36, 1, 6, 1, 2)
    np.save(bad, array)
    with pytest.raises(DatasetError) as exc:
        plugin().read(mmact_root / "mmact")
    assert str(bad) in str(exc.value) and needle in str(exc.value)


@pytest.mark.parametrize("array,needle,strict_error", [
    (np.zeros((17, 2, 20)), "no person detected", False),  # the reference writes no file for it: always listed
    (np.full((17, 2, 20), np.inf), "NaN or infinite", True),
])
def test_unusable_pose(mmact_root, array, needle, strict_error):
    bad = pose_path(mmact_root / "mmact", 36, 1, 6, 1, 2)
    np.save(bad, array)
    raw = plugin().read(mmact_root / "mmact")
    assert len(raw.ids) == 39 and any(str(bad) in m and needle in m for m in raw.skipped)
    assert any("a36_s1_t2_ses1_sc2.csv: dropped, its skeleton counterpart was skipped" in m for m in raw.skipped)
    if strict_error:
        with pytest.raises(DatasetError, match=needle):
            plugin(strict=True).read(mmact_root / "mmact")
    else:
        assert len(plugin(strict=True).read(mmact_root / "mmact").ids) == 39


def test_unreadable_pose_file(mmact_root):
    bad = pose_path(mmact_root / "mmact", 36, 1, 6, 1, 2)
    bad.write_bytes(b"not numpy")
    with pytest.raises(DatasetError, match="not a readable .npy"):
        plugin().read(mmact_root / "mmact")


def test_unused_reference_id_24_is_an_error(mmact_root):
    write_clip(mmact_root / "mmact", 24, 1, 1, 2, 1)
    with pytest.raises(DatasetError, match="id 24 is never produced"):
        plugin().read(mmact_root / "mmact")


def test_duplicates_are_dropped_and_reported_or_strict_error(mmact_root):
    folder = mmact_root / "mmact"
    src = inertial_path(folder, 1, 1, 1, 1, 1)
    copy = inertial_path(folder, 1, 1, 9, 1, 1)
    copy.write_bytes(src.read_bytes())
    raw = plugin().read(folder)  # the reference's pairing drops both (its modality count is 3, not 2)
    assert "a1_s1_t1_ses1_sc1" not in raw.ids and len(raw.ids) == 39
    dup = [m for m in raw.skipped if "cannot be paired unambiguously" in m]
    assert len(dup) == 1 and str(src) in dup[0] and str(copy) in dup[0]
    with pytest.raises(DatasetError, match="cannot be paired unambiguously.*strict=false"):
        plugin(strict=True).read(folder)


def test_extra_files_are_ignored(mmact_root):
    folder = mmact_root / "mmact"
    (folder / "Inertial" / "README.txt").write_text("notes")
    (folder / "Inertial" / "a1_s1.csv").write_text("1,2\n")
    (folder / "Skeleton" / "a1_s1_t1_ses1_sc1.json").write_text("{}")
    (folder / "Skeleton" / "nested").mkdir()
    assert len(plugin().read(folder).ids) == 40
    assert len(plugin().raw_files(folder)) == 80


def test_cannot_be_downloaded(tmp_path):
    with pytest.raises(DatasetError, match="licensed on request"):
        plugin().download(tmp_path)
