"""A site's static background, computed once per site: ground, vegetation, pavement, roofs.

Per date the renderer only blends a season colour into the vegetation layer and re-paints
roofs after shadows, so the costly texture work here happens once for a whole time series.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy import ndimage
from shapely.geometry import LineString

from sitewatch.imagery.simulate.layout import SHIFT_MARGIN_PX, ResolvedLayout, to_utm
from sitewatch.imagery.simulate.raster import fill, fractal_noise, pixel_indices, pixel_map_xy

ROOF_COLOURS = {
    "grey": (150.0, 150.0, 148.0),
    "blue": (78.0, 112.0, 150.0),
    "green": (86.0, 120.0, 96.0),
    "rust": (140.0, 92.0, 70.0),
    "white": (205.0, 205.0, 200.0),
    "dark": (70.0, 72.0, 74.0),
}

# Vegetation colour through the year (day of year, RGB): green summer, brown dormant winter.
_SEASON_KEYS = (
    (0, (116.0, 106.0, 86.0)),
    (95, (104.0, 102.0, 74.0)),
    (140, (70.0, 96.0, 52.0)),
    (200, (56.0, 86.0, 44.0)),
    (260, (72.0, 90.0, 50.0)),
    (295, (112.0, 100.0, 62.0)),
    (335, (118.0, 106.0, 86.0)),
    (366, (116.0, 106.0, 86.0)),
)


def season_colour(day: date) -> np.ndarray:
    """Vegetation RGB on ``day`` (northern hemisphere temperate seasons)."""
    doy = day.timetuple().tm_yday
    for (d0, c0), (d1, c1) in itertools.pairwise(_SEASON_KEYS):
        if d0 <= doy <= d1:
            t = (doy - d0) / (d1 - d0)
            return np.array([a + t * (b - a) for a, b in zip(c0, c1, strict=True)], dtype=np.float32)
    return np.array(_SEASON_KEYS[0][1], dtype=np.float32)


@dataclass(frozen=True)
class Background:
    """Static layers of a site on the padded canvas."""

    ground: np.ndarray
    """(rows, cols, 3) float32: ground, pavement and rails, with vegetation cover removed."""
    vegetation: np.ndarray
    """(rows, cols) float32: vegetation cover times its texture; times the season colour it adds to ground."""
    roof_index: np.ndarray
    """Flat canvas indices of static roof pixels, re-painted after shadows each date."""
    roof_colour: np.ndarray
    """(n, 3) float32 colours of those pixels."""
    roofs: tuple[tuple[int, int, float, np.ndarray], ...]
    """Per building: (start, stop) into ``roof_index``, its height, and its footprint corners (map)."""
    pad: int

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.vegetation.shape
        return rows, cols


def build_background(layout: ResolvedLayout, rng: np.random.Generator) -> Background:
    grid = layout.grid
    pad = SHIFT_MARGIN_PX
    shape = (grid.height + 2 * pad, grid.width + 2 * pad)
    px_per_m = 1.0 / grid.gsd
    # Soil: large brightness swells, mid-scale patches, fine grain.
    soil = fractal_noise(
        shape, rng, (200 * px_per_m, 50 * px_per_m, 12 * px_per_m, 3 * px_per_m), (1.0, 0.7, 0.35, 0.2)
    )
    tint = fractal_noise(shape, rng, (120 * px_per_m, 30 * px_per_m))
    ground = np.empty((*shape, 3), dtype=np.float32)
    ground[..., 0] = 128 + 12 * soil + 5 * tint
    ground[..., 1] = 118 + 11 * soil + 2 * tint
    ground[..., 2] = 100 + 9 * soil - 3 * tint
    # Vegetation: patchy fields and tree clumps, thinner inside the compound.
    cover = fractal_noise(shape, rng, (150 * px_per_m, 40 * px_per_m, 10 * px_per_m), (1.0, 0.8, 0.5))
    vegetation = np.clip(0.55 + 0.45 * cover, 0.0, 1.0)
    clumps = fractal_noise(shape, rng, (6 * px_per_m, 2 * px_per_m), (1.0, 0.6))
    vegetation = np.where(clumps > 1.3, np.minimum(1.0, vegetation + 0.5), vegetation).astype(np.float32)
    site_outline = to_utm(layout.site, layout.site.geometry)
    compound = np.zeros(shape, dtype=np.float32)
    for part in getattr(site_outline, "geoms", [site_outline]):
        rows, cols = pixel_indices(grid, np.asarray(part.exterior.coords), shape, pad)
        compound[rows, cols] = 1.0
    # The compound is mostly bare, trodden ground, fading out over some tens of metres.
    compound = ndimage.uniform_filter(compound, size=max(3, int(25 * px_per_m)))
    edge = np.clip(compound + 0.3 * fractal_noise(shape, rng, (15 * px_per_m,)), 0.0, 1.0)
    vegetation *= 1.0 - 0.6 * edge
    texture = 0.75 + 0.25 * fractal_noise(shape, rng, (3 * px_per_m, 1.2 * px_per_m))
    veg_layer = (vegetation * texture).astype(np.float32)

    paved = np.zeros(shape, dtype=bool)
    for pad_box in layout.pads:
        rows, cols = pixel_indices(grid, pad_box.corners, shape, pad)
        ground[rows, cols] = np.array([168.0, 164.0, 156.0]) + 6 * soil[rows, cols, None]
        paved[rows, cols] = True
    for lot in layout.lots:
        rows, cols = pixel_indices(grid, lot.corners, shape, pad)
        ground[rows, cols] = np.array([118.0, 116.0, 112.0]) + 5 * soil[rows, cols, None]
        paved[rows, cols] = True
    for road, width in layout.roads:
        _draw_line(ground, paved, layout, road, width, (92.0, 92.0, 90.0), soil, pad)
    for rail, width in layout.rails:
        _draw_rail(ground, paved, layout, rail, width, pad)
    veg_layer[paved] = 0.0

    roof_rows: list[np.ndarray] = []
    roof_cols: list[np.ndarray] = []
    roof_colours: list[np.ndarray] = []
    roofs: list[tuple[int, int, float, np.ndarray]] = []
    count = 0
    for building in layout.buildings:
        rows, cols = pixel_indices(grid, building.corners, shape, pad)
        if rows.size == 0:
            continue
        x, y = pixel_map_xy(grid, rows, cols, pad)
        a = math.radians(building.angle)
        across = -(x - building.cx) * math.sin(a) + (y - building.cy) * math.cos(a)
        base = np.array(ROOF_COLOURS.get(building.style, ROOF_COLOURS["grey"]), dtype=np.float32)
        base = base * float(rng.uniform(0.9, 1.1))
        # A gable roof: the two slopes differ in brightness; a thin ridge and a darker rim.
        slope = np.where(across > 0, 1.08, 0.9)[:, None]
        rim = (np.abs(across) > building.width / 2 - 0.8)[:, None]
        colour = base * slope * np.where(rim, 0.8, 1.0) + rng.normal(0, 2.0, (rows.size, 1))
        roof_rows.append(rows)
        roof_cols.append(cols)
        roof_colours.append(colour.astype(np.float32))
        roofs.append((count, count + rows.size, building.height, building.corners))
        count += rows.size
        veg_layer[rows, cols] = 0.0
    if roof_rows:
        rows = np.concatenate(roof_rows)
        cols = np.concatenate(roof_cols)
        index = rows.astype(np.int64) * shape[1] + cols
        colours = np.concatenate(roof_colours)
    else:
        index, colours = np.zeros(0, dtype=np.int64), np.zeros((0, 3), dtype=np.float32)
    ground.reshape(-1, 3)[index] = colours
    ground *= (1.0 - veg_layer)[..., None]
    return Background(
        ground=ground,
        vegetation=veg_layer,
        roof_index=index,
        roof_colour=colours,
        roofs=tuple(roofs),
        pad=pad,
    )


def _draw_line(
    ground: np.ndarray,
    paved: np.ndarray,
    layout: ResolvedLayout,
    line: LineString,
    width: float,
    colour: tuple[float, float, float],
    soil: np.ndarray,
    pad: int,
) -> None:
    polygon = line.buffer(width / 2, cap_style="flat", join_style="round")
    rows, cols = pixel_indices(layout.grid, np.asarray(polygon.exterior.coords), ground.shape[:2], pad)
    ground[rows, cols] = np.array(colour) + 4 * soil[rows, cols, None]
    paved[rows, cols] = True


def _draw_rail(
    ground: np.ndarray, paved: np.ndarray, layout: ResolvedLayout, line: LineString, width: float, pad: int
) -> None:
    grid = layout.grid
    ballast = line.buffer(width / 2, cap_style="flat")
    rows, cols = pixel_indices(grid, np.asarray(ballast.exterior.coords), ground.shape[:2], pad)
    ground[rows, cols] = (122.0, 112.0, 100.0)
    paved[rows, cols] = True
    for side in (-0.72, 0.72):
        rail = line.offset_curve(side)
        if isinstance(rail, LineString) and not rail.is_empty:
            strip = rail.buffer(max(0.12, grid.gsd * 0.3), cap_style="flat")
            fill(ground, grid, np.asarray(strip.exterior.coords), pad, (58.0, 54.0, 52.0))
