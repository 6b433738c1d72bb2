"""Exports of alerts and detections as GeoJSON and KML (longitude/latitude), streamed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from shapely.geometry.base import BaseGeometry

from sitewatch.app.report.brief import brief_figure, save_brief
from sitewatch.app.report.images import class_words
from sitewatch.app.web import exports, kmz, serialize
from sitewatch.app.web.auth import Caller, reader
from sitewatch.app.web.deps import TimeRangeDep, WorkspaceDep
from sitewatch.app.web.routes.analytics import scope
from sitewatch.core.types import AlertState

router = APIRouter(prefix="/api/exports", tags=["exports"])
ReaderDep = Annotated[Caller, Depends(reader)]
MAX_EXPORTED_DETECTIONS = 200_000
_BATCH = 5000


class Format(StrEnum):
    GEOJSON = "geojson"
    KML = "kml"


_MEDIA = {Format.GEOJSON: "application/geo+json", Format.KML: "application/vnd.google-earth.kml+xml"}
KMZ_MEDIA = "application/vnd.google-earth.kmz"


class FigureFormat(StrEnum):
    PNG = "png"
    PDF = "pdf"


_FIGURE_MEDIA = {FigureFormat.PNG: "image/png", FigureFormat.PDF: "application/pdf"}


def _download(chunks: Iterator[str], name: str, fmt: Format) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"'},
    )


@router.get(
    "/alerts.{fmt}",
    summary="Alerts with their assessments as GeoJSON or KML (time-stamped, styled by state), "
    "filtered by site/state/time",
)
def export_alerts(
    fmt: Format,
    request: Request,
    ws: WorkspaceDep,
    window: TimeRangeDep,
    _: ReaderDep,
    site: Annotated[str | None, Query(description="site id, name or alias")] = None,
    state: Annotated[AlertState | None, Query()] = None,
) -> StreamingResponse:
    site_id = ws.site(site).id if site else None
    sites = {s.id: s for s in ws.sites()}
    alerts = ws.alerts(site_id=site_id, state=state, since=window.since, until=window.until)
    assessments = {alert.id: ws.assessments(alert.id) for alert in alerts}
    rows = exports.alert_exports(alerts, sites, assessments, str(request.base_url))
    if fmt is Format.GEOJSON:
        chunks = exports.geojson_chunks(exports.feature(row.geometry(), row.properties()) for row in rows)
    else:
        chunks = exports.kml_chunks("sitewatch alerts", (row.placemark() for row in rows))
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
    spans = exports.observation_spans(ws.observations(site_id))

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
            (
                exports.kml_placemark(
                    f"{class_words(p['class_name'], 1)} {p['score']:.2f}, "
                    f"{spans[p['observation_id']][0]:%Y-%m-%d}",
                    g,
                    p,
                    time=exports.kml_time_span(*spans[p["observation_id"]]),
                    style=exports.DETECTION_STYLE,
                )
                for p, g in detections()
            ),
        )
    return _download(chunks, "detections", fmt)


@router.get(
    "/sites/{site}.kmz",
    summary="A site's history for Google Earth: chips as time-spanned GroundOverlays, alerts and detections",
    response_class=Response,
    responses={200: {"content": {KMZ_MEDIA: {}}, "description": "a KMZ archive (doc.kml and images/)"}},
)
def export_site_kmz(
    site: str,
    request: Request,
    ws: WorkspaceDep,
    window: TimeRangeDep,
    _: ReaderDep,
) -> Response:
    resolved = ws.site(site)
    buffer = io.BytesIO()
    kmz.write_site_kmz(ws, resolved, buffer, base_url=str(request.base_url), since=window.since,
                       until=window.until)
    return Response(
        buffer.getvalue(),
        media_type=KMZ_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{resolved.id}.kmz"'},
    )


@router.get(
    "/briefs/{alert_id}.{fmt}",
    summary="An alert's briefing figure: before and after on its zone, detections called out, scale bar, "
    "north arrow, dates, sensor and imagery credit",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/pdf": {}}, "description": "the figure"}},
)
def export_brief(alert_id: str, fmt: FigureFormat, ws: WorkspaceDep, _: ReaderDep) -> Response:
    figure, _callouts = brief_figure(ws, alert_id)
    name = "brief-" + quote(alert_id, safe="")
    buffer = io.BytesIO()
    save_brief(figure, buffer, fmt.value)
    return Response(
        buffer.getvalue(),
        media_type=_FIGURE_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"'},
    )
