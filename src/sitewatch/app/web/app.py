"""The FastAPI application over one workspace: JSON API, tiles, exports and the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from sitewatch import __version__
from sitewatch.app.web.auth import IdentityCache
from sitewatch.app.web.cache import ResponseCache
from sitewatch.app.web.errors import install_error_handlers
from sitewatch.app.web.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from sitewatch.app.web.routes import accounts, alerts, analytics, catalog, exports, pages, queue, tiles
from sitewatch.store.users import user_store
from sitewatch.store.workspace import Workspace

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_BODY = 64 * 1024
"""Bytes: the largest request body accepted; forms and JSON bodies are a few kB at most."""


def create_app(workspace_root: Path | str, *, max_body_bytes: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The web app over the workspace at ``workspace_root`` (opened now, closed at shutdown).

    Raises ``WorkspaceNotFoundError`` (naming ``sitewatch init``) when there is none.
    """
    ws = Workspace.open(Path(workspace_root))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ws.close()

    app = FastAPI(
        title="sitewatch",
        version=__version__,
        description="Sites, observations, detections, change regions, indicators, alerts and assessments of "
        "a sitewatch workspace. Authenticate with `Authorization: Bearer <token>` "
        "(`sitewatch users token NAME`) or a session cookie from POST /api/auth/login; "
        "writes with a cookie also need the X-CSRF-Token header.",
        lifespan=lifespan,
        # Served by routes.pages behind log-in, like everything but /login (docs/web.md).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = ws
    app.state.users = user_store(ws)
    app.state.cache = ResponseCache(ws.revision)
    app.state.identities = IdentityCache(ws.revision)
    install_error_handlers(app, pages.error_page)
    for module in (accounts, catalog, analytics, alerts, queue, tiles, exports, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    if proxies := ws.settings.trusted_proxies.strip():
        # Outermost, so every route sees the browser's scheme (Secure cookies) and address (throttle).
        # Only listed proxies are believed: anyone else could claim any address or HTTPS.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app
