"""Browser fixtures: a real uvicorn server over a sample workspace, and Debian's headless Chromium
driven by Playwright (DESIGN.md §6). Skips with a reason when Chromium or Playwright is missing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sitewatch.app.web import create_app

from .sample_workspace import SampleWorkspace, build_sample_workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@pytest.fixture(scope="session")
def e2e_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    return build_sample_workspace(tmp_path_factory.mktemp("e2e") / "ws")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """A real uvicorn server over the workspace at ``root`` on a free local port; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def base_url(e2e_sample: SampleWorkspace) -> Iterator[str]:
    with serve(e2e_sample.root) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: end-to-end tests need Debian's chromium (apt-get install chromium)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) that records every request it makes."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    opened.requested = []  # type: ignore[attr-defined]
    opened.on("request", lambda request: opened.requested.append(request.url))
    opened.console_errors = []  # type: ignore[attr-defined]
    opened.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
    yield opened
    context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
