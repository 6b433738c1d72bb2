"""The dashboard's HTML pages and its browser forms (log-in, triage, assessment).

Pages are rendered on the server and work without JavaScript for everything that
writes; the map, the charts and the before/after slider are drawn by the static
scripts from the JSON API. Forms carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sitewatch.app.web import schemas, views
from sitewatch.app.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    analyst,
    client_address,
    identify,
    is_https,
    reader,
    user_store,
)
from sitewatch.app.web.deps import WorkspaceDep
from sitewatch.app.web.errors import BadRequestError, CsrfError
from sitewatch.app.web.routes.accounts import set_session_cookie
from sitewatch.app.web.routes.alerts import record_assessment, triage
from sitewatch.core import words
from sitewatch.core.timeutil import parse_utc
from sitewatch.core.types import AlertState, Confidence, Likelihood
from sitewatch.store.users import AuthenticationError, LoginThrottledError, Role

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))


def _when(value: datetime | str) -> str:
    """Template filter: a time (or its ISO text from the API's views) in UTC to the minute."""
    return words.when(parse_utc(value) if isinstance(value, str) else value)


def _human(name: str | None, site: dict[str, Any] | None = None) -> str:
    """Template filter: the words for a machine name; a zone by its name in ``site`` (as the API gives it)."""
    if site is not None and name is not None:
        for zone in site.get("zones", ()):
            if zone.get("id") == name:
                return str(zone.get("name") or name)
    return words.human_name(name)


templates.env.filters["when"] = _when
templates.env.filters["human"] = _human
templates.env.filters["p"] = words.p_value
templates.env.filters["amount"] = words.amount
AnalystDep = Annotated[Caller, Depends(analyst)]
ReaderDep = Annotated[Caller, Depends(reader)]

TRIAGE_ACTIONS = (
    (AlertState.ACKNOWLEDGED, "Acknowledge"),
    (AlertState.CONFIRMED, "Confirmed"),
    (AlertState.BENIGN, "Benign"),
    (AlertState.FALSE_ALARM, "False alarm"),
)


def error_page(request: Request, status: int, message: str) -> Response:
    """An error as a dashboard page, for browsers (the API answers JSON)."""
    caller = getattr(request.state, "caller", None)
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "user": caller.user if caller else None,
            "csrf_token": caller.csrf_token if caller else "",
            "status": status,
            "message": message,
        },
        status_code=status,
    )


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would let a link send users elsewhere after log-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _render(request: Request, name: str, caller: Caller, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": caller.user,
            "csrf_token": caller.csrf_token or "",
            "can_write": caller.user.role.allows(Role.ANALYST),
            **context,
        },
    )


def _page_caller(request: Request) -> Caller | None:
    try:
        return identify(request)
    except AuthenticationError:
        return None


def _to_login(request: Request) -> RedirectResponse:
    answer = RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    next: str | None = None,
    failed: bool = False,
    wait: Annotated[int, Query(ge=0, le=86400)] = 0,
) -> Response:
    token = secrets.token_urlsafe(32)
    answer = templates.TemplateResponse(
        request,
        "login.html",
        {"user": None, "login_csrf": token, "next": _safe_next(next), "failed": failed, "wait": wait},
    )
    answer.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login", secure=is_https(request)
    )
    return answer


@router.post("/login")
def login_form(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise CsrfError("the log-in form is stale or came from another site; reload /login and try again")
    users = user_store(request)
    try:
        user = users.authenticate(name, password, client=client_address(request))
    except LoginThrottledError as error:
        return RedirectResponse(
            f"/login?wait={error.retry_after}&next={quote(_safe_next(next))}", status_code=303
        )
    except AuthenticationError:
        return RedirectResponse(f"/login?failed=1&next={quote(_safe_next(next))}", status_code=303)
    secret, session = users.start_session(user)
    answer = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, answer, secret, session)
    answer.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return answer


@router.post("/logout")
def logout_form(request: Request, csrf_token: Annotated[str, Form(max_length=100)]) -> Response:
    caller = _page_caller(request)
    if caller is not None and caller.csrf_token and hmac.compare_digest(caller.csrf_token, csrf_token):
        user_store(request).end_session(request.cookies.get(SESSION_COOKIE, ""))
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


@router.get("/openapi.json")
def openapi_schema(request: Request, _: ReaderDep) -> JSONResponse:
    """The API's OpenAPI schema, for logged-in callers only (it is a map of the API)."""
    return JSONResponse(request.app.openapi())


SWAGGER_UI = "/static/vendor/swagger-ui"
"""Swagger UI from npm (swagger-ui-dist, copied by web/copy-vendor.mjs): /docs works offline."""


@router.get("/docs", response_class=HTMLResponse)
def swagger_page(request: Request) -> Response:
    if _page_caller(request) is None:
        return _to_login(request)
    return get_swagger_ui_html(openapi_url="/openapi.json", title="sitewatch API",
                               swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png")


@router.get("/redoc")
def redoc_page(request: Request) -> Response:
    """The API documentation is /docs (Swagger UI, served from the package); ReDoc would need a
    second bundle from a CDN, which an offline analyst cannot reach."""
    if _page_caller(request) is None:
        return _to_login(request)
    return RedirectResponse("/docs", status_code=303)


@router.get("/", response_class=HTMLResponse)
def map_page(request: Request, ws: WorkspaceDep) -> Response:
    caller = _page_caller(request)
    if caller is None:
        return _to_login(request)
    # The visit is recorded as the page is made: what arrived since the previous one is marked new.
    last_visit = user_store(request).record_visit(caller.user.name)
    queue = views.morning_queue(ws, last_visit=last_visit)
    return _render(request, "map.html", caller, queue=queue, workspace=ws.settings.name)


@router.get("/sites/{site}", response_class=HTMLResponse)
def site_page(site: str, request: Request, ws: WorkspaceDep) -> Response:
    caller = _page_caller(request)
    if caller is None:
        return _to_login(request)
    resolved = ws.site(site)
    alerts = ws.alerts(site_id=resolved.id)
    observations = ws.observations(resolved.id)
    spikes = views.unalerted_spikes(resolved, observations, ws.indicators(resolved.id), alerts,
                                    false_alarm_rate=ws.settings.false_alarm_rate)
    return _render(
        request,
        "site.html",
        caller,
        site=views.site_summary(ws, resolved, alerts),
        alerts=alerts,
        observations=observations,
        track_record=views.track_record(alerts),
        spikes=spikes,
        viewer=views.viewer_observations(ws, resolved.id),
    )


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(alert_id: str, request: Request, ws: WorkspaceDep) -> Response:
    caller = _page_caller(request)
    if caller is None:
        return _to_login(request)
    detail = views.alert_detail(ws, alert_id)
    site = ws.site(detail["site"]["id"])
    zone_id = detail["alert"]["zone_id"]
    reference = detail["reference"]
    zone = {
        "name": next((z.name for z in site.zones if z.id == zone_id), zone_id),
        "after": views.zone_seen(ws, detail["observation"]["id"], site, zone_id),
        "before": views.zone_seen(ws, reference["id"] if reference else None, site, zone_id),
    }
    return _render(
        request,
        "alert.html",
        caller,
        detail=detail,
        zone_seen=zone,
        viewer=views.viewer_observations(ws, site.id),
        actions=TRIAGE_ACTIONS,
        likelihoods=list(Likelihood),
        confidences=list(Confidence),
    )


@router.post("/alerts/{alert_id}/state")
def triage_form(
    alert_id: str,
    request: Request,
    ws: WorkspaceDep,
    caller: AnalystDep,
    state: Annotated[str, Form(max_length=32)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        change = schemas.TriageIn(state=AlertState(state), comment=comment)
    except ValueError:
        raise BadRequestError(
            f"state {state!r} is not one of: {', '.join(s.value for s in AlertState)}"
        ) from None
    triage(ws, request, alert_id, change, caller.user.name)
    return RedirectResponse(f"/alerts/{quote(alert_id)}", status_code=303)


@router.post("/alerts/{alert_id}/assessments")
def assessment_form(
    alert_id: str,
    request: Request,
    ws: WorkspaceDep,
    caller: AnalystDep,
    judgement: Annotated[str, Form(max_length=40)],
    confidence: Annotated[str, Form(max_length=20)],
    hypotheses: Annotated[str, Form(max_length=5000)] = "",
    pick: Annotated[str, Form(max_length=64)] = "",
    text: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    try:
        body = schemas.AssessmentIn(
            judgement=Likelihood(judgement),
            confidence=Confidence(confidence),
            hypotheses=[h.strip() for h in hypotheses.splitlines() if h.strip()],
            pick=pick,
            text=text,
        )
    except ValueError as error:
        raise BadRequestError(
            f"assessment form: {error}; pick a judgement and a confidence from the lists"
        ) from None
    record_assessment(ws, request, alert_id, body, caller.user.name)
    return RedirectResponse(f"/alerts/{quote(alert_id)}#assessments", status_code=303)
