"""Site grids: local UTM, snapped to the GSD, exact pixel ↔ map round trips (property tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from sitewatch.core.errors import UnsupportedInputError, ValidationError
from sitewatch.core.types import Site, Zone, ZoneKind
from sitewatch.imagery.grid import SiteGrid, rasterize_polygon, site_grid, zone_masks


def _site(lon: float, lat: float, size_deg: float = 0.01, gsd: float = 0.5) -> Site:
    outline = box(lon - size_deg / 2, lat - size_deg / 2, lon + size_deg / 2, lat + size_deg / 2)
    zone = Zone(id="pad", name="Pad", kind=ZoneKind.LAUNCH_PAD,
                geometry=box(lon - size_deg / 4, lat - size_deg / 4, lon, lat))
    return Site(id="site", name="Site", country="XX", category="test", geometry=outline, zones=(zone,),
                gsd=gsd)


def test_sohae_like_site_grid_is_local_utm_snapped_to_gsd() -> None:
    site = _site(124.705, 39.66)
    grid = site_grid(site)
    assert grid.epsg == 32651
    west, south, east, north = grid.bounds
    for value in (west, south, east, north):
        assert value / 0.5 == pytest.approx(round(value / 0.5), abs=1e-6)
    outline = grid.to_grid_crs(site.geometry)
    ow, os_, oe, on = outline.bounds
    assert west <= ow and south <= os_ and east >= oe and north >= on  # snapped outward
    assert east - oe < 0.5 and ow - west < 0.5
    # about 850 m x 1110 m at 0.5 m
    assert 1600 < grid.width < 1800 and 2150 < grid.height < 2300


def test_margin_grows_the_grid_on_every_side() -> None:
    site = _site(125.78, 39.07, gsd=2.0)
    plain, wide = site_grid(site), site_grid(site, margin_m=100.0)
    assert wide.width - plain.width in (100, 101, 102)
    assert wide.height - plain.height in (100, 101, 102)
    with pytest.raises(UnsupportedInputError, match="margin_m"):
        site_grid(site, margin_m=-1)


def test_too_large_a_grid_is_refused_with_the_fix() -> None:
    with pytest.raises(UnsupportedInputError, match="coarser gsd"):
        site_grid(_site(125.78, 39.07, size_deg=0.5, gsd=0.5))


def test_grid_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"SiteGrid\.transform"):
        SiteGrid(epsg=32651, transform=Affine(1.0, 0, 0, 0, -1.0, 0), width=10, height=10, gsd=0.5)
    with pytest.raises(ValidationError, match=r"SiteGrid\.width"):
        SiteGrid(epsg=32651, transform=Affine(0.5, 0, 0, 0, -0.5, 0), width=0, height=10, gsd=0.5)


def test_zone_mask_covers_the_zone_area() -> None:
    site = _site(125.755, 39.795, gsd=1.0)
    grid = site_grid(site)
    mask = zone_masks(site, grid)["pad"]
    assert mask.dtype == bool and mask.shape == grid.shape
    zone_area = grid.to_grid_crs(site.zones[0].geometry).area
    assert mask.sum() * grid.gsd**2 == pytest.approx(zone_area, rel=0.01)
    # the mask sits where the zone is: its pixel centroid maps onto the zone's projected centroid
    rows, cols = np.nonzero(mask)
    x, y = grid.pixel_to_map(rows.mean() + 0.5, cols.mean() + 0.5)
    centroid = grid.to_grid_crs(site.zones[0].geometry).centroid
    assert float(x) == pytest.approx(centroid.x, abs=grid.gsd)
    assert float(y) == pytest.approx(centroid.y, abs=grid.gsd)
    assert not rasterize_polygon(grid, box(0.0, 0.0, 0.001, 0.001)).any()  # far away: empty


@settings(max_examples=200, deadline=None)
@given(
    west=st.floats(min_value=100_000, max_value=900_000),
    north=st.floats(min_value=0, max_value=9_000_000),
    gsd=st.sampled_from([0.3, 0.5, 1.0, 2.5, 10.0, 30.0]),
    row=st.floats(min_value=-50, max_value=5000, allow_nan=False),
    col=st.floats(min_value=-50, max_value=5000, allow_nan=False),
)
def test_pixel_map_round_trip(west: float, north: float, gsd: float, row: float, col: float) -> None:
    transform = Affine(gsd, 0, west, 0, -gsd, north)
    grid = SiteGrid(epsg=32651, transform=transform, width=100, height=100, gsd=gsd)
    x, y = grid.pixel_to_map(row, col)
    back_row, back_col = grid.map_to_pixel(x, y)
    assert float(back_row) == pytest.approx(row, abs=1e-6)
    assert float(back_col) == pytest.approx(col, abs=1e-6)
    # pixel (0, 0)'s corner is the grid's north-west corner; rows grow southward
    x0, y0 = grid.pixel_to_map(0, 0)
    assert (float(x0), float(y0)) == (west, north)
    assert float(grid.pixel_to_map(row + 1, col)[1]) < float(y)


@settings(max_examples=60, deadline=None)
@given(
    lon=st.floats(min_value=-179.0, max_value=179.0),
    lat=st.floats(min_value=-79.0, max_value=83.0),
    size=st.floats(min_value=0.001, max_value=0.05),
    gsd=st.sampled_from([0.5, 1.0, 3.0, 10.0, 30.0]),
)
def test_site_grid_contains_the_site_and_is_snapped(lon: float, lat: float, size: float, gsd: float) -> None:
    site = Site(id="s", name="S", country="XX", category="test",
                geometry=box(lon, lat, lon + size, lat + size), gsd=gsd)
    try:
        grid = site_grid(site)
    except UnsupportedInputError:
        return  # over the pixel limit: refused, which is tested elsewhere
    outline = grid.to_grid_crs(site.geometry)
    west, south, east, north = grid.bounds
    ow, os_, oe, on = outline.bounds
    assert west <= ow + 1e-6 and south <= os_ + 1e-6 and east >= oe - 1e-6 and north >= on - 1e-6
    assert (ow - west) < gsd + 1e-6 and (east - oe) < gsd + 1e-6
    assert math.isclose(west / gsd, round(west / gsd), abs_tol=1e-6)
    assert math.isclose(north / gsd, round(north / gsd), abs_tol=1e-6)
    assert site_grid(site) == grid  # deterministic: the same site always gets the same grid
