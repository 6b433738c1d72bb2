"""A site's persistent layout resolved into map geometry, and the slots vehicles may occupy.

Everything here is computed once per site and seed: the raster grid (site outline plus a
margin in the site's UTM CRS), footprints of buildings and structures as rotated rectangles,
road and rail centre lines, and non-overlapping parking/roadside/rail slots by zone, so that
vehicles drawn per date never overlap each other or a building.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Polygon
from shapely.strtree import STRtree

from sitewatch.core.types import Site
from sitewatch.imagery.simulate.scenario import Placement, ScenarioError, SiteScenario

MARGIN_M = 60.0
"""Ground beyond the site outline in every image, metres."""
SHIFT_MARGIN_PX = 6
"""Extra canvas pixels on each side so misregistration never shows an edge."""


@dataclass(frozen=True, slots=True)
class Grid:
    """The pixel grid of a site's images: north-up, square pixels, in the site's UTM CRS."""

    epsg: int
    west: float
    north: float
    gsd: float
    width: int
    height: int

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-order affine (a, b, c, d, e, f) for rasterio ``Affine(*...)``."""
        return (self.gsd, 0.0, self.west, 0.0, -self.gsd, self.north)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.west, self.north - self.height * self.gsd, self.west + self.width * self.gsd, self.north)

    def to_pixel(self, xy: np.ndarray, pad: int = 0) -> np.ndarray:
        """Map (x, y) rows to (row, col) pixel coordinates; ``pad`` offsets into a padded canvas."""
        cols = (xy[:, 0] - self.west) / self.gsd + pad
        rows = (self.north - xy[:, 1]) / self.gsd + pad
        return np.stack([rows, cols], axis=1)


def site_grid(site: Site, gsd: float) -> Grid:
    outline = to_utm(site, site.geometry)
    minx, miny, maxx, maxy = outline.bounds
    west = math.floor((minx - MARGIN_M) / gsd) * gsd
    north = math.ceil((maxy + MARGIN_M) / gsd) * gsd
    width = math.ceil((maxx + MARGIN_M - west) / gsd)
    height = math.ceil((north - (miny - MARGIN_M)) / gsd)
    return Grid(epsg=site.utm_epsg, west=west, north=north, gsd=gsd, width=width, height=height)


def to_utm(site: Site, geometry: shapely.Geometry) -> shapely.Geometry:
    transformer = Transformer.from_crs(4326, site.utm_epsg, always_xy=True)
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def rectangle(cx: float, cy: float, length: float, width: float, angle: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle centred on (cx, cy), ``length`` along ``angle`` degrees."""
    a = math.radians(angle)
    ux, uy = math.cos(a), math.sin(a)
    vx, vy = -uy, ux
    hl, hw = length / 2, width / 2
    return np.array(
        [
            [cx - ux * hl - vx * hw, cy - uy * hl - vy * hw],
            [cx + ux * hl - vx * hw, cy + uy * hl - vy * hw],
            [cx + ux * hl + vx * hw, cy + uy * hl + vy * hw],
            [cx - ux * hl + vx * hw, cy - uy * hl + vy * hw],
        ]
    )


@dataclass(frozen=True, slots=True)
class Box:
    """A resolved rectangle in map coordinates."""

    id: str
    cx: float
    cy: float
    length: float
    width: float
    angle: float
    height: float
    zone: str | None
    style: str = "grey"

    @property
    def corners(self) -> np.ndarray:
        return rectangle(self.cx, self.cy, self.length, self.width, self.angle)

    @property
    def polygon(self) -> Polygon:
        return Polygon(self.corners)


@dataclass(frozen=True, slots=True)
class Slot:
    """A place one vehicle may stand: centre, heading, and the classes that fit it."""

    cx: float
    cy: float
    angle: float
    length: float
    width: float
    kind: str
    """car, truck (roadside or apron: cars, trucks and tankers fit) or rail."""
    zone: str | None


@dataclass(frozen=True, slots=True)
class CraneSite:
    id: str
    zone: str
    x: float
    y: float
    boom: float
    angle: float
    height: float


@dataclass(frozen=True, slots=True)
class ResolvedLayout:
    """A site's layout in map coordinates (the site's UTM CRS)."""

    site: Site
    grid: Grid
    zones: dict[str, Polygon]
    buildings: tuple[Box, ...]
    structures: tuple[Box, ...]
    pads: tuple[Box, ...]
    lots: tuple[Box, ...]
    roads: tuple[tuple[LineString, float], ...]
    rails: tuple[tuple[LineString, float], ...]
    slots: tuple[Slot, ...]
    cranes: tuple[CraneSite, ...]

    def zone_of(self, x: float, y: float) -> str | None:
        point = shapely.Point(x, y)
        for zone_id, polygon in self.zones.items():
            if polygon.contains(point):
                return zone_id
        return None

    def slots_in(self, zone: str | None, kinds: tuple[str, ...]) -> list[int]:
        """Indices of slots of ``kinds`` in ``zone`` (None: anywhere on the site, zones or not)."""
        return [i for i, s in enumerate(self.slots) if (zone is None or s.zone == zone) and s.kind in kinds]


SLOT_KINDS_FOR_CLASS = {
    "car": ("car", "truck"),
    "large_vehicle": ("truck",),
    "tanker_truck": ("truck",),
    "rail_car": ("rail",),
}


def resolve_layout(site: Site, plan: SiteScenario, gsd: float, rng: np.random.Generator) -> ResolvedLayout:
    """Turn the scenario's fractional layout into map geometry and vehicle slots."""
    grid = site_grid(site, gsd)
    zones = {z.id: to_utm(site, z.geometry) for z in site.zones}
    outline = to_utm(site, site.geometry)

    def frame(zone: str | None, where: str) -> tuple[float, float, float, float]:
        if zone is None:
            return outline.bounds
        if zone not in zones:
            raise ScenarioError(
                f"{where}: site {site.id!r} has no zone {zone!r} (zones: {', '.join(zones)}); "
                "use a zone id of the catalog or leave zone out for the whole site"
            )
        return zones[zone].bounds

    def place(p: Placement, where: str) -> tuple[float, float]:
        minx, miny, maxx, maxy = frame(p.zone, where)
        return minx + p.at[0] * (maxx - minx), miny + p.at[1] * (maxy - miny)

    def box(box_id: str, p: Placement, height: float, style: str, where: str) -> Box:
        cx, cy = place(p, where)
        return Box(box_id, cx, cy, p.size[0], p.size[1], p.angle, height, p.zone, style)

    layout = plan.layout
    where = f"site {site.id!r} layout"
    buildings = [box(b.id, b.place, b.height, b.roof, f"{where} building {b.id!r}") for b in layout.buildings]
    structures = tuple(
        box(s.id, s.place, s.height, s.kind, f"{where} structure {s.id!r}") for s in layout.structures
    )
    pads = tuple(box(f"pad{i}", p, 0.0, "concrete", f"{where} pads[{i}]") for i, p in enumerate(layout.pads))
    lots = tuple(box(lot.id, lot.place, 0.0, lot.slot, f"{where} lot {lot.id!r}") for lot in layout.lots)
    minx, miny, maxx, maxy = outline.bounds

    def line(points: tuple[tuple[float, float], ...]) -> LineString:
        return LineString([(minx + fx * (maxx - minx), miny + fy * (maxy - miny)) for fx, fy in points])

    roads = tuple((line(r.points), r.width) for r in layout.roads)
    rails = tuple((line(r.points), r.width) for r in layout.rails)
    cranes = []
    for spot in layout.cranes:
        x0, y0, x1, y1 = frame(spot.zone, f"{where} crane {spot.id!r}")
        cranes.append(
            CraneSite(
                spot.id,
                spot.zone,
                x0 + spot.at[0] * (x1 - x0),
                y0 + spot.at[1] * (y1 - y0),
                spot.boom,
                spot.angle,
                spot.height,
            )
        )

    taken = [b.polygon for b in buildings] + [s.polygon for s in structures]
    taken += [line_string.buffer(width / 2 + 0.5) for line_string, width in rails]
    for scatter in layout.scatter:
        x0, y0, x1, y1 = frame(scatter.zone, f"{where} scatter")
        placed, attempts = 0, 0
        while placed < scatter.count and attempts < scatter.count * 40:
            attempts += 1
            length = float(rng.uniform(*scatter.size))
            width = float(rng.uniform(scatter.size[0] * 0.6, length)) if length > scatter.size[0] else length
            angle = float(rng.choice([0.0, 90.0]) + rng.normal(0, 2))
            cx, cy = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
            candidate = Box(
                f"{scatter.zone}_b{placed}",
                cx,
                cy,
                length,
                width,
                angle,
                float(rng.uniform(*scatter.height)),
                scatter.zone,
                str(rng.choice(["grey", "blue", "rust", "green", "white"])),
            )
            footprint = candidate.polygon
            if not zones[scatter.zone].contains(footprint):
                continue
            near_road = any(footprint.distance(r) < w / 2 + 3 for r, w in roads)
            if near_road or any(footprint.distance(t) < 6 for t in taken):
                continue
            buildings.append(candidate)
            taken.append(footprint)
            placed += 1

    slots = _slots(lots, roads, rails, zones)
    blocked = STRtree(taken) if taken else None
    kept: list[Slot] = []
    kept_polygons: list[Polygon] = []
    for slot in slots:
        polygon = Polygon(rectangle(slot.cx, slot.cy, slot.length, slot.width, slot.angle))
        if (
            blocked is not None
            and slot.kind != "rail"
            and len(blocked.query(polygon, predicate="intersects"))
        ):
            continue
        if any(polygon.intersects(other) for other in kept_polygons[-400:]):
            continue
        kept.append(slot)
        kept_polygons.append(polygon)
    return ResolvedLayout(
        site=site,
        grid=grid,
        zones=zones,
        buildings=tuple(buildings),
        structures=structures,
        pads=pads,
        lots=lots,
        roads=roads,
        rails=rails,
        slots=tuple(kept),
        cranes=tuple(cranes),
    )


def _slots(
    lots: tuple[Box, ...],
    roads: tuple[tuple[LineString, float], ...],
    rails: tuple[tuple[LineString, float], ...],
    zones: dict[str, Polygon],
) -> list[Slot]:
    def zone_of(x: float, y: float) -> str | None:
        point = shapely.Point(x, y)
        return next((z for z, polygon in zones.items() if polygon.contains(point)), None)

    slots: list[Slot] = []
    for lot in lots:
        # Rows run along the lot's length; a car stands across its row, a truck along its row.
        a = math.radians(lot.angle)
        ux, uy, vx, vy = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
        if lot.style == "car":
            pitch, depth, aisle, heading, size = 2.8, 5.6, 6.0, lot.angle + 90, (5.0, 2.4)
        else:
            pitch, depth, aisle, heading, size = 14.5, 4.2, 5.0, lot.angle, (13.0, 3.6)
        along = np.arange(-lot.length / 2 + pitch / 2, lot.length / 2 - pitch / 2 + 1e-6, pitch)
        across, row = [], 0
        offset = -lot.width / 2 + depth / 2
        while offset + depth / 2 <= lot.width / 2 + 1e-6:
            across.append(offset)
            offset += depth if row % 2 == 0 else depth + aisle
            row += 1
        for v in across:
            for u in along:
                x, y = lot.cx + ux * u + vx * v, lot.cy + uy * u + vy * v
                slots.append(Slot(x, y, heading, size[0], size[1], lot.style, zone_of(x, y)))
    for road, width in roads:
        # Roadside parking on both shoulders, heading along the road.
        for side in (-1, 1):
            shoulder = road.offset_curve(side * (width / 2 + 2.2))
            if shoulder.is_empty or not isinstance(shoulder, LineString):
                continue
            for distance in np.arange(8.0, shoulder.length - 8.0, 15.0):
                point = shoulder.interpolate(distance)
                ahead = shoulder.interpolate(min(distance + 1.0, shoulder.length))
                angle = math.degrees(math.atan2(ahead.y - point.y, ahead.x - point.x))
                slots.append(Slot(point.x, point.y, angle, 13.0, 3.6, "truck", zone_of(point.x, point.y)))
    for rail, _ in rails:
        for distance in np.arange(10.0, rail.length - 10.0, 16.5):
            point = rail.interpolate(distance)
            ahead = rail.interpolate(min(distance + 1.0, rail.length))
            angle = math.degrees(math.atan2(ahead.y - point.y, ahead.x - point.x))
            slots.append(Slot(point.x, point.y, angle, 15.8, 3.2, "rail", zone_of(point.x, point.y)))
    return slots
