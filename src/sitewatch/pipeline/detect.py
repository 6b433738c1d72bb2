"""Object detection over a workspace: an observation's chip in, stored detections out.

Detections are stored as box polygons in the site grid's CRS (metres) with the id of the
zone holding each box's centre, so the indicators can count objects per zone with a plain
query (``ws.detections(observation_id=..., class_name=...)`` grouped by ``zone_id``).
Re-running replaces the observation's detections, never adds to them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import rasterio
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from sitewatch.analytics.objects import (
    DEFAULT_DETECTOR,
    DetectorInfo,
    ObjectBox,
    ObjectDetector,
    get_detector,
)
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import Detection, Observation, Site
from sitewatch.imagery.bands import find_bands, unnamed
from sitewatch.imagery.chips import Chip, chip_grid, read_chip
from sitewatch.imagery.grid import SiteGrid, lonlat_to_crs
from sitewatch.pipeline.models import workspace_detector
from sitewatch.store.protocol import Store
from sitewatch.store.records import EvidenceRecord


@dataclass(frozen=True, slots=True)
class DetectionSummary:
    """What one detection run stored for one observation."""

    observation_id: str
    detector: str
    count: int
    per_zone: dict[tuple[str | None, str], int]
    """(zone id or None, class name) -> number of detections."""
    classes: tuple[str, ...] = ()
    """Every class the detector looks for: a class not in ``per_zone`` was counted as zero.
    Empty when the detector did not look (``skipped``)."""
    skipped: str | None = None
    """Why the detector did not look at the observation (its imagery is coarser than the detector
    resolves, or lacks the bands it needs): its objects are not observed, which is not zero."""


def band_problem(bands: tuple[str, ...], wanted: tuple[str, ...]) -> str | None:
    """Why a chip with ``bands`` cannot give the bands ``wanted``; None when it can (see
    :func:`select_bands`)."""
    if find_bands(bands, wanted) is not None or (unnamed(bands) and len(bands) == len(wanted)):
        return None
    if unnamed(bands):
        return (f"the chip's {len(bands)} bands are unnamed ({', '.join(bands)}), so which are "
                f"{', '.join(wanted)} is unknown; re-ingest its scene with band names (sitewatch ingest "
                "--bands red,green,blue,nir for RGBN imagery)")
    return (f"the chip has bands {', '.join(bands)} but the detector needs {', '.join(wanted)}; "
            "ingest imagery with those bands to detect objects")


def select_bands(chip: Chip, wanted: tuple[str, ...]) -> np.ndarray:
    """The chip's bands named ``wanted`` (by :func:`~sitewatch.imagery.bands.find_bands`), in that order.

    A chip whose bands are unnamed (``b1 .. bn``) gives its bands as they are only when it has
    exactly as many as wanted (three unnamed bands are RGB by convention); with more, which band is
    which is a guess (NAIP is red, green, blue, nir, Planet and WorldView blue, green, red, nir), so
    it is refused with a request for the names.
    """
    problem = band_problem(chip.bands, wanted)
    if problem is not None:
        raise UnsupportedInputError(problem)
    found = find_bands(chip.bands, wanted)
    return chip.array[list(found)] if found is not None else chip.array


def box_polygon(box: ObjectBox, transform: rasterio.Affine) -> Polygon:
    """The box's outline in the chip's CRS (pixel edges through the chip's geotransform)."""
    corners = [(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)]
    return Polygon([transform * corner for corner in corners])


def zones_in_crs(site: Site, epsg: int) -> list[tuple[str, BaseGeometry]]:
    return [(zone.id, lonlat_to_crs(zone.geometry, epsg)) for zone in site.zones]


def to_detections(boxes: list[ObjectBox], observation_id: str, transform: rasterio.Affine,
                  zones: list[tuple[str, BaseGeometry]], detector: str) -> list[Detection]:
    """Domain detections in map coordinates, each tagged with the zone holding its centre."""
    found = []
    for box in boxes:
        outline = box_polygon(box, transform)
        centre = Point(transform * box.centre)
        zone_id = next((zone_id for zone_id, geometry in zones if geometry.contains(centre)), None)
        found.append(Detection(observation_id=observation_id, class_name=box.class_name,
                               score=round(box.score, 4), geometry=outline, zone_id=zone_id,
                               detector=detector))
    return found


def detection_problem(info: DetectorInfo, *, grid_gsd: float, image_gsd: float,
                      bands: tuple[str, ...]) -> str | None:
    """Why the detector ``info`` cannot look at a chip on a ``grid_gsd`` grid cut from an image of
    ``image_gsd``; None when it can.

    The chip resolves no finer than the coarser of the two: a 5 m image resampled onto a 0.5 m
    grid has 0.5 m pixels but no car in it, and counting zero cars there would be a lie.
    """
    resolution = max(grid_gsd, image_gsd)
    return (info.gsd_problem(grid_gsd) or info.gsd_problem(resolution)
            or band_problem(bands, info.bands))


@dataclass(frozen=True, slots=True)
class FoundDetections:
    """What the detector found in one observation's chip (nothing stored)."""

    detections: tuple[Detection, ...]
    summary: DetectionSummary


def find_detections(site: Site, observation: Observation, chip: Chip, grid: SiteGrid, *, image_gsd: float,
                    detector: ObjectDetector) -> FoundDetections:
    """Run ``detector`` on the observation's ``chip`` (on the site ``grid``, cut from an image of
    ``image_gsd``); touches no store.

    When the chip is outside what the detector resolves or lacks its bands
    (:func:`detection_problem`), nothing is detected and the summary says why (``skipped``): the
    observation's objects are not observed, which is different from none.
    """
    problem = detection_problem(detector.info, grid_gsd=grid.gsd, image_gsd=image_gsd, bands=chip.bands)
    if problem is not None:
        skipped = DetectionSummary(observation.id, detector.info.name, 0, {}, skipped=problem)
        return FoundDetections((), skipped)
    pixels = select_bands(chip, detector.info.bands)
    boxes = detector.detect(pixels, grid.gsd, nodata_mask=~chip.valid) if chip.valid.any() else []
    # A box centred on unobserved pixels is an artefact of the nodata edge, not an object.
    rows, cols = chip.valid.shape
    boxes = [b for b in boxes
             if chip.valid[min(rows - 1, max(0, int(b.centre[1]))), min(cols - 1, max(0, int(b.centre[0])))]]
    detections = to_detections(boxes, observation.id, grid.transform, zones_in_crs(site, grid.epsg),
                               detector.info.name)
    per_zone = Counter((d.zone_id, d.class_name) for d in detections)
    return FoundDetections(tuple(detections), DetectionSummary(
        observation.id, detector.info.name, len(detections), dict(per_zone), tuple(detector.info.classes)))


def detect_observation(ws: Store, observation: Observation, *,
                       detector: ObjectDetector | None = None) -> DetectionSummary:
    """Run the detector on the observation's chip and store its detections (replacing earlier ones;
    none when it could not look, see :func:`find_detections`: an earlier run's boxes are no longer
    what it says). Without ``detector``: the workspace's fine-tuned vehicle model where it has one
    (:mod:`sitewatch.pipeline.models`), else the shipped one."""
    model = (detector if detector is not None
             else workspace_detector(ws.root) or get_detector(DEFAULT_DETECTOR))
    path = ws.chip_path(observation)
    found = find_detections(ws.site(observation.site_id), observation, read_chip(path), chip_grid(path),
                            image_gsd=ws.scene(observation.scene_id).gsd, detector=model)
    ws.record_evidence(EvidenceRecord(observation.id, detections=found.detections))
    return found.summary


def zone_counts(detections: list[Detection], class_name: str) -> dict[str | None, int]:
    """Number of detections of ``class_name`` per zone id (None: outside every zone)."""
    return dict(Counter(d.zone_id for d in detections if d.class_name == class_name))
