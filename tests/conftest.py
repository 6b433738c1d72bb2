"""Shared fixtures. Real third-party data lives in ../shared/data; tests needing it skip without it."""

from __future__ import annotations

import os
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


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's workspace or settings."""
    monkeypatch.delenv("SITEWATCH_WORKSPACE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
