"""Domain values to table rows and back: the only place that knows both shapes.

Geometries travel as WKB with their bounding box; enums as their string values; tuples
as JSON lists. Reading a row back builds the frozen domain value, so a corrupted row fails
its validation instead of leaking a half-valid object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from sitewatch.core.types import (
    Alert,
    AlertState,
    Assessment,
    ChangeRegion,
    Confidence,
    Detection,
    Hypothesis,
    IndicatorValue,
    Likelihood,
    Observation,
    Scene,
    Site,
    Zone,
    ZoneKind,
)
from sitewatch.store.records import AlertEvent

Row = Mapping[Any, Any]
"""A result row (SQLAlchemy ``RowMapping``) or a plain dict."""


def geometry_columns(geometry: BaseGeometry, *, column: str = "geometry_wkb") -> dict[str, Any]:
    minx, miny, maxx, maxy = geometry.bounds
    return {column: shapely.to_wkb(geometry), "min_x": minx, "min_y": miny, "max_x": maxx, "max_y": maxy}


def geometry_from(blob: bytes) -> Any:
    return shapely.from_wkb(bytes(blob))


# --- sites ----------------------------------------------------------------------------------------


def site_row(site: Site, updated: datetime) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "country": site.country,
        "category": site.category,
        "aliases": list(site.aliases),
        "gsd": site.gsd,
        "approximate": site.approximate,
        "notes": site.notes,
        "references": list(site.references),
        **geometry_columns(site.geometry),
        "updated": updated,
    }


def zone_rows(site: Site) -> list[dict[str, Any]]:
    return [
        {"site_id": site.id, "id": zone.id, "position": position, "name": zone.name,
         "kind": zone.kind.value, **geometry_columns(zone.geometry)}
        for position, zone in enumerate(site.zones)
    ]


def site_from(row: Row, zone_rows: Sequence[Row]) -> Site:
    zones = tuple(
        Zone(id=z["id"], name=z["name"], kind=ZoneKind(z["kind"]), geometry=geometry_from(z["geometry_wkb"]))
        for z in sorted(zone_rows, key=lambda z: z["position"])
    )
    return Site(
        id=row["id"],
        name=row["name"],
        country=row["country"],
        category=row["category"],
        geometry=geometry_from(row["geometry_wkb"]),
        zones=zones,
        aliases=tuple(row["aliases"]),
        gsd=row["gsd"],
        approximate=bool(row["approximate"]),
        notes=row["notes"],
        references=tuple(row["references"]),
    )


# --- scenes and observations ---------------------------------------------------------------------


def scene_row(scene: Scene, ingested: datetime) -> dict[str, Any]:
    return {
        "id": scene.id,
        "uri": scene.uri,
        "sensor": scene.sensor,
        "acquired": scene.acquired,
        "gsd": scene.gsd,
        "crs": scene.crs,
        **geometry_columns(scene.footprint, column="footprint_wkb"),
        "bands": list(scene.bands),
        "width": scene.width,
        "height": scene.height,
        "checksum": scene.checksum,
        "cloud_cover": scene.cloud_cover,
        "off_nadir": scene.off_nadir,
        "license": scene.license,
        "attribution": scene.attribution,
        "ingested": ingested,
        "sun_elevation": scene.sun_elevation,
        "sun_azimuth": scene.sun_azimuth,
        "stac_item": scene.stac_item,
        "stac_collection": scene.stac_collection,
        "stac_href": scene.stac_href,
        "stac_asset": scene.stac_asset,
    }


def scene_from(row: Row) -> Scene:
    return Scene(
        id=row["id"],
        uri=row["uri"],
        sensor=row["sensor"],
        acquired=row["acquired"],
        gsd=row["gsd"],
        crs=row["crs"],
        footprint=geometry_from(row["footprint_wkb"]),
        bands=tuple(row["bands"]),
        width=row["width"],
        height=row["height"],
        checksum=row["checksum"],
        cloud_cover=row["cloud_cover"],
        off_nadir=row["off_nadir"],
        license=row["license"],
        attribution=row["attribution"],
        sun_elevation=row["sun_elevation"],
        sun_azimuth=row["sun_azimuth"],
        stac_item=row["stac_item"],
        stac_collection=row["stac_collection"],
        stac_href=row["stac_href"],
        stac_asset=row["stac_asset"],
    )


def observation_row(observation: Observation) -> dict[str, Any]:
    rows, cols = observation.shift
    return {
        "id": observation.id,
        "site_id": observation.site_id,
        "scene_id": observation.scene_id,
        "acquired": observation.acquired,
        "chip_path": observation.chip_path,
        "valid_fraction": observation.valid_fraction,
        "shift_rows": float(rows),
        "shift_cols": float(cols),
        "shift_confidence": observation.shift_confidence,
        "chip_sha256": observation.chip_sha256,
        "problem": observation.problem,
    }


def observation_from(row: Row) -> Observation:
    return Observation(
        id=row["id"],
        site_id=row["site_id"],
        scene_id=row["scene_id"],
        acquired=row["acquired"],
        chip_path=row["chip_path"],
        valid_fraction=row["valid_fraction"],
        shift=(row["shift_rows"], row["shift_cols"]),
        shift_confidence=row["shift_confidence"],
        chip_sha256=row["chip_sha256"],
        problem=row["problem"],
    )


# --- analytics outputs -----------------------------------------------------------------------------


def detection_row(detection: Detection, position: int) -> dict[str, Any]:
    return {
        "observation_id": detection.observation_id,
        "position": position,
        "class_name": detection.class_name,
        "score": detection.score,
        **geometry_columns(detection.geometry),
        "zone_id": detection.zone_id,
        "detector": detection.detector,
    }


def detection_from(row: Row) -> Detection:
    return Detection(
        observation_id=row["observation_id"],
        class_name=row["class_name"],
        score=row["score"],
        geometry=geometry_from(row["geometry_wkb"]),
        zone_id=row["zone_id"],
        detector=row["detector"],
    )


def change_region_row(region: ChangeRegion, position: int) -> dict[str, Any]:
    return {
        "observation_id": region.observation_id,
        "position": position,
        "reference_observation_id": region.reference_observation_id,
        **geometry_columns(region.geometry),
        "area_m2": region.area_m2,
        "mean_probability": region.mean_probability,
        "zone_id": region.zone_id,
        "detector": region.detector,
    }


def change_region_from(row: Row) -> ChangeRegion:
    return ChangeRegion(
        observation_id=row["observation_id"],
        reference_observation_id=row["reference_observation_id"],
        geometry=geometry_from(row["geometry_wkb"]),
        area_m2=row["area_m2"],
        mean_probability=row["mean_probability"],
        zone_id=row["zone_id"],
        detector=row["detector"],
    )


def indicator_row(value: IndicatorValue) -> dict[str, Any]:
    return {
        "observation_id": value.observation_id,
        "site_id": value.site_id,
        "zone_id": value.zone_id,
        "name": value.name,
        "value": value.value,
        "quality": value.quality,
        "acquired": value.acquired,
    }


def indicator_from(row: Row) -> IndicatorValue:
    return IndicatorValue(
        observation_id=row["observation_id"],
        site_id=row["site_id"],
        zone_id=row["zone_id"],
        name=row["name"],
        value=row["value"],
        quality=row["quality"],
        acquired=row["acquired"],
    )


# --- alerts -----------------------------------------------------------------------------------------


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "site_id": alert.site_id,
        "observation_id": alert.observation_id,
        "acquired": alert.acquired,
        "created": alert.created,
        "indicator": alert.indicator,
        "value": alert.value,
        "baseline": alert.baseline,
        "score": alert.score,
        "explanation": alert.explanation,
        "zone_id": alert.zone_id,
        "p_value": alert.p_value,
        "state": alert.state.value,
        "hypotheses": [hypothesis_dict(h) for h in alert.hypotheses],
    }


def hypothesis_dict(value: Hypothesis) -> dict[str, Any]:
    return {"pattern": value.pattern, "label": value.label, "benign": value.benign,
            "likelihood_ratio": value.likelihood_ratio, "probability": value.probability}


def hypothesis_from(item: Mapping[str, Any]) -> Hypothesis:
    return Hypothesis(pattern=item["pattern"], label=item["label"], benign=item["benign"],
                      likelihood_ratio=item["likelihood_ratio"], probability=item["probability"])


def alert_from(row: Row) -> Alert:
    return Alert(
        id=row["id"],
        site_id=row["site_id"],
        observation_id=row["observation_id"],
        acquired=row["acquired"],
        created=row["created"],
        indicator=row["indicator"],
        value=row["value"],
        baseline=row["baseline"],
        score=row["score"],
        explanation=row["explanation"],
        zone_id=row["zone_id"],
        p_value=row["p_value"],
        state=AlertState(row["state"]),
        hypotheses=tuple(hypothesis_from(item) for item in row["hypotheses"] or ()),
    )


def alert_event_from(row: Row) -> AlertEvent:
    return AlertEvent(state=AlertState(row["state"]), who=row["who"], when=row["at"], comment=row["comment"])


def assessment_row(assessment: Assessment) -> dict[str, Any]:
    return {
        "alert_id": assessment.alert_id,
        "author": assessment.author,
        "created": assessment.created,
        "judgement": assessment.judgement.value,
        "confidence": assessment.confidence.value,
        "text": assessment.text,
        "hypotheses": list(assessment.hypotheses),
        "pick": assessment.pick,
    }


def assessment_from(row: Row) -> Assessment:
    return Assessment(
        alert_id=row["alert_id"],
        author=row["author"],
        created=row["created"],
        judgement=Likelihood(row["judgement"]),
        confidence=Confidence(row["confidence"]),
        text=row["text"],
        hypotheses=tuple(row["hypotheses"]),
        pick=row["pick"] or "",
    )
