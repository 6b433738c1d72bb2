"""Read routes for what the analytics stored: detections, change regions, indicator values.

Detections can number in the millions, so these page in the store's SQL (its ``*_page`` methods)
instead of loading every row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from sitewatch.app.web import schemas, serialize
from sitewatch.app.web.auth import Caller, reader
from sitewatch.app.web.deps import PagingDep, TimeRangeDep, WorkspaceDep
from sitewatch.app.web.errors import BadRequestError
from sitewatch.app.web.serialize import GeometryCrs
from sitewatch.store.protocol import Store

router = APIRouter(prefix="/api", tags=["analytics"])
ReaderDep = Annotated[Caller, Depends(reader)]
SiteFilter = Annotated[str | None, Query(description="site id, name or alias")]
ObservationFilter = Annotated[str | None, Query(description="observation id")]
CrsOption = Annotated[
    GeometryCrs, Query(description="wgs84: longitude/latitude; grid: the site grid's UTM metres")
]


def scope(
    ws: Store, site: str | None, observation: str | None
) -> tuple[str | None, str | None, int | None]:
    """(site id, observation id, EPSG of the site grid) of a query; a site or observation is required."""
    if site is None and observation is None:
        raise BadRequestError(
            "give a site or an observation (e.g. ?site=sohae): detections are listed per site"
        )
    found = ws.site(site) if site else None
    if observation is not None:
        owner = ws.observation(observation).site_id
        if found is not None and owner != found.id:
            raise BadRequestError(f"observation {observation!r} belongs to site {owner!r}, not {found.id!r}")
        if found is None:
            found = ws.site(owner)
    assert found is not None  # one of the two was given above
    return found.id, observation, found.utm_epsg


@router.get(
    "/detections",
    response_model=schemas.DetectionPage,
    summary="Detections of a site or observation, filtered by class, score and time",
)
def list_detections(
    request: Request,
    ws: WorkspaceDep,
    page: PagingDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: SiteFilter = None,
    observation: ObservationFilter = None,
    class_name: Annotated[str | None, Query(description="e.g. vehicle, large_vehicle")] = None,
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
    crs: CrsOption = GeometryCrs.WGS84,
) -> dict[str, Any]:
    site_id, observation_id, epsg = scope(ws, site, observation)
    assert epsg is not None
    found = ws.detections_page(
        site_id=site_id,
        observation_id=observation_id,
        class_name=class_name,
        min_score=min_score,
        since=window.since,
        until=window.until,
        limit=page.limit,
        offset=page.offset,
    )
    return page.page(request, serialize.detections(list(found.items), epsg, crs), found.total)


@router.get(
    "/change-regions",
    response_model=schemas.ChangeRegionPage,
    summary="Change regions of a site or observation, filtered by time",
)
def list_change_regions(
    request: Request,
    ws: WorkspaceDep,
    page: PagingDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: SiteFilter = None,
    observation: ObservationFilter = None,
    crs: CrsOption = GeometryCrs.WGS84,
) -> dict[str, Any]:
    site_id, observation_id, epsg = scope(ws, site, observation)
    assert epsg is not None
    found = ws.change_regions_page(
        site_id=site_id,
        observation_id=observation_id,
        since=window.since,
        until=window.until,
        limit=page.limit,
        offset=page.offset,
    )
    return page.page(request, [serialize.change_region(r, epsg, crs) for r in found.items], found.total)


@router.get(
    "/indicators",
    response_model=schemas.IndicatorPage,
    summary="Indicator values of a site, filtered by zone, name and time, oldest first",
)
def list_indicators(
    request: Request,
    ws: WorkspaceDep,
    page: PagingDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: Annotated[str, Query(description="site id, name or alias")],
    zone: Annotated[str | None, Query(description="zone id")] = None,
    name: Annotated[str | None, Query(description="indicator name")] = None,
) -> dict[str, Any]:
    resolved = ws.site(site)
    if zone is not None:
        try:
            resolved.zone(zone)
        except KeyError as error:
            raise BadRequestError(str(error).strip("'\"")) from None
    found = ws.indicators_page(resolved.id, zone_id=zone, name=name, since=window.since, until=window.until,
                               limit=page.limit, offset=page.offset)
    return page.page(request, [serialize.indicator(v) for v in found.items], found.total)
