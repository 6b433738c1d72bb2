"""The analyst's morning queue as JSON: the alerts not yet triaged, and each site's latest image and alert.

The dashboard's home page shows the same view and records the visit; this route only reads, so a
script polling it never clears the "new since your last visit" marks of the person it runs as.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from sitewatch.app.web import views
from sitewatch.app.web.auth import Caller, reader, user_store
from sitewatch.app.web.deps import WorkspaceDep, parse_time

router = APIRouter(prefix="/api/queue", tags=["alerts"])
ReaderDep = Annotated[Caller, Depends(reader)]


@router.get("", summary="Alerts not yet triaged (top priority first, then newest, then by p), marked new "
            "since a visit; those a site's benign policy holds back are counted in held_count")
def get_queue(
    request: Request,
    ws: WorkspaceDep,
    caller: ReaderDep,
    since: Annotated[
        str | None,
        Query(description="ISO 8601 date or datetime (UTC when naive): mark alerts raised after it as new; "
              "default: the caller's last visit of the dashboard's home page"),
    ] = None,
) -> dict[str, Any]:
    given = parse_time("since", since)
    last_visit = given if given is not None else user_store(request).last_visit(caller.user.name)
    return views.morning_queue(ws, last_visit=last_visit)
