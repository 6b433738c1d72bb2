"""Copy-paste composition of training crops: vehicles, look-alikes and shadows on real backgrounds.

Each crop drawn from a real (or rendered) frame may get, in this order:

1. painted look-alikes that are *not* vehicles: road markings (zebra crossings, lane arrows, dashes,
   parking-bay lines), street furniture and clutter (lamp posts with their shadows, bushes, roof
   fixtures and solar panels, manholes): the false positives seen on real streets and roofs;
2. vehicles pasted at any heading, alone or parked in rows (side by side as in a car park, or nose
   to tail as along a kerb), each with a shadow cast by one sun per crop; their boxes are the
   axis-aligned boxes around what is seen, as a labeller draws them;
3. a building's shadow over part of the crop, darkening and bluing ground and vehicles alike (the
   vehicles stay labelled: cars in shadow are cars).

Everything happens at the crop's ground sample distance, after the crop was cut and turned and
before it is degraded, so pasted and real objects are blurred, rotated and coloured alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from scipy import ndimage

from sitewatch.training.sprites import Sprite

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class CompositeSettings:
    """How often each kind of composition happens (chances per crop)."""

    vehicle_probability: float = 0.0
    """Chance a crop gets pasted vehicles; 0 turns composition off altogether."""
    mean_vehicles: float = 4.0
    """Mean number of vehicles pasted on such a crop (Poisson, at least one)."""
    row_probability: float = 0.45
    """Chance those vehicles are parked in a row rather than strewn."""
    large_share: float = 0.25
    """Share of pasted vehicles that are trucks, buses or tankers."""
    drawn_car_share: float = 0.3
    """Share of pasted cars that are drawn rather than cut from real frames."""
    marking_probability: float = 0.3
    clutter_probability: float = 0.35
    harbour_probability: float = 0.0
    """Chance of water with boats moored in rows along jetties (ports and marinas: boats are not vehicles)."""
    aircraft_probability: float = 0.0
    """Chance of an aircraft on the crop (airports: fuselages and wings are not trucks)."""
    building_shadow_probability: float = 0.25


def _coverage(shape: tuple[int, int], polygons: Sequence[NDArray[np.float64]], supersample: int = 4
              ) -> NDArray[np.float32]:
    """Anti-aliased coverage (0..1) of polygons given as (n, 2) x, y arrays in pixel coordinates."""
    rows, cols = shape
    canvas = Image.new("L", (cols * supersample, rows * supersample), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        points = [(float(x) * supersample, float(y) * supersample) for x, y in polygon]
        if len(points) >= 3:
            draw.polygon(points, fill=255)
    small = canvas.resize((cols, rows), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def _rectangle(cx: float, cy: float, length: float, width: float, angle: float) -> NDArray[np.float64]:
    """Corners (x, y) of a length x width rectangle centred at cx, cy, long axis at ``angle`` radians."""
    ux, uy = math.cos(angle), math.sin(angle)
    vx, vy = -uy, ux
    hl, hw = length / 2, width / 2
    return np.array([[cx + sx * hl * ux + sy * hw * vx, cy + sx * hl * uy + sy * hw * vy]
                     for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def _blend(pixels: NDArray[np.float32], coverage: NDArray[np.float32],
           colour: NDArray[np.float32] | Sequence[float], opacity: float = 1.0) -> None:
    weight = (coverage * opacity)[..., None]
    pixels *= 1 - weight
    pixels += weight * np.asarray(colour, np.float32)


def _darken(pixels: NDArray[np.float32], coverage: NDArray[np.float32], strength: float,
            blue: float = 0.0) -> None:
    """Multiply by (1 - strength) under ``coverage``; ``blue`` keeps some sky light in the blue band."""
    factor = 1 - strength * coverage
    pixels[..., 0] *= factor
    pixels[..., 1] *= factor
    pixels[..., 2] *= np.minimum(1.0, factor * (1 + blue * coverage))


@dataclass(frozen=True, slots=True)
class _Placed:
    """A sprite turned and resampled to the crop: premultiplied colour and coverage."""

    colour: NDArray[np.float32]
    alpha: NDArray[np.float32]


def premultiplied_at(sprite: Sprite, gsd: float) -> Sprite:
    """The sprite resampled (area average) to ``gsd`` if it is finer, its colour premultiplied by coverage.

    Done once per sprite: pasting then resamples these small copies instead of the 5 cm drawings.
    """
    rgba = sprite.rgba
    premultiplied = np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], axis=2)
    if sprite.gsd >= gsd:
        return Sprite(premultiplied.astype(np.float32), sprite.gsd, sprite.class_name, sprite.height,
                      sprite.source)
    scale = sprite.gsd / gsd
    size = (max(2, round(rgba.shape[1] * scale)), max(2, round(rgba.shape[0] * scale)))
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(premultiplied[..., k]), mode="F")
                           .resize(size, Image.Resampling.BOX), np.float32) for k in range(4)]
    return Sprite(np.stack(channels, axis=2), sprite.length / size[0], sprite.class_name, sprite.height,
                  sprite.source)


def _resample(sprite: Sprite, gsd: float, angle_deg: float) -> _Placed:
    """A premultiplied sprite at ``gsd`` metres per pixel, turned by ``angle_deg`` (counter-clockwise)."""
    scale = sprite.gsd / gsd
    premultiplied = sprite.rgba
    size = (max(2, round(premultiplied.shape[1] * scale)), max(2, round(premultiplied.shape[0] * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(premultiplied[..., k]), mode="F")
                           .resize(size, method), np.float32) for k in range(4)]
    stack = np.stack(channels, axis=2)
    pad = 2
    stack = np.pad(stack, ((pad, pad), (pad, pad), (0, 0)))
    turned = ndimage.rotate(stack, angle_deg, axes=(1, 0), reshape=True, order=1, mode="constant")
    turned = np.clip(turned, 0, None)
    alpha = np.clip(turned[..., 3], 0, 1)
    return _Placed(np.minimum(turned[..., :3], alpha[..., None]), alpha)


class Compositor:
    """Pastes vehicles and look-alikes onto crops (see the module docstring)."""

    def __init__(self, settings: CompositeSettings, classes: Sequence[str], *, real_cars: Sequence[Sprite],
                 drawn_cars: Sequence[Sprite], large: Sequence[Sprite], finest_gsd: float) -> None:
        """``finest_gsd``: the finest crop GSD asked for; sprites are kept at it, premultiplied."""
        self.settings = settings
        self.classes = tuple(classes)

        def kept(sprites: Sequence[Sprite]) -> list[Sprite]:
            return [premultiplied_at(s, finest_gsd) for s in sprites if s.class_name in self.classes]

        self.real_cars = kept(real_cars)
        self.drawn_cars = kept(drawn_cars)
        self.large = kept(large)

    @property
    def active(self) -> bool:
        s = self.settings
        return max(s.vehicle_probability, s.marking_probability, s.clutter_probability,
                   s.harbour_probability, s.aircraft_probability, s.building_shadow_probability) > 0

    def apply(self, pixels: NDArray[np.float32], gsd: float, boxes: NDArray[np.float32],
              classes: NDArray[np.int64], ignore: NDArray[np.float32], rng: np.random.Generator
              ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
        """Compose one (rows, cols, 3) crop in 0..1 in place; returns it with the boxes and classes."""
        s = self.settings
        sun = (rng.uniform(0, 2 * math.pi), rng.uniform(math.radians(25), math.radians(70)))
        if rng.random() < s.marking_probability:
            self._markings(pixels, gsd, rng)
        if rng.random() < s.clutter_probability:
            self._clutter(pixels, gsd, sun, rng)
        if rng.random() < s.harbour_probability:
            self._harbour(pixels, gsd, sun, rng)
        if rng.random() < s.aircraft_probability:
            self._aircraft(pixels, gsd, sun, rng)
        taken: list[Box] = [(float(b[0]), float(b[1]), float(b[2]), float(b[3]))
                            for b in np.concatenate([boxes, ignore]).reshape(-1, 4)]
        new_boxes: list[Box] = []
        new_classes: list[int] = []
        if rng.random() < s.vehicle_probability and (self.real_cars or self.drawn_cars or self.large):
            count = max(1, int(rng.poisson(s.mean_vehicles)))
            if rng.random() < s.row_probability:
                placements = self._row(pixels.shape[:2], gsd, count, rng)
            else:
                placements = [(rng.uniform(0, pixels.shape[1]), rng.uniform(0, pixels.shape[0]),
                               rng.uniform(0, 360), self._sprite(rng)) for _ in range(count)]
            for cx, cy, angle, sprite in placements:
                placed = _resample(sprite, gsd, angle)
                box = self._paste(pixels, placed, cx, cy, sprite, gsd, sun, taken)
                if box is not None:
                    taken.append(box)
                    new_boxes.append(box)
                    new_classes.append(self.classes.index(sprite.class_name))
        if rng.random() < s.building_shadow_probability:
            self._building_shadow(pixels, rng)
        if new_boxes:
            boxes = np.concatenate([boxes.reshape(-1, 4), np.asarray(new_boxes, np.float32)])
            classes = np.concatenate([classes, np.asarray(new_classes, np.int64)])
        return pixels, boxes, classes

    # --- vehicles ------------------------------------------------------------------------------

    def _sprite(self, rng: np.random.Generator, large: bool | None = None) -> Sprite:
        if large is None:
            large = bool(self.large) and rng.random() < self.settings.large_share
        if large and self.large:
            return self.large[int(rng.integers(len(self.large)))]
        drawn = not self.real_cars or (self.drawn_cars and rng.random() < self.settings.drawn_car_share)
        pool = self.drawn_cars if drawn else self.real_cars
        if not pool:
            pool = self.large
        return pool[int(rng.integers(len(pool)))]

    def _row(self, shape: tuple[int, int], gsd: float, count: int, rng: np.random.Generator
             ) -> list[tuple[float, float, float, Sprite]]:
        """Vehicles of one kind-mix parked in a row: side by side, or nose to tail."""
        rows, cols = shape
        direction = rng.uniform(0, math.pi)
        side_by_side = rng.random() < 0.6
        large = bool(self.large) and rng.random() < self.settings.large_share
        sprites = [self._sprite(rng, large) for _ in range(max(count, 3))]
        x, y = rng.uniform(0, cols), rng.uniform(0, rows)
        ux, uy = math.cos(direction), math.sin(direction)
        start = -len(sprites) / 2
        out = []
        position = start
        for sprite in sprites:
            gap = rng.uniform(0.4, 1.4) if side_by_side else rng.uniform(0.8, 3.0)
            step = (sprite.width if side_by_side else sprite.length) + gap
            heading = math.degrees(direction) + (90 if side_by_side else 0) + rng.normal(0, 3)
            if rng.random() < 0.5:
                heading += 180
            along = position * step / gsd
            jitter = rng.normal(0, 0.15 / gsd)
            if rng.random() > 0.15:  # some bays stay empty
                out.append((x + along * ux - jitter * uy, y + along * uy + jitter * ux, heading, sprite))
            position += 1
        return out

    def _paste(self, pixels: NDArray[np.float32], placed: _Placed, cx: float, cy: float, sprite: Sprite,
               gsd: float, sun: tuple[float, float], taken: list[Box]) -> Box | None:
        rows, cols = pixels.shape[:2]
        height, width = placed.alpha.shape
        left, top = round(cx - width / 2), round(cy - height / 2)
        seen_rows, seen_cols = np.nonzero(placed.alpha > 0.5)
        if seen_rows.size == 0:
            return None
        box = (float(left + seen_cols.min()), float(top + seen_rows.min()),
               float(left + seen_cols.max() + 1), float(top + seen_rows.max() + 1))
        centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if not (0 <= centre_x < cols and 0 <= centre_y < rows):
            return None
        if any(_overlap(box, other) > 0.1 for other in taken):
            return None
        azimuth, elevation = sun
        reach = sprite.height / math.tan(elevation) / gsd
        dx, dy = reach * math.sin(azimuth), -reach * math.cos(azimuth)
        # The shadow is the outline swept from the vehicle's foot to its top's projection.
        steps = max(2, int(math.hypot(dx, dy)) + 1)
        pad_x, pad_y = math.ceil(abs(dx)) + 1, math.ceil(abs(dy)) + 1
        swept = np.zeros((height + 2 * pad_y, width + 2 * pad_x), np.float32)
        for step in np.linspace(0.0, 1.0, steps):
            oy, ox = pad_y + round(dy * step), pad_x + round(dx * step)
            np.maximum(swept[oy:oy + height, ox:ox + width], placed.alpha,
                       out=swept[oy:oy + height, ox:ox + width])
        swept = ndimage.gaussian_filter(swept, 0.7)
        window = _window(pixels.shape[:2], swept.shape, left - pad_x, top - pad_y)
        if window is not None:
            region, part = window
            _darken(pixels[region], swept[part], 0.45 + 0.2 * math.cos(elevation), blue=0.3)
        window = _window(pixels.shape[:2], placed.alpha.shape, left, top)
        if window is not None:
            region, part = window
            pixels[region] *= 1 - placed.alpha[part][..., None]
            pixels[region] += placed.colour[part]
        return box

    # --- look-alikes -----------------------------------------------------------------------------

    def _markings(self, pixels: NDArray[np.float32], gsd: float, rng: np.random.Generator) -> None:
        rows, cols = pixels.shape[:2]
        polygons: list[NDArray[np.float64]] = []
        for _ in range(int(rng.integers(1, 4))):
            kind = rng.choice(["zebra", "dashes", "arrow", "bays"])
            cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
            angle = rng.uniform(0, math.pi)
            ux, uy = math.cos(angle), math.sin(angle)
            if kind == "zebra":
                bar, length = rng.uniform(0.4, 0.6) / gsd, rng.uniform(2.5, 4.0) / gsd
                for k in range(int(rng.integers(4, 10))):
                    offset = k * 2 * bar
                    polygons.append(_rectangle(cx + offset * ux, cy + offset * uy, bar, length, angle))
            elif kind == "dashes":
                dash, gap = rng.uniform(2.0, 6.0) / gsd, rng.uniform(2.0, 9.0) / gsd
                for k in range(-4, 5):
                    offset = k * (dash + gap)
                    polygons.append(_rectangle(cx + offset * ux, cy + offset * uy, dash, 0.14 / gsd, angle))
            elif kind == "arrow":
                shaft = rng.uniform(2.5, 4.5) / gsd
                polygons.append(_rectangle(cx, cy, shaft, 0.16 / gsd, angle))
                tip_x, tip_y = cx + shaft / 2 * ux, cy + shaft / 2 * uy
                head, half = 1.2 / gsd, 0.45 / gsd
                polygons.append(np.array([[tip_x + head * ux, tip_y + head * uy],
                                          [tip_x - half * uy, tip_y + half * ux],
                                          [tip_x + half * uy, tip_y - half * ux]]))
            else:
                spacing, length = rng.uniform(2.3, 2.9) / gsd, rng.uniform(4.5, 5.5) / gsd
                for k in range(int(rng.integers(4, 10))):
                    offset = k * spacing
                    polygons.append(_rectangle(cx + offset * ux, cy + offset * uy, 0.12 / gsd, length,
                                               angle))
        paint = np.array([0.9, 0.9, 0.88] if rng.random() < 0.8 else [0.92, 0.8, 0.25], np.float32)
        _blend(pixels, _coverage((rows, cols), polygons), paint, rng.uniform(0.55, 0.95))

    def _clutter(self, pixels: NDArray[np.float32], gsd: float, sun: tuple[float, float],
                 rng: np.random.Generator) -> None:
        rows, cols = pixels.shape[:2]
        azimuth, elevation = sun
        sx, sy = math.sin(azimuth), -math.cos(azimuth)
        for _ in range(int(rng.integers(1, 6))):
            kind = rng.choice(["post", "bush", "fixture", "panels", "manhole"])
            cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
            if kind == "post":
                height = rng.uniform(4.0, 9.0)
                lean = rng.uniform(0.0, 0.35) * height / gsd
                lean_angle = rng.uniform(0, 2 * math.pi)
                tip = (cx + lean * math.cos(lean_angle), cy + lean * math.sin(lean_angle))
                reach = height / math.tan(elevation) / gsd
                shadow = _segment((cx, cy), (cx + reach * sx, cy + reach * sy), 0.2 / gsd)
                _darken(pixels, _coverage((rows, cols), [shadow]), 0.5, blue=0.3)
                if lean > 1:
                    _blend(pixels, _coverage((rows, cols), [_segment((cx, cy), tip, 0.22 / gsd)]),
                           np.full(3, rng.uniform(0.25, 0.6), np.float32))
                head = _rectangle(tip[0], tip[1], rng.uniform(0.4, 1.2) / gsd, 0.35 / gsd,
                                  rng.uniform(0, math.pi))
                _blend(pixels, _coverage((rows, cols), [head]),
                       np.full(3, rng.uniform(0.4, 0.85), np.float32))
            elif kind == "bush":
                blobs = [_disc(cx + rng.normal(0, 0.8 / gsd), cy + rng.normal(0, 0.8 / gsd),
                               rng.uniform(0.5, 1.8) / gsd) for _ in range(int(rng.integers(2, 6)))]
                cover = _coverage((rows, cols), blobs)
                reach = rng.uniform(0.8, 2.5) / math.tan(elevation) / gsd
                shifted = ndimage.shift(cover, (reach * sy, reach * sx), order=1)
                _darken(pixels, np.clip(shifted - cover, 0, 1), 0.5, blue=0.3)
                green = np.array([0.22, 0.32, 0.15], np.float32) * rng.uniform(0.7, 1.4)
                texture = 1 + 0.25 * rng.standard_normal((rows, cols)).astype(np.float32)
                texture = ndimage.gaussian_filter(texture, 0.8)
                pixels *= 1 - cover[..., None]
                pixels += cover[..., None] * np.clip(green[None, None, :] * texture[..., None], 0, 1)
            elif kind in ("fixture", "panels"):
                angle = rng.uniform(0, math.pi)
                if kind == "fixture":
                    size = (rng.uniform(0.6, 2.6) / gsd, rng.uniform(0.6, 2.0) / gsd)
                    parts = [_rectangle(cx, cy, size[0], size[1], angle)]
                    tone = rng.uniform(0.75, 0.95) if rng.random() < 0.5 else rng.uniform(0.1, 0.4)
                    colour = np.full(3, tone, np.float32)
                else:
                    ux, uy = math.cos(angle), math.sin(angle)
                    w, h = 1.0 / gsd, 1.7 / gsd
                    parts = [_rectangle(cx + i * (w + 0.1 / gsd) * ux - j * (h + 0.1 / gsd) * uy,
                                        cy + i * (w + 0.1 / gsd) * uy + j * (h + 0.1 / gsd) * ux, w, h, angle)
                             for i in range(int(rng.integers(2, 6))) for j in range(int(rng.integers(1, 3)))]
                    colour = np.array([0.1, 0.13, 0.22], np.float32) * rng.uniform(0.8, 1.5)
                cover = _coverage((rows, cols), parts)
                reach = rng.uniform(0.3, 1.0) / math.tan(elevation) / gsd
                shifted = ndimage.shift(cover, (reach * sy, reach * sx), order=1)
                _darken(pixels, np.clip(shifted - cover, 0, 1), 0.45, blue=0.3)
                _blend(pixels, cover, colour)
            else:
                _blend(pixels, _coverage((rows, cols), [_disc(cx, cy, rng.uniform(0.3, 0.5) / gsd)]),
                       np.full(3, rng.uniform(0.1, 0.3), np.float32), 0.8)

    def _harbour(self, pixels: NDArray[np.float32], gsd: float, sun: tuple[float, float],
                 rng: np.random.Generator) -> None:
        """Water over part of the crop, jetties across it and boats moored along them."""
        rows, cols = pixels.shape[:2]
        angle = rng.uniform(0, math.pi)
        ux, uy = math.cos(angle), math.sin(angle)
        offset = rng.uniform(-0.3, 0.5) * max(rows, cols)
        far = 4 * max(rows, cols)
        cx, cy = cols / 2 + offset * ux, rows / 2 + offset * uy
        shore = [np.array([[cx - far * uy, cy + far * ux], [cx + far * uy, cy - far * ux],
                           [cx + far * uy - far * ux, cy - far * ux - far * uy],
                           [cx - far * uy - far * ux, cy + far * ux - far * uy]])]
        water = _coverage((rows, cols), shore)
        tone = np.array([0.09, 0.14, 0.16], np.float32) * rng.uniform(0.7, 1.6) * rng.uniform(0.9, 1.1, 3)
        ripples = tone[None, None, :] * (1 + 0.12 * ndimage.gaussian_filter(
            rng.standard_normal((rows, cols)).astype(np.float32), 1.5))[..., None]
        pixels *= 1 - water[..., None]
        pixels += water[..., None] * np.clip(ripples, 0, 1)
        # jetties run from the shore into the water; boats lie side by side along both their sides
        spacing = rng.uniform(18, 40) / gsd
        jetties, boats = [], []
        for k in range(-4, 5):
            jx, jy = cx + k * spacing * uy, cy - k * spacing * ux
            length = rng.uniform(30, 80) / gsd
            jetties.append(_rectangle(jx - length / 2 * ux, jy - length / 2 * uy, length,
                                      rng.uniform(1.5, 3) / gsd, angle))
            boat_length = rng.uniform(6, 18) / gsd
            beam = boat_length * rng.uniform(0.25, 0.34)
            for side in (-1, 1):
                for j in range(int(length / (beam * 1.3))):
                    if rng.random() < 0.2:
                        continue
                    along = (j + 0.5) * beam * 1.3
                    across = side * (boat_length / 2 + 1.0 / gsd)
                    bx = jx - along * ux - across * uy
                    by = jy - along * uy + across * ux
                    boats.append((bx, by, boat_length * rng.uniform(0.85, 1.1), beam,
                                  angle + math.pi / 2 * side))
        _blend(pixels, _coverage((rows, cols), jetties), np.full(3, rng.uniform(0.35, 0.6), np.float32))
        white = np.array([0.9, 0.92, 0.93], np.float32) * rng.uniform(0.85, 1.05)
        _blend(pixels, _coverage((rows, cols), [_hull(*boat) for boat in boats]), white)
        deck = np.array(((0.55, 0.45, 0.35), (0.8, 0.8, 0.8), (0.2, 0.25, 0.35))[int(rng.integers(3))],
                        np.float32)
        cabins = [_hull(bx, by, length * 0.5, beam * 0.55, heading)
                  for bx, by, length, beam, heading in boats]
        _blend(pixels, _coverage((rows, cols), cabins), deck, 0.8)

    def _aircraft(self, pixels: NDArray[np.float32], gsd: float, sun: tuple[float, float],
                  rng: np.random.Generator) -> None:
        """An aircraft: fuselage, swept wings and tailplane, white or grey, with its shadow."""
        rows, cols = pixels.shape[:2]
        length = rng.uniform(12, 60) / gsd
        span = length * rng.uniform(0.8, 1.1)
        cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
        angle = rng.uniform(0, 2 * math.pi)
        ux, uy = math.cos(angle), math.sin(angle)
        body = length * rng.uniform(0.07, 0.1)
        sweep = rng.uniform(0.05, 0.25) * span

        def wing(at: float, half_span: float, chord: float, back: float) -> NDArray[np.float64]:
            root_x, root_y = cx + at * ux, cy + at * uy
            points = []
            for side in (-1, 1):
                points.append((root_x - side * half_span * uy - back * ux,
                               root_y + side * half_span * ux - back * uy))
            return np.array([[root_x + chord / 2 * ux, root_y + chord / 2 * uy], points[1],
                             [points[1][0] - chord * 0.4 * ux, points[1][1] - chord * 0.4 * uy],
                             [root_x - chord / 2 * ux, root_y - chord / 2 * uy],
                             [points[0][0] - chord * 0.4 * ux, points[0][1] - chord * 0.4 * uy], points[0]])

        parts = [_rectangle(cx, cy, length, body, angle),
                 wing(0.05 * length, span / 2, 0.18 * length, sweep),
                 wing(-0.42 * length, span / 6, 0.1 * length, sweep / 3)]
        cover = _coverage((rows, cols), parts)
        azimuth, elevation = sun
        reach = rng.uniform(2, 5) / math.tan(elevation) / gsd
        shifted = ndimage.shift(cover, (-reach * math.cos(azimuth), reach * math.sin(azimuth)), order=1)
        _darken(pixels, np.clip(shifted - cover, 0, 1), 0.5, blue=0.3)
        paint = np.full(3, rng.uniform(0.6, 0.95), np.float32) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
        _blend(pixels, cover, paint)

    def _building_shadow(self, pixels: NDArray[np.float32], rng: np.random.Generator) -> None:
        rows, cols = pixels.shape[:2]
        angle = rng.uniform(0, 2 * math.pi)
        ux, uy = math.cos(angle), math.sin(angle)
        # a straight shadow edge, sometimes with a step (a building's corner)
        offset = rng.uniform(-0.35, 0.35) * max(rows, cols)
        far = 4 * max(rows, cols)
        cx, cy = cols / 2 + offset * ux, rows / 2 + offset * uy
        polygon = [np.array([[cx - far * uy, cy + far * ux], [cx + far * uy, cy - far * ux],
                             [cx + far * uy + far * ux, cy - far * ux + far * uy],
                             [cx - far * uy + far * ux, cy + far * ux + far * uy]])]
        cover = ndimage.gaussian_filter(_coverage((rows, cols), polygon), rng.uniform(0.5, 1.5))
        _darken(pixels, cover, rng.uniform(0.4, 0.7), blue=rng.uniform(0.2, 0.6))


Window = tuple[tuple[slice, slice], tuple[slice, slice]]


def _window(shape: tuple[int, int], size: tuple[int, ...], left: int, top: int) -> Window | None:
    """Slices of the crop and of an array of ``size`` placed with its top-left at ``left, top``
    where the two overlap, or None where they do not."""
    rows, cols = shape
    height, width = size[0], size[1]
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(rows, top + height), min(cols, left + width)
    if y0 >= y1 or x0 >= x1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def _segment(start: tuple[float, float], end: tuple[float, float], width: float) -> NDArray[np.float64]:
    length = max(math.dist(start, end), 1e-3)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    return _rectangle((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, length, width, angle)


def _hull(cx: float, cy: float, length: float, beam: float, angle: float) -> NDArray[np.float64]:
    """A boat's outline: a pointed bow (at ``angle``), straight sides, a square stern."""
    ux, uy = math.cos(angle), math.sin(angle)
    vx, vy = -uy, ux
    # the bow tapers over the front 45 %: a boat never has the square ends of a trailer or a bus
    outline = ((0.5, 0.0), (0.3, 0.38), (0.05, 0.5), (-0.5, 0.42), (-0.5, -0.42), (0.05, -0.5), (0.3, -0.38))
    return np.array([[cx + a * length * ux + b * beam * vx, cy + a * length * uy + b * beam * vy]
                     for a, b in outline])


def _disc(cx: float, cy: float, radius: float, sides: int = 16) -> NDArray[np.float64]:
    theta = np.linspace(0, 2 * math.pi, sides, endpoint=False)
    return np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)
