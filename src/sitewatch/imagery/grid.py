"""The fixed pixel grid of a site: every image of the site is resampled onto it.

One grid per site — its local UTM zone, a north-up pixel of ``site.gsd`` metres, bounds snapped
outward to multiples of the GSD — so chips of different dates line up pixel for pixel and change
detection compares like with like. Pixel coordinates follow rasterio: (row, col) with (0, 0) the
upper-left corner of the upper-left pixel; pixel centres sit at half-integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio import features
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from sitewatch.core.errors import UnsupportedInputError, ValidationError
from sitewatch.core.limits import DEFAULT_SITE_GRID_SIDE, MAX_GRID_SIDE
from sitewatch.core.types import Site

_DENSIFY_DEGREES = 0.001
"""Longest lon/lat polygon edge before projecting (about 100 m), so long edges stay true in UTM."""


@dataclass(frozen=True, slots=True)
class SiteGrid:
    """A north-up raster grid in a projected CRS (metres)."""

    epsg: int
    """EPSG code of the grid CRS (a WGS 84 / UTM zone for site grids)."""
    transform: Affine
    """Pixel (col, row) → map (x, y) of pixel corners: ``Affine(gsd, 0, west, 0, -gsd, north)``."""
    width: int
    height: int
    gsd: float
    """Pixel size in metres."""

    def __post_init__(self) -> None:
        if isinstance(self.epsg, bool) or not isinstance(self.epsg, int) or self.epsg <= 0:
            raise ValidationError("SiteGrid", "epsg", f"{self.epsg!r} must be a positive EPSG code")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_GRID_SIDE:
                raise ValidationError("SiteGrid", name, f"{value!r} must be an integer in 1..{MAX_GRID_SIDE}")
        if not (isinstance(self.gsd, int | float) and math.isfinite(self.gsd) and self.gsd > 0):
            raise ValidationError("SiteGrid", "gsd", f"{self.gsd!r} must be a positive number of metres")
        if not isinstance(self.transform, Affine):
            raise ValidationError("SiteGrid", "transform", f"{self.transform!r} must be an affine.Affine")
        t = self.transform
        if not (math.isclose(t.a, self.gsd) and math.isclose(t.e, -self.gsd) and t.b == 0 and t.d == 0):
            raise ValidationError(
                "SiteGrid", "transform", f"{tuple(t)[:6]} must be north-up with pixel size {self.gsd} m"
            )

    @property
    def crs(self) -> str:
        """The grid CRS as an authority string, e.g. ``EPSG:32652``."""
        return f"EPSG:{self.epsg}"

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the numpy shape of one band."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in metres."""
        west, north = self.transform.c, self.transform.f
        return (west, north - self.height * self.gsd, west + self.width * self.gsd, north)

    def pixel_to_map(self, row: float | np.ndarray, col: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map (x, y) of fractional pixel positions; pass ``row + 0.5, col + 0.5`` for pixel centres."""
        rows, cols = np.asarray(row, dtype=float), np.asarray(col, dtype=float)
        t = self.transform
        return (t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f)

    def map_to_pixel(self, x: float | np.ndarray, y: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of map positions; ``floor`` gives the pixel that holds them."""
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        t = self.transform
        return ((ys - t.f) / t.e, (xs - t.c) / t.a)

    def to_grid_crs(self, geometry_lonlat: BaseGeometry) -> BaseGeometry:
        """``geometry_lonlat`` (WGS 84 lon/lat) projected into the grid CRS, edges densified first."""
        return lonlat_to_crs(geometry_lonlat, self.epsg)

    def outline(self) -> Polygon:
        """The grid's extent as a polygon in the grid CRS."""
        return box(*self.bounds)


def lonlat_to_crs(geometry_lonlat: BaseGeometry, epsg: int) -> BaseGeometry:
    """Project a WGS 84 lon/lat geometry to ``EPSG:epsg``, densifying long edges so they stay true."""
    transformer = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    dense = shapely.segmentize(geometry_lonlat, _DENSIFY_DEGREES)
    return shapely.transform(dense, transformer.transform, interleaved=False)


def site_grid(site: Site, *, margin_m: float = 0.0) -> SiteGrid:
    """The grid of ``site``: its outline plus ``margin_m`` in its UTM zone, snapped outward to ``site.gsd``.

    Snapping to multiples of the GSD (not to the outline) makes the grid depend only on the site,
    so it is the same on every run and for every image.
    """
    if not math.isfinite(margin_m) or margin_m < 0:
        raise UnsupportedInputError(f"margin_m={margin_m!r} must be a finite number of metres >= 0")
    return _grid(site, margin_m, MAX_GRID_SIDE)


def check_site_grid(site: Site, max_side: int = DEFAULT_SITE_GRID_SIDE) -> str | None:
    """Why ``site``'s grid is too large (its size in the message), or None: the rule `sites validate`
    and `sites add` apply, so one absurd site (a whole-world outline, a 1e-9 m GSD) never reaches ingest."""
    max_side = min(max_side, MAX_GRID_SIDE)
    west, south, east, north = site.geometry.bounds
    metres_per_degree = 111_320.0  # at the equator; a degree of longitude is shorter elsewhere
    rough = max(east - west, north - south) * metres_per_degree / site.gsd
    if rough < max_side / 2:  # clearly small enough: no projection (catalogs of 100,000 sites)
        return None
    try:
        _grid(site, 0.0, max_side)
    except UnsupportedInputError as error:
        return str(error)
    return None


def _grid(site: Site, margin_m: float, max_side: int) -> SiteGrid:
    epsg = site.utm_epsg
    outline = lonlat_to_crs(site.geometry, epsg)
    west, south, east, north = outline.bounds
    gsd = float(site.gsd)
    west = math.floor((west - margin_m) / gsd) * gsd
    south = math.floor((south - margin_m) / gsd) * gsd
    east = math.ceil((east + margin_m) / gsd) * gsd
    north = math.ceil((north + margin_m) / gsd) * gsd
    width = max(1, round((east - west) / gsd))
    height = max(1, round((north - south) / gsd))
    if width > max_side or height > max_side:
        raise UnsupportedInputError(
            f"site {site.id!r}: its grid would be {width}x{height} pixels at {gsd:g} m, over the "
            f"limit of {max_side} per side (workspace setting max_site_grid_side); use a coarser gsd for "
            "the site or a smaller outline"
        )
    return SiteGrid(epsg=epsg, transform=Affine(gsd, 0.0, west, 0.0, -gsd, north), width=width,
                    height=height, gsd=gsd)


def rasterize_polygon(grid: SiteGrid, geometry_lonlat: Polygon | MultiPolygon, *,
                      all_touched: bool = False) -> np.ndarray:
    """Boolean mask (height, width) of the grid pixels whose centre lies in ``geometry_lonlat``.

    With ``all_touched`` every pixel the outline touches is included (for thin zones).
    """
    projected = grid.to_grid_crs(geometry_lonlat)
    if projected.is_empty:
        return np.zeros(grid.shape, dtype=bool)
    burned = features.rasterize(
        [(projected, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8",
        all_touched=all_touched,
    )
    return burned.astype(bool)


def zone_masks(site: Site, grid: SiteGrid) -> dict[str, np.ndarray]:
    """The mask of each zone of ``site`` on ``grid``, keyed by zone id."""
    return {zone.id: rasterize_polygon(grid, zone.geometry) for zone in site.zones}
