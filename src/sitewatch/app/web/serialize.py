"""Domain values to JSON-ready dicts, at the edge of the app (the library keeps frozen types).

Detections and change regions live in their site grid's CRS (metres, local UTM);
the API gives them as WGS 84 longitude/latitude (RFC 7946) unless asked for the
grid, which the before/after viewer uses to draw them on the chip's pixels.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from sitewatch.core.types import (
    Alert,
    Assessment,
    ChangeRegion,
    Detection,
    Hypothesis,
    IndicatorValue,
    Observation,
    Scene,
    Site,
    Zone,
)
from sitewatch.imagery.acquisition import split_sensor
from sitewatch.monitor.policy import top_priority


class GeometryCrs(StrEnum):
    """The coordinate system a response gives analytics geometries in."""

    WGS84 = "wgs84"
    GRID = "grid"


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def geojson(geometry: BaseGeometry) -> dict[str, Any]:
    return dict(mapping(geometry))


@lru_cache(maxsize=64)
def _to_wgs84(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


def grid_to_wgs84(geometry: BaseGeometry, epsg: int) -> BaseGeometry:
    """``geometry`` from the site grid's UTM zone to longitude/latitude."""
    transformer = _to_wgs84(epsg)
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def grids_to_wgs84(geometries: list[BaseGeometry], epsg: int) -> list[BaseGeometry]:
    """Many geometries to longitude/latitude in one projection call (a page of detections)."""
    if not geometries:
        return []
    transformer = _to_wgs84(epsg)
    moved = shapely.transform(
        np.asarray(geometries, dtype=object),
        lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])),
    )
    return list(moved)


def detections(values: list[Detection], epsg: int, crs: GeometryCrs) -> list[dict[str, Any]]:
    """A page of detections, their geometries projected together."""
    shapes = [d.geometry for d in values]
    if crs is GeometryCrs.WGS84:
        shapes = grids_to_wgs84(shapes, epsg)
    return [
        {**detection(d, epsg, GeometryCrs.GRID), "geometry": geojson(shape)}
        for d, shape in zip(values, shapes, strict=True)
    ]


def analytic_geometry(geometry: BaseGeometry, epsg: int, crs: GeometryCrs) -> dict[str, Any]:
    return geojson(geometry if crs is GeometryCrs.GRID else grid_to_wgs84(geometry, epsg))


def zone(value: Zone) -> dict[str, Any]:
    return {"id": value.id, "name": value.name, "kind": value.kind.value, "geometry": geojson(value.geometry)}


def site(value: Site, *, alert_state: str | None = None, open_alerts: int = 0) -> dict[str, Any]:
    centre = value.geometry.centroid
    return {
        "id": value.id,
        "name": value.name,
        "country": value.country,
        "category": value.category,
        "aliases": list(value.aliases),
        "gsd": value.gsd,
        "approximate": value.approximate,
        "notes": value.notes,
        "references": list(value.references),
        "utm_epsg": value.utm_epsg,
        "centre": [centre.x, centre.y],
        "geometry": geojson(value.geometry),
        "zones": [zone(z) for z in value.zones],
        "alert_state": alert_state,
        "open_alerts": open_alerts,
    }


def scene(value: Scene) -> dict[str, Any]:
    platform, instruments = split_sensor(value.sensor)
    return {
        "id": value.id,
        "uri": value.uri,
        "sensor": value.sensor,
        "acquired": iso(value.acquired),
        "gsd": value.gsd,
        "crs": value.crs,
        "footprint": geojson(value.footprint),
        "bands": list(value.bands),
        "width": value.width,
        "height": value.height,
        "checksum": value.checksum,
        "cloud_cover": value.cloud_cover,
        "off_nadir": value.off_nadir,
        "license": value.license,
        "attribution": value.attribution,
        "platform": platform,
        "instruments": list(instruments),
        "sun_elevation": value.sun_elevation,
        "sun_azimuth": value.sun_azimuth,
        "stac_item": value.stac_item,
        "stac_collection": value.stac_collection,
        "stac_href": value.stac_href,
        "stac_asset": value.stac_asset,
    }


def observation(value: Observation) -> dict[str, Any]:
    return {
        "id": value.id,
        "site_id": value.site_id,
        "scene_id": value.scene_id,
        "acquired": iso(value.acquired),
        "valid_fraction": value.valid_fraction,
        "shift": list(value.shift),
        "shift_confidence": value.shift_confidence,
        "problem": value.problem,
        "tiles": f"/api/observations/{value.id}/tiles/{{z}}/{{x}}/{{y}}.png",
        "preview": f"/api/observations/{value.id}/preview.png",
    }


def detection(value: Detection, epsg: int, crs: GeometryCrs) -> dict[str, Any]:
    return {
        "observation_id": value.observation_id,
        "class_name": value.class_name,
        "score": value.score,
        "zone_id": value.zone_id,
        "detector": value.detector,
        "geometry": analytic_geometry(value.geometry, epsg, crs),
    }


def change_region(value: ChangeRegion, epsg: int, crs: GeometryCrs) -> dict[str, Any]:
    return {
        "observation_id": value.observation_id,
        "reference_observation_id": value.reference_observation_id,
        "area_m2": value.area_m2,
        "mean_probability": value.mean_probability,
        "zone_id": value.zone_id,
        "detector": value.detector,
        "geometry": analytic_geometry(value.geometry, epsg, crs),
    }


def indicator(value: IndicatorValue) -> dict[str, Any]:
    return {
        "observation_id": value.observation_id,
        "site_id": value.site_id,
        "zone_id": value.zone_id,
        "name": value.name,
        "value": value.value,
        "quality": value.quality,
        "acquired": iso(value.acquired),
    }


def alert(value: Alert) -> dict[str, Any]:
    return {
        "id": value.id,
        "site_id": value.site_id,
        "observation_id": value.observation_id,
        "acquired": iso(value.acquired),
        "created": iso(value.created),
        "indicator": value.indicator,
        "zone_id": value.zone_id,
        "value": value.value,
        "baseline": value.baseline,
        "score": value.score,
        "p_value": value.p_value,
        "explanation": value.explanation,
        "state": value.state.value,
        "hypotheses": [hypothesis(h) for h in value.hypotheses],
        "top_priority": top_priority(value.hypotheses),
    }


def hypothesis(value: Hypothesis) -> dict[str, Any]:
    return value.as_dict()


def assessment(value: Assessment) -> dict[str, Any]:
    return {
        "alert_id": value.alert_id,
        "author": value.author,
        "created": iso(value.created),
        "judgement": value.judgement.value,
        "confidence": value.confidence.value,
        "text": value.text,
        "hypotheses": list(value.hypotheses),
        "pick": value.pick,
    }


def alert_event(value: Any) -> dict[str, Any]:
    """An ``AlertEvent`` of the store: (state, who, when, comment)."""
    state = value.state.value if isinstance(value.state, StrEnum) else str(value.state)
    return {"state": state, "who": value.who, "when": iso(value.when), "comment": value.comment}
