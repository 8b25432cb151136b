"""Shared fixtures: where the real data lives, and quiet, isolated caches for tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def real_data_root() -> Path | None:
    """`$MMHAR_DATA`, else `../shared/data` beside the checkout, if it holds UTD-MHAD."""
    for cand in (os.environ.get("MMHAR_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "utd_mhad" / "Inertial").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def utd_root() -> Path:
    """The real UTD-MHAD data root; skips (or fails when MMHAR_REQUIRE_REAL_DATA=1) if absent."""
    root = real_data_root()
    if root is None:
        msg = ("real UTD-MHAD data not found: set $MMHAR_DATA to a folder holding utd_mhad/Inertial and "
               "utd_mhad/Skeleton, or place ../shared/data beside the checkout")
        if os.environ.get("MMHAR_REQUIRE_REAL_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(autouse=True)
def _no_plugin_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--plugins` extends `$MMHAR_PLUGINS` for worker processes; restore it after every test so that one
    test's plugin files (a deliberately broken one included) never reach a later test's workers."""
    if "MMHAR_PLUGINS" in os.environ:
        monkeypatch.setenv("MMHAR_PLUGINS", os.environ["MMHAR_PLUGINS"])
    else:
        monkeypatch.delenv("MMHAR_PLUGINS", raising=False)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests write preprocessed-data caches to a temporary folder, never to the user's cache."""
    if "MMHAR_CACHE" not in os.environ:
        os.environ["MMHAR_CACHE"] = str(tmp_path_factory.mktemp("mmhar-cache"))
