"""Zone activity indicators from what the detectors found in one observation.

An indicator is one number per zone and observation (changed area, vehicle count, ...)
that the monitor compares with the zone's own history. Two rules matter downstream:

* "not observed" is ``value=None`` (too little of the zone visible), never zero, so a
  cloudy day cannot look like a quiet day;
* every value carries a quality weight in 0..1 from the zone's visible fraction, the
  image's ground sample distance against the site grid's, and haze, so doubtful
  measurements count for less.

The indicators' names and specs (:mod:`sitewatch.core.indicators`) are the same for every layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.indicators import (
    BRIGHTENED_AREA,
    CHANGED_AREA,
    CHANGED_OBJECTS,
    DARKENED_AREA,
    NDVI_MEAN,
    NEW_STRUCTURE_AREA,
    REMOVED_STRUCTURE_AREA,
    count_indicator,
    is_detection_count,
)
from sitewatch.core.types import ChangeRegion, Detection, IndicatorValue, Observation, Site
from sitewatch.imagery.grid import SiteGrid, rasterize_polygon

SITE_ZONE_ID = "site"
"""Zone id used for a site that declares no zones: the whole site grid."""

STRUCTURE_CLASSES = frozenset({"building", "structure", "storage_tank"})
"""Detection classes whose appearance or removal counts as structure change. Not cranes: a crane is
equipment that comes and goes (counted by ``count_crane``); its box read as new structure area too
would count the same crane twice, and a crane driven away would read as a building taken down."""


# --- zone masks on the site grid ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneMasks:
    """Boolean masks of a site's zones on its grid, and the grid's geometry."""

    zone_ids: tuple[str, ...]
    masks: np.ndarray
    """(zones, rows, cols) bool."""
    transform: Affine
    """Pixel → site-grid CRS (metres)."""
    zone_area_m2: tuple[float, ...]
    """Area of each zone on the grid (its pixel count times the pixel area)."""

    @property
    def pixel_area_m2(self) -> float:
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.masks.shape[1]), int(self.masks.shape[2]))


def zone_masks(site: Site, grid: SiteGrid) -> ZoneMasks:
    """Rasterise ``site``'s zones onto ``grid`` (pixel centres inside each outline).

    A site without zones gets one zone, ``"site"``, covering its outline.
    """
    outlines: list[tuple[str, Polygon | MultiPolygon]] = (
        [(zone.id, zone.geometry) for zone in site.zones] if site.zones else [(SITE_ZONE_ID, site.geometry)]
    )
    masks = np.stack([rasterize_polygon(grid, outline) for _, outline in outlines])
    empty = [zone_id for (zone_id, _), mask in zip(outlines, masks, strict=True) if not mask.any()]
    if empty:
        raise UnsupportedInputError(
            f"site {site.id!r}: zone(s) {', '.join(empty)} cover no pixel of the {grid.height}x{grid.width} "
            "site grid; check the zone outlines in the site catalog"
        )
    pixel_area = grid.gsd * grid.gsd
    return ZoneMasks(
        zone_ids=tuple(zone_id for zone_id, _ in outlines),
        masks=masks,
        transform=grid.transform,
        zone_area_m2=tuple(float(mask.sum()) * pixel_area for mask in masks),
    )


# --- evidence and quality ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservationEvidence:
    """What the imagery and the detectors said about one observation, on the site grid.

    ``None`` in a field means that step did not run, so its indicators are not produced
    (which is different from an indicator that was measured and is zero).
    """

    valid: np.ndarray
    """(rows, cols) bool: pixels observed (not nodata, not cloud)."""
    gsd: float
    """The source image's ground sample distance in metres."""
    change_probability: np.ndarray | None = None
    """(rows, cols) probability 0..1 that a pixel changed against the reference."""
    change_regions: Sequence[ChangeRegion] | None = None
    detections: Sequence[Detection] | None = None
    detection_classes: Sequence[str] = ()
    """Every class the detector looked for: each gets a count in every visible zone, zero when
    none was found (without it, only the classes found somewhere in the image are counted)."""
    reference_detections: Sequence[Detection] | None = None
    brightness_change: np.ndarray | None = None
    """(rows, cols) signed brightness difference observation − reference, any unit."""
    bands: Mapping[str, np.ndarray] | None = None
    """Band name (lower case: red, nir, ...) → (rows, cols) reflectance of the observation."""
    haze: float | None = None
    """0..1 haze or thin-cloud fraction where known (e.g. the scene's cloud cover)."""
    off_nadir: float | None = None
    """Off-nadir view angle of the image in degrees, where known."""


MIN_VISIBLE_FOR_COUNTS = 0.1
"""Share of a zone that must be visible for its object counts to be observed. Counts of
detected objects survive a gap in the clouds (a surge of trucks still shows, scaled up
from the clear part), where pixel change does not: cloud edges, haze and cloud shadows
make change of their own, so change indicators keep the workspace's larger floor
(``min_valid_fraction``, 0.3). Below 0.1 the estimate rests on too few pixels, and its
quality weight (√0.1 ≈ 0.32) would meet the baselines' own 0.3 floor anyway."""

VIEW_HALF_WEIGHT_DEG = 10.0
"""Off-nadir angle at which a measurement counts half: tall structures lean by their height times
tan(angle), a different way on every date, and the lean shows as change along their walls."""


def quality_weight(visible_fraction: float, *, gsd: float, site_gsd: float, haze: float | None,
                   off_nadir: float | None = None) -> float:
    """Weight 0..1 of a zone measurement.

    Visible fraction enters as its square root (a value estimated from a fraction f of the
    zone has a standard error growing as 1/√f); an image
    coarser than the site grid loses weight by the ratio of GSDs (small objects vanish);
    haze removes its own fraction; an oblique view weighs ``1 / (1 + (tan θ / tan 10°)²)``.
    """
    if not (math.isfinite(gsd) and gsd > 0 and math.isfinite(site_gsd) and site_gsd > 0):
        raise UnsupportedInputError(f"GSDs must be positive metres, got image {gsd!r} and site {site_gsd!r}")
    resolution = min(1.0, site_gsd / gsd)
    clarity = 1.0 - min(1.0, max(0.0, haze)) if haze is not None else 1.0
    view = 1.0
    if off_nadir is not None and math.isfinite(off_nadir):
        lean = math.tan(math.radians(min(abs(off_nadir), 89.0))) / math.tan(
            math.radians(VIEW_HALF_WEIGHT_DEG))
        view = 1.0 / (1.0 + lean * lean)
    return float(math.sqrt(min(1.0, max(0.0, visible_fraction))) * resolution * clarity * view)


def _zone_at(row: int, col: int, masks: ZoneMasks) -> str | None:
    """The zone holding grid pixel (row, col): the first listed on overlaps, None outside all."""
    rows, cols = masks.shape
    if not (0 <= row < rows and 0 <= col < cols):
        return None
    for zone_id, mask in zip(masks.zone_ids, masks.masks, strict=True):
        if mask[row, col]:
            return zone_id
    return None


def _zone_of(geometry: BaseGeometry, masks: ZoneMasks) -> str | None:
    col, row = ~masks.transform * (geometry.centroid.x, geometry.centroid.y)
    return _zone_at(math.floor(row), math.floor(col), masks)


def _structure_area(current: Sequence[Detection], other: Sequence[Detection]) -> dict[str | None, float]:
    """Area of structure detections in ``current`` that overlap nothing in ``other``, per zone."""
    others = [d.geometry for d in other if d.class_name in STRUCTURE_CLASSES]
    areas: dict[str | None, float] = {}
    for detection in current:
        if detection.class_name not in STRUCTURE_CLASSES:
            continue
        if any(detection.geometry.intersects(g) for g in others):
            continue
        areas[detection.zone_id] = areas.get(detection.zone_id, 0.0) + float(detection.geometry.area)
    return areas


OBJECT_AREA_M2 = (3.0, 150.0)
"""Area range of a patch of change that counts as one object (a car to a rail car with its shadow)."""
OBJECT_EXTENT_M = 30.0
"""Longest side of an object's bounding box; longer patches are slivers along walls and shadows
(a tall building leans and its shadow swings from date to date) or whole structures."""
OBJECT_MAX_GSD_M = 2.0
"""Coarsest pixel (of the image or the site grid) at which ``changed_objects`` is measured: a car
(about 4.5 × 1.8 m) still covers two pixels at 2 m. At 5 m a vehicle is a third of a pixel, and
a "vehicle-sized patch of change" is one or a few pixels of noise or of a field's edge, so the
indicator is not observed there (not zero)."""


def _changed_objects(changed: np.ndarray, masks: ZoneMasks) -> dict[str | None, int]:
    """Vehicle-sized connected patches of ``changed``, counted in the zone of their centre."""
    labels, count = ndimage.label(changed, structure=np.ones((3, 3), bool))
    if count == 0:
        return {}
    pixel_area = masks.pixel_area_m2
    gsd = math.sqrt(pixel_area)
    sizes = np.bincount(labels.ravel())
    counts: dict[str | None, int] = {}
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        area = sizes[index] * pixel_area
        extent = max(box[0].stop - box[0].start, box[1].stop - box[1].start) * gsd
        if not (OBJECT_AREA_M2[0] <= area <= OBJECT_AREA_M2[1] and extent <= OBJECT_EXTENT_M):
            continue
        zone = _zone_at((box[0].start + box[0].stop) // 2, (box[1].start + box[1].stop) // 2, masks)
        counts[zone] = counts.get(zone, 0) + 1
    return counts


def extract_indicators(
    site: Site,
    observation: Observation,
    masks: ZoneMasks,
    evidence: ObservationEvidence,
    *,
    min_visible_fraction: float = 0.3,
    min_visible_for_counts: float = MIN_VISIBLE_FOR_COUNTS,
    change_threshold: float = 0.5,
) -> list[IndicatorValue]:
    """Indicators of every zone of ``site`` in ``observation``.

    A zone with less than ``min_visible_fraction`` of its pixels visible gets every
    indicator as not observed (``value=None``, quality 0), except the detection counts
    (``count_<class>``), which need only ``min_visible_for_counts`` (see
    :data:`MIN_VISIBLE_FOR_COUNTS`). Areas and counts are estimated for the whole zone
    from its visible part (scaled by the inverse of the visible share), and the quality
    weight says how much less such an estimate is worth.
    """
    if evidence.valid.shape != masks.shape:
        raise UnsupportedInputError(
            f"observation {observation.id}: valid mask is {evidence.valid.shape}, "
            f"site grid is {masks.shape}; extract the chip on the site grid first"
        )
    for name, layer in (("change_probability", evidence.change_probability),
                        ("brightness_change", evidence.brightness_change)):
        if layer is not None and layer.shape != masks.shape:
            raise UnsupportedInputError(
                f"observation {observation.id}: {name} is {layer.shape}, site grid is {masks.shape}"
            )
    per_zone: dict[str, dict[str, float]] = {zone_id: {} for zone_id in masks.zone_ids}
    objects: dict[str | None, int] | None = None
    visible: dict[str, float] = {}
    pixel_area = masks.pixel_area_m2
    changed = None
    if evidence.change_probability is not None:
        changed = (evidence.change_probability >= change_threshold) & evidence.valid
        if max(evidence.gsd, math.sqrt(pixel_area)) <= OBJECT_MAX_GSD_M:
            objects = _changed_objects(changed, masks)
    for zone_id, mask, zone_area in zip(masks.zone_ids, masks.masks, masks.zone_area_m2, strict=True):
        seen = mask & evidence.valid
        n_seen = int(seen.sum())
        visible[zone_id] = n_seen / max(1, int(mask.sum()))
        if n_seen == 0:
            continue
        values = per_zone[zone_id]
        scale_up = zone_area / (n_seen * pixel_area)  # estimate for the whole zone from its visible part
        if changed is not None and evidence.change_probability is not None:
            zone_changed = changed & mask
            values[CHANGED_AREA.name] = float(zone_changed.sum()) * pixel_area * scale_up
            if objects is not None:
                values[CHANGED_OBJECTS.name] = objects.get(zone_id, 0) * scale_up
            if evidence.brightness_change is not None:
                brighter = zone_changed & (evidence.brightness_change > 0)
                darker = zone_changed & (evidence.brightness_change < 0)
                values[BRIGHTENED_AREA.name] = float(brighter.sum()) * pixel_area * scale_up
                values[DARKENED_AREA.name] = float(darker.sum()) * pixel_area * scale_up
        if evidence.bands is not None and {"red", "nir"} <= set(evidence.bands):
            red = evidence.bands["red"][seen].astype(np.float64)
            nir = evidence.bands["nir"][seen].astype(np.float64)
            total = red + nir
            ok = total > 0
            if ok.any():
                values[NDVI_MEAN.name] = float(((nir[ok] - red[ok]) / total[ok]).mean())
    if evidence.change_probability is None and evidence.change_regions is not None:
        for zone_id in masks.zone_ids:
            if visible[zone_id] > 0:
                per_zone[zone_id][CHANGED_AREA.name] = 0.0
        for region in evidence.change_regions:
            region_zone = region.zone_id or _zone_of(region.geometry, masks)
            if region_zone in per_zone and CHANGED_AREA.name in per_zone[region_zone]:
                per_zone[region_zone][CHANGED_AREA.name] += region.area_m2
    if evidence.detections is not None:
        classes = sorted({d.class_name for d in evidence.detections} | set(evidence.detection_classes))
        for zone_id in masks.zone_ids:
            if visible[zone_id] > 0:
                for class_name in classes:
                    per_zone[zone_id][count_indicator(class_name)] = 0.0
        for detection in evidence.detections:
            detection_zone = detection.zone_id or _zone_of(detection.geometry, masks)
            name = count_indicator(detection.class_name)
            if detection_zone in per_zone and name in per_zone[detection_zone]:
                # Like areas, a count from a partial view stands for the whole zone: 1 / visible each.
                per_zone[detection_zone][name] += 1.0 / visible[detection_zone]
        # Structure change is measured only by a detector that looks for structures: with none,
        # new and removed structure area are not observed (not zero), and the hypotheses weigh
        # construction and dismantling on what was observed (cranes, trucks, brightened ground).
        looks_for_structures = bool(STRUCTURE_CLASSES & set(evidence.detection_classes)) or any(
            d.class_name in STRUCTURE_CLASSES for d in evidence.detections)
        if evidence.reference_detections is not None and looks_for_structures:
            new = _structure_area(evidence.detections, evidence.reference_detections)
            removed = _structure_area(evidence.reference_detections, evidence.detections)
            for zone_id in masks.zone_ids:
                if visible[zone_id] > 0:
                    per_zone[zone_id][NEW_STRUCTURE_AREA.name] = new.get(zone_id, 0.0)
                    per_zone[zone_id][REMOVED_STRUCTURE_AREA.name] = removed.get(zone_id, 0.0)
    names = sorted({name for values in per_zone.values() for name in values})
    count_floor = min(min_visible_for_counts, min_visible_fraction)
    results: list[IndicatorValue] = []
    for zone_id in masks.zone_ids:
        fraction = visible[zone_id]
        quality = 0.0
        if fraction >= count_floor:
            quality = quality_weight(fraction, gsd=evidence.gsd, site_gsd=site.gsd, haze=evidence.haze,
                                     off_nadir=evidence.off_nadir)
        for name in names:
            floor = count_floor if is_detection_count(name) else min_visible_fraction
            value = per_zone[zone_id].get(name) if fraction >= floor else None
            results.append(IndicatorValue(
                observation_id=observation.id,
                site_id=site.id,
                zone_id=zone_id,
                name=name,
                value=value,
                quality=quality if value is not None else 0.0,
                acquired=observation.acquired,
            ))
    return results

