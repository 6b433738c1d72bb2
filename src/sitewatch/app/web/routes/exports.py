"""Exports of alerts and detections as GeoJSON and KML (longitude/latitude), streamed."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from shapely.geometry.base import BaseGeometry

from sitewatch.app.web import exports, serialize
from sitewatch.app.web.auth import Caller, reader
from sitewatch.app.web.deps import TimeRangeDep, WorkspaceDep
from sitewatch.app.web.routes.analytics import scope
from sitewatch.core.types import Alert, AlertState, Site

router = APIRouter(prefix="/api/exports", tags=["exports"])
ReaderDep = Annotated[Caller, Depends(reader)]
MAX_EXPORTED_DETECTIONS = 200_000
_BATCH = 5000


class Format(StrEnum):
    GEOJSON = "geojson"
    KML = "kml"


_MEDIA = {Format.GEOJSON: "application/geo+json", Format.KML: "application/vnd.google-earth.kml+xml"}


def _download(chunks: Iterator[str], name: str, fmt: Format) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"'},
    )


def _alert_geometry(alert: Alert, owner: Site) -> BaseGeometry:
    """The outline of the alert's zone when it names one, else the site's centre."""
    for zone in owner.zones:
        if zone.id == alert.zone_id:
            return zone.geometry
    return owner.geometry.centroid


@router.get(
    "/alerts.{fmt}", summary="Alerts as GeoJSON or KML points at their site, filtered by site/state/time"
)
def export_alerts(
    fmt: Format,
    ws: WorkspaceDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: Annotated[str | None, Query(description="site id, name or alias")] = None,
    state: Annotated[AlertState | None, Query()] = None,
) -> StreamingResponse:
    site_id = ws.site(site).id if site else None
    sites = {s.id: s for s in ws.sites()}
    alerts = ws.alerts(site_id=site_id, state=state, since=window.since, until=window.until)
    rows = [(alert, sites[alert.site_id]) for alert in alerts if alert.site_id in sites]
    if fmt is Format.GEOJSON:
        chunks = exports.geojson_chunks(
            exports.feature(
                _alert_geometry(alert, owner), {**serialize.alert(alert), "site_name": owner.name}
            )
            for alert, owner in rows
        )
    else:
        chunks = exports.kml_chunks(
            "sitewatch alerts",
            (
                exports.kml_placemark(
                    f"{owner.name}: {alert.indicator} ({alert.state.value})",
                    _alert_geometry(alert, owner),
                    serialize.alert(alert),
                )
                for alert, owner in rows
            ),
        )
    return _download(chunks, "alerts", fmt)


@router.get(
    "/detections.{fmt}",
    summary=f"Detections of a site or observation as GeoJSON or KML (at most {MAX_EXPORTED_DETECTIONS})",
)
def export_detections(
    fmt: Format,
    ws: WorkspaceDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: Annotated[str | None, Query(description="site id, name or alias")] = None,
    observation: Annotated[str | None, Query()] = None,
    class_name: Annotated[str | None, Query()] = None,
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
) -> StreamingResponse:
    site_id, observation_id, epsg = scope(ws, site, observation)
    assert epsg is not None

    def detections() -> Iterator[tuple[dict[str, Any], BaseGeometry]]:
        for offset in range(0, MAX_EXPORTED_DETECTIONS, _BATCH):
            batch = ws.detections_page(
                site_id=site_id,
                observation_id=observation_id,
                class_name=class_name,
                min_score=min_score,
                since=window.since,
                until=window.until,
                limit=_BATCH,
                offset=offset,
                count=False,
            )
            for detection in batch.items:
                properties = serialize.detection(detection, epsg, serialize.GeometryCrs.GRID)
                properties.pop("geometry")
                yield properties, serialize.grid_to_wgs84(detection.geometry, epsg)
            if len(batch.items) < _BATCH:
                return

    if fmt is Format.GEOJSON:
        chunks = exports.geojson_chunks(exports.feature(g, p) for p, g in detections())
    else:
        chunks = exports.kml_chunks(
            "sitewatch detections",
            (exports.kml_placemark(f"{p['class_name']} {p['score']:.2f}", g, p) for p, g in detections()),
        )
    return _download(chunks, "detections", fmt)
