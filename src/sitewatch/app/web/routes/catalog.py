"""Read routes for sites, zones, scenes and observations, and the site timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from sitewatch.app.web import schemas, serialize, views
from sitewatch.app.web.auth import Caller, reader
from sitewatch.app.web.cache import ResponseCache
from sitewatch.app.web.deps import PagingDep, TimeRangeDep, WorkspaceDep

router = APIRouter(prefix="/api", tags=["catalog"])
ReaderDep = Annotated[Caller, Depends(reader)]
SiteFilter = Annotated[str | None, Query(description="site id, name or alias")]


@router.get("/sites", response_model=schemas.SitePage, summary="Sites with their alert status")
async def list_sites(request: Request, ws: WorkspaceDep, page: PagingDep, _: ReaderDep) -> Response:
    cache: ResponseCache = request.app.state.cache
    return await cache.respond(request, lambda: page.page(request, views.site_summaries(ws)))


@router.get("/sites/{site}", response_model=schemas.SiteOut, summary="One site by id, name or alias")
def get_site(site: str, ws: WorkspaceDep, _: ReaderDep) -> dict[str, Any]:
    return views.site_summary(ws, ws.site(site))


@router.get("/sites/{site}/zones", response_model=list[schemas.ZoneOut], summary="A site's zones")
def get_zones(site: str, ws: WorkspaceDep, _: ReaderDep) -> list[dict[str, Any]]:
    return [serialize.zone(z) for z in ws.site(site).zones]


@router.get(
    "/sites/{site}/timeline",
    response_model=schemas.Timeline,
    summary="Observations, indicator series with baseline bands, and alerts of a site",
)
async def get_timeline(site: str, request: Request, ws: WorkspaceDep, _: ReaderDep) -> Response:
    # Answered from the cache until the store changes: no query at all on a hit.
    cache: ResponseCache = request.app.state.cache
    return await cache.respond(request, lambda: views.timeline(ws, ws.site(site)))


@router.get("/scenes", response_model=schemas.ScenePage, summary="Scenes, filtered by site and time")
def list_scenes(
    request: Request,
    ws: WorkspaceDep,
    page: PagingDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: SiteFilter = None,
) -> dict[str, Any]:
    site_id = ws.site(site).id if site else None
    found = ws.scenes_page(site_id=site_id, since=window.since, until=window.until, limit=page.limit,
                           offset=page.offset)
    return page.page(request, [serialize.scene(s) for s in found.items], found.total)


@router.get("/scenes/{scene_id}", response_model=schemas.SceneOut, summary="One scene")
def get_scene(scene_id: str, ws: WorkspaceDep, _: ReaderDep) -> dict[str, Any]:
    return serialize.scene(ws.scene(scene_id))


@router.get(
    "/observations",
    response_model=schemas.ObservationPage,
    summary="Observations (a scene over a site), filtered by site and time, oldest first",
)
def list_observations(
    request: Request,
    ws: WorkspaceDep,
    page: PagingDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: SiteFilter = None,
) -> dict[str, Any]:
    site_id = ws.site(site).id if site else None
    found = ws.observations_page(site_id=site_id, since=window.since, until=window.until, limit=page.limit,
                                 offset=page.offset)
    return page.page(request, [serialize.observation(o) for o in found.items], found.total)


@router.get(
    "/observations/{observation_id}", response_model=schemas.ObservationOut, summary="One observation"
)
def get_observation(observation_id: str, ws: WorkspaceDep, _: ReaderDep) -> dict[str, Any]:
    return serialize.observation(ws.observation(observation_id))
