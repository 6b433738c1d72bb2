"""Alert routes: listing, evidence, triage and assessments (writes need the analyst role)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from sitewatch.app.web import schemas, serialize, views
from sitewatch.app.web.auth import Caller, analyst, reader
from sitewatch.app.web.cache import ResponseCache
from sitewatch.app.web.deps import PagingDep, TimeRangeDep, WorkspaceDep
from sitewatch.core.types import AlertState, Assessment
from sitewatch.store.protocol import Store

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
ReaderDep = Annotated[Caller, Depends(reader)]
AnalystDep = Annotated[Caller, Depends(analyst)]


@router.get(
    "", response_model=schemas.AlertPage, summary="Alerts, newest first, filtered by site, state, time"
)
async def list_alerts(
    request: Request,
    ws: WorkspaceDep,
    page: PagingDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: Annotated[str | None, Query(description="site id, name or alias")] = None,
    state: Annotated[AlertState | None, Query(description="lifecycle state")] = None,
) -> Response:
    def build() -> dict[str, Any]:
        site_id = ws.site(site).id if site else None
        found = ws.alerts_page(site_id=site_id, state=state, since=window.since, until=window.until,
                               limit=page.limit, offset=page.offset)
        return page.page(request, [serialize.alert(a) for a in found.items], found.total)

    cache: ResponseCache = request.app.state.cache
    return await cache.respond(request, build)


@router.get(
    "/{alert_id}",
    response_model=schemas.AlertDetail,
    summary="An alert with its evidence, history, assessments and the site's track record",
)
def get_alert(alert_id: str, ws: WorkspaceDep, _: ReaderDep) -> dict[str, Any]:
    return views.alert_detail(ws, alert_id)


def triage(
    ws: Store, request: Request, alert_id: str, change: schemas.TriageIn, who: str
) -> dict[str, Any]:
    alert = ws.set_alert_state(alert_id, change.state, who=who, comment=change.comment)
    request.app.state.cache.clear()
    return serialize.alert(alert)


def record_assessment(
    ws: Store, request: Request, alert_id: str, body: schemas.AssessmentIn, author: str
) -> dict[str, Any]:
    ws.alert(alert_id)
    assessment = Assessment(
        alert_id=alert_id,
        author=author,
        created=datetime.now(UTC),
        judgement=body.judgement,
        confidence=body.confidence,
        text=body.text,
        hypotheses=tuple(h for h in body.hypotheses if h.strip()),
        pick=body.pick.strip(),
    )
    ws.add_assessment(assessment)
    request.app.state.cache.clear()
    return serialize.assessment(assessment)


@router.post(
    "/{alert_id}/state",
    response_model=schemas.AlertOut,
    summary="Triage: acknowledge, confirm, or close as benign or false alarm (analyst)",
)
def set_state(
    alert_id: str, change: schemas.TriageIn, request: Request, ws: WorkspaceDep, caller: AnalystDep
) -> dict[str, Any]:
    return triage(ws, request, alert_id, change, caller.user.name)


@router.get(
    "/{alert_id}/history",
    response_model=list[schemas.AlertEventOut],
    summary="State changes of an alert, oldest first",
)
def get_history(alert_id: str, ws: WorkspaceDep, _: ReaderDep) -> list[dict[str, Any]]:
    ws.alert(alert_id)
    return [serialize.alert_event(e) for e in ws.alert_history(alert_id)]


@router.get(
    "/{alert_id}/assessments",
    response_model=list[schemas.AssessmentOut],
    summary="Every analyst's assessment of an alert, with author and time",
)
def get_assessments(alert_id: str, ws: WorkspaceDep, _: ReaderDep) -> list[dict[str, Any]]:
    ws.alert(alert_id)
    return [serialize.assessment(a) for a in ws.assessments(alert_id)]


@router.post(
    "/{alert_id}/assessments",
    response_model=schemas.AssessmentOut,
    status_code=201,
    summary="Record your assessment of an alert in standard estimative language (analyst)",
)
def add_assessment(
    alert_id: str, body: schemas.AssessmentIn, request: Request, ws: WorkspaceDep, caller: AnalystDep
) -> dict[str, Any]:
    return record_assessment(ws, request, alert_id, body, caller.user.name)
