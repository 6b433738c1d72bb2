"""Shared fixtures. Real third-party data lives in ../shared/data; tests needing it skip without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(os.environ.get("SITEWATCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a clear reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data folder {SHARED_DATA} not found: this test reads third-party imagery that is not "
            "shipped with the repository (set SITEWATCH_SHARED_DATA to point at it)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """scrypt at N=2^10 instead of the shipped 2^17 (seconds per hash on a busy CI machine).

    It is the workspace setting ``password_hash_cost`` (SITEWATCH_PASSWORD_HASH_COST), set for
    the whole session so module-scoped workspaces and served subprocesses see it too.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SITEWATCH_PASSWORD_HASH_COST", "10")
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's workspace or settings."""
    monkeypatch.delenv("SITEWATCH_WORKSPACE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
