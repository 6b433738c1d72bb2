"""What stands at a site on a given date: routine traffic, event objects and structure states.

Vehicles take free slots of their zone (so they never overlap), cranes take the zone's crane
spots in scenario order (so "two cranes, then one" removes the second), and structures are
dismantled or rebuilt progressively across their event's interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from sitewatch.imagery.simulate.layout import SLOT_KINDS_FOR_CLASS, ResolvedLayout
from sitewatch.imagery.simulate.scenario import ScenarioError, SiteScenario

CAR_COLOURS = (
    ((215, 215, 212), 0.30),
    ((165, 167, 170), 0.22),
    ((40, 42, 45), 0.22),
    ((40, 60, 100), 0.08),
    ((130, 35, 35), 0.06),
    ((60, 80, 60), 0.07),
    ((190, 180, 150), 0.05),
)
TRUCK_BODIES = ((84, 98, 66), (96, 104, 80), (150, 150, 140), (60, 84, 120), (170, 160, 120))
TANK_COLOURS = ((205, 205, 200), (170, 172, 168), (90, 100, 80))
RAIL_COLOURS = ((92, 70, 58), (70, 84, 66), (110, 100, 90), (60, 60, 62))


@dataclass(frozen=True, slots=True)
class SceneObject:
    """One object drawn in one image; its ``polygon`` is its ground truth box."""

    id: str
    object_class: str
    """car, large_vehicle, tanker_truck, rail_car, crane or structure."""
    zone: str | None
    cx: float
    cy: float
    length: float
    width: float
    angle: float
    """Degrees counter-clockwise from east, along ``length``."""
    height: float
    variant: str
    """Drawing style: cargo, bus, covered, flat, tank, tower_crane, or a structure kind."""
    colour: tuple[float, float, float]
    progress: float = 1.0
    """Structures: the fraction standing (dismantling or construction in progress)."""
    mast: tuple[float, float] | None = None
    """Cranes: where the mast stands."""


def structure_progress(plan: SiteScenario, day: date) -> dict[str, float]:
    """Fraction standing of each structure on ``day`` (1 intact, 0 gone)."""
    state = {s.id: 1.0 if s.present else 0.0 for s in plan.layout.structures}
    for event in sorted(plan.events, key=lambda e: e.start):
        if day < event.start:
            continue
        span = (event.end - event.start).days + 1
        done = min(1.0, ((day - event.start).days + 1) / span)
        for structure_id in event.remove:
            state[structure_id] = 1.0 - done
        for structure_id in event.build:
            state[structure_id] = done
    return state


def _demand(plan: SiteScenario, day: date) -> list[tuple[str, str, int, str]]:
    """(zone, class, count, source) of event objects on ``day``."""
    wanted = []
    for event in plan.events:
        for phase in event.phases:
            if phase.start <= day <= phase.end:
                for obj in phase.objects:
                    wanted.append((obj.zone or event.zone, obj.object_class, obj.count, event.id))
    return wanted


def check_capacity(plan: SiteScenario, layout: ResolvedLayout) -> None:
    """Raise when an event asks for more vehicles or cranes than its zone has room for."""
    for event in plan.events:
        for phase in event.phases:
            counts: dict[str, dict[str, int]] = {}
            for obj in phase.objects:
                zone = obj.zone or event.zone
                if zone not in layout.zones:
                    raise ScenarioError(
                        f"event {event.id!r} of site {plan.site_id!r} names zone {zone!r}, "
                        f"which the catalog site lacks (zones: {', '.join(layout.zones)})"
                    )
                per_zone = counts.setdefault(zone, {})
                per_zone[obj.object_class] = per_zone.get(obj.object_class, 0) + obj.count
            for zone, per_class in counts.items():
                trucks = per_class.get("large_vehicle", 0) + per_class.get("tanker_truck", 0)
                checks = (
                    ("truck", trucks, len(layout.slots_in(zone, ("truck",)))),
                    (
                        "vehicle",
                        trucks + per_class.get("car", 0),
                        len(layout.slots_in(zone, ("car", "truck"))),
                    ),
                    ("rail car", per_class.get("rail_car", 0), len(layout.slots_in(zone, ("rail",)))),
                    ("crane", per_class.get("crane", 0), sum(1 for c in layout.cranes if c.zone == zone)),
                )
                for what, count, room in checks:
                    if count > room:
                        raise ScenarioError(
                            f"event {event.id!r} of site {plan.site_id!r} needs {count} {what} place(s) "
                            f"in zone {zone!r} on {phase.start}..{phase.end} but the layout has {room}; "
                            "add lots, roads, rails or crane spots there, or lower the counts"
                        )


def objects_on(
    plan: SiteScenario, layout: ResolvedLayout, day: date, rng: np.random.Generator
) -> list[SceneObject]:
    """Every movable object and standing structure on ``day``, event objects placed first."""
    requests: list[tuple[str | None, str, int]] = [
        (zone, cls, count) for zone, cls, count, _ in _demand(plan, day)
    ]
    weekday = day.weekday()
    for traffic in plan.traffic:
        mean = traffic.mean * traffic.weekdays[weekday]
        requests.append((traffic.zone, traffic.object_class, int(rng.poisson(mean)) if mean > 0 else 0))
    return place_objects(layout, requests, rng) + standing_structures(plan, layout, day)


def standing_structures(plan: SiteScenario, layout: ResolvedLayout, day: date) -> list[SceneObject]:
    """The scenario's structures that (partly) stand on ``day``."""
    objects: list[SceneObject] = []
    progress = structure_progress(plan, day)
    structures = {s.id: s for s in plan.layout.structures}
    for box in layout.structures:
        standing = progress[box.id]
        if standing <= 0.0:
            continue
        kind = structures[box.id].kind
        objects.append(
            SceneObject(
                box.id,
                "structure",
                box.zone,
                box.cx,
                box.cy,
                box.length,
                box.width,
                box.angle,
                box.height,
                kind,
                (180.0, 180.0, 176.0),
                progress=standing,
            )
        )
    return objects


def place_objects(
    layout: ResolvedLayout, requests: list[tuple[str | None, str, int]], rng: np.random.Generator
) -> list[SceneObject]:
    """Put ``(zone, class, count)`` requests into free slots and crane spots; zone None means anywhere.

    Trucks and rail cars go first (cars fit any slot, trucks only the long ones); a request
    larger than the room left is cut to fit, since routine traffic may exceed a lot's size.
    """
    objects: list[SceneObject] = []
    free = np.ones(len(layout.slots), dtype=bool)
    cranes_used: set[str] = set()
    order = {"crane": 0, "rail_car": 1, "tanker_truck": 2, "large_vehicle": 2, "car": 3}
    for zone, cls, count in sorted(requests, key=lambda r: order[r[1]]):
        if cls == "crane":
            spots = [c for c in layout.cranes if zone in (None, c.zone) and c.id not in cranes_used][:count]
            for spot in spots:
                cranes_used.add(spot.id)
                angle = spot.angle + float(rng.normal(0, 20))
                objects.append(_crane(spot.id, spot.zone, spot.x, spot.y, spot.boom, angle, spot.height))
            continue
        candidates = [i for i in layout.slots_in(zone, SLOT_KINDS_FOR_CLASS[cls]) if free[i]]
        if cls == "car":  # prefer parking rows, spill onto the roadside when they are full
            car_rows = [i for i in candidates if layout.slots[i].kind == "car"]
            pool = car_rows if len(car_rows) >= count else candidates
        else:
            pool = candidates
        size = min(count, len(pool))
        chosen = [int(i) for i in rng.choice(pool, size=size, replace=False)] if size else []
        for index in chosen:
            free[index] = False
            objects.append(_vehicle(cls, layout, index, rng, len(objects)))
    return objects


def _crane(
    crane_id: str, zone: str, x: float, y: float, boom: float, angle: float, height: float
) -> SceneObject:
    back = 0.3 * boom
    a = math.radians(angle)
    shift = (boom - back) / 2
    return SceneObject(
        crane_id,
        "crane",
        zone,
        x + math.cos(a) * shift,
        y + math.sin(a) * shift,
        boom + back,
        3.0,
        angle,
        height,
        "tower_crane",
        (222.0, 180.0, 40.0),
        mast=(x, y),
    )


def _vehicle(
    cls: str, layout: ResolvedLayout, index: int, rng: np.random.Generator, serial: int
) -> SceneObject:
    slot = layout.slots[index]
    angle = slot.angle + float(rng.normal(0, 3)) + (180.0 if rng.random() < 0.5 else 0.0)
    jitter = rng.normal(0, 0.25, 2)
    cx, cy = slot.cx + float(jitter[0]), slot.cy + float(jitter[1])
    colour: tuple[float, float, float] | tuple[int, int, int]
    if cls == "car":
        colours = [c for c, _ in CAR_COLOURS]
        weights = np.array([w for _, w in CAR_COLOURS])
        colour = colours[int(rng.choice(len(colours), p=weights / weights.sum()))]
        length, width, height, variant = rng.uniform(4.1, 4.9), rng.uniform(1.7, 1.9), 1.5, "car"
    elif cls == "large_vehicle":
        bus = rng.random() < 0.2
        colour = (200, 190, 150) if bus else TRUCK_BODIES[int(rng.integers(len(TRUCK_BODIES)))]
        length = rng.uniform(10, 12) if bus else rng.uniform(8, 12)
        width, height, variant = rng.uniform(2.4, 2.6), 3.2, "bus" if bus else "cargo"
    elif cls == "tanker_truck":
        colour = TANK_COLOURS[int(rng.integers(len(TANK_COLOURS)))]
        length, width, height, variant = rng.uniform(10, 12.5), 2.5, 3.3, "tank"
    else:
        variant = str(rng.choice(["covered", "covered", "flat", "tank"]))
        colour = (
            RAIL_COLOURS[int(rng.integers(len(RAIL_COLOURS)))] if variant != "tank" else (40.0, 40.0, 42.0)
        )
        length, width, height = rng.uniform(14, 15.5), 3.0, 4.0
        angle = slot.angle + (180.0 if rng.random() < 0.5 else 0.0)
        cx, cy = slot.cx, slot.cy
    colour_f = (float(colour[0]), float(colour[1]), float(colour[2]))
    return SceneObject(
        f"{cls}_{serial}",
        cls,
        slot.zone,
        cx,
        cy,
        float(length),
        float(width),
        angle,
        height,
        variant,
        colour_f,
    )
