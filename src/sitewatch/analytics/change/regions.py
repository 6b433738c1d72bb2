"""Change masks into change regions: polygons with area, mean probability and zone.

Connected changed pixels (8-connectivity) form a region; a region crossing zone borders is
split so each piece carries one zone (or none), which is what per-zone indicators count.
Pieces smaller than ``min_area_m2`` are dropped as speckle.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio import features
from scipy import ndimage
from shapely import make_valid
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from sitewatch.analytics.change.base import ChangeResult
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import ChangeRegion


def change_regions(
    result: ChangeResult,
    transform: Affine,
    *,
    observation_id: str,
    reference_observation_id: str,
    zone_masks: Mapping[str, NDArray[np.bool_]] | None = None,
    min_area_m2: float = 0.0,
) -> list[ChangeRegion]:
    """The regions of ``result.mask`` in the CRS of ``transform`` (a north-up metric grid)."""
    zone_masks = dict(zone_masks or {})
    for zone_id, mask in zone_masks.items():
        if mask.shape != result.mask.shape:
            raise UnsupportedInputError(
                f"zone {zone_id!r} mask {mask.shape} does not match the change mask {result.mask.shape}"
            )
    components, count = ndimage.label(result.mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return []
    zone_ids = list(zone_masks)
    zone_index = np.zeros(result.mask.shape, np.int64)
    for index, zone_id in enumerate(zone_ids, start=1):
        zone_index[zone_masks[zone_id] & (zone_index == 0)] = index  # first zone wins on overlaps
    pieces = np.where(result.mask, components.astype(np.int64) * (len(zone_ids) + 1) + zone_index, 0)
    keys, pixel_counts = np.unique(pieces[pieces > 0], return_counts=True)
    means = ndimage.mean(result.probability, pieces, keys)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    outlines: dict[int, list[Polygon]] = {}
    # rasterio's shapes() needs int32 labels; renumber pieces densely first
    dense = np.zeros(pieces.shape, np.int32)
    lookup = {int(key): number for number, key in enumerate(keys, start=1)}
    dense[pieces > 0] = np.searchsorted(keys, pieces[pieces > 0]) + 1
    for geometry, value in features.shapes(dense, mask=dense > 0, transform=transform, connectivity=8):
        outlines.setdefault(int(value), []).append(shape(geometry))
    regions = []
    for key, pixels, mean in zip(keys, pixel_counts, means, strict=True):
        polygons = outlines.get(lookup[int(key)], [])
        if not polygons or pixels * pixel_area < min_area_m2:
            continue
        outline = _polygonal(unary_union(polygons))
        if outline is None:
            continue
        zone_number = int(key) % (len(zone_ids) + 1)
        regions.append(ChangeRegion(
            observation_id=observation_id,
            reference_observation_id=reference_observation_id,
            geometry=outline,
            area_m2=float(outline.area),
            mean_probability=float(np.clip(mean, 0.0, 1.0)),
            zone_id=zone_ids[zone_number - 1] if zone_number else None,
            detector=result.detector,
        ))
    return regions


def _polygonal(geometry: BaseGeometry) -> Polygon | MultiPolygon | None:
    """``geometry`` as a valid polygon or multipolygon of positive area, or None.

    Pixel outlines traced with 8-connectivity touch themselves at corners, which makes
    rings invalid; repairing them can leave lines and points beside the polygons, which
    are dropped (they have no area).
    """
    if not geometry.is_valid:
        geometry = make_valid(geometry)
    if isinstance(geometry, GeometryCollection | MultiPolygon):
        parts = [part for part in geometry.geoms if isinstance(part, Polygon) and part.area > 0]
        geometry = MultiPolygon(parts) if len(parts) > 1 else (parts[0] if parts else Polygon())
        if not geometry.is_valid:
            geometry = make_valid(geometry)
    if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty or geometry.area <= 0:
        return None
    return geometry
