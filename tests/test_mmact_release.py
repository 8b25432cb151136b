"""MMAct from the official trimmed release (packed and extracted) on generated fixtures (`mmact_fixtures`)."""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.cli import list_plugins
from benchmark.data import load_dataset
from benchmark.registry import DATASETS
from datasets._mmact_counts import REFERENCE_COUNTS, count_differences, release_counts
from datasets.base import DatasetError
from tests.mmact_fixtures import (
    make_release,
    pack_release,
    pose_path,
    sensor_path,
    write_preprocessed,
    write_release,
    write_tar,
    write_zip,
)

N_PAIRS = 55  # 3 subjects x 2 scenes x 2 sessions x 5 actions = 60, minus the 5 defective clips


def plugin(**options):
    return DATASETS.get("mmact")(**options)


@pytest.fixture(scope="module")
def release_dirs(tmp_path_factory) -> dict[str, Path]:
    """The same generated release extracted, packed, and as the reference's preprocessed output."""
    base = tmp_path_factory.mktemp("mmact-release")
    rel = make_release()
    out = {"extracted": write_release(rel, base / "extracted" / "mmact"),
           "preprocessed": write_preprocessed(rel, base / "preprocessed" / "mmact")}
    out["packed"] = pack_release(out["extracted"], base / "packed" / "mmact")
    return out


def _same(a, b) -> None:
    assert a.ids == b.ids and np.array_equal(a.labels, b.labels)
    assert all(np.array_equal(a.groups[g], b.groups[g]) for g in a.groups) and set(a.groups) == set(b.groups)
    for m in a.samples:
        assert all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a.samples[m], b.samples[m]))


def test_release_packed_extracted_and_preprocessed_give_identical_clips(release_dirs, tmp_path):
    packed = shutil.copytree(release_dirs["packed"], tmp_path / "mmact")
    raws = {"extracted": plugin().read(release_dirs["extracted"]), "packed": plugin().read(packed),
            "preprocessed": plugin().read(release_dirs["preprocessed"])}
    assert len(raws["extracted"].ids) == N_PAIRS
    _same(raws["extracted"], raws["packed"])
    _same(raws["extracted"], raws["preprocessed"])
    # extraction is complete, atomic (no temporary folder left) and keeps only the cam1 poses the reader uses
    assert sorted(p.name for p in packed.iterdir() if not p.is_file()) == [
        "acc_phone_clip", "acc_watch_clip", "gyro_clip", "orientation_clip", "pose"]
    assert {p.parts[-4] for p in (packed / "pose").rglob("*.json")} == {"cam1"}


def test_load_dataset_tensors_identical_across_layouts(release_dirs, tmp_path):
    packed = shutil.copytree(release_dirs["packed"], tmp_path / "packed" / "mmact")
    datas = [load_dataset("mmact", root=root.parent, use_cache=False)
             for root in (release_dirs["extracted"], packed, release_dirs["preprocessed"])]
    for d in datas[1:]:
        assert d.ids == datas[0].ids and torch.equal(d.labels, datas[0].labels)
        for m in ("inertial", "skeleton"):
            assert torch.equal(d.modalities[m], datas[0].modalities[m])
    assert tuple(datas[0].modalities["inertial"].shape) == (N_PAIRS, 12, 50)
    assert tuple(datas[0].modalities["skeleton"].shape) == (N_PAIRS, 2, 50, 17)


def test_reference_rules_on_a_clip(release_dirs):
    """Phone/watch acc 100 -> 50 Hz (floor(n/2) FFT samples), all cut to the shortest, rounded to 6 places."""
    import pandas as pd
    import scipy.signal

    folder = release_dirs["extracted"]
    raw = plugin(drop_first_row=False).read(folder)
    i = raw.ids.index("a1_s2_t2_ses2_sc1")  # carrying (id 1), subject 2, scene 1, session 2: trial 2
    key = (2, 1, 2, "carrying")
    xyz = {s: pd.read_csv(sensor_path(folder, s, key), header=None).to_numpy()[:, 1:]
           for s in ("acc_phone_clip", "acc_watch_clip", "gyro_clip", "orientation_clip")}
    for s in ("acc_phone_clip", "acc_watch_clip"):
        xyz[s] = scipy.signal.resample(xyz[s], len(xyz[s]) // 2)
    n = min(len(v) for v in xyz.values())
    want = np.concatenate([v[:n] for v in xyz.values()], axis=1)
    got = raw.samples["inertial"][i]
    assert got.shape == (n, 12)
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-7)
    full = plugin(drop_first_row=False, round_decimals=None).read(folder).samples["inertial"][i]
    np.testing.assert_allclose(full, want, rtol=0, atol=1e-9)
    assert not np.array_equal(full, got)


def test_first_row_switch_changes_exactly_the_first_inertial_row(release_dirs):
    for layout in ("extracted", "preprocessed"):
        drop, keep = plugin().read(release_dirs[layout]), plugin(drop_first_row=False).read(release_dirs[layout])
        assert drop.ids == keep.ids
        assert all(np.array_equal(a, b[1:]) and len(b) == len(a) + 1
                   for a, b in zip(drop.samples["inertial"], keep.samples["inertial"]))
        assert all(np.array_equal(a, b) for a, b in zip(drop.samples["skeleton"], keep.samples["skeleton"]))
    csv = np.loadtxt(next((release_dirs["preprocessed"] / "Inertial").glob("a1_s1_*.csv")), delimiter=",")
    assert not np.array_equal(csv[0], csv[1])  # a real row is what the reference drops


def test_pose_person_choice_zero_frames_and_cam1(release_dirs):
    import json

    folder = release_dirs["extracted"]
    raw = plugin().read(folder)
    i = raw.ids.index("a1_s1_t1_ses1_sc1")  # 'carrying' clips have a second person in 2 of 3 frames
    frames = json.loads(pose_path(folder, (1, 1, 1, 1, "carrying")).read_text())
    for f, frame in enumerate(frames.values()):
        person = frame["person2"] if frame.get("person2") else frame["person1"]
        np.testing.assert_array_equal(raw.samples["skeleton"][i][f], np.reshape(person, (17, 3))[:, :2])
    assert any(frame.get("person2") for frame in frames.values()) and any(
        frame.get("person2") == [] for frame in frames.values())
    pose = raw.samples["skeleton"][i]
    zero = ~pose.any(axis=(1, 2))
    assert zero.any() and not zero.all()  # undetected frames are zeros
    assert pose.max() < 1920 and pose[~zero].min() >= 0


def test_undetected_frame_without_any_person_is_zeros(release_dirs, tmp_path):
    import json

    folder = shutil.copytree(release_dirs["extracted"], tmp_path / "mmact")
    path = pose_path(folder, (1, 1, 1, 1, "carrying"))
    frames = json.loads(path.read_text())
    first = next(iter(frames))
    frames[first] = {}
    path.write_text(json.dumps(frames))
    raw = plugin().read(folder)
    assert not raw.samples["skeleton"][raw.ids.index("a1_s1_t1_ses1_sc1")][0].any()


def test_defects_are_listed_never_silent(release_dirs, capsys):
    raw = plugin().read(release_dirs["extracted"])
    text = "\n".join(raw.skipped)
    for needle in ("no gyro_clip file", "empty time series", "no person detected in any frame",
                   "has no skeleton counterpart", "has no inertial counterpart"):
        assert needle in text, needle
    load_dataset("mmact", root=release_dirs["extracted"].parent, use_cache=False)
    out = capsys.readouterr().out
    assert f"[mmact] skipped {len(raw.skipped)} sample(s)" in out and "empty time series" in out


def test_malformed_release_files(release_dirs, tmp_path):
    folder = shutil.copytree(release_dirs["extracted"], tmp_path / "mmact")
    bad = sensor_path(folder, "gyro_clip", (2, 1, 1, "carrying"))
    bad.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DatasetError, match=f"{bad}.*has 3 columns, expected 4"):
        plugin().read(folder)
    raw = plugin(skip_bad=True).read(folder)
    assert "a1_s2_t1_ses1_sc1" not in raw.ids and any(str(bad) in m for m in raw.skipped)
    bad.write_text("ts,x,y,z\n1,0.1,0.2,0.3\n")
    with pytest.raises(DatasetError, match="non-numeric x, y or z values"):
        plugin().read(folder)
    bad.unlink()
    odd = sensor_path(folder, "gyro_clip", (2, 1, 1, "dancing"))
    odd.write_text("1,0.1,0.2,0.3\n")
    with pytest.raises(DatasetError, match=f"{odd} is named after no MMAct action .'dancing'"):
        plugin().read(folder)
    odd.unlink()
    pose = pose_path(folder, (2, 1, 1, 1, "Walking"))
    pose.write_text('{"0": {"person1": [1, 2, 3]}}')
    with pytest.raises(DatasetError, match="frame '0' has 3 keypoint values, expected 51"):
        plugin().read(folder)
    pose.write_text("[1, 2")
    with pytest.raises(DatasetError, match=f"{pose} is not a readable JSON file"):
        plugin().read(folder)


def test_duplicate_release_files_are_reported(release_dirs, tmp_path):
    folder = shutil.copytree(release_dirs["extracted"], tmp_path / "mmact")
    src = pose_path(folder, (2, 1, 1, 1, "Walking"))
    shutil.copy(src, src.with_name("walking.json"))  # the same action once lower-cased
    raw = plugin().read(folder)
    assert "a25_s2_t1_ses1_sc1" not in raw.ids
    assert any("several cam1 pose files" in m and str(src) in m for m in raw.skipped)
    with pytest.raises(DatasetError, match="several cam1 pose files.*strict=false"):
        plugin(strict=True).read(folder)


def test_missing_release_part_is_named(release_dirs, tmp_path):
    folder = shutil.copytree(release_dirs["packed"], tmp_path / "mmact")
    (folder / "gyro_clip.tar.gz").unlink()
    with pytest.raises(DatasetError, match="gyro_clip.tar.gz .packed or extracted. is missing"):
        plugin().read(folder)


# -- archive safety ----------------------------------------------------------------------------------------------
def _release_with(tmp_path: Path, name: str, archive_writer) -> Path:
    folder = shutil.copytree(_small_packed(tmp_path), tmp_path / "root" / "mmact")
    (folder / name).unlink()
    archive_writer(folder / name)
    return folder


def _small_packed(tmp_path: Path) -> Path:
    rel = make_release(subjects=(1,), scenes=(1,), sessions=(1,), defects=False)
    return pack_release(write_release(rel, tmp_path / "src"), tmp_path / "packed")


@pytest.mark.parametrize("member", ["../escaped.csv", "acc_phone_clip/../../escaped.csv", "ABSOLUTE"])
def test_tar_member_outside_the_folder_is_rejected(tmp_path, member):
    outside = tmp_path / "escaped.csv"
    member = str(outside) if member == "ABSOLUTE" else member
    ok = {"acc_phone_clip/subject1/scene1/session1/carrying.csv": b"1,0.1,0.2,9.8\n"}
    folder = _release_with(tmp_path, "acc_phone_clip.tar.gz",
                           lambda p: write_tar(p, {**ok, member: b"1,2,3,4\n"}))
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(DatasetError) as exc:
        load_dataset("mmact", root=folder.parent, use_cache=False)
    msg = str(exc.value)
    assert "acc_phone_clip.tar.gz" in msg and repr(member) in msg and "nothing was extracted" in msg
    assert not outside.exists() and not (tmp_path / "root" / "escaped.csv").exists()
    assert sorted(p.name for p in folder.iterdir()) == before  # no partial source folder, no temporary folder


def test_tar_link_pointing_outside_is_rejected(tmp_path):
    folder = _release_with(tmp_path, "gyro_clip.tar.gz", lambda p: write_tar(
        p, {"gyro_clip/subject1/scene1/session1/carrying.csv": b"1,0.1,0.2,0.3\n"},
        links={"gyro_clip/subject1/scene1/session1/walking.csv": "../../../../../../etc/passwd"}))
    with pytest.raises(DatasetError, match="gyro_clip.tar.gz.*walking.csv.*a link to"):
        plugin().read(folder)
    assert not (folder / "gyro_clip").exists()


@pytest.mark.parametrize("member", ["../escaped.json", "/escaped.json", "pose/../../escaped.json"])
def test_zip_member_outside_the_folder_is_rejected(tmp_path, member):
    folder = _release_with(tmp_path, "trimmed_pose.zip", lambda p: write_zip(p, {member: b"{}"}))
    with pytest.raises(DatasetError, match=f"trimmed_pose.zip holds member {member!r}"):
        plugin().read(folder)
    assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "root" / "escaped.json").exists()
    assert not (folder / "pose").exists() and not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_truncated_archive_is_named(tmp_path):
    folder = _release_with(tmp_path, "orientation_clip.tar.gz", lambda p: None)
    data = (tmp_path / "packed" / "orientation_clip.tar.gz").read_bytes()
    (folder / "orientation_clip.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="orientation_clip.tar.gz cannot be read, probably truncated"):
        plugin().read(folder)
    assert not (folder / "orientation_clip").exists()


def test_archive_without_its_top_folder(tmp_path):
    folder = _release_with(tmp_path, "acc_watch_clip.tar.gz",
                           lambda p: write_tar(p, {"clips/subject1/a.csv": b"1,2,3,4\n"}))
    with pytest.raises(DatasetError, match="has no top-level folder acc_watch_clip/"):
        plugin().read(folder)
    assert tarfile.is_tarfile(folder / "acc_watch_clip.tar.gz") and not (folder / "acc_watch_clip").exists()


# -- counts ------------------------------------------------------------------------------------------------------
def test_reference_counts_and_differences():
    assert count_differences(REFERENCE_COUNTS) == []
    assert REFERENCE_COUNTS["pairs"] - sum(REFERENCE_COUNTS[f"xsub {p}"] for p in ("train", "val", "test")) == 403
    assert sum(REFERENCE_COUNTS[f"xscene {p}"] for p in ("train", "val", "test")) == REFERENCE_COUNTS["pairs"]
    diffs = count_differences({**REFERENCE_COUNTS, "pairs": 8359, "xscene test": 2363})
    assert diffs == ["pairs 8359 (the reference: 8360)", "xscene test 2363 (the reference: 2364)"]


def test_counts_of_a_subset(release_dirs):
    keys = [(1, s, sc, 1) for s in (1, 4, 5, 16, 17) for sc in (1, 2)]
    counts = release_counts(keys, keys + [(2, 1, 1, 1)], keys, plugin().splits)
    assert counts["inertial files"] == 10 and counts["skeleton files"] == 11 and counts["pairs of subjects 1-4"] == 4
    assert (counts["xsub train"], counts["xsub val"], counts["xsub test"], counts["xsub unused (subject 16)"]) == (
        6, 0, 2, 2)
    assert (counts["xscene train"], counts["xscene val"], counts["xscene test"]) == (4, 1, 5)


def test_full_looking_release_is_checked_against_the_reference_counts(tmp_path, capsys):
    rel = make_release(subjects=tuple(range(1, 21)), scenes=(1, 2, 3, 4), sessions=(1,), actions=("fall",),
                       defects=False)
    folder = write_preprocessed(rel, tmp_path / "mmact")
    raw = plugin().read(folder)
    assert len(raw.ids) == 80
    err = capsys.readouterr().err
    assert "covers all 20 subjects and 4 scenes" in err
    assert "inertial files 80 (the reference: 8732)" in err and "pairs 80 (the reference: 8360)" in err
    assert "xsub unused (subject 16) 4 (the reference: 403)" in err
    plugin().read(release_dirs_small(tmp_path))
    assert "covers all 20 subjects" not in capsys.readouterr().err  # a subset is not checked


def release_dirs_small(tmp_path: Path) -> Path:
    return write_preprocessed(make_release(defects=False), tmp_path / "small" / "mmact")


# -- registry ----------------------------------------------------------------------------------------------------
def test_list_shows_the_new_split():
    lines: list[str] = []
    list_plugins(out=lines.append)
    line = next(x for x in "\n".join(lines).splitlines() if x.strip().startswith("mmact"))
    assert "xsub, xsub_all, xsub_16v4, xscene" in line


def test_layout_option(release_dirs, tmp_path):
    both = shutil.copytree(release_dirs["extracted"], tmp_path / "mmact")
    for sub in ("Inertial", "Skeleton"):
        shutil.copytree(release_dirs["preprocessed"] / sub, both / sub)
    files = plugin().raw_files(both)
    assert files and all(p.suffix in (".csv", ".json") and "Inertial" not in p.parts for p in files)
    assert {p.parts[-2] for p in plugin(layout="preprocessed").raw_files(both)} == {"Inertial", "Skeleton"}
    _same(plugin().read(both), plugin(layout="preprocessed").read(both))
    with pytest.raises(DatasetError, match="layout='raw' is not known"):
        plugin(layout="raw")
