"""Zone indicators: masks on the site grid, not-observed vs zero, quality weights, counts per class."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box

from sitewatch.analytics.indicators import (
    MIN_VISIBLE_FOR_COUNTS,
    SITE_ZONE_ID,
    ObservationEvidence,
    extract_indicators,
    quality_weight,
    zone_masks,
)
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.indicators import (
    FIXED_INDICATORS,
    PIXEL_CHANGE_INDICATORS,
    IndicatorKind,
    count_indicator,
    indicator_spec,
)
from sitewatch.core.types import Detection, Observation, Site, Zone, ZoneKind
from sitewatch.imagery.grid import site_grid

LON, LAT = 125.78, 39.07
D = 0.0012  # about 100 m in longitude, 133 m in latitude


def _site(with_zones: bool = True) -> Site:
    zones = (
        Zone("west", "West yard", ZoneKind.PARKING, box(LON, LAT, LON + D / 2, LAT + D)),
        Zone("east", "East hall", ZoneKind.ASSEMBLY_HALL, box(LON + D / 2, LAT, LON + D, LAT + D)),
    ) if with_zones else ()
    return Site("testsite", "Test site", "KP", "industrial", box(LON, LAT, LON + D, LAT + D), zones, gsd=1.0)


def _observation() -> Observation:
    return Observation("obs-1", "testsite", "scene-1", datetime(2019, 2, 22, 2, tzinfo=UTC),
                       "chips/testsite/obs-1.tif", 1.0)


def _masks(site: Site):
    grid = site_grid(site)
    return zone_masks(site, grid), grid


def test_zone_masks_split_the_grid_and_report_areas() -> None:
    site = _site()
    masks, grid = _masks(site)
    assert masks.zone_ids == ("west", "east")
    assert masks.masks.shape == (2, *grid.shape)
    assert not (masks.masks[0] & masks.masks[1]).any()
    total = sum(masks.zone_area_m2)
    assert total == pytest.approx(masks.masks.any(axis=0).sum() * 1.0)
    assert 0.4 < masks.zone_area_m2[0] / total < 0.6


def test_site_without_zones_gets_one_site_zone() -> None:
    masks, _ = _masks(_site(with_zones=False))
    assert masks.zone_ids == (SITE_ZONE_ID,)


def test_changed_area_counts_and_quality() -> None:
    site = _site()
    masks, grid = _masks(site)
    probability = np.zeros(grid.shape, np.float32)
    west = masks.masks[0]
    rows, cols = np.nonzero(west)
    probability[rows[:200], cols[:200]] = 0.9  # 200 changed pixels of 1 m² in the west zone
    x0, y0 = grid.transform * (cols[0] + 0.5, rows[0] + 0.5)
    car = box(x0 - 2, y0 - 1, x0 + 2, y0 + 1)
    detections = [Detection("obs-1", "car", 0.9, car, zone_id="west"),
                  Detection("obs-1", "car", 0.8, car, zone_id="west"),
                  Detection("obs-1", "large vehicle", 0.7, car)]  # zone found from its centroid
    evidence = ObservationEvidence(valid=np.ones(grid.shape, bool), gsd=1.0, change_probability=probability,
                                   detections=detections)
    values = {(v.zone_id, v.name): v for v in extract_indicators(site, _observation(), masks, evidence)}
    assert values[("west", "changed_area_m2")].value == pytest.approx(200.0)
    assert values[("east", "changed_area_m2")].value == 0.0
    assert values[("west", "count_car")].value == 2
    assert values[("west", "count_large_vehicle")].value == 1
    assert values[("east", "count_car")].value == 0.0  # measured zero, not "not observed"
    assert values[("west", "count_car")].quality == pytest.approx(1.0)


def test_cloudy_zone_is_not_observed_and_partial_view_is_scaled_up() -> None:
    site = _site()
    masks, grid = _masks(site)
    valid = np.ones(grid.shape, bool)
    valid[masks.masks[1]] = False  # east zone under cloud
    west_rows, west_cols = np.nonzero(masks.masks[0])
    half = len(west_rows) // 2
    valid[west_rows[:half], west_cols[:half]] = False  # half of the west zone hidden too
    probability = np.zeros(grid.shape, np.float32)
    probability[west_rows[half:half + 50], west_cols[half:half + 50]] = 1.0
    evidence = ObservationEvidence(valid=valid, gsd=1.0, change_probability=probability)
    values = {(v.zone_id, v.name): v for v in extract_indicators(site, _observation(), masks, evidence)}
    east = values[("east", "changed_area_m2")]
    assert east.value is None and east.quality == 0.0 and not east.observed
    west = values[("west", "changed_area_m2")]
    assert west.value == pytest.approx(100.0, rel=0.05)  # 50 m² seen in half the zone
    assert west.quality == pytest.approx(0.5 ** 0.5, abs=0.02)  # standard error grows as 1/sqrt(seen)


def test_counts_through_a_gap_in_the_clouds_are_scaled_to_the_zone() -> None:
    """A zone 20 % visible: its 3 cars count as 15, its changed area is not observed (cloud edges
    and shadows make change of their own); under the count floor nothing is observed."""
    site = _site()
    masks, grid = _masks(site)
    west_rows, west_cols = np.nonzero(masks.masks[0])
    east_rows, east_cols = np.nonzero(masks.masks[1])
    valid = np.zeros(grid.shape, bool)
    seen = len(west_rows) // 5
    valid[west_rows[:seen], west_cols[:seen]] = True  # a fifth of the west zone in a gap
    few = max(1, int(len(east_rows) * (MIN_VISIBLE_FOR_COUNTS / 2)))
    valid[east_rows[:few], east_cols[:few]] = True  # a sliver of the east zone, under the floor
    x0, y0 = grid.transform * (west_cols[0] + 0.5, west_rows[0] + 0.5)
    car = box(x0 - 2, y0 - 1, x0 + 2, y0 + 1)
    detections = [Detection("obs-1", "car", 0.9, car, zone_id="west") for _ in range(3)]
    evidence = ObservationEvidence(valid=valid, gsd=1.0, detections=detections,
                                   change_probability=np.ones(grid.shape, np.float32))
    values = {(v.zone_id, v.name): v for v in extract_indicators(site, _observation(), masks, evidence)}
    west = values[("west", "count_car")]
    assert west.value == pytest.approx(3 * len(west_rows) / seen)
    assert west.quality == pytest.approx((seen / len(west_rows)) ** 0.5)
    assert values[("west", "changed_area_m2")].value is None
    assert values[("west", "changed_area_m2")].quality == 0.0
    assert values[("east", "count_car")].value is None
    assert values[("east", "count_car")].quality == 0.0


def test_ndvi_where_red_and_nir_bands_exist() -> None:
    site = _site()
    masks, grid = _masks(site)
    bands = {"red": np.full(grid.shape, 0.1), "nir": np.full(grid.shape, 0.5)}
    evidence = ObservationEvidence(valid=np.ones(grid.shape, bool), gsd=1.0, bands=bands)
    values = {(v.zone_id, v.name): v for v in extract_indicators(site, _observation(), masks, evidence)}
    assert values[("west", "ndvi_mean")].value == pytest.approx(0.4 / 0.6)


def test_quality_weight_combines_visibility_resolution_and_haze() -> None:
    assert quality_weight(1.0, gsd=0.5, site_gsd=0.5, haze=None) == 1.0
    assert quality_weight(0.5, gsd=1.0, site_gsd=0.5, haze=0.2) == pytest.approx(0.5 ** 0.5 * 0.5 * 0.8)
    assert quality_weight(1.0, gsd=0.5, site_gsd=0.5, haze=None, off_nadir=10.0) == pytest.approx(0.5)
    assert quality_weight(1.0, gsd=0.5, site_gsd=0.5, haze=None, off_nadir=0.0) == 1.0
    with pytest.raises(UnsupportedInputError):
        quality_weight(1.0, gsd=0.0, site_gsd=0.5, haze=None)


def test_specs_know_counts_by_prefix_and_refuse_unknown_names() -> None:
    assert count_indicator("Large Vehicle") == "count_large_vehicle"
    spec = indicator_spec("count_rail_car")
    assert spec.kind is IndicatorKind.COUNT and spec.direction == 1 and spec.label == "rail car count"
    assert indicator_spec("ndvi_mean").direction == -1
    with pytest.raises(UnsupportedInputError, match="unknown indicator"):
        indicator_spec("vibes")


def test_evidence_on_another_grid_is_refused() -> None:
    site = _site()
    masks, _ = _masks(site)
    with pytest.raises(UnsupportedInputError, match="site grid"):
        evidence = ObservationEvidence(valid=np.ones((3, 3), bool), gsd=1.0)
        extract_indicators(site, _observation(), masks, evidence)


def test_indicator_names_are_spelled_only_in_core() -> None:
    """Every layer takes indicator names from sitewatch.core.indicators, never as string literals."""
    source = Path(__file__).resolve().parents[1] / "src" / "sitewatch"
    names = {spec.name for spec in FIXED_INDICATORS}
    spelled = []
    for path in sorted(source.rglob("*.py")):
        if path == source / "core" / "indicators.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.append(f"{path.relative_to(source)}:{node.lineno} {node.value!r}")
    assert not spelled, f"indicator names as literals (use sitewatch.core.indicators): {spelled}"
    assert {indicator_spec(name).name for name in names} == names
    assert names >= PIXEL_CHANGE_INDICATORS


def test_structure_area_comes_from_structure_classes_only_and_is_unobserved_without_them() -> None:
    """A crane that arrives is counted as a crane, not also as new structure area; a detector that
    looks for no structures observes no structure change (not zero); one that does measures it."""
    site = _site()
    masks, grid = _masks(site)
    rows, cols = np.nonzero(masks.masks[1])
    x0, y0 = grid.transform * (cols[len(cols) // 2] + 0.5, rows[len(rows) // 2] + 0.5)
    crane = Detection("obs-1", "crane", 0.9, box(x0 - 20, y0 - 3, x0 + 20, y0 + 3), zone_id="east")
    shed = Detection("obs-1", "building", 0.9, box(x0 - 10, y0 - 10, x0 + 10, y0 + 10), zone_id="east")
    valid = np.ones(grid.shape, bool)

    def indicators(detections: list[Detection], classes: tuple[str, ...]) -> dict[tuple[str, str], object]:
        evidence = ObservationEvidence(valid=valid, gsd=1.0, detections=detections, detection_classes=classes,
                                       reference_detections=[])
        found = extract_indicators(site, _observation(), masks, evidence)
        return {(v.zone_id, v.name): v.value for v in found}

    vehicles_only = indicators([crane], ("car", "crane"))
    assert vehicles_only[("east", "count_crane")] == 1.0
    assert ("east", "new_structure_area_m2") not in vehicles_only
    assert ("east", "removed_structure_area_m2") not in vehicles_only

    with_buildings = indicators([crane, shed], ("crane", "building"))
    assert with_buildings[("east", "new_structure_area_m2")] == pytest.approx(400.0)
    assert with_buildings[("west", "new_structure_area_m2")] == 0.0
    assert with_buildings[("east", "removed_structure_area_m2")] == 0.0
