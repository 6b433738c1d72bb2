"""Synthetic "new building" pairs for the learned change detector, made from single images.

Why synthetic: the project may not train on LEVIR-CD (research-only, and it is what the
detector is scored on), and no freely licensed bi-temporal building-change labels exist here.
So each pair is one background (a real aerial frame under CC-BY, or a procedural terrain
of fields, soil, roads and trees) seen twice:

* **labelled change**: buildings that stand on one date only (new or demolished): rotated
  rectangles and L shapes 4-25 m a side, flat or pitched roofs from a palette of roofing
  colours (some with four slopes), a darker rim, a cast shadow; construction often clears the
  ground around them; some pairs hold a residential street, houses alike in a row on each side
  behind front yards, either all built between the dates with their road and driveways, or
  standing with new houses on some lots;
* **unlabelled change**, which the model must learn to ignore: the season (colour and
  brightness of blobs of ground and of the trees), mown or ploughed fields, new paved roads
  and yards, construction sites with no building yet (cleared ground, heaps, machines), cars
  that come and go, a different sun (shadows of standing buildings move);
* **the two dates' view**: off nadir, a building's roof leans away from its footprint by its
  height (3-9 m) times the view's slope and a wall shows; standing buildings lean differently
  on the two dates, which is not change;
* **the two dates' imaging**: independent gain, offset and gamma per band, blur, noise and a
  misregistration of up to 2 pixels; the dates are swapped half the time (change has no direction).

Buildings standing on both dates are unchanged; a building that changed is labelled where it
shows (roof and wall) on its date. Pixels are float32 0..1, ``(3, size, size)``.

Version 3 of the model learns two things, so each pair has two labels:

* ``label``, building change, as above; real roofs (cut from freely licensed imagery by building
  outlines, :mod:`sitewatch.training.roofs`) are new or demolished buildings beside the drawn
  ones, and backgrounds cut from the same imagery keep their real buildings, some removed on
  one date;
* ``site``, any change a site monitor cares about: building change plus earthworks and ground
  scarring, new pads and yards, new roads and tracks, vegetation cleared, water that came or
  went, construction sites. The season, mown fields, cars, shadows, the view and the imaging
  stay unlabelled in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from skimage.draw import polygon as fill_polygon

from sitewatch.training.roofs import BuiltFrame, Roof, turned_roof

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
    height: float = 3.0
    """Metres, for relief displacement."""
    wall: NDArray[np.float64] = field(default_factory=lambda: np.full(3, 150.0))
    """The facade's RGB."""


@dataclass(frozen=True, slots=True)
class ChangePair:
    before: NDArray[np.float32]
    after: NDArray[np.float32]
    label: Mask
    """Where a building stands on one date only."""
    site: Mask | None = None
    """Where anything a site monitor cares about changed (buildings included); None in pairs drawn
    without land changes, where it equals ``label``."""


ShiftedT = TypeVar("ShiftedT", bound=np.generic)


def _shifted(array: NDArray[ShiftedT], offset: tuple[float, float]) -> NDArray[ShiftedT]:
    """``array`` (rows, cols, or bands first) moved by ``offset`` (rows, cols) rounded to whole
    pixels, zeros shifted in: a nearest-neighbour shift by slicing, cheaper than a spline's."""
    dy, dx = (int(np.floor(v + 0.5)) for v in offset)
    out = np.zeros_like(array)
    rows, cols = array.shape[-2:]
    if abs(dy) >= rows or abs(dx) >= cols:
        return out
    src_r, dst_r = slice(max(0, -dy), rows - max(0, dy)), slice(max(0, dy), rows - max(0, -dy))
    src_c, dst_c = slice(max(0, -dx), cols - max(0, dx)), slice(max(0, dx), cols - max(0, -dx))
    out[..., dst_r, dst_c] = array[..., src_r, src_c]
    return out


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> NDArray[np.float64]:
    """Smooth value noise: a coarse normal field, one value every ``scale`` pixels, bicubically
    enlarged (Pillow's resize: a tenth of the time of a cubic-spline zoom, same look)."""
    coarse = rng.normal(size=(shape[0] // scale + 3, shape[1] // scale + 3)).astype(np.float32)
    size = (coarse.shape[1] * scale, coarse.shape[0] * scale)
    zoomed = np.asarray(Image.fromarray(coarse, mode="F").resize(size, Image.Resampling.BICUBIC), np.float64)
    return zoomed[: shape[0], : shape[1]]


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
        shade = _shifted(crowns, (2, 2))
        image = image * (1 - 0.45 * (shade & ~crowns)[None])
        image = np.where(crowns[None], ground(rng, shape, "grass") * 0.6, image)
    return image, crowns


def building(rng: np.random.Generator, shape: tuple[int, int], gsd: float, *, hip: float = 0.0,
             centre: tuple[float, float] | None = None, angle: float | None = None,
             size: tuple[float, float] | None = None, colour: NDArray[np.float64] | None = None) -> Building:
    """One building: a rotated rectangle (sometimes with a wing), its roof shaded and rimmed; a
    share ``hip`` of roofs have four slopes instead of two. ``centre`` (pixels), ``angle``
    (radians), ``size`` (length and width in metres) and the roof's ``colour`` may be given, as
    for the houses of a street (then it has no wing)."""
    if size is None:
        length, width = rng.uniform(5, 25) / gsd, rng.uniform(4, 15) / gsd
    else:
        length, width = size[0] / gsd, size[1] / gsd
    if angle is None:
        angle = float(rng.choice([0.0, np.pi / 2])) if rng.random() < 0.5 else rng.uniform(0, np.pi)
    if centre is None:
        centre = (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]))
        wing = True
    else:
        wing = False
    middle = np.asarray(centre, float)
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])

    def quad(origin: NDArray[np.float64], corners: Sequence[tuple[float, float]]) -> Mask:
        points = np.array([origin + a * along + b * across for a, b in corners])
        mask = np.zeros(shape, bool)
        rows, cols = fill_polygon(points[:, 0], points[:, 1], shape)
        mask[rows, cols] = True
        return mask

    half_l, half_w = length / 2, width / 2
    footprint = quad(middle, [(-half_l, -half_w), (half_l, -half_w), (half_l, half_w), (-half_l, half_w)])
    if wing and rng.random() < 0.3:
        end = middle + half_l * along * float(rng.choice([-1, 1]))
        footprint |= quad(end, [(-half_w, 0), (half_w, 0), (half_w, 1.5 * width), (-half_w, 1.5 * width)])
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    side = (rows - middle[0]) * across[0] + (cols - middle[1]) * across[1]
    if colour is None:
        colour = np.asarray(_ROOFS[int(rng.integers(len(_ROOFS)))]) * rng.uniform(0.8, 1.2, 3)
    pitch = rng.uniform(0.7, 1.0) if rng.random() < 0.8 else 1.0  # the far slope is darker
    roof = colour[:, None, None] * np.where(side > 0, 1.0, pitch)[None]
    roof = roof * (1 + 0.04 * _noise(rng, shape, 2)[None])
    rim = footprint & ~ndimage.binary_erosion(footprint)
    if rng.random() < 0.5:  # the facade: the roof's colour in shade, or a render of its own
        wall = colour * rng.uniform(0.5, 0.9)
    else:
        wall = rng.uniform(100, 220) * rng.uniform(0.9, 1.1, 3)
    height = float(rng.uniform(3, 9))
    if hip > 0 and rng.random() < hip:  # the two ends slope too, each lit its own way
        distance = (rows - middle[0]) * along[0] + (cols - middle[1]) * along[1]
        ends = (half_l - np.abs(distance)) < (half_w - np.abs(side))
        lit = rng.uniform(min(pitch, 1.0), 1.0, 2)
        roof = np.where(ends[None], colour[:, None, None] * np.where(distance > 0, lit[0], lit[1])[None]
                        * (1 + 0.04 * _noise(rng, shape, 2)[None]), roof)
    return Building(footprint, np.where(rim[None], roof * 0.8, roof), height, wall)


def _street(rng: np.random.Generator, shape: tuple[int, int], gsd: float,
            hip: float) -> tuple[Mask, Mask, list[Building]]:
    """A residential street: a paved road, houses in a row on each side (alike in size, roof colour
    and orientation, set back behind front yards, some lots empty) and their driveways. Returns the
    road, the driveways and the houses."""
    angle = float(rng.choice([0.0, np.pi / 2])) if rng.random() < 0.6 else rng.uniform(0, np.pi)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    origin = np.array([rng.uniform(0.2, 0.8) * shape[0], rng.uniform(0.2, 0.8) * shape[1]])
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    offset_across = (rows - origin[0]) * across[0] + (cols - origin[1]) * across[1]
    offset_along = (rows - origin[0]) * along[0] + (cols - origin[1]) * along[1]
    road_half = rng.uniform(3, 5) / gsd
    road = np.abs(offset_across) < road_half
    spacing = rng.uniform(15, 25) / gsd
    family = np.asarray(_ROOFS[int(rng.integers(len(_ROOFS)))], float)
    drives = np.zeros(shape, bool)
    houses = []
    reach = float(np.hypot(*shape))
    for sign in (-1.0, 1.0):
        setback = rng.uniform(4, 10) / gsd
        for position in np.arange(-reach, reach, spacing) + rng.uniform(0, spacing):
            if rng.random() < 0.15:
                continue  # an empty lot
            frontage, depth = rng.uniform(0.45, 0.75) * spacing * gsd, rng.uniform(8, 14)
            distance = road_half + setback + depth / gsd / 2
            centre = origin + position * along + sign * distance * across
            margin = depth / gsd
            if not (-margin < centre[0] < shape[0] + margin and -margin < centre[1] < shape[1] + margin):
                continue
            colour = family * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3)
            houses.append(building(rng, shape, gsd, hip=hip, centre=(float(centre[0]), float(centre[1])),
                                   angle=angle, size=(frontage, depth), colour=colour))
            lane = position + rng.uniform(-0.3, 0.3) * frontage / gsd
            drives |= ((np.abs(offset_along - lane) < rng.uniform(1.5, 2.5) / gsd)
                       & (sign * offset_across > 0) & (sign * offset_across < road_half + setback + 1))
    return road, drives & ~road, houses


def _view(rng: np.random.Generator, gsd: float) -> tuple[float, float]:
    """One date's relief displacement per metre of height, in pixels: half the time near nadir
    (none), else 3-20 degrees off nadir from any azimuth, so roofs lean away from their
    footprints and a wall shows."""
    if rng.random() < 0.5:
        return 0.0, 0.0
    azimuth, slope = rng.uniform(0, 2 * np.pi), np.tan(np.radians(rng.uniform(3, 20)))
    return float(slope * np.cos(azimuth) / gsd), float(slope * np.sin(azimuth) / gsd)


def _seen(item: Building, view: tuple[float, float]) -> tuple[Mask, Mask, Image3]:
    """A building as one date sees it: its roof (moved by height x view), the wall between
    footprint and roof, and the roof's pixels at their new place."""
    offset = (view[0] * item.height, view[1] * item.height)
    if abs(offset[0]) < 0.5 and abs(offset[1]) < 0.5:
        return item.footprint, np.zeros_like(item.footprint), item.roof
    roof = _shifted(item.footprint, offset)
    wall = item.footprint.copy()
    for t in (0.25, 0.5, 0.75):
        wall |= _shifted(item.footprint, (t * offset[0], t * offset[1]))
    pixels = _shifted(item.roof, offset)
    return roof, wall & ~roof, pixels


def _paint(image: Image3, buildings: Sequence[Building], sun: tuple[float, float],
           view: tuple[float, float] = (0.0, 0.0)) -> tuple[Image3, Mask]:
    """The buildings on ``image`` under one date's sun and view; returns the image and, for each
    building, where it shows (roof and wall) stacked as ``(len(buildings), rows, cols)``."""
    out = image.copy()
    for item in buildings:
        shadow = _shifted(item.footprint, sun)
        out = np.where((shadow & ~item.footprint)[None], out * 0.45, out)
    shown = np.zeros((len(buildings), *image.shape[1:]), bool)
    for k, item in enumerate(buildings):
        roof, wall, pixels = _seen(item, view)
        out = np.where(wall[None], item.wall[:, None, None], out)
        out = np.where(roof[None], pixels, out)
        shown[k] = roof | wall
    return out, shown


def _cars(rng: np.random.Generator, image: Image3, gsd: float) -> Image3:
    out = image.copy()
    length, width = max(2, round(4.5 / gsd)), max(1, round(1.8 / gsd))
    for _ in range(int(rng.integers(0, 12))):
        r, c = int(rng.integers(0, out.shape[1] - length)), int(rng.integers(0, out.shape[2] - length))
        h, w = (length, width) if rng.random() < 0.5 else (width, length)
        out[:, r:r + h, c:c + w] = rng.uniform(20, 230) * rng.uniform(0.9, 1.1, 3)[:, None, None]
    return out


def _works(rng: np.random.Generator, image: Image3, gsd: float) -> tuple[Image3, Mask]:
    """A construction site without a building yet (cleared ground, spoil heaps, machines and stacked
    material): no building change, which the model must not take for a roof, but site change."""
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
    return out, site


def _season(rng: np.random.Generator, image: Image3, crowns: Mask, *,
            fields: tuple[str, ...] | None = None) -> tuple[Image3, Mask]:
    """Change of the ground: colour and brightness of blobs, a new field, the trees' leaves (no change
    to a site monitor), and a new road or yard (site change, returned as the mask). ``fields``
    limits the new field's covers (vegetation only in version 3: bare soil is earthworks)."""
    shape = image.shape[1:]
    paved = np.zeros(shape, bool)
    if rng.random() < 0.7:
        weight = ndimage.gaussian_filter(blobs(rng, shape, rng.uniform(0.05, 0.6)).astype(float), 2)[None]
        tinted = image * rng.uniform(0.7, 1.3, 3)[:, None, None] + rng.uniform(-30, 30, 3)[:, None, None]
        image = image * (1 - weight) + weight * tinted
    if rng.random() < 0.3:
        cover = None if fields is None else str(rng.choice(list(fields)))
        image = np.where(blobs(rng, shape, rng.uniform(0.05, 0.3))[None], ground(rng, shape, cover), image)
    if crowns.any() and rng.random() < 0.5:  # leaves turn or fall
        image = np.where(crowns[None], image * rng.uniform(0.8, 1.6, 3)[:, None, None], image)
    if rng.random() < 0.3:  # a new road or yard
        paving = str(rng.choice(["asphalt", "concrete", "soil"]))
        paved = _strip(rng, shape)
        image = np.where(paved[None], ground(rng, shape, paving), image)
    return image, paved


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


LAND_CHANGES = ("earthworks", "pad", "road", "clearing", "water")
"""Kinds of site change other than buildings that version-3 pairs draw."""

_WATER = ((45, 60, 70), (60, 75, 60), (80, 70, 55), (30, 45, 60))
"""Mean RGB of water: deep and clear, green, muddy, dark."""


def _earthworks(rng: np.random.Generator, image: Image3, gsd: float) -> tuple[Image3, Mask]:
    """Ground stripped to soil, with spoil heaps lit from one side and vehicle tracks."""
    shape = image.shape[1:]
    region = blobs(rng, shape, rng.uniform(0.05, 0.35))
    fill = ground(rng, shape, str(rng.choice(["soil", "dark_soil", "soil"])))
    relief = np.zeros(shape)
    for _ in range(int(rng.integers(0, 6))):
        r, c = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        radius = rng.uniform(2, 8) / gsd
        rows, cols = np.mgrid[: shape[0], : shape[1]]
        relief += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * radius**2)) * rng.uniform(0.5, 1.5)
    if relief.any():
        azimuth = rng.uniform(0, 2 * np.pi)
        gy, gx = np.gradient(relief)
        lit = 1 + 6 * (gx * np.cos(azimuth) + gy * np.sin(azimuth)) * gsd
        fill = fill * np.clip(lit, 0.6, 1.4)[None]
    for _ in range(int(rng.integers(0, 4))):  # tyre tracks
        track = _strip(rng, shape)
        fill = np.where((track & ~ndimage.binary_erosion(track, iterations=2))[None], fill * 0.8, fill)
    return np.where(region[None], fill, image), region


def _pad(rng: np.random.Generator, image: Image3, gsd: float) -> tuple[Image3, Mask]:
    """A new paved pad or yard: a rotated rectangle of concrete or asphalt, sometimes marked out."""
    shape = image.shape[1:]
    length, width = rng.uniform(15, 80) / gsd, rng.uniform(10, 60) / gsd
    angle = rng.uniform(0, np.pi)
    centre = np.array([rng.uniform(0, shape[0]), rng.uniform(0, shape[1])])
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    corners = np.array([centre + a * length / 2 * along + b * width / 2 * across
                        for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    region = np.zeros(shape, bool)
    rows, cols = fill_polygon(corners[:, 0], corners[:, 1], shape)
    region[rows, cols] = True
    fill = ground(rng, shape, str(rng.choice(["concrete", "asphalt", "concrete"])))
    if rng.random() < 0.4:  # painted bays or lines
        rr, cc = np.mgrid[: shape[0], : shape[1]]
        position = (rr - centre[0]) * along[0] + (cc - centre[1]) * along[1]
        lines = np.abs(np.mod(position, rng.uniform(2.5, 6) / gsd)) < max(1.0, 0.15 / gsd)
        fill = np.where(lines[None], 220.0, fill)
    return np.where(region[None], fill, image), region


def _road(rng: np.random.Generator, image: Image3, gsd: float) -> tuple[Image3, Mask]:
    """A new road or track across the ground."""
    shape = image.shape[1:]
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    angle = rng.uniform(0, np.pi)
    bend = rng.uniform(-0.004, 0.004) * gsd
    distance = rows * np.cos(angle) + cols * np.sin(angle) - rng.uniform(0, max(shape))
    distance = distance + bend * (rows * np.sin(angle) - cols * np.cos(angle)) ** 2
    region = np.abs(distance) < rng.uniform(2.5, 7) / gsd
    fill = ground(rng, shape, str(rng.choice(["asphalt", "soil", "concrete", "dry_grass"])))
    return np.where(region[None], fill, image), region


def _water(rng: np.random.Generator, image: Image3) -> tuple[Image3, Mask]:
    """Water where there was none (a pond, a flooded pit, a reservoir's rise; reversed, it went)."""
    shape = image.shape[1:]
    region = ndimage.binary_opening(blobs(rng, shape, rng.uniform(0.05, 0.4)), iterations=2)
    colour = np.asarray(_WATER[int(rng.integers(len(_WATER)))], float) * rng.uniform(0.7, 1.3, 3)
    ripples = 1 + 0.04 * _noise(rng, shape, 4)
    fill = colour[:, None, None] * ripples[None]
    if rng.random() < 0.2:  # sun glint
        fill = fill + 120 * np.clip(_noise(rng, shape, 2) - 1.5, 0, None)[None]
    shore = region & ~ndimage.binary_erosion(region, iterations=2)
    fill = np.where(shore[None], fill * 0.8 + 0.2 * image, fill)
    return np.where(region[None], fill, image), region


def _real_roof_building(rng: np.random.Generator, roof: Roof, shape: tuple[int, int]) -> Building:
    """A real roof, turned, placed anywhere, its colours sometimes those of another roofing."""
    turned = turned_roof(roof, rng)
    rows, cols = turned.mask.shape
    if rows >= shape[0] or cols >= shape[1]:
        turned = Roof(turned.pixels[:, : shape[0] - 1, : shape[1] - 1],
                      turned.mask[: shape[0] - 1, : shape[1] - 1])
        rows, cols = turned.mask.shape
    r, c = int(rng.integers(0, shape[0] - rows + 1)), int(rng.integers(0, shape[1] - cols + 1))
    footprint = np.zeros(shape, bool)
    footprint[r:r + rows, c:c + cols] = turned.mask
    pixels = turned.pixels.copy()
    if rng.random() < 0.6:  # keep the texture, take another roofing's colour
        luminance = pixels.mean(axis=0)
        level = max(float(luminance[turned.mask].mean()), 1.0) if turned.mask.any() else 1.0
        colour = np.asarray(_ROOFS[int(rng.integers(len(_ROOFS)))], float) * rng.uniform(0.8, 1.2, 3)
        pixels = colour[:, None, None] * (luminance / level)[None] ** rng.uniform(0.5, 1.0)
    else:
        pixels = pixels * rng.uniform(0.8, 1.2, 3)[:, None, None]
    roof_image = np.zeros((3, *shape))
    roof_image[:, r:r + rows, c:c + cols] = pixels
    wall = np.asarray(_ROOFS[int(rng.integers(len(_ROOFS)))], float) * rng.uniform(0.5, 0.9)
    return Building(footprint, roof_image, float(rng.uniform(3, 9)), wall)


def _built_background(rng: np.random.Generator, frames: Sequence[BuiltFrame], size: int, gsd: float
                      ) -> tuple[Image3, Image3, Mask] | None:
    """A crop of a real built-up frame with 0-3 of its outlined buildings torn down on the second date:
    returns (first date, second date, where buildings went), or None when no frame is big enough."""
    usable = [f for f in frames if f.pixels.shape[1] >= size and f.pixels.shape[2] >= size]
    if not usable:
        return None
    frame = usable[int(rng.integers(len(usable)))]
    r = int(rng.integers(0, frame.pixels.shape[1] - size + 1))
    c = int(rng.integers(0, frame.pixels.shape[2] - size + 1))
    base = frame.pixels[:, r:r + size, c:c + size].astype(np.float64)
    ids = frame.buildings[r:r + size, c:c + size]
    whole = [k for k in np.unique(ids) if k and (frame.buildings == k).sum() == (ids == k).sum()
             and (ids == k).sum() * gsd**2 >= 10]
    gone = np.zeros((size, size), bool)
    later = base.copy()
    for k in rng.permutation(whole)[: int(rng.integers(0, 4))]:
        lot = ndimage.binary_dilation(ids == k, iterations=1)
        cover = str(rng.choice(["soil", "dry_grass", "concrete", "dark_soil"]))
        later = np.where(lot[None], ground(rng, (size, size), cover), later)
        gone |= lot
    return base, later, gone


def _plant(rng: np.random.Generator, base: Image3, crowns: Mask) -> tuple[Image3, Mask]:
    """Trees on the base where it has none drawn (a real frame), so that some can be cleared."""
    if crowns.any():
        return base, crowns
    shape = base.shape[1:]
    crowns = _trees(rng, shape)
    canopy = ground(rng, shape, "grass") * rng.uniform(0.5, 0.75)
    shade = _shifted(crowns, (2, 2))
    return np.where(crowns[None], canopy, base * (1 - 0.45 * (shade & ~crowns)[None])), crowns


def make_pair(rng: np.random.Generator, size: int, *, gsd: float = 0.5,
              frames: Sequence[NDArray[np.uint8]] = (), frame_share: float = 0.35,
              street_share: float = 0.0, hip_share: float = 0.0, roofs: Sequence[Roof] = (),
              roof_share: float = 0.0, built: Sequence[BuiltFrame] = (), built_share: float = 0.0,
              land_share: float = 0.0) -> ChangePair:
    """One synthetic pair ``size`` pixels square at ``gsd`` metres (see the module docstring).

    ``frames`` are real RGB ``(3, rows, cols)`` uint8 backgrounds at ``gsd``, drawn ``frame_share``
    of the time when one is at least ``size`` square. ``street_share`` of the pairs hold a
    residential street (:func:`_street`): half the time built between the dates (road, driveways
    and houses all new), half the time standing with new houses on some of its lots;
    ``hip_share`` of the roofs have four slopes. Version 3: ``built`` real frames with their
    buildings' outlines are the background ``built_share`` of the time (some of their buildings
    torn down); ``roof_share`` of new and demolished buildings are real ``roofs``; ``land_share``
    of the pairs hold one to three site changes other than buildings (:data:`LAND_CHANGES`).
    (The defaults draw exactly as version 2 of the model.)
    """
    shape = (size, size)
    usable = [f for f in frames if f.shape[1] >= size and f.shape[2] >= size]
    crowns = np.zeros(shape, bool)
    torn = np.zeros(shape, bool)
    torn_later: Image3 | None = None
    found = (_built_background(rng, built, size, gsd)
             if built and built_share > 0 and rng.random() < built_share else None)
    if found is not None:
        base, torn_later, torn = found
    elif usable and rng.random() < frame_share:
        frame = usable[int(rng.integers(len(usable)))]
        r = int(rng.integers(0, frame.shape[1] - size + 1))
        c = int(rng.integers(0, frame.shape[2] - size + 1))
        base = frame[:, r:r + size, c:c + size].astype(np.float64)
    else:
        base, crowns = procedural_background(rng, shape)
    land: list[str] = []
    if land_share > 0 and rng.random() < land_share:
        land = [str(k) for k in rng.choice(LAND_CHANGES, size=int(rng.integers(1, 4)), replace=False)]
    if "clearing" in land:
        planted, crowns = _plant(rng, base, crowns)
        if torn_later is not None:
            torn_later = np.where(crowns[None], planted, torn_later)
        base = planted

    def any_building() -> Building:
        if roofs and roof_share > 0 and rng.random() < roof_share:
            return _real_roof_building(rng, roofs[int(rng.integers(len(roofs)))], shape)
        return building(rng, shape, gsd, hip=hip_share)

    standing = [building(rng, shape, gsd, hip=hip_share) for _ in range(int(rng.integers(0, 9)))]
    new = [any_building() for _ in range(int(rng.integers(1, 8)))] if rng.random() < 0.8 else []
    gone = [any_building() for _ in range(int(rng.integers(1, 3)))] if rng.random() < 0.2 else []
    paving_before = paving_after = np.zeros(shape, bool)
    surface = base
    if street_share > 0 and rng.random() < street_share:
        road, drives, houses = _street(rng, shape, gsd, hip_share)
        standing, new = standing[:2], new[:2]  # a few other buildings about
        if rng.random() < 0.5:  # a new development: road, driveways and houses all built between the dates
            paving_after = road | drives
            new += houses
        else:  # an existing street, some lots built on
            paving_before = paving_after = road | drives
            built_on = rng.random(len(houses)) < 0.4
            new += [h for h, b in zip(houses, built_on, strict=True) if b]
            standing += [h for h, b in zip(houses, built_on, strict=True) if not b]
        if paving_after.any():
            surface = ground(rng, shape, str(rng.choice(["asphalt", "concrete"])))
            if paving_before.any():
                base = np.where(paving_before[None], surface, base)
    sun_before = _sun(rng, gsd)
    sun_after = sun_before if rng.random() < 0.5 else _sun(rng, gsd)
    view_before = _view(rng, gsd)
    view_after = view_before if rng.random() < 0.3 else _view(rng, gsd)
    before, shown_before = _paint(_cars(rng, base, gsd), standing + gone, sun_before, view_before)
    fields = ("grass", "dry_grass") if land_share > 0 else None
    later, site_after = _season(rng, base if torn_later is None else torn_later, crowns, fields=fields)
    if new and rng.random() < 0.5:  # construction clears the ground around the new buildings
        cleared = np.zeros(shape, bool)
        for item in new:
            cleared |= ndimage.binary_dilation(item.footprint, iterations=int(rng.integers(3, 12)))
        cover = str(rng.choice(["soil", "dry_grass", "concrete"]))
        later = np.where(cleared[None], ground(rng, shape, cover), later)
        site_after = site_after | cleared
    if rng.random() < 0.25:
        later, works = _works(rng, later, gsd)
        site_after = site_after | works
    for kind in land:
        if kind == "earthworks":
            later, changed = _earthworks(rng, later, gsd)
        elif kind == "pad":
            later, changed = _pad(rng, later, gsd)
        elif kind == "road":
            later, changed = _road(rng, later, gsd)
        elif kind == "water":
            later, changed = _water(rng, later)
        else:
            cut = ndimage.binary_dilation(blobs(rng, shape, rng.uniform(0.2, 0.7)), iterations=3)
            changed = crowns & cut if (crowns & cut).any() else crowns
            cover = str(rng.choice(["soil", "dry_grass", "grass", "dark_soil"]))
            later = np.where(changed[None], ground(rng, shape, cover), later)
        site_after = site_after | changed
    if paving_after.any():
        later = np.where(paving_after[None], surface, later)
        site_after = site_after | (paving_after & ~paving_before)
    after, shown_after = _paint(_cars(rng, later, gsd), standing + new, sun_after, view_after)
    standing_shown = shown_before[:len(standing)].any(axis=0) | shown_after[:len(standing)].any(axis=0)
    gone_shown, new_shown = shown_before[len(standing):].any(axis=0), shown_after[len(standing):].any(axis=0)
    before, after = _imaging(rng, before), _imaging(rng, after)
    if rng.random() < 0.5:  # misregistration: what changed on the after date moves with it
        shift = (rng.uniform(-2, 2), rng.uniform(-2, 2))
        after = ndimage.shift(after, (0, *shift), order=1, mode="nearest")
        new_shown = _shifted(np.asarray(new_shown), shift)
        site_after = _shifted(site_after, shift)
    label: Mask = np.asarray(((gone_shown | new_shown) & ~standing_shown) | torn)
    site: Mask = np.asarray(label | (site_after & ~standing_shown))
    if rng.random() < 0.5:
        before, after = after, before
    return ChangePair((before / 255).astype(np.float32), (after / 255).astype(np.float32), label, site)
