"""Synthetic "new building" pairs for the learned change detector, made from single images.

Why synthetic: the project may not train on LEVIR-CD (research-only, and it is what the
detector is scored on), and no freely licensed bi-temporal building-change labels exist here.
So each pair is one background (a real aerial frame under CC-BY, or a procedural terrain
of fields, soil, roads and trees) seen twice:

* **labelled change**: buildings that stand on one date only (new or demolished): rotated
  rectangles and L shapes 4-25 m a side, flat or pitched roofs from a palette of roofing
  colours, a darker rim, a cast shadow; construction often clears the ground around them;
* **unlabelled change**, which the model must learn to ignore: the season (colour and
  brightness of blobs of ground and of the trees), mown or ploughed fields, new paved roads
  and yards, construction sites with no building yet (cleared ground, heaps, machines), cars
  that come and go, a different sun (shadows of standing buildings move);
* **the two dates' imaging**: independent gain, offset and gamma per band, blur, noise and a
  sub-pixel misregistration; the dates are swapped half the time (change has no direction).

Buildings standing on both dates are unchanged. Pixels are float32 0..1, ``(3, size, size)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.draw import polygon as fill_polygon

Image3 = NDArray[np.float64]
Mask = NDArray[np.bool_]

_GROUND: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "grass": ((70, 100, 45), (20, 25, 15)),
    "dry_grass": ((150, 140, 95), (25, 25, 20)),
    "soil": ((160, 135, 105), (25, 20, 20)),
    "dark_soil": ((100, 85, 70), (20, 15, 15)),
    "concrete": ((170, 170, 165), (20, 20, 20)),
    "asphalt": ((85, 85, 85), (12, 12, 12)),
}
"""Mean RGB and texture amplitude of each procedural ground cover."""

_ROOFS = ((120, 120, 120), (90, 85, 80), (160, 155, 150), (200, 200, 195), (140, 100, 80),
          (70, 70, 75), (180, 160, 130), (110, 90, 70), (150, 80, 60), (60, 65, 80), (245, 245, 240))
"""Roofing colours: greys of shingle and metal, browns, terracotta, white membranes (up to
saturation), dark slate."""


@dataclass(frozen=True, slots=True)
class Building:
    footprint: Mask
    roof: Image3


@dataclass(frozen=True, slots=True)
class ChangePair:
    before: NDArray[np.float32]
    after: NDArray[np.float32]
    label: Mask
    """Where a building stands on one date only."""


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> NDArray[np.float64]:
    coarse = rng.normal(size=(shape[0] // scale + 3, shape[1] // scale + 3))
    zoomed: NDArray[np.float64] = ndimage.zoom(coarse, scale, order=3)[: shape[0], : shape[1]]
    return zoomed


def ground(rng: np.random.Generator, shape: tuple[int, int], kind: str | None = None) -> Image3:
    """A procedural ground cover: multi-scale value noise around the cover's colour, sometimes in rows."""
    kind = kind or str(rng.choice(list(_GROUND)))
    mean, spread = _GROUND[kind]
    colour = np.asarray(mean) * rng.uniform(0.8, 1.2, 3)
    texture = np.zeros(shape)
    for weight, scale in ((0.5, 2), (0.35, 8), (0.6, 32)):
        texture += weight * _noise(rng, shape, scale)
    image = colour[:, None, None] + np.asarray(spread)[:, None, None] * texture[None] * rng.uniform(0.5, 1.5)
    if rng.random() < 0.3:  # crop rows or mowing stripes
        angle = rng.uniform(0, np.pi)
        rows, cols = np.mgrid[: shape[0], : shape[1]]
        image = image + 12 * np.sin((rows * np.cos(angle) + cols * np.sin(angle)) / rng.uniform(1.5, 4))[None]
    return np.asarray(image)


def blobs(rng: np.random.Generator, shape: tuple[int, int], coverage: float) -> Mask:
    """Irregular natural-looking regions covering about ``coverage`` of the image."""
    field = _noise(rng, shape, int(rng.choice([8, 16, 32])))
    return np.asarray(field > np.quantile(field, 1 - coverage))


def _strip(rng: np.random.Generator, shape: tuple[int, int]) -> Mask:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    angle = float(rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)]))
    distance = rows * np.cos(angle) + cols * np.sin(angle) - rng.uniform(0, max(shape))
    return np.asarray(np.abs(distance) < rng.uniform(3, 10))


def _trees(rng: np.random.Generator, shape: tuple[int, int]) -> Mask:
    crowns = np.zeros(shape, bool)
    count = int(rng.integers(1, 30))
    crowns[rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)] = True
    return np.asarray(ndimage.binary_dilation(crowns, iterations=int(rng.integers(2, 6))))


def procedural_background(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[Image3, Mask]:
    """Fields, soil, roads and trees; returns the image and the trees' crowns."""
    image = ground(rng, shape)
    for _ in range(int(rng.integers(0, 3))):
        image = np.where(blobs(rng, shape, rng.uniform(0.1, 0.5))[None], ground(rng, shape), image)
    for _ in range(int(rng.integers(0, 3))):
        paving = str(rng.choice(["asphalt", "concrete"]))
        image = np.where(_strip(rng, shape)[None], ground(rng, shape, paving), image)
    crowns = np.zeros(shape, bool)
    if rng.random() < 0.6:
        crowns = _trees(rng, shape)
        shade = ndimage.shift(crowns.astype(float), (2, 2), order=0) > 0.5
        image = image * (1 - 0.45 * (shade & ~crowns)[None])
        image = np.where(crowns[None], ground(rng, shape, "grass") * 0.6, image)
    return image, crowns


def building(rng: np.random.Generator, shape: tuple[int, int], gsd: float) -> Building:
    """One building: a rotated rectangle (sometimes with a wing), its roof shaded and rimmed."""
    length, width = rng.uniform(5, 25) / gsd, rng.uniform(4, 15) / gsd
    angle = float(rng.choice([0.0, np.pi / 2])) if rng.random() < 0.5 else rng.uniform(0, np.pi)
    centre = np.array([rng.uniform(0, shape[0]), rng.uniform(0, shape[1])])
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])

    def quad(origin: NDArray[np.float64], corners: Sequence[tuple[float, float]]) -> Mask:
        points = np.array([origin + a * along + b * across for a, b in corners])
        mask = np.zeros(shape, bool)
        rows, cols = fill_polygon(points[:, 0], points[:, 1], shape)
        mask[rows, cols] = True
        return mask

    half_l, half_w = length / 2, width / 2
    footprint = quad(centre, [(-half_l, -half_w), (half_l, -half_w), (half_l, half_w), (-half_l, half_w)])
    if rng.random() < 0.3:
        end = centre + half_l * along * float(rng.choice([-1, 1]))
        footprint |= quad(end, [(-half_w, 0), (half_w, 0), (half_w, 1.5 * width), (-half_w, 1.5 * width)])
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    side = (rows - centre[0]) * across[0] + (cols - centre[1]) * across[1]
    colour = np.asarray(_ROOFS[int(rng.integers(len(_ROOFS)))]) * rng.uniform(0.8, 1.2, 3)
    pitch = rng.uniform(0.7, 1.0) if rng.random() < 0.8 else 1.0  # the far slope is darker
    roof = colour[:, None, None] * np.where(side > 0, 1.0, pitch)[None]
    roof = roof * (1 + 0.04 * _noise(rng, shape, 2)[None])
    rim = footprint & ~ndimage.binary_erosion(footprint)
    return Building(footprint, np.where(rim[None], roof * 0.8, roof))


def _paint(image: Image3, buildings: Sequence[Building], sun: tuple[float, float]) -> Image3:
    out = image.copy()
    for item in buildings:
        shadow = ndimage.shift(item.footprint.astype(float), sun, order=0) > 0.5
        out = np.where((shadow & ~item.footprint)[None], out * 0.45, out)
    for item in buildings:
        out = np.where(item.footprint[None], item.roof, out)
    return out


def _cars(rng: np.random.Generator, image: Image3, gsd: float) -> Image3:
    out = image.copy()
    length, width = max(2, round(4.5 / gsd)), max(1, round(1.8 / gsd))
    for _ in range(int(rng.integers(0, 12))):
        r, c = int(rng.integers(0, out.shape[1] - length)), int(rng.integers(0, out.shape[2] - length))
        h, w = (length, width) if rng.random() < 0.5 else (width, length)
        out[:, r:r + h, c:c + w] = rng.uniform(20, 230) * rng.uniform(0.9, 1.1, 3)[:, None, None]
    return out


def _works(rng: np.random.Generator, image: Image3, gsd: float) -> Image3:
    """Unlabelled change: a construction site without a building yet (cleared ground, spoil heaps,
    machines and stacked material), which the model must not take for a roof."""
    shape = image.shape[1:]
    site = blobs(rng, shape, rng.uniform(0.05, 0.3))
    cover = str(rng.choice(["soil", "dark_soil", "dry_grass", "concrete"]))
    out = np.where(site[None], ground(rng, shape, cover), image)
    rows, cols = np.nonzero(site)
    for _ in range(int(rng.integers(0, 6))):
        if rows.size == 0:
            break
        k = int(rng.integers(rows.size))
        h, w = (max(2, round(rng.uniform(1.5, 6) / gsd)) for _ in range(2))
        shade = rng.uniform(30, 220) * rng.uniform(0.8, 1.2, 3)
        out[:, rows[k]:rows[k] + h, cols[k]:cols[k] + w] = shade[:, None, None]
    return out


def _season(rng: np.random.Generator, image: Image3, crowns: Mask) -> Image3:
    """Unlabelled change of the ground: colour and brightness of blobs, a new field, the trees' leaves."""
    shape = image.shape[1:]
    if rng.random() < 0.7:
        weight = ndimage.gaussian_filter(blobs(rng, shape, rng.uniform(0.05, 0.6)).astype(float), 2)[None]
        tinted = image * rng.uniform(0.7, 1.3, 3)[:, None, None] + rng.uniform(-30, 30, 3)[:, None, None]
        image = image * (1 - weight) + weight * tinted
    if rng.random() < 0.3:
        image = np.where(blobs(rng, shape, rng.uniform(0.05, 0.3))[None], ground(rng, shape), image)
    if crowns.any() and rng.random() < 0.5:  # leaves turn or fall
        image = np.where(crowns[None], image * rng.uniform(0.8, 1.6, 3)[:, None, None], image)
    if rng.random() < 0.3:  # a new road or yard
        paving = str(rng.choice(["asphalt", "concrete", "soil"]))
        image = np.where(_strip(rng, shape)[None], ground(rng, shape, paving), image)
    return image


def _imaging(rng: np.random.Generator, image: Image3) -> Image3:
    """One date's radiometry and optics: gain, offset, gamma, blur, noise."""
    image = image * rng.uniform(0.75, 1.25, 3)[:, None, None] + rng.uniform(-20, 20, 3)[:, None, None]
    image = 255 * (np.clip(image, 0, 255) / 255) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.5:
        image = ndimage.gaussian_filter(image, (0, rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0)))
    image = image + rng.normal(0, rng.uniform(1, 5), image.shape)
    return np.clip(image, 0, 255)


def _sun(rng: np.random.Generator, gsd: float) -> tuple[float, float]:
    """Shadow offset in pixels: none a fifth of the time (sun high, or a flat roof's shadow lost in
    the rim), else 0.5-3 m in any direction."""
    if rng.random() < 0.2:
        return 0.0, 0.0
    azimuth, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 3.0) / gsd
    return float(length * np.cos(azimuth)), float(length * np.sin(azimuth))


def make_pair(rng: np.random.Generator, size: int, *, gsd: float = 0.5,
              frames: Sequence[NDArray[np.uint8]] = (), frame_share: float = 0.35) -> ChangePair:
    """One synthetic pair ``size`` pixels square at ``gsd`` metres (see the module docstring).

    ``frames`` are real RGB ``(3, rows, cols)`` uint8 backgrounds at ``gsd``, drawn ``frame_share``
    of the time when one is at least ``size`` square.
    """
    shape = (size, size)
    usable = [f for f in frames if f.shape[1] >= size and f.shape[2] >= size]
    crowns = np.zeros(shape, bool)
    if usable and rng.random() < frame_share:
        frame = usable[int(rng.integers(len(usable)))]
        r = int(rng.integers(0, frame.shape[1] - size + 1))
        c = int(rng.integers(0, frame.shape[2] - size + 1))
        base = frame[:, r:r + size, c:c + size].astype(np.float64)
    else:
        base, crowns = procedural_background(rng, shape)
    standing = [building(rng, shape, gsd) for _ in range(int(rng.integers(0, 6)))]
    new = [building(rng, shape, gsd) for _ in range(int(rng.integers(1, 8)))] if rng.random() < 0.8 else []
    gone = [building(rng, shape, gsd) for _ in range(int(rng.integers(1, 3)))] if rng.random() < 0.2 else []
    sun_before = _sun(rng, gsd)
    sun_after = sun_before if rng.random() < 0.5 else _sun(rng, gsd)
    before = _paint(_cars(rng, base, gsd), standing + gone, sun_before)
    later = _season(rng, base, crowns)
    if new and rng.random() < 0.5:  # construction clears the ground around the new buildings
        cleared = np.zeros(shape, bool)
        for item in new:
            cleared |= ndimage.binary_dilation(item.footprint, iterations=int(rng.integers(3, 12)))
        cover = str(rng.choice(["soil", "dry_grass", "concrete"]))
        later = np.where(cleared[None], ground(rng, shape, cover), later)
    if rng.random() < 0.25:
        later = _works(rng, later, gsd)
    after = _paint(_cars(rng, later, gsd), standing + new, sun_after)
    label = np.zeros(shape, bool)
    for item in new + gone:
        label |= item.footprint
    for item in standing:
        label &= ~item.footprint
    before, after = _imaging(rng, before), _imaging(rng, after)
    if rng.random() < 0.5:
        after = ndimage.shift(after, (0, rng.uniform(-1, 1), rng.uniform(-1, 1)), order=1, mode="nearest")
    if rng.random() < 0.5:
        before, after = after, before
    return ChangePair((before / 255).astype(np.float32), (after / 255).astype(np.float32), label)
