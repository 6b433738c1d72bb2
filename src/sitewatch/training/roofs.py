"""Real roofs for the change model's training pairs: building outlines over freely licensed imagery.

The drawn roofs of :mod:`sitewatch.training.change_pairs` are rectangles in a palette; real roofs
are corrugated iron with rust streaks, clay tiles, weathered concrete, with ridges, patches and
clutter. Each outline of an OpenStreetMap building layer over web-map tiles (the Kampala
OpenAerialMap tiles in ``../shared/data``, CC-BY 4.0, outlines ODbL) cuts one roof out of the
imagery, resampled to the training GSD: new buildings can then be real roofs pasted on other
ground, and the backgrounds cut from the same tiles keep their real buildings (standing, or
removed on one date).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from sitewatch.training.mosaic import Mosaic, read_polygons, tile_mosaics


@dataclass(frozen=True, slots=True)
class Roof:
    """One real roof at the training GSD."""

    pixels: NDArray[np.float64]
    """(3, rows, cols) 0..255."""
    mask: NDArray[np.bool_]
    """(rows, cols) the outline's pixels."""


@dataclass(frozen=True, slots=True)
class BuiltFrame:
    """A real background at the training GSD and the outlines of the buildings standing in it."""

    pixels: NDArray[np.uint8]
    """(3, rows, cols)"""
    buildings: NDArray[np.int32]
    """(rows, cols) 0 where no outline, else the outline's number (1, 2, ...)."""


def _outline_mask(size: tuple[int, int], ring: NDArray[np.float64],
                  supersample: int = 4) -> NDArray[np.float64]:
    """Coverage 0..1 of a ring (pixel x, y) on a grid of ``size`` (cols, rows)."""
    canvas = Image.new("L", (size[0] * supersample, size[1] * supersample), 0)
    points = [(float(x) * supersample, float(y) * supersample) for x, y in ring]
    ImageDraw.Draw(canvas).polygon(points, fill=255)
    return np.asarray(canvas.resize(size, Image.Resampling.BOX), np.float64) / 255.0


def _resampled(mosaic: Mosaic, gsd: float) -> tuple[Image.Image, float]:
    """The mosaic resampled (area average) to ``gsd``; returns the image and mosaic pixels per new pixel."""
    factor = gsd / mosaic.gsd
    size = (max(1, round(mosaic.image.width / factor)), max(1, round(mosaic.image.height / factor)))
    return mosaic.image.resize(size, Image.Resampling.BOX), mosaic.image.width / size[0]


def read_built_frames(folder: Path, outlines: Path, *, zoom: int, gsd: float
                      ) -> tuple[list[BuiltFrame], list[Roof]]:
    """Backgrounds with their buildings, and every whole roof, from tiles and building outlines.

    A roof is kept when its outline lies inside one mosaic, away from missing tiles, and covers
    at least 4 m² at ``gsd``.
    """
    rings = [ring for _, ring in read_polygons(outlines, zoom, class_property=None)]
    frames, roofs = [], []
    for mosaic in tile_mosaics(folder, zoom):
        image, factor = _resampled(mosaic, gsd)
        pixels = np.asarray(image, np.uint8).transpose(2, 0, 1).copy()
        buildings = np.zeros((image.height, image.width), np.int32)
        for number, ring in enumerate(rings, start=1):
            local = (ring - np.asarray(mosaic.origin, np.float64)) / factor
            x0, y0 = np.floor(local.min(axis=0)).astype(int)
            x1, y1 = np.ceil(local.max(axis=0)).astype(int)
            if x1 <= 0 or y1 <= 0 or x0 >= image.width or y0 >= image.height:
                continue
            inside = x0 >= 0 and y0 >= 0 and x1 <= image.width and y1 <= image.height
            if inside and any(_touches((x0 * factor, y0 * factor, x1 * factor, y1 * factor), m)
                              for m in mosaic.missing):
                inside = False
            cover = _outline_mask((image.width, image.height), local)
            buildings[(cover > 0.5) & (buildings == 0)] = number
            if not inside or (cover > 0.5).sum() * gsd**2 < 4.0:
                continue
            mask = cover[y0:y1, x0:x1] > 0.5
            roofs.append(Roof(pixels[:, y0:y1, x0:x1].astype(np.float64), mask))
        frames.append(BuiltFrame(pixels, buildings))
    return frames, roofs


def _touches(box: tuple[float, float, float, float], other: tuple[int, int, int, int]) -> bool:
    return not (box[2] <= other[0] or other[2] <= box[0] or box[3] <= other[1] or other[3] <= box[1])


def turned_roof(roof: Roof, rng: np.random.Generator) -> Roof:
    """The roof mirrored and turned to a random heading (nearest neighbour: a roof's edges stay crisp)."""
    pixels, mask = roof.pixels, roof.mask
    if rng.random() < 0.5:
        pixels, mask = pixels[:, :, ::-1], mask[:, ::-1]
    angle = rng.uniform(0, 360)
    rows, cols = mask.shape
    theta = math.radians(angle)
    out_rows = int(abs(rows * math.cos(theta)) + abs(cols * math.sin(theta))) + 2
    out_cols = int(abs(cols * math.cos(theta)) + abs(rows * math.sin(theta))) + 2
    yy, xx = np.mgrid[:out_rows, :out_cols].astype(np.float64)
    yy -= out_rows / 2
    xx -= out_cols / 2
    src_x = np.cos(theta) * xx + np.sin(theta) * yy + cols / 2
    src_y = -np.sin(theta) * xx + np.cos(theta) * yy + rows / 2
    ix, iy = np.floor(src_x).astype(int), np.floor(src_y).astype(int)
    valid = (ix >= 0) & (iy >= 0) & (ix < cols) & (iy < rows)
    ix, iy = np.clip(ix, 0, cols - 1), np.clip(iy, 0, rows - 1)
    new_mask = valid & mask[iy, ix]
    new_pixels = pixels[:, iy, ix] * new_mask[None]
    return Roof(new_pixels, new_mask)
