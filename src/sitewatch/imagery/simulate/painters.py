"""How each kind of object looks from above, and the shadow it casts.

Painters colour pixels from their position along and across the object's axis, so a car
gets a windscreen, a truck a cab, a tanker a lit cylinder, a crane a lattice jib. Tall
things lean away from the sensor by ``lean`` (metres per metre of height, east and north).
"""

from __future__ import annotations

import math

import numpy as np

from sitewatch.imagery.simulate.activity import SceneObject
from sitewatch.imagery.simulate.layout import Grid, rectangle
from sitewatch.imagery.simulate.raster import hull, mark_shadow, pixel_indices, shade_box
from sitewatch.imagery.simulate.sun import SunPosition


def drawn_box(obj: SceneObject) -> tuple[float, float, float]:
    """(length, width, height) of what stands: structures shrink as they are dismantled."""
    if obj.object_class == "structure":
        standing = max(0.0, min(1.0, obj.progress))
        return obj.length * (0.35 + 0.65 * standing), obj.width, obj.height * max(standing, 0.15)
    return obj.length, obj.width, obj.height


def top_corners(obj: SceneObject, lean: tuple[float, float]) -> np.ndarray:
    """Map corners of what the sensor sees on top of the object, displaced by its lean."""
    length, width, height = drawn_box(obj)
    if obj.object_class == "crane":
        width = 1.8
    corners = rectangle(obj.cx, obj.cy, length, width, obj.angle)
    return corners + np.array([lean[0] * height, lean[1] * height])


def footprint_corners(obj: SceneObject) -> np.ndarray:
    length, width, _ = drawn_box(obj)
    return rectangle(obj.cx, obj.cy, length, width, obj.angle)


def mark_object_shadow(mask: np.ndarray, grid: Grid, obj: SceneObject, sun: SunPosition, pad: int) -> None:
    length, _width, height = drawn_box(obj)
    offset = sun.shadow_vector(height)
    if obj.object_class == "crane" and obj.mast is not None:
        mast = rectangle(obj.mast[0], obj.mast[1], 2.2, 2.2, obj.angle)
        mark_shadow(mask, grid, mast, offset, pad)
        jib = rectangle(obj.cx, obj.cy, length, 1.8, obj.angle) + np.asarray(offset)
        rows, cols = pixel_indices(grid, jib, mask.shape, pad)
        mask[rows, cols] = True
        return
    mark_shadow(mask, grid, footprint_corners(obj), offset, pad)


def paint_object(
    canvas: np.ndarray,
    grid: Grid,
    obj: SceneObject,
    lean: tuple[float, float],
    pad: int,
    rng: np.random.Generator,
) -> None:
    colour = np.array(obj.colour, dtype=np.float32)
    length, width, _height = drawn_box(obj)
    cls = obj.object_class
    if cls == "crane":
        _paint_crane(canvas, grid, obj, lean, pad)
        return
    if cls == "structure":
        _paint_structure(canvas, grid, obj, lean, pad)
        return
    centre = (obj.cx, obj.cy)
    corners = rectangle(obj.cx, obj.cy, length, width, obj.angle)
    half = length / 2
    shade = float(rng.uniform(0.92, 1.06))

    if cls == "car":

        def shader(along: np.ndarray, across: np.ndarray) -> np.ndarray:
            glass = ((along > 0.18 * half) & (along < 0.55 * half)) | (
                (along < -0.5 * half) & (along > -0.8 * half)
            )
            edge = np.abs(across) > width / 2 - 0.25
            factor = np.where(glass, 0.3, np.where(edge, 0.8, 1.0)) * shade
            return colour * factor[:, None]
    elif cls == "tanker_truck":

        def shader(along: np.ndarray, across: np.ndarray) -> np.ndarray:
            cab = along > half - 2.3
            gap = (along > half - 2.9) & ~cab
            cylinder = 0.5 + 0.62 * np.cos(np.clip(across / (width / 2), -1, 1) * math.pi / 2) ** 0.6
            body = colour * cylinder[:, None] * shade
            out = np.where(cab[:, None], np.array([180.0, 60.0, 50.0]) * 0.9, body)
            return np.where(gap[:, None], 35.0, out)
    elif cls == "rail_car":

        def shader(along: np.ndarray, across: np.ndarray) -> np.ndarray:
            ends = np.abs(along) > half - 0.4
            if obj.variant == "tank":
                factor = 0.6 + 0.7 * np.cos(np.clip(across / (width / 2), -1, 1) * math.pi / 2) ** 0.6
            elif obj.variant == "flat":
                cargo = (np.abs(along) < half * 0.7) & (np.abs(across) < width / 2 - 0.3)
                factor = np.where(cargo, 1.6, 0.6)
            else:  # covered wagon: a curved roof lit on one side
                factor = np.where(across > 0, 1.1, 0.85) * np.where(np.abs(across) < 0.15, 1.25, 1.0)
            return colour * (np.where(ends, 0.6, 1.0) * factor * shade)[:, None]
    else:  # large_vehicle: cargo truck or bus
        bus = obj.variant == "bus"

        def shader(along: np.ndarray, across: np.ndarray) -> np.ndarray:
            if bus:
                vents = (np.abs(across) < 0.5) & (np.abs(along) < half * 0.5)
                return colour * np.where(vents, 0.8, 1.0)[:, None] * shade
            cab = along > half - 2.4
            gap = (along > half - 3.0) & ~cab
            ribs = 1.0 + 0.06 * np.sin(along * 4.0)
            body = colour * (ribs * shade)[:, None]
            out = np.where(cab[:, None], colour * 1.25, body)
            return np.where(gap[:, None], 30.0, out)

    shade_box(canvas, grid, corners, pad, centre, obj.angle, shader)


def _paint_structure(
    canvas: np.ndarray, grid: Grid, obj: SceneObject, lean: tuple[float, float], pad: int
) -> None:
    length, width, height = drawn_box(obj)
    base = footprint_corners(obj)
    top = top_corners(obj, lean)
    # Walls seen obliquely, then the top.
    walls = hull(np.vstack([base, top]))
    rows, cols = pixel_indices(grid, walls, canvas.shape[:2], pad)
    canvas[rows, cols] = (112.0, 112.0, 110.0)
    kind = obj.variant
    centre = (obj.cx + lean[0] * height, obj.cy + lean[1] * height)
    broken = obj.progress < 1.0

    def shader(along: np.ndarray, across: np.ndarray) -> np.ndarray:
        if kind in ("launch_tower", "gantry", "tower"):
            lattice = (np.mod(along, 2.5) < 0.6) | (np.mod(across, 2.5) < 0.6)
            value = np.where(lattice, 175.0, 70.0)
            colour = np.stack([value, value, value * 0.96], axis=1)
        elif kind == "engine_test_stand":
            trench = (along > length / 2 - 4.0) & (np.abs(across) < width / 4)
            value = np.where(trench, 45.0, 178.0)
            colour = np.stack([value, value * 0.99, value * 0.95], axis=1)
        else:  # transfer_structure and other clad buildings: pale cladding with ribs
            ribs = 1.0 + 0.08 * np.sign(np.sin(along * 2.2))
            rim = (np.abs(across) > width / 2 - 1.0) | (np.abs(along) > length / 2 - 1.0)
            value = 196.0 * ribs * np.where(rim, 0.82, 1.0)
            colour = np.stack([value, value, value * 0.97], axis=1)
        if broken:  # partly dismantled: exposed frame and gaps
            gaps = np.mod(along * 0.9 + across * 0.4, 4.0) < 1.6
            colour = np.where(gaps[:, None], colour * 0.45, colour)
        return colour

    shade_box(canvas, grid, top, pad, centre, obj.angle, shader)


def _paint_crane(
    canvas: np.ndarray, grid: Grid, obj: SceneObject, lean: tuple[float, float], pad: int
) -> None:
    dx, dy = lean[0] * obj.height, lean[1] * obj.height
    mast = obj.mast if obj.mast is not None else (obj.cx, obj.cy)
    a = math.radians(obj.angle)
    ux, uy = math.cos(a), math.sin(a)
    yellow = np.array(obj.colour, dtype=np.float32)
    jib = rectangle(obj.cx + dx, obj.cy + dy, obj.length, 1.8, obj.angle)

    def lattice(along: np.ndarray, across: np.ndarray) -> np.ndarray:
        holes = (np.mod(along, 2.0) > 1.3) & (np.abs(across) < 0.4)
        return yellow * np.where(holes, 0.55, 1.0)[:, None]

    shade_box(canvas, grid, jib, pad, (obj.cx + dx, obj.cy + dy), obj.angle, lattice)
    back = obj.length / (1.3 / 0.3) if obj.length > 0 else 0.0
    weight_x = mast[0] + dx - ux * (back - 1.5)
    weight_y = mast[1] + dy - uy * (back - 1.5)
    block = rectangle(weight_x, weight_y, 3.0, 3.2, obj.angle)
    rows, cols = pixel_indices(grid, block, canvas.shape[:2], pad)
    canvas[rows, cols] = (150.0, 150.0, 146.0)
    cab = rectangle(mast[0] + dx, mast[1] + dy, 2.6, 2.6, obj.angle)
    rows, cols = pixel_indices(grid, cab, canvas.shape[:2], pad)
    canvas[rows, cols] = yellow * 0.8
