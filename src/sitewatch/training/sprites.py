"""Vehicles to paste onto real backgrounds: real cars cut from labelled frames, and drawn trucks and buses.

Why: the freely licensed labelled vehicles here are a few hundred cars of two Munich streets and
one Kampala neighbourhood, and a handful of buses. A detector trained on them alone learns those
streets. Pasting the same real cars, and drawn large vehicles, at any heading, onto other real
backgrounds (with a cast shadow, in building shadow, in rows as in car parks) teaches what a
vehicle is rather than where it usually stands.

A sprite is a top view with its long axis along the columns (x), RGBA in 0..1, at a known ground
sample distance, with the height that sets its shadow. Real cars are cut from boxes of cars lying
along the image axes (their box is the car) with a rounded-rectangle alpha; drawn vehicles are
painted at 5 cm from their parts (cab, box, trailer, tank, roof units), in the palettes of real
fleets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from sitewatch.training.data import TrainingFrame

DRAW_GSD = 0.05
"""Metres per pixel at which vehicles are drawn (then resampled to the crop's GSD)."""


@dataclass(frozen=True, slots=True)
class Sprite:
    """A vehicle seen from above, long axis along x."""

    rgba: NDArray[np.float32]
    """(rows, cols, 4) colour and coverage in 0..1; rows span the width, cols the length."""
    gsd: float
    """Metres per pixel of ``rgba``."""
    class_name: str
    height: float
    """Metres above ground of its top: the length of its shadow is this over tan(sun elevation)."""
    source: str
    """Where it comes from (a frame name, or ``drawn:<kind>``)."""

    @property
    def length(self) -> float:
        return self.rgba.shape[1] * self.gsd

    @property
    def width(self) -> float:
        return self.rgba.shape[0] * self.gsd


def _rounded_rectangle(rows: int, cols: int, radius: float, inset: float = 0.0) -> NDArray[np.float32]:
    """Coverage (0..1, 4x4 supersampled) of a rounded rectangle filling rows x cols pixels."""
    sub = 4
    y = (np.arange(rows * sub) + 0.5) / sub
    x = (np.arange(cols * sub) + 0.5) / sub
    half_w, half_h = cols / 2 - inset, rows / 2 - inset
    radius = max(0.0, min(radius, half_w, half_h))
    dx = np.maximum(np.abs(x - cols / 2) - (half_w - radius), 0.0)[None, :]
    dy = np.maximum(np.abs(y - rows / 2) - (half_h - radius), 0.0)[:, None]
    inside = ((dx**2 + dy**2) <= radius**2) & (np.abs(x - cols / 2)[None, :] <= half_w) & (
        np.abs(y - rows / 2)[:, None] <= half_h)
    return inside.reshape(rows, sub, cols, sub).mean(axis=(1, 3)).astype(np.float32)


REAL_SPRITE_SIZES = {"car": ((3.2, 6.5), 1.5), "large_vehicle": ((6.0, 19.0), 3.5)}
"""Class -> (length range in metres of a whole vehicle, height in metres) for cutting real sprites."""


def real_car_sprites(frames: Sequence[TrainingFrame], car_index: int, *, min_aspect: float = 1.7,
                     length_range: tuple[float, float] = (3.2, 6.5), class_name: str = "car",
                     height: float = 1.5) -> list[Sprite]:
    """Vehicles of class ``car_index`` cut from labelled frames whose box lies along an image axis
    (long side >= ``min_aspect`` x short): cars, or with ``class_name`` the frames' buses and trucks.

    Such a box is the vehicle's own outline, so a rounded rectangle inside it is the vehicle.
    Vehicles at other headings have boxes holding a lot of ground and are left out.
    """
    sprites = []
    for frame in frames:
        pixels = np.asarray(frame.image, dtype=np.float32) / 255.0
        height_px, width_px = pixels.shape[:2]
        for box, cls in zip(frame.boxes, frame.classes, strict=True):
            if int(cls) != car_index:
                continue
            if box[0] < 0 or box[1] < 0 or box[2] > width_px or box[3] > height_px:
                continue  # cut by the frame edge: not the whole car
            x0, y0, x1, y1 = (round(float(v)) for v in box)
            if x1 - x0 < 6 or y1 - y0 < 6:
                continue
            long_side, short_side = max(x1 - x0, y1 - y0), min(x1 - x0, y1 - y0)
            if long_side < min_aspect * short_side:
                continue
            if not length_range[0] <= long_side * frame.gsd <= length_range[1]:
                continue
            patch = pixels[y0:y1, x0:x1]
            if y1 - y0 > x1 - x0:
                patch = np.rot90(patch)  # long axis along x
            rows, cols = patch.shape[:2]
            alpha = _rounded_rectangle(rows, cols, radius=0.3 * rows, inset=0.04 * rows)
            alpha = ndimage.gaussian_filter(alpha, 0.5)
            rgba = np.concatenate([patch, alpha[..., None]], axis=2).astype(np.float32)
            sprites.append(Sprite(np.ascontiguousarray(rgba), frame.gsd, class_name, height, frame.name))
    return sprites


# --- drawn vehicles ---------------------------------------------------------------------------

_CAR_COLOURS = (
    ((0.92, 0.92, 0.92), 0.25), ((0.08, 0.08, 0.09), 0.18), ((0.55, 0.56, 0.58), 0.17),
    ((0.75, 0.76, 0.78), 0.10), ((0.12, 0.2, 0.45), 0.08), ((0.6, 0.08, 0.08), 0.08),
    ((0.2, 0.3, 0.25), 0.04), ((0.55, 0.45, 0.3), 0.04), ((0.85, 0.7, 0.2), 0.03), ((0.3, 0.5, 0.75), 0.03),
)
_FLEET_COLOURS = (
    ((0.93, 0.93, 0.92), 0.45), ((0.78, 0.79, 0.8), 0.15), ((0.95, 0.75, 0.1), 0.08),
    ((0.7, 0.12, 0.1), 0.07), ((0.15, 0.3, 0.6), 0.07), ((0.2, 0.45, 0.25), 0.05),
    ((0.55, 0.56, 0.58), 0.08), ((0.9, 0.45, 0.1), 0.05),
)
_CONTAINER_COLOURS = ((0.65, 0.15, 0.1), (0.15, 0.3, 0.55), (0.2, 0.45, 0.3), (0.85, 0.45, 0.12),
                      (0.55, 0.55, 0.55), (0.9, 0.9, 0.88), (0.45, 0.3, 0.2), (0.85, 0.75, 0.2))


def _pick(rng: np.random.Generator, palette: tuple[tuple[tuple[float, float, float], float], ...],
          jitter: float = 0.06) -> NDArray[np.float32]:
    weights = np.array([w for _, w in palette])
    colour = np.array(palette[int(rng.choice(len(palette), p=weights / weights.sum()))][0], np.float32)
    tint = rng.uniform(0.98, 1.02, 3)  # paint and sensor differ slightly per channel
    return np.clip(colour * rng.uniform(1 - jitter, 1 + jitter) * tint, 0, 1).astype(np.float32)


class _Canvas:
    """A vehicle drawn part by part in local metres: x along (front at +x), y across."""

    def __init__(self, length: float, width: float, gsd: float = DRAW_GSD) -> None:
        self.length, self.width, self.gsd = length, width, gsd
        self.cols, self.rows = max(8, round(length / gsd)), max(4, round(width / gsd))
        self.rgb = np.zeros((self.rows, self.cols, 3), np.float32)
        self.alpha = np.zeros((self.rows, self.cols), np.float32)
        xs = (np.arange(self.cols) + 0.5) * gsd - length / 2
        ys = (np.arange(self.rows) + 0.5) * gsd - width / 2
        self.x, self.y = np.meshgrid(xs, ys)

    def box(self, x0: float, x1: float, half_width: float, radius: float = 0.15) -> NDArray[np.float32]:
        """Coverage of a rounded box from x0 to x1 (metres along), ``half_width`` either side of the axis."""
        dx = np.maximum(np.abs(self.x - (x0 + x1) / 2) - ((x1 - x0) / 2 - radius), 0)
        dy = np.maximum(np.abs(self.y) - (half_width - radius), 0)
        edge = np.sqrt(dx**2 + dy**2) - radius
        return np.clip(0.5 - edge / self.gsd, 0, 1).astype(np.float32)

    def paint(self, coverage: NDArray[np.float32], colour: NDArray[np.float32] | float, *,
              solid: bool = True) -> None:
        value = np.broadcast_to(np.asarray(colour, np.float32), self.rgb.shape)
        self.rgb = self.rgb * (1 - coverage[..., None]) + value * coverage[..., None]
        if solid:
            self.alpha = np.maximum(self.alpha, coverage)

    def shade_across(self, coverage: NDArray[np.float32], half_width: float, strength: float) -> None:
        """Darken towards the long sides: a rounded body lit from above."""
        profile = np.cos(np.clip(self.y / max(half_width, 1e-3), -1, 1) * math.pi / 2) ** 0.5
        factor = 1 - strength * (1 - profile)
        self.rgb = self.rgb * (1 - coverage[..., None] * (1 - factor[..., None]))

    def sprite(self, class_name: str, height: float, kind: str, rng: np.random.Generator) -> Sprite:
        rgb = self.rgb + rng.normal(0, 0.012, self.rgb.shape).astype(np.float32)
        rgb = ndimage.gaussian_filter(rgb, (0.6, 0.6, 0))
        rgba = np.concatenate([np.clip(rgb, 0, 1), self.alpha[..., None]], axis=2).astype(np.float32)
        return Sprite(rgba, self.gsd, class_name, height, f"drawn:{kind}")


def _glass(rng: np.random.Generator) -> NDArray[np.float32]:
    return np.full(3, rng.uniform(0.05, 0.22), np.float32) + np.array([0, 0.01, 0.03], np.float32)


def draw_car(rng: np.random.Generator, kind: str = "car") -> Sprite:
    """A car, van or pickup: body, bonnet, windscreen, roof, rear window, lit along its middle."""
    if kind == "van":
        length, width = rng.uniform(4.7, 5.6), rng.uniform(1.9, 2.05)
    elif kind == "pickup":
        length, width = rng.uniform(5.0, 5.5), rng.uniform(1.8, 1.95)
    else:
        length, width = rng.uniform(3.7, 5.0), rng.uniform(1.65, 1.9)
    canvas = _Canvas(length, width)
    body = _pick(rng, _CAR_COLOURS)
    half = length / 2
    outline = canvas.box(-half, half, width / 2, radius=0.35 * width)
    canvas.paint(outline, body)
    canvas.shade_across(outline, width / 2, 0.35)
    glass = _glass(rng)
    side = width / 2 - rng.uniform(0.12, 0.18)
    if kind == "van":
        screen = (half - 1.15, half - 0.55)
        roof = (-half + 0.2, screen[0])
    elif kind == "pickup":
        screen = (half - 1.9, half - 1.3)
        roof = (-0.3, screen[0])
        bed = canvas.box(-half + 0.15, -0.45, width / 2 - 0.12, radius=0.05)
        canvas.paint(bed, body * rng.uniform(0.35, 0.6))
    else:
        screen_front = half - rng.uniform(1.1, 1.5)
        screen = (screen_front - rng.uniform(0.45, 0.7), screen_front)
        rear_end = -half + rng.uniform(0.6, 1.0)
        roof = (rear_end + rng.uniform(0.35, 0.55), screen[0])
        canvas.paint(canvas.box(rear_end, roof[0], side, radius=0.1), glass)
    canvas.paint(canvas.box(screen[0], screen[1], side, radius=0.12), glass)
    roof_colour = body * rng.uniform(1.0, 1.12) if rng.random() < 0.85 else np.full(3, 0.1, np.float32)
    roof_cover = canvas.box(roof[0], roof[1], side - 0.05, radius=0.15)
    canvas.paint(roof_cover, np.clip(roof_colour, 0, 1))
    if rng.random() < 0.15 and kind == "car":
        canvas.paint(canvas.box(roof[0] + 0.3, roof[0] + 0.9, 0.4, radius=0.05), glass)
    highlight = canvas.box(-half + 0.4, half - 0.4, 0.3, radius=0.2) * rng.uniform(0.0, 0.1)
    canvas.paint(highlight, np.ones(3, np.float32), solid=False)
    height = {"van": 2.1, "pickup": 1.8}.get(kind, 1.5)
    return canvas.sprite("car", height, kind, rng)


def _cab(canvas: _Canvas, front: float, length: float, width: float, colour: NDArray[np.float32],
         rng: np.random.Generator) -> None:
    cover = canvas.box(front - length, front, width / 2, radius=0.25)
    canvas.paint(cover, colour)
    canvas.shade_across(cover, width / 2, 0.25)
    canvas.paint(canvas.box(front - 0.45, front - 0.1, width / 2 - 0.1, radius=0.05), _glass(rng))
    if rng.random() < 0.5:  # a roof spoiler or sleeper top, lighter
        canvas.paint(canvas.box(front - length + 0.2, front - 0.6, width / 2 - 0.25, radius=0.2),
                     np.clip(colour * 1.1, 0, 1))


def _ribbed(canvas: _Canvas, x0: float, x1: float, half_width: float, colour: NDArray[np.float32],
            spacing: float, depth: float, across: bool = True) -> NDArray[np.float32]:
    cover = canvas.box(x0, x1, half_width, radius=0.06)
    wave = canvas.x if across else canvas.y
    ribs = 1 + depth * np.sign(np.sin(wave * 2 * math.pi / spacing))
    canvas.paint(cover, np.clip(colour[None, None, :] * ribs[..., None], 0, 1))
    rim = cover - canvas.box(x0 + 0.06, x1 - 0.06, half_width - 0.06, radius=0.04)
    canvas.paint(np.clip(rim, 0, 1), colour * 0.7)
    return cover


def draw_large_vehicle(rng: np.random.Generator, kind: str | None = None) -> Sprite:
    """A bus, box truck, semi-trailer (with or without its tractor), flatbed with containers, dump truck
    or concrete mixer (``large_vehicle``), or a tanker (``tanker_truck``)."""
    kinds = ("bus", "box_truck", "semi", "trailer", "flatbed", "dump", "mixer", "tanker")
    weights = np.array([0.2, 0.16, 0.22, 0.1, 0.1, 0.07, 0.05, 0.1])
    kind = kind or kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    width = rng.uniform(2.4, 2.6)
    cab_colour = _pick(rng, _FLEET_COLOURS, jitter=0.1)
    if kind == "bus":
        length = rng.uniform(9.5, 13.5) if rng.random() < 0.85 else rng.uniform(17.0, 18.5)
        canvas = _Canvas(length, width)
        colour = _pick(rng, _FLEET_COLOURS)
        body = canvas.box(-length / 2, length / 2, width / 2, radius=0.3)
        canvas.paint(body, colour)
        canvas.shade_across(body, width / 2, 0.2)
        for _ in range(int(rng.integers(1, 4))):  # air-conditioning units and hatches
            centre = rng.uniform(-length / 2 + 2, length / 2 - 2)
            size = rng.uniform(0.6, 2.6)
            canvas.paint(canvas.box(centre - size / 2, centre + size / 2, rng.uniform(0.4, 0.9), radius=0.1),
                         np.full(3, rng.uniform(0.55, 0.9), np.float32))
        canvas.paint(canvas.box(length / 2 - 0.35, length / 2 - 0.05, width / 2 - 0.1, radius=0.05),
                     _glass(rng))
        if rng.random() < 0.4:  # window band along both sides, seen on roofs that curve down
            band = canvas.box(-length / 2 + 0.5, length / 2 - 0.5, width / 2, radius=0.05) - canvas.box(
                -length / 2 + 0.5, length / 2 - 0.5, width / 2 - 0.12, radius=0.05)
            canvas.paint(np.clip(band, 0, 1), _glass(rng))
        return canvas.sprite("large_vehicle", 3.2, kind, rng)
    if kind in ("semi", "trailer"):
        trailer = rng.uniform(10.5, 16.2)
        cab = 2.4 if kind == "semi" else 0.0
        gap = rng.uniform(0.3, 0.7) if kind == "semi" else 0.0
        length = trailer + cab + gap
        canvas = _Canvas(length, width)
        front = length / 2
        if kind == "semi":
            _cab(canvas, front, cab, width - 0.1, cab_colour, rng)
        colour = _pick(rng, _FLEET_COLOURS)
        cover = _ribbed(canvas, -length / 2, -length / 2 + trailer, width / 2, colour,
                        spacing=rng.uniform(0.5, 1.4), depth=rng.uniform(0.0, 0.06))
        canvas.shade_across(cover, width / 2, 0.12)
        return canvas.sprite("large_vehicle", 4.0, kind, rng)
    cab = rng.uniform(1.9, 2.5)
    gap = rng.uniform(0.2, 0.5)
    if kind == "box_truck":
        box = rng.uniform(4.2, 8.0)
    elif kind == "flatbed":
        box = rng.choice([6.2, 12.3, 12.3]) + rng.uniform(0.2, 1.0)
    elif kind in ("dump", "mixer"):
        box = rng.uniform(4.0, 6.0)
    else:
        box = rng.uniform(6.0, 10.0)
    length = cab + gap + box
    canvas = _Canvas(length, width)
    front = length / 2
    _cab(canvas, front, cab, width - 0.1, cab_colour, rng)
    x0, x1 = -length / 2, -length / 2 + box
    if kind == "box_truck":
        colour = _pick(rng, _FLEET_COLOURS)
        _ribbed(canvas, x0, x1, width / 2, colour, spacing=rng.uniform(0.4, 1.0),
                depth=rng.uniform(0.0, 0.05))
    elif kind == "flatbed":
        deck = canvas.box(x0, x1, width / 2 - 0.05, radius=0.05)
        canvas.paint(deck, np.full(3, rng.uniform(0.2, 0.35), np.float32))
        position = x0 + 0.1
        while position < x1 - 5.8:
            span = 12.2 if x1 - position > 12.2 and rng.random() < 0.6 else 6.06
            colour = np.array(_CONTAINER_COLOURS[int(rng.integers(len(_CONTAINER_COLOURS)))], np.float32)
            _ribbed(canvas, position, position + span, width / 2 - 0.05, colour * rng.uniform(0.85, 1.1),
                    spacing=0.3, depth=0.08)
            position += span + 0.1
    elif kind == "dump":
        colour = _pick(rng, ((((0.9, 0.6, 0.1)), 0.4), ((0.75, 0.75, 0.72), 0.3), ((0.7, 0.2, 0.1), 0.3)))
        outer = canvas.box(x0, x1, width / 2, radius=0.1)
        canvas.paint(outer, colour)
        canvas.paint(canvas.box(x0 + 0.2, x1 - 0.2, width / 2 - 0.2, radius=0.1),
                     np.full(3, rng.uniform(0.25, 0.5), np.float32) * np.array([1.0, 0.95, 0.85], np.float32))
    else:  # mixer drum or tank: a lit cylinder along the body
        colour = np.full(3, rng.uniform(0.7, 0.95), np.float32) if kind == "tanker" or rng.random() < 0.6 \
            else _pick(rng, _FLEET_COLOURS)
        cover = canvas.box(x0, x1, width / 2 - 0.05, radius=width / 2 - 0.1)
        canvas.paint(cover, colour)
        canvas.shade_across(cover, width / 2 - 0.05, 0.6)
        if kind == "mixer":
            stripes = (np.sin((canvas.x + canvas.y * 1.3) * 2 * math.pi / 0.9) > 0.6).astype(np.float32)
            canvas.paint(cover * stripes * 0.5, colour * 0.55, solid=False)
        else:  # walkway along the top
            canvas.paint(canvas.box(x0 + 0.5, x1 - 0.5, 0.18, radius=0.02), colour * 0.6, solid=False)
    class_name = "tanker_truck" if kind == "tanker" else "large_vehicle"
    return canvas.sprite(class_name, 3.5, kind, rng)


def drawn_sprites(rng: np.random.Generator, cars: int, large: int) -> list[Sprite]:
    """A library of drawn vehicles: ``cars`` cars, vans and pickups, ``large`` trucks, buses and tankers."""
    car_kinds = ("car", "car", "car", "car", "van", "pickup")
    sprites = [draw_car(rng, car_kinds[int(rng.integers(len(car_kinds)))]) for _ in range(cars)]
    sprites += [draw_large_vehicle(rng) for _ in range(large)]
    return sprites
