"""Change masks to change regions: outlines, areas, probabilities and zones."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from sitewatch.analytics.change.base import ChangeResult
from sitewatch.analytics.change.regions import change_regions
from sitewatch.core.errors import UnsupportedInputError

GRID = Affine(0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0)


def result_of(mask: np.ndarray, probability: float = 0.8) -> ChangeResult:
    return ChangeResult(np.where(mask, probability, 0.1).astype(np.float32), mask, 0.5, "test", "cva")


def test_regions_are_split_at_zone_borders_with_true_areas() -> None:
    mask = np.zeros((20, 20), bool)
    mask[2:6, 2:10] = True  # 32 px = 8 m2, half inside the zone
    mask[15:17, 15:17] = True  # 4 px = 1 m2 inside the zone
    zone = np.zeros((20, 20), bool)
    zone[:, 6:] = True
    regions = change_regions(result_of(mask), GRID, observation_id="o2", reference_observation_id="o1",
                             zone_masks={"pad": zone})
    by_zone = sorted((r.zone_id or "", r.area_m2) for r in regions)
    assert by_zone == [("", 4.0), ("pad", 1.0), ("pad", 4.0)]
    assert sum(r.area_m2 for r in regions) == pytest.approx(mask.sum() * 0.25)
    assert all(r.mean_probability == pytest.approx(0.8) for r in regions)
    assert all(r.reference_observation_id == "o1" and r.detector == "cva" for r in regions)
    west, south, east, north = regions[0].geometry.bounds
    assert 1000.0 <= west < east <= 1010.0 and 1990.0 <= south < north <= 2000.0


def test_small_regions_are_dropped_and_empty_masks_give_none() -> None:
    mask = np.zeros((10, 10), bool)
    mask[0, 0] = True
    assert change_regions(result_of(mask), GRID, observation_id="o", reference_observation_id="r",
                          min_area_m2=1.0) == []
    assert change_regions(result_of(np.zeros((10, 10), bool)), GRID, observation_id="o",
                          reference_observation_id="r") == []


def test_zone_mask_of_wrong_shape_is_refused() -> None:
    with pytest.raises(UnsupportedInputError, match="zone 'pad'"):
        change_regions(result_of(np.ones((4, 4), bool)), GRID, observation_id="o",
                       reference_observation_id="r", zone_masks={"pad": np.ones((3, 3), bool)})


def test_diagonal_and_ring_shaped_regions_give_valid_polygons() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((60, 60)) > 0.55  # speckle: pixels meeting only at corners, rings with holes
    mask[10:30, 10:30] = True
    mask[15:25, 15:25] = False
    mask[20, 20] = True  # an island inside the hole, touching nothing
    for step in range(8):  # a staircase touching itself corner to corner
        mask[40 + step, 40 + step] = True
    regions = change_regions(result_of(mask), GRID, observation_id="o", reference_observation_id="r")
    assert regions
    assert all(r.geometry.is_valid and r.geometry.area > 0 for r in regions)
    assert sum(r.area_m2 for r in regions) == pytest.approx(mask.sum() * 0.25)
