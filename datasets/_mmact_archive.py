"""Safe, atomic extraction of the MMAct release archives into the dataset folder.

Every member of an archive is checked before anything is written: an absolute path, a `..` component, a link
whose target leaves the extraction folder, or a device/fifo member rejects the whole archive with an error
naming the archive and the member. Each archive is extracted into a temporary folder beside its target (same
parent, so the final step is one rename on the same file system); the target appears complete or not at all.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from benchmark.atomic import owner_tag, remove_orphans
from benchmark.contracts import DatasetError

SENSOR_SOURCES = ("acc_phone_clip", "acc_watch_clip", "gyro_clip", "orientation_clip")
SENSOR_ARCHIVES = {source: f"{source}.tar.gz" for source in SENSOR_SOURCES}
POSE_ARCHIVE = "trimmed_pose.zip"
POSE_FOLDER = "pose"  # the zip's top-level folder: pose/cross_view/trainval/subjectN/camK/sceneN/sessionN/*.json
_TEMP_MARK = "-extract-"  # in the name of a temporary extraction folder: .mmact-extract-<host>-<pid>-<random>


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _unsafe_reason(name: str) -> str | None:
    """Why an archive member name would land outside the extraction folder (None when it stays inside)."""
    if not name:
        return "an empty name"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a '..' component"
    return None


def _link_escapes(member: str, target: str, hard: bool) -> bool:
    """Whether a link member's target resolves outside the extraction folder (hard links name archive paths)."""
    if _unsafe_reason(target) == "an absolute path":
        return True
    base = PurePosixPath() if hard else PurePosixPath(member).parent
    depth = 0
    for part in (base / target.replace("\\", "/")).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def _reject(archive: Path, member: str, why: str) -> DatasetError:
    return DatasetError(
        f"mmact: archive {archive} holds member {member!r} with {why}, which would be written outside the "
        f"dataset folder; nothing was extracted. This is not an untouched MMAct release file: download it "
        f"again from the MMAct authors (or extract it yourself after checking it)."
    )


def check_tar_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """DatasetError naming the first member of a tar archive that is unsafe to extract."""
    for m in members:
        why = _unsafe_reason(m.name)
        if why:
            raise _reject(archive, m.name, why)
        if (m.issym() or m.islnk()) and _link_escapes(m.name, m.linkname, m.islnk()):
            raise _reject(archive, m.name, f"a link to {m.linkname!r} outside the extraction folder")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise _reject(archive, m.name, "a device, fifo or other special file type")


def check_zip_members(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    """DatasetError naming the first member of a zip archive that is unsafe to extract."""
    for m in members:
        why = _unsafe_reason(m.filename)
        if why:
            raise _reject(archive, m.filename, why)
        if stat.S_ISLNK(m.external_attr >> 16):
            raise _reject(archive, m.filename, "a symbolic link")


def _broken(archive: Path, exc: BaseException) -> DatasetError:
    return DatasetError(f"mmact: archive {archive} cannot be read, probably truncated or not a "
                        f"{'zip' if archive.suffix == '.zip' else 'tar.gz'} file ({_one_line(exc)}). Download it "
                        f"again from the MMAct authors.")


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            check_tar_members(archive, members)
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise _broken(archive, exc) from exc


def _wanted_pose_member(name: str) -> bool:
    """Pose members the reader uses: pose/cross_view/trainval/<subject>/cam1/... (the reference keeps cam1)."""
    parts = PurePosixPath(name).parts
    return len(parts) >= 5 and parts[:3] == ("pose", "cross_view", "trainval") and parts[4].lower() == "cam1"


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            check_zip_members(archive, members)
            for m in members:
                if _wanted_pose_member(m.filename):
                    zf.extract(m, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as exc:
        raise _broken(archive, exc) from exc


def _install(archive: Path, folder: Path, top: str, extract: Callable[[Path, Path], None]) -> Path:
    """Extract `archive` into a temporary folder in `folder`, then rename its `top` folder to `folder/top`."""
    target = folder / top
    remove_orphans(folder, _TEMP_MARK)  # what a killed extraction left (a live one's folder stays)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".mmact{_TEMP_MARK}{owner_tag()}-", dir=folder))
    except OSError as exc:
        raise DatasetError(f"mmact: cannot extract {archive} into {folder} ({_one_line(exc)}). Make the folder "
                           f"writable, or extract the archive there yourself.") from exc
    try:
        extract(archive, tmp)
        inner = tmp / top
        if not inner.is_dir():
            if top in SENSOR_SOURCES and any(p.name.lower().startswith("subject") for p in tmp.iterdir()):
                inner = tmp  # an archive packed without its top-level folder
            else:
                raise DatasetError(f"mmact: archive {archive} has no top-level folder {top}/ (it holds "
                                   f"{sorted(p.name for p in tmp.iterdir())[:5]}); it is not the MMAct release file "
                                   f"the reader expects.")
        if not target.exists():
            os.replace(inner, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def extract_release(folder: Path) -> list[Path]:
    """Extract every release archive in `folder` whose folder is not there yet; return the folders made."""
    made = []
    for source, name in SENSOR_ARCHIVES.items():
        if (folder / name).is_file() and not (folder / source).exists():
            made.append(_install(folder / name, folder, source, _extract_tar))
    if (folder / POSE_ARCHIVE).is_file() and not (folder / POSE_FOLDER).exists():
        made.append(_install(folder / POSE_ARCHIVE, folder, POSE_FOLDER, _extract_zip))
    return made
