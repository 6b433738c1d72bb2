"""A site's history as a KMZ for Google Earth: every chip as a time-spanned GroundOverlay.

Each observation's chip is stretched like its neighbours (one stretch for the site, so a
brightness change shows as one), warped from the site's UTM grid to longitude/latitude (a
``LatLonBox`` is a lon/lat rectangle; a UTM chip is not one) and stored as a JPEG (an eighth of
a PNG's size for imagery, and eight times faster to write). It spans from its acquisition to
the site's next observation, so Google Earth's time slider plays the site's history; the
alerts (time-stamped) and the detections (with their image's span) ride along. Pixels the
image did not see, masked (cloud, no data) or in the slivers the warp adds beyond the chip's
edges, are drawn in one flat opaque colour, so no other date or basemap shows through them.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image
from rasterio.warp import Resampling, calculate_default_transform, reproject

from sitewatch.app.report.images import (
    MASKED_COLOUR,
    ChipPicture,
    class_words,
    load_chip_picture,
    render_picture,
    shared_stretch,
)
from sitewatch.app.web import exports, serialize
from sitewatch.core.types import Observation, Scene, Site
from sitewatch.store.protocol import Store

MAX_OVERLAY_PIXELS = 2048
"""Longest side of an overlay image; chips larger than this are shrunk (Google Earth draws
textures up to 8192 px, but a site's history of full chips would make a huge file)."""
_STRETCH_SAMPLE = 8  # every 8th pixel of every chip is plenty for 2nd/98th percentiles
_WGS84 = "EPSG:4326"
KMZ_DOCUMENT = "doc.kml"
JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class KmzSummary:
    """What a written KMZ holds."""

    site_id: str
    overlays: int
    alerts: int
    detections: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True, slots=True)
class Overlay:
    """A chip in longitude/latitude: RGB pixels and the box they cover."""

    image: Image.Image
    north: float
    south: float
    east: float
    west: float


def lonlat_overlay(
    picture: ChipPicture, stretch: tuple[np.ndarray, np.ndarray], *, max_size: int = MAX_OVERLAY_PIXELS
) -> Overlay:
    """The chip, stretched and warped to a longitude/latitude grid, as an RGB image and its box."""
    height, width = picture.valid.shape
    rgb = np.asarray(render_picture(picture, stretch, max_size=max(width, height)))
    left, top = picture.transform * (0, 0)
    right, bottom = picture.transform * (width, height)
    dst_transform, dst_width, dst_height = calculate_default_transform(
        picture.crs, _WGS84, width, height,
        left=min(left, right), bottom=min(top, bottom), right=max(left, right), top=max(top, bottom),
    )
    assert dst_width is not None and dst_height is not None  # always set when a size is given
    source = np.concatenate([np.moveaxis(rgb, -1, 0), np.full((1, height, width), 255, np.uint8)])
    warped = np.zeros((4, dst_height, dst_width), np.uint8)
    reproject(
        source, warped, src_transform=picture.transform, src_crs=picture.crs,
        dst_transform=dst_transform, dst_crs=_WGS84, resampling=Resampling.nearest,
    )
    seen = warped[3:] > 0
    pixels = np.where(seen, warped[:3], np.array(MASKED_COLOUR, np.uint8)[:, None, None])
    image = Image.fromarray(np.ascontiguousarray(np.moveaxis(pixels, 0, -1)), mode="RGB")
    scale = min(1.0, max_size / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    west, north = dst_transform * (0, 0)
    east, south = dst_transform * (dst_width, dst_height)
    return Overlay(image, north=north, south=south, east=east, west=west)


def _thinned(picture: ChipPicture) -> ChipPicture:
    """Every few pixels of ``picture``: enough for its percentiles, little memory for a long history."""
    step = _STRETCH_SAMPLE
    return ChipPicture(picture.rgb[::step, ::step].copy(), picture.valid[::step, ::step].copy(),
                       picture.transform, picture.crs)


def _overlay_name(observation: Observation, scene: Scene) -> str:
    return f"{observation.acquired:%Y-%m-%d %H:%M} UTC, {scene.sensor}"


def _overlay_description(observation: Observation, scene: Scene) -> str:
    facts = [f"{scene.sensor}, {scene.gsd:.2g} m per pixel"]
    if scene.off_nadir is not None:
        facts.append(f"off-nadir {scene.off_nadir:.0f}°")
    facts.append(f"{100 * observation.valid_fraction:.0f} % of the site seen (grey: masked or no data)")
    if scene.cloud_cover is not None:
        facts.append(f"scene cloud cover {100 * scene.cloud_cover:.0f} %")
    credit = " · ".join(x for x in (scene.attribution, scene.license) if x)
    if credit:
        facts.append(f"credit: {credit}")
    return "<p>" + "; ".join(escape(f) for f in facts) + "</p>"


def _ground_overlay(
    observation: Observation,
    scene: Scene,
    overlay: Overlay,
    href: str,
    span: tuple[datetime, datetime | None],
) -> str:
    box = "".join(
        f"<{side}>{value:.{exports.COORDINATE_DECIMALS}f}</{side}>"
        for side, value in (
            ("north", overlay.north), ("south", overlay.south), ("east", overlay.east), ("west", overlay.west)
        )
    )
    return (
        f"<GroundOverlay><name>{escape(_overlay_name(observation, scene))}</name>"
        f"<description>{escape(_overlay_description(observation, scene))}</description>"
        f"{exports.kml_time_span(*span)}<Icon><href>{escape(href)}</href></Icon>"
        f"<LatLonBox>{box}</LatLonBox></GroundOverlay>\n"
    )


def _detection_placemarks(
    ws: Store, site: Site, observation: Observation, span: tuple[datetime, datetime | None]
) -> Iterator[str]:
    for detection in ws.detections(observation_id=observation.id):
        properties = serialize.detection(detection, site.utm_epsg, serialize.GeometryCrs.GRID)
        properties.pop("geometry")
        yield exports.kml_placemark(
            f"{class_words(detection.class_name, 1)} {detection.score:.2f}, {observation.acquired:%Y-%m-%d}",
            serialize.grid_to_wgs84(detection.geometry, site.utm_epsg),
            properties,
            time=exports.kml_time_span(*span),
            style=exports.DETECTION_STYLE,
        )


def write_site_kmz(
    ws: Store,
    site: Site,
    target: BinaryIO,
    *,
    base_url: str,
    since: datetime | None = None,
    until: datetime | None = None,
    max_size: int = MAX_OVERLAY_PIXELS,
) -> KmzSummary:
    """Write ``site``'s observations (as overlays), alerts and detections as a KMZ to ``target``.

    ``base_url`` is the dashboard the alerts link back to; ``since``/``until`` bound the
    observations and alerts included (inclusive).
    """
    observations = ws.observations(site.id, since=since, until=until)
    # Spans come from the whole history: an image stays the latest look until the next one, even
    # when that one lies beyond ``until``.
    spans = exports.observation_spans(ws.observations(site.id))
    stretch = shared_stretch([_thinned(load_chip_picture(ws.chip_path(o))) for o in observations])
    alerts = ws.alerts(site_id=site.id, since=since, until=until)
    rows = exports.alert_exports(
        alerts, {site.id: site}, {a.id: ws.assessments(a.id) for a in alerts}, base_url
    )
    images: list[tuple[str, bytes]] = []
    overlays: list[str] = []
    detection_folders: list[str] = []
    detections = 0
    for observation in observations:
        scene = ws.scene(observation.scene_id)
        overlay = lonlat_overlay(load_chip_picture(ws.chip_path(observation)), stretch, max_size=max_size)
        href = f"images/{_safe_name(observation.id)}.jpg"
        buffer = io.BytesIO()
        overlay.image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        images.append((href, buffer.getvalue()))
        span = spans[observation.id]
        overlays.append(_ground_overlay(observation, scene, overlay, href, span))
        placemarks = list(_detection_placemarks(ws, site, observation, span))
        detections += len(placemarks)
        if placemarks:
            folder = exports.kml_folder(_overlay_name(observation, scene), placemarks)
            detection_folders.append("".join(folder))
    zones = [
        exports.kml_placemark(zone.name, zone.geometry, {"zone_id": zone.id, "kind": zone.kind.value},
                              style=exports.OBSERVATION_STYLE)
        for zone in site.zones
    ]
    parts = [
        *exports.kml_folder("Images (play them with the time slider)", overlays),
        *exports.kml_folder("Alerts", (row.placemark() for row in rows)),
        *exports.kml_folder("Detections", detection_folders),
        *exports.kml_folder("Zones", zones),
    ]
    document = "".join(exports.kml_chunks(f"{site.name}: sitewatch history", parts))
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Google Earth opens the archive's first .kml, by convention doc.kml at the root.
        archive.writestr(KMZ_DOCUMENT, document)
        for href, jpeg in images:
            archive.writestr(href, jpeg, compress_type=zipfile.ZIP_STORED)  # JPEG is compressed already
    return KmzSummary(
        site_id=site.id,
        overlays=len(overlays),
        alerts=len(rows),
        detections=detections,
        first=observations[0].acquired if observations else None,
        last=observations[-1].acquired if observations else None,
    )


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
