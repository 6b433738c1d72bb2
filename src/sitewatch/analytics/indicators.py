"""Zone activity indicators from what the detectors found in one observation.

An indicator is one number per zone and observation (changed area, vehicle count, ...)
that the monitor compares with the zone's own history. Two rules matter downstream:

* "not observed" is ``value=None`` (too little of the zone visible), never zero, so a
  cloudy day cannot look like a quiet day;
* every value carries a quality weight in 0..1 from the zone's visible fraction, the
  image's ground sample distance against the site grid's, and haze, so doubtful
  measurements count for less.

Each indicator name maps to an :class:`IndicatorSpec` saying which direction is
"more activity" and the smallest meaningful difference, which the baselines need.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from affine import Affine
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import ChangeRegion, Detection, IndicatorValue, Observation, Site
from sitewatch.imagery.grid import SiteGrid, rasterize_polygon

SITE_ZONE_ID = "site"
"""Zone id used for a site that declares no zones: the whole site grid."""

STRUCTURE_CLASSES = frozenset({"building", "structure", "storage_tank", "crane"})
"""Detection classes whose appearance or removal counts as structure change."""


class IndicatorKind(StrEnum):
    """What an indicator measures; decides how its baseline spread is floored."""

    COUNT = "count"
    AREA = "area"
    FRACTION = "fraction"
    INDEX = "index"


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """How the monitor reads one indicator."""

    name: str
    kind: IndicatorKind
    direction: int
    """+1 when larger values mean more activity, -1 when smaller do, 0 for either way."""
    floor: float
    """Smallest spread worth alerting on, in the indicator's unit (keeps a zero-variance
    history from turning any tiny wobble into an alert)."""
    unit: str
    label: str
    """Words for the analyst sentence, e.g. "changed area"."""
    sequential: bool = True
    """Whether the slow-build (CUSUM) test watches it; not for pixel areas, which drift with the
    season by construction (shadows lengthen all autumn, so changed and darkened areas creep
    up), while counts of objects do not."""


_FIXED_SPECS: dict[str, IndicatorSpec] = {
    spec.name: spec
    for spec in (
        IndicatorSpec("changed_area_m2", IndicatorKind.AREA, +1, 50.0, "m²", "changed area",
                      sequential=False),
        IndicatorSpec("brightened_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                      "area that changed and brightened (new surfaces)", sequential=False),
        IndicatorSpec("darkened_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                      "area that changed and darkened (removed or shadowed surfaces)", sequential=False),
        IndicatorSpec("new_structure_area_m2", IndicatorKind.AREA, +1, 50.0, "m²", "new structure area"),
        IndicatorSpec("removed_structure_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                      "removed structure area"),
        IndicatorSpec("changed_objects", IndicatorKind.COUNT, +1, 2.0, "",
                      "vehicle-sized patches of change (objects that came or went)"),
        IndicatorSpec("ndvi_mean", IndicatorKind.INDEX, -1, 0.03, "", "mean vegetation index (NDVI)"),
    )
}

_COUNT_PREFIX = "count_"


def count_indicator(class_name: str) -> str:
    """Indicator name of the number of ``class_name`` detections in a zone."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", class_name.strip().lower()).strip("_")
    if not cleaned:
        raise UnsupportedInputError(
            f"detection class {class_name!r} has no letters or digits to name a count"
        )
    return _COUNT_PREFIX + cleaned


def is_detection_count(name: str) -> bool:
    """Whether indicator ``name`` counts one class of detected objects (``count_<class>``), as
    against counts read off changed pixels (``changed_objects``)."""
    return name.startswith(_COUNT_PREFIX) and len(name) > len(_COUNT_PREFIX)


def indicator_spec(name: str) -> IndicatorSpec:
    """The spec of indicator ``name``; counts of any detection class are known by prefix."""
    if name in _FIXED_SPECS:
        return _FIXED_SPECS[name]
    if name.startswith(_COUNT_PREFIX) and len(name) > len(_COUNT_PREFIX):
        class_label = name[len(_COUNT_PREFIX):].replace("_", " ")
        return IndicatorSpec(name, IndicatorKind.COUNT, +1, 1.0, "", f"{class_label} count")
    known = ", ".join(sorted(_FIXED_SPECS))
    raise UnsupportedInputError(
        f"unknown indicator {name!r}; known: {known}, or count_<class> for detection counts"
    )


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
            values["changed_area_m2"] = float(zone_changed.sum()) * pixel_area * scale_up
            if objects is not None:
                values["changed_objects"] = objects.get(zone_id, 0) * scale_up
            if evidence.brightness_change is not None:
                brighter = zone_changed & (evidence.brightness_change > 0)
                darker = zone_changed & (evidence.brightness_change < 0)
                values["brightened_area_m2"] = float(brighter.sum()) * pixel_area * scale_up
                values["darkened_area_m2"] = float(darker.sum()) * pixel_area * scale_up
        if evidence.bands is not None and {"red", "nir"} <= set(evidence.bands):
            red = evidence.bands["red"][seen].astype(np.float64)
            nir = evidence.bands["nir"][seen].astype(np.float64)
            total = red + nir
            ok = total > 0
            if ok.any():
                values["ndvi_mean"] = float(((nir[ok] - red[ok]) / total[ok]).mean())
    if evidence.change_probability is None and evidence.change_regions is not None:
        for zone_id in masks.zone_ids:
            if visible[zone_id] > 0:
                per_zone[zone_id]["changed_area_m2"] = 0.0
        for region in evidence.change_regions:
            region_zone = region.zone_id or _zone_of(region.geometry, masks)
            if region_zone in per_zone and "changed_area_m2" in per_zone[region_zone]:
                per_zone[region_zone]["changed_area_m2"] += region.area_m2
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
        if evidence.reference_detections is not None:
            new = _structure_area(evidence.detections, evidence.reference_detections)
            removed = _structure_area(evidence.reference_detections, evidence.detections)
            for zone_id in masks.zone_ids:
                if visible[zone_id] > 0:
                    per_zone[zone_id]["new_structure_area_m2"] = new.get(zone_id, 0.0)
                    per_zone[zone_id]["removed_structure_area_m2"] = removed.get(zone_id, 0.0)
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
            floor = count_floor if name.startswith(_COUNT_PREFIX) else min_visible_fraction
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

