"""Chip pictures for reports: a shared contrast stretch and detections/change drawn on top."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, ImageDraw
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from sitewatch.core.types import ChangeRegion, Detection

# Outline colours per detected class; anything else is drawn in white.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "car": (0, 200, 255),
    "vehicle": (0, 200, 255),
    "large_vehicle": (255, 200, 0),
    "tanker_truck": (255, 120, 0),
    "rail_car": (190, 120, 255),
    "crane": (255, 60, 200),
    "structure": (120, 255, 120),
}
CHANGE_COLOUR = (255, 40, 40)
MASKED_COLOUR = (40, 40, 40)
"""Pixels an image did not see (cloud, no data): one flat colour, never another date's pixels."""
HATCH_COLOURS = ((230, 0, 170), MASKED_COLOUR)
"""The stripes drawn over unseen pixels in the evidence viewers (dashboard and report): magenta
on dark grey, a colour no ground has, so an analyst zoomed in on a hole never mistakes it for ground."""
HATCH_PERIOD = 8
"""Width in chip pixels of one magenta and one grey stripe together."""
# What an analyst calls each detected class (one, many); unknown classes are named by their id.
CLASS_WORDS: dict[str, tuple[str, str]] = {
    "car": ("car", "cars"),
    "vehicle": ("vehicle", "vehicles"),
    "large_vehicle": ("truck", "trucks"),
    "tanker_truck": ("tanker truck", "tanker trucks"),
    "rail_car": ("rail car", "rail cars"),
    "crane": ("crane", "cranes"),
    "structure": ("structure", "structures"),
}


def class_words(class_name: str, count: int) -> str:
    """Human words for ``count`` objects of a detected class: "crane", "rail cars"."""
    one, many = CLASS_WORDS.get(class_name, (class_name.replace("_", " "),) * 2)
    return one if count == 1 else many


@dataclass(frozen=True, slots=True)
class ChipPicture:
    """A chip ready to draw: display-range RGB pixels, validity, and where they lie."""

    rgb: np.ndarray
    """float32 (h, w, 3) in the chip's own units, not yet stretched."""
    valid: np.ndarray
    """bool (h, w)."""
    transform: Affine
    crs: CRS
    """The chip's grid (the site's UTM zone)."""


RGB_BAND_NAMES = (("red", "r", "b4"), ("green", "g", "b3"), ("blue", "b", "b2"))
"""What a red, a green and a blue band may be called (case does not matter)."""


def rgb_indexes(names: Sequence[str | None], count: int) -> tuple[int, ...]:
    """1-based band indexes to show as red, green, blue: the bands so named, else the first three
    (one band, shown grey, when there are fewer than three). The one rule for every picture of a chip."""
    if count < 3:
        return (1,)
    lowered = [(n or "").lower() for n in names]
    picked = []
    for aliases in RGB_BAND_NAMES:
        index = next((i + 1 for i, n in enumerate(lowered) if n in aliases), None)
        if index is None or index > count:
            return (1, 2, 3)
        picked.append(index)
    return tuple(picked)


def load_chip_picture(path: Path) -> ChipPicture:
    """Read a chip COG as three display bands (:func:`rgb_indexes` of its band descriptions)."""
    with rasterio.open(path) as dataset:
        indexes = rgb_indexes(dataset.descriptions, dataset.count)
        bands = list(indexes) if len(indexes) == 3 else [1, 1, 1]
        pixels = dataset.read(bands).astype(np.float32)
        valid = dataset.dataset_mask() > 0
        transform = dataset.transform
        crs = dataset.crs
    valid &= np.all(np.isfinite(pixels), axis=0)
    return ChipPicture(np.moveaxis(pixels, 0, -1), valid, transform, crs)


def shared_stretch(pictures: Sequence[ChipPicture]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 2nd/98th percentiles over the valid pixels of all pictures.

    Before and after share one stretch so that a brightness change shows as one.
    """
    samples = [p.rgb[p.valid] for p in pictures if p.valid.any()]
    if not samples:
        return np.zeros(3, np.float32), np.ones(3, np.float32)
    stacked = np.concatenate(samples)
    low = np.percentile(stacked, 2, axis=0)
    high = np.percentile(stacked, 98, axis=0)
    return low, np.maximum(high, low + 1e-6)


def hatch(shape: tuple[int, int]) -> np.ndarray:
    """Diagonal stripes (uint8, ``shape`` + (3,)) in :data:`HATCH_COLOURS`, for pixels nobody saw."""
    rows, cols = np.indices(shape)
    stripe = ((rows + cols) % HATCH_PERIOD) < HATCH_PERIOD // 2
    return np.where(stripe[..., None], np.array(HATCH_COLOURS[0], np.uint8),
                    np.array(HATCH_COLOURS[1], np.uint8))


def render_picture(
    picture: ChipPicture,
    stretch: tuple[np.ndarray, np.ndarray],
    *,
    detections: Sequence[Detection] = (),
    change_regions: Sequence[ChangeRegion] = (),
    max_size: int | None = 640,
    hatched: bool = False,
) -> Image.Image:
    """The chip as an 8-bit image with change regions and detections outlined.

    Unseen pixels are :data:`MASKED_COLOUR`, or the :func:`hatch` with ``hatched`` (the zoomable
    viewers, where a flat block could pass for a dark roof); ``max_size=None`` keeps every pixel.
    """
    low, high = stretch
    scaled = np.clip((picture.rgb - low) / (high - low), 0.0, 1.0) * 255.0
    if hatched:
        scaled[~picture.valid] = hatch(picture.valid.shape)[~picture.valid]
    else:
        scaled[~picture.valid] = MASKED_COLOUR
    image = Image.fromarray(scaled.astype(np.uint8))
    scale = 1.0 if max_size is None else min(1.0, max_size / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    to_pixels = ~picture.transform
    for region in change_regions:
        _outline(draw, region.geometry, to_pixels, scale, CHANGE_COLOUR, width=2)
    for detection in detections:
        colour = CLASS_COLOURS.get(detection.class_name, (255, 255, 255))
        _outline(draw, detection.geometry, to_pixels, scale, colour, width=1)
    return image


def _outline(
    draw: ImageDraw.ImageDraw,
    geometry: BaseGeometry,
    to_pixels: Affine,
    scale: float,
    colour: tuple[int, int, int],
    *,
    width: int,
) -> None:
    parts = getattr(geometry, "geoms", [geometry])
    for part in parts:
        ring = getattr(part, "exterior", None)
        coords = list(ring.coords) if ring is not None else list(part.coords)
        points = []
        for x, y in coords:
            col, row = to_pixels * (x, y)
            points.append((col * scale, row * scale))
        if len(points) >= 2:
            draw.line(points, fill=colour, width=width)
        elif points:
            cx, cy = points[0]
            draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), outline=colour)
