"""The one table mapping library errors to HTTP statuses, and the one JSON error shape.

Every error the API returns looks like::

    {"error": {"status": 404, "type": "not_found", "message": "...", "detail": [...]}}

``detail`` is a list (empty unless there are per-field problems), so clients parse one shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sitewatch.core.errors import (
    AlertTransitionError,
    CatalogError,
    ConfigError,
    ContextError,
    ImageryError,
    NotFoundError,
    PatternError,
    SitewatchError,
    StoreError,
    UnsupportedInputError,
    ValidationError,
    WorkspaceNotFoundError,
)
from sitewatch.store.users import AuthenticationError, LoginThrottledError, PermissionDeniedError

log = logging.getLogger(__name__)


class WebError(SitewatchError):
    """An error only the web layer raises (bad query parameter, CSRF, body too large)."""

    status = 400
    type = "bad_request"


class BadRequestError(WebError, ValueError):
    """A request parameter or body is malformed."""


class CsrfError(WebError, PermissionError):
    """A browser form or cookie-authenticated write came without the session's CSRF token."""

    status = 403
    type = "csrf"


class PayloadTooLargeError(WebError, ValueError):
    """A request body is larger than the server accepts."""

    status = 413
    type = "payload_too_large"


# Most specific first: (error class, HTTP status, error type).
HTTP_STATUSES: tuple[tuple[type[BaseException], int, str], ...] = (
    (LoginThrottledError, 429, "too_many_requests"),
    (AuthenticationError, 401, "unauthenticated"),
    (AlertTransitionError, 409, "conflict"),
    (PermissionDeniedError, 403, "forbidden"),
    (WorkspaceNotFoundError, 503, "workspace_missing"),
    (NotFoundError, 404, "not_found"),
    (CatalogError, 400, "bad_request"),
    (ConfigError, 400, "bad_request"),
    (ContextError, 400, "bad_request"),
    (PatternError, 400, "bad_request"),
    (ValidationError, 400, "bad_request"),
    (UnsupportedInputError, 400, "bad_request"),
    (ImageryError, 500, "imagery_error"),
    (StoreError, 409, "conflict"),
)

_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
}


def status_for(error: BaseException) -> tuple[int, str]:
    """HTTP status and error type for a library or web error."""
    if isinstance(error, WebError):
        return error.status, error.type
    for error_type, status, name in HTTP_STATUSES:
        if isinstance(error, error_type):
            return status, name
    return 500, "internal_error"


def error_body(
    status: int, message: str, *, type_: str | None = None, detail: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "status": status,
            "type": type_ or _STATUS_TYPES.get(status, "error"),
            "message": message,
            "detail": detail or [],
        }
    }


def error_response(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    detail: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, message, type_=type_, detail=detail), status_code=status, headers=headers
    )


HtmlErrorPage = Callable[[Request, int, str], Response]
"""Renders an error as a dashboard page: (request, status, message) -> response."""


def _wants_html(request: Request) -> bool:
    """Browser page requests get an HTML page; the API and assets always get JSON."""
    path = request.url.path
    return not path.startswith(("/api/", "/static/")) and "text/html" in request.headers.get("accept", "")


def _without_workspace_path(request: Request, message: str) -> str:
    """``message`` with the workspace's folder named by the workspace's name: callers need no server paths."""
    workspace = getattr(request.app.state, "workspace", None)
    root = getattr(workspace, "root", None)
    if not isinstance(root, Path):
        return message
    name = getattr(getattr(workspace, "settings", None), "name", None) or root.name
    for form in sorted({str(root), str(root.absolute()), str(root.resolve())}, key=len, reverse=True):
        message = message.replace(form, repr(name))
    return message


def install_error_handlers(app: FastAPI, html_page: HtmlErrorPage | None = None) -> None:
    """Make every error, ours or the framework's, answer in the one shape (or as a page to a browser)."""

    def answer(
        request: Request,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        detail: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        message = _without_workspace_path(request, message)
        if html_page is not None and _wants_html(request):
            return html_page(request, status, message)
        return error_response(status, message, type_=type_, detail=detail, headers=headers)

    @app.exception_handler(SitewatchError)
    async def _library_error(request: Request, error: SitewatchError) -> Response:
        status, type_ = status_for(error)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(error, LoginThrottledError):
            headers = {"Retry-After": str(error.retry_after)}
        return answer(request, status, str(error), type_=type_, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_input(request: Request, error: RequestValidationError) -> Response:
        detail = [
            {
                "location": ".".join(str(p) for p in problem.get("loc", ())),
                "problem": str(problem.get("msg", "invalid")),
            }
            for problem in error.errors()
        ]
        summary = "; ".join(f"{d['location']}: {d['problem']}" for d in detail)
        return answer(
            request, 400, f"invalid request: {summary}; see /docs for the expected input", detail=detail
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "request failed"
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}; the API is described at /docs"
        return answer(request, error.status_code, message, headers=dict(error.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return answer(request, 500, "internal error; the server log has the traceback")
