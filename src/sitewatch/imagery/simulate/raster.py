"""Raster primitives the simulator draws with: fractal noise, polygon fills, shadow hulls.

All drawing happens on float32 (rows, cols, 3) canvases whose values are reflectance-like
digital numbers 0..255 before illumination; geometry arrives as map coordinates and is
turned into pixel coordinates with :class:`~sitewatch.imagery.simulate.layout.Grid`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image
from skimage.draw import polygon as polygon_pixels

from sitewatch.imagery.simulate.layout import Grid

Shader = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Colour of pixels from their local (along, across) coordinates in metres: returns (n, 3)."""


def fractal_noise(
    shape: tuple[int, int],
    rng: np.random.Generator,
    cells: tuple[float, ...],
    weights: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Sum of smooth value-noise octaves (cell sizes in pixels), scaled to mean 0 and std 1."""
    rows, cols = shape
    total = np.zeros(shape, dtype=np.float32)
    for i, cell in enumerate(cells):
        small = rng.standard_normal((max(2, round(rows / cell) + 1), max(2, round(cols / cell) + 1)))
        weight = 1.0 if weights is None else weights[i]
        total += weight * upsample(small.astype(np.float32), shape)
    total -= total.mean()
    total /= max(float(total.std()), 1e-6)
    return total


def upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic resampling of a coarse float field to ``shape`` (Pillow's resize: fast, single pass).

    Bicubic rather than bilinear: thresholded bilinear noise shows diamond-shaped grid artefacts.
    """
    resized = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BICUBIC
    )
    return np.array(resized, dtype=np.float32)


def pixel_indices(
    grid: Grid, corners: np.ndarray, shape: tuple[int, int], pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of canvas pixels whose centres fall inside the map polygon ``corners``."""
    rc = grid.to_pixel(corners, pad) - 0.5
    return polygon_pixels(rc[:, 0], rc[:, 1], shape)


def pixel_map_xy(grid: Grid, rows: np.ndarray, cols: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates of the centres of canvas pixels."""
    x = grid.west + (cols - pad + 0.5) * grid.gsd
    y = grid.north - (rows - pad + 0.5) * grid.gsd
    return x, y


def fill(
    canvas: np.ndarray, grid: Grid, corners: np.ndarray, pad: int, colour: np.ndarray | tuple[float, ...]
) -> None:
    rows, cols = pixel_indices(grid, corners, canvas.shape[:2], pad)
    canvas[rows, cols] = colour


def shade_box(
    canvas: np.ndarray,
    grid: Grid,
    corners: np.ndarray,
    pad: int,
    centre: tuple[float, float],
    angle_deg: float,
    shader: Shader,
) -> None:
    """Fill a polygon with colours computed from each pixel's position along/across ``angle_deg``."""
    rows, cols = pixel_indices(grid, corners, canvas.shape[:2], pad)
    if rows.size == 0:
        return
    x, y = pixel_map_xy(grid, rows, cols, pad)
    a = np.deg2rad(angle_deg)
    dx, dy = x - centre[0], y - centre[1]
    along = dx * np.cos(a) + dy * np.sin(a)
    across = -dx * np.sin(a) + dy * np.cos(a)
    canvas[rows, cols] = shader(along, across)


def hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise) of a few 2-D points: Andrew's monotone chain."""
    pts = sorted({(float(p[0]), float(p[1])) for p in points})
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def mark_shadow(
    mask: np.ndarray, grid: Grid, corners: np.ndarray, offset: tuple[float, float], pad: int
) -> None:
    """Mark the shadow of a prism with base ``corners`` whose top casts ``offset`` (east, north) metres."""
    if abs(offset[0]) + abs(offset[1]) < grid.gsd * 0.3:
        return
    shifted = corners + np.asarray(offset)
    rows, cols = pixel_indices(grid, hull(np.vstack([corners, shifted])), mask.shape, pad)
    mask[rows, cols] = True


def blur_psf(image: np.ndarray) -> np.ndarray:
    """A cheap sensor point-spread function: centre 1/2, four neighbours 1/8 each."""
    out = image * 0.5
    out[1:] += image[:-1] * 0.125
    out[:-1] += image[1:] * 0.125
    out[:, 1:] += image[:, :-1] * 0.125
    out[:, :-1] += image[:, 1:] * 0.125
    out[0] += image[0] * 0.125
    out[-1] += image[-1] * 0.125
    out[:, 0] += image[:, 0] * 0.125
    out[:, -1] += image[:, -1] * 0.125
    return out
