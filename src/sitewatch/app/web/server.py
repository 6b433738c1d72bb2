"""Running the app under uvicorn, possibly with several worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sitewatch.app.web.app import create_app
from sitewatch.store.workspace import Workspace

WORKSPACE_ENV = "SITEWATCH_WORKSPACE"


def app_from_environment() -> FastAPI:
    """The app over ``$SITEWATCH_WORKSPACE``: each uvicorn worker process builds its own."""
    return create_app(Path(os.environ[WORKSPACE_ENV]))


def serve(
    workspace_root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve the workspace until interrupted; fails early (naming ``sitewatch init``) without one."""
    root = workspace_root.resolve()
    Workspace.open(root).close()
    os.environ[WORKSPACE_ENV] = str(root)
    uvicorn.run(
        "sitewatch.app.web.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,  # the app believes only the trusted_proxies setting (create_app)
        server_header=False,
    )
