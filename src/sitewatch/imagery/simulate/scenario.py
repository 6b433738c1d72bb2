"""Scenarios: what the simulator renders, as frozen values loaded from YAML data files.

A scenario names sites of the built-in catalog, a date range and revisit model, the sensor,
and per site a persistent layout (buildings, roads, rail lines, aprons, parking lots, crane
spots, structures that can be dismantled and rebuilt), routine traffic per zone and weekday,
and events. Layout positions are fractions of a zone's (or the site outline's) bounding box
in the site's UTM grid, so a scenario survives small edits of the catalog; sizes are metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sitewatch.core.errors import UnsupportedInputError

OBJECT_CLASSES = ("car", "large_vehicle", "tanker_truck", "rail_car", "crane", "structure")
"""Ground-truth classes of objects that come and go between images."""

MOVABLE_CLASSES = ("car", "large_vehicle", "tanker_truck", "rail_car", "crane")


class ScenarioError(UnsupportedInputError):
    """A scenario file is malformed; the message names the file and the field."""


# --- layout ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a rectangular thing sits: a point in a zone's bounding box and a size and angle."""

    zone: str | None
    """Zone id whose bounding box ``at`` refers to; None for the site outline."""
    at: tuple[float, float]
    """Fractions (east, north) of the bounding box, 0..1."""
    size: tuple[float, float]
    """Length along ``angle`` and width across it, metres."""
    angle: float = 0.0
    """Degrees counter-clockwise from east."""


@dataclass(frozen=True, slots=True)
class Building:
    id: str
    place: Placement
    height: float
    roof: str = "grey"
    """Roof colour name: grey, blue, green, rust, white, dark."""


@dataclass(frozen=True, slots=True)
class Structure:
    """A tall structure that events may dismantle or rebuild (tower, gantry, test stand)."""

    id: str
    kind: str
    """launch_tower, transfer_structure, engine_test_stand, gantry, ..."""
    place: Placement
    height: float
    present: bool = True
    """Whether it stands at the start of the scenario."""


@dataclass(frozen=True, slots=True)
class Line:
    """A road or rail line: a polyline in fractions of the site outline's bounding box."""

    points: tuple[tuple[float, float], ...]
    width: float


@dataclass(frozen=True, slots=True)
class Lot:
    """A paved area whose slots hold vehicles: parking rows (cars) or an apron (trucks)."""

    id: str
    place: Placement
    slot: str
    """car or truck: the kind of slot rows laid out in the lot."""


@dataclass(frozen=True, slots=True)
class CraneSpot:
    id: str
    zone: str
    at: tuple[float, float]
    boom: float
    """Boom length in metres."""
    angle: float
    height: float = 35.0


@dataclass(frozen=True, slots=True)
class Scatter:
    """Filler buildings placed at random (seeded) inside a zone."""

    zone: str
    count: int
    size: tuple[float, float]
    height: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Layout:
    buildings: tuple[Building, ...] = ()
    structures: tuple[Structure, ...] = ()
    roads: tuple[Line, ...] = ()
    rails: tuple[Line, ...] = ()
    lots: tuple[Lot, ...] = ()
    pads: tuple[Placement, ...] = ()
    """Bare concrete areas (launch pads, test stand aprons) without vehicle slots."""
    cranes: tuple[CraneSpot, ...] = ()
    scatter: tuple[Scatter, ...] = ()


# --- activity -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Traffic:
    """Routine presence of one object class in one zone: Poisson counts with a weekday factor."""

    zone: str
    object_class: str
    mean: float
    weekdays: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    """Factor per weekday, Monday first."""


@dataclass(frozen=True, slots=True)
class ObjectCount:
    object_class: str
    count: int
    zone: str | None = None
    """Zone the objects appear in; None for the event's own zone."""


@dataclass(frozen=True, slots=True)
class Phase:
    """Objects present on the dates ``start``..``end`` (inclusive) of an event."""

    start: date
    end: date
    objects: tuple[ObjectCount, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happens at a site and zone over an interval (inclusive dates)."""

    id: str
    zone: str
    kind: str
    start: date
    end: date
    alert_expected: bool
    """Whether an analyst would want an alert for it (False: busy but routine)."""
    description: str = ""
    phases: tuple[Phase, ...] = ()
    remove: tuple[str, ...] = ()
    """Structure ids dismantled progressively over the interval."""
    build: tuple[str, ...] = ()
    """Structure ids built progressively over the interval."""

    @property
    def zones(self) -> tuple[str, ...]:
        """Every zone the event touches, its own first."""
        others = [o.zone for p in self.phases for o in p.objects if o.zone and o.zone != self.zone]
        return (self.zone, *sorted(set(others)))

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class SiteScenario:
    site_id: str
    layout: Layout
    traffic: tuple[Traffic, ...] = ()
    events: tuple[Event, ...] = ()
    pinned_dates: tuple[date, ...] = ()
    """Dates imaged in addition to the random revisits."""


@dataclass(frozen=True, slots=True)
class CloudModel:
    """Probabilities of clear, partly cloudy, mostly cloudy and nearly fully cloudy images."""

    clear: float = 0.55
    partial: float = 0.28
    mostly: float = 0.1
    full: float = 0.07


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    start: date
    end: date
    sensor: str
    platform: str
    gsd: float
    revisit_days: tuple[int, int]
    """Smallest and largest gap between revisits of a site, days."""
    acquisition_time: time
    """Nominal UTC time of day of the overpass; each image varies it by up to 40 minutes."""
    clouds: CloudModel
    sites: tuple[SiteScenario, ...]
    source: str = "<memory>"

    def site(self, site_id: str) -> SiteScenario:
        for candidate in self.sites:
            if candidate.site_id == site_id:
                return candidate
        known = ", ".join(s.site_id for s in self.sites)
        raise ScenarioError(f"scenario {self.name!r} has no site {site_id!r} (sites: {known})")


# --- loading --------------------------------------------------------------------------------

_SCENARIO_PACKAGE = "sitewatch.imagery.simulate"


def builtin_scenarios() -> tuple[str, ...]:
    """Names of the scenarios shipped with sitewatch."""
    folder = resources.files(_SCENARIO_PACKAGE).joinpath("scenarios")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name (``reference``, ``quick``) or a YAML file by path."""
    text_name = str(name_or_path)
    if text_name in builtin_scenarios():
        resource = resources.files(_SCENARIO_PACKAGE).joinpath(f"scenarios/{text_name}.yaml")
        return parse_scenario(resource.read_text("utf-8"), source=f"built-in scenario {text_name!r}")
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(builtin_scenarios())
        raise ScenarioError(
            f"{text_name!r} is neither a built-in scenario ({known}) nor a scenario file; "
            "give one of those names or the path of a YAML file"
        )
    return parse_scenario(path.read_text("utf-8"), source=str(path))


class _Reader:
    """Pulls typed fields out of parsed YAML, naming the file and field path on any problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def mapping(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    def items(self, parent: dict[str, Any], key: str, where: str) -> list[Any]:
        value = parent.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}", f"expected a list, got {type(value).__name__}")
        return value

    def text(self, parent: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = parent.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", f"expected a non-empty string, got {value!r}")
        return value

    def number(
        self,
        parent: dict[str, Any],
        key: str,
        where: str,
        default: float | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        value = parent.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key}", f"expected a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(f"{where}.{key}", f"{value} is outside {low}..{high}")
        return float(value)

    def pair(
        self,
        parent: dict[str, Any],
        key: str,
        where: str,
        low: float | None = None,
        high: float | None = None,
    ) -> tuple[float, float]:
        value = parent.get(key)
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(f"{where}.{key}", f"expected a pair of numbers [a, b], got {value!r}")
        for v in value:
            if (low is not None and v < low) or (high is not None and v > high):
                raise self.fail(f"{where}.{key}", f"{v} is outside {low}..{high}")
        return float(value[0]), float(value[1])

    def day(self, parent: dict[str, Any], key: str, where: str) -> date:
        value = parent.get(key)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(f"{where}.{key}", f"expected a date like 2019-02-22, got {value!r}")

    def placement(self, item: dict[str, Any], where: str) -> Placement:
        zone = item.get("zone")
        if zone is not None and not isinstance(zone, str):
            raise self.fail(f"{where}.zone", f"expected a zone id, got {zone!r}")
        size = self.pair(item, "size", where, low=0.1)
        return Placement(
            zone=zone,
            at=self.pair(item, "at", where, low=-0.5, high=1.5),
            size=size,
            angle=self.number(item, "angle", where, default=0.0),
        )

    def line(self, item: dict[str, Any], where: str) -> Line:
        points = item.get("points")
        if not isinstance(points, list) or len(points) < 2:
            raise self.fail(f"{where}.points", "expected a list of at least two [east, north] fractions")
        parsed = tuple(
            self.pair({"p": p}, "p", f"{where}.points[{i}]", low=-0.5, high=1.5) for i, p in enumerate(points)
        )
        return Line(points=parsed, width=self.number(item, "width", where, low=0.5, high=100))


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Parse and check scenario YAML; every problem names ``source`` and the field path."""
    reader = _Reader(source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{source}: not valid YAML: {error}") from None
    top = reader.mapping(raw, "scenario")
    revisit = reader.mapping(top.get("revisit", {"min_days": 1, "max_days": 10}), "revisit")
    min_gap = int(reader.number(revisit, "min_days", "revisit", low=1, high=60))
    max_gap = int(reader.number(revisit, "max_days", "revisit", low=min_gap, high=120))
    clock = str(top.get("acquisition_time", "02:15"))
    try:
        acquisition_time = time.fromisoformat(clock)
    except ValueError:
        raise reader.fail("acquisition_time", f"expected HH:MM in UTC, got {clock!r}") from None
    clouds_raw = reader.mapping(top.get("clouds", {}), "clouds")
    clouds = CloudModel(
        **{
            k: reader.number(clouds_raw, k, "clouds", default=getattr(CloudModel(), k), low=0, high=1)
            for k in ("clear", "partial", "mostly", "full")
        }
    )
    if abs(clouds.clear + clouds.partial + clouds.mostly + clouds.full - 1.0) > 1e-6:
        raise reader.fail("clouds", "clear + partial + mostly + full must add up to 1")
    start = reader.day(top, "start", "scenario")
    end = reader.day(top, "end", "scenario")
    if end < start:
        raise reader.fail("end", f"{end} is before start {start}")
    sites = tuple(
        _parse_site(reader, reader.mapping(s, f"sites[{i}]"), f"sites[{i}]")
        for i, s in enumerate(reader.items(top, "sites", "scenario"))
    )
    if not sites:
        raise reader.fail("sites", "a scenario needs at least one site")
    return Scenario(
        name=reader.text(top, "name", "scenario"),
        description=str(top.get("description", "")),
        start=start,
        end=end,
        sensor=reader.text(top, "sensor", "scenario", default="SimSat (simulated)"),
        platform=reader.text(top, "platform", "scenario", default="simsat-1"),
        gsd=reader.number(top, "gsd", "scenario", default=0.5, low=0.1, high=10),
        revisit_days=(min_gap, max_gap),
        acquisition_time=acquisition_time,
        clouds=clouds,
        sites=sites,
        source=source,
    )


def _parse_site(reader: _Reader, raw: dict[str, Any], where: str,
                borrowed_structures: frozenset[str] = frozenset()) -> SiteScenario:
    site_id = reader.text(raw, "id", where)
    if "layout_from" in raw:
        # Borrow the persistent layout and routine traffic of another scenario's same site.
        donor_name = reader.text(raw, "layout_from", where)
        if donor_name not in builtin_scenarios():
            raise reader.fail(
                f"{where}.layout_from",
                f"{donor_name!r} is not a built-in scenario ({', '.join(builtin_scenarios())})",
            )
        donor = load_scenario(donor_name).site(site_id)
        own = {k: v for k, v in raw.items() if k != "layout_from"}
        parsed = _parse_site(reader, {"layout": {}, **own}, where,
                             frozenset(s.id for s in donor.layout.structures))
        return SiteScenario(
            site_id=site_id,
            layout=donor.layout,
            traffic=parsed.traffic if "traffic" in raw else donor.traffic,
            events=parsed.events,
            pinned_dates=parsed.pinned_dates,
        )
    layout_raw = reader.mapping(raw.get("layout", {}), f"{where}.layout")
    lw = f"{where}.layout"
    buildings = tuple(
        Building(
            id=reader.text(b, "id", f"{lw}.buildings[{i}]"),
            place=reader.placement(b, f"{lw}.buildings[{i}]"),
            height=reader.number(b, "height", f"{lw}.buildings[{i}]", low=1, high=200),
            roof=str(b.get("roof", "grey")),
        )
        for i, b in enumerate(reader.items(layout_raw, "buildings", lw))
    )
    structures = tuple(
        Structure(
            id=reader.text(s, "id", f"{lw}.structures[{i}]"),
            kind=reader.text(s, "kind", f"{lw}.structures[{i}]"),
            place=reader.placement(s, f"{lw}.structures[{i}]"),
            height=reader.number(s, "height", f"{lw}.structures[{i}]", low=1, high=200),
            present=bool(s.get("present", True)),
        )
        for i, s in enumerate(reader.items(layout_raw, "structures", lw))
    )
    lots = []
    for i, lot in enumerate(reader.items(layout_raw, "lots", lw)):
        slot = reader.text(lot, "slot", f"{lw}.lots[{i}]")
        if slot not in ("car", "truck"):
            raise reader.fail(f"{lw}.lots[{i}].slot", f"{slot!r} must be car or truck")
        lots.append(
            Lot(
                id=reader.text(lot, "id", f"{lw}.lots[{i}]"),
                place=reader.placement(lot, f"{lw}.lots[{i}]"),
                slot=slot,
            )
        )
    cranes = tuple(
        CraneSpot(
            id=reader.text(c, "id", f"{lw}.cranes[{i}]"),
            zone=reader.text(c, "zone", f"{lw}.cranes[{i}]"),
            at=reader.pair(c, "at", f"{lw}.cranes[{i}]", low=-0.5, high=1.5),
            boom=reader.number(c, "boom", f"{lw}.cranes[{i}]", low=5, high=120),
            angle=reader.number(c, "angle", f"{lw}.cranes[{i}]", default=0.0),
            height=reader.number(c, "height", f"{lw}.cranes[{i}]", default=35.0, low=5, high=150),
        )
        for i, c in enumerate(reader.items(layout_raw, "cranes", lw))
    )
    scatter = tuple(
        Scatter(
            zone=reader.text(s, "zone", f"{lw}.scatter[{i}]"),
            count=int(reader.number(s, "count", f"{lw}.scatter[{i}]", low=0, high=200)),
            size=reader.pair(s, "size", f"{lw}.scatter[{i}]", low=2),
            height=reader.pair(s, "height", f"{lw}.scatter[{i}]", low=1),
        )
        for i, s in enumerate(reader.items(layout_raw, "scatter", lw))
    )
    layout = Layout(
        buildings=buildings,
        structures=structures,
        roads=tuple(
            reader.line(r, f"{lw}.roads[{i}]") for i, r in enumerate(reader.items(layout_raw, "roads", lw))
        ),
        rails=tuple(
            reader.line(r, f"{lw}.rails[{i}]") for i, r in enumerate(reader.items(layout_raw, "rails", lw))
        ),
        lots=tuple(lots),
        pads=tuple(
            reader.placement(p, f"{lw}.pads[{i}]") for i, p in enumerate(reader.items(layout_raw, "pads", lw))
        ),
        cranes=cranes,
        scatter=scatter,
    )
    traffic = tuple(
        _parse_traffic(reader, t, f"{where}.traffic[{i}]")
        for i, t in enumerate(reader.items(raw, "traffic", where))
    )
    events = tuple(
        _parse_event(reader, e, f"{where}.events[{i}]")
        for i, e in enumerate(reader.items(raw, "events", where))
    )
    structure_ids = {s.id for s in structures} | borrowed_structures
    for i, event in enumerate(events):
        unknown = sorted(set(event.remove + event.build) - structure_ids)
        if unknown:
            raise reader.fail(
                f"{where}.events[{i}]",
                f"names unknown structure(s) {unknown}; "
                f"declare them under layout.structures (known: {sorted(structure_ids)})",
            )
    pinned = tuple(
        reader.day({"d": d}, "d", f"{where}.pinned_dates[{i}]")
        for i, d in enumerate(reader.items(raw, "pinned_dates", where))
    )
    return SiteScenario(site_id=site_id, layout=layout, traffic=traffic, events=events, pinned_dates=pinned)


def _object_class(reader: _Reader, raw: dict[str, Any], key: str, where: str) -> str:
    value = reader.text(raw, key, where)
    if value not in MOVABLE_CLASSES:
        raise reader.fail(f"{where}.{key}", f"{value!r} is not one of {', '.join(MOVABLE_CLASSES)}")
    return value


def _parse_traffic(reader: _Reader, raw: object, where: str) -> Traffic:
    item = reader.mapping(raw, where)
    weekdays = item.get("weekdays", [1.0] * 7)
    if (
        not isinstance(weekdays, list)
        or len(weekdays) != 7
        or not all(isinstance(w, int | float) and w >= 0 for w in weekdays)
    ):
        raise reader.fail(f"{where}.weekdays", "expected seven factors >= 0, Monday first")
    return Traffic(
        zone=reader.text(item, "zone", where),
        object_class=_object_class(reader, item, "class", where),
        mean=reader.number(item, "mean", where, low=0, high=500),
        weekdays=tuple(float(w) for w in weekdays),
    )


def _parse_event(reader: _Reader, raw: object, where: str) -> Event:
    item = reader.mapping(raw, where)
    start = reader.day(item, "start", where)
    end = reader.day(item, "end", where)
    if end < start:
        raise reader.fail(f"{where}.end", f"{end} is before start {start}")
    if not isinstance(item.get("alert_expected"), bool):
        raise reader.fail(f"{where}.alert_expected", "say true or false: would an analyst want an alert?")
    phases = []
    for i, phase_raw in enumerate(reader.items(item, "phases", where)):
        pw = f"{where}.phases[{i}]"
        phase = reader.mapping(phase_raw, pw)
        phase_start = reader.day(phase, "start", pw) if "start" in phase else start
        phase_end = reader.day(phase, "end", pw) if "end" in phase else end
        if not (start <= phase_start <= phase_end <= end):
            raise reader.fail(pw, f"{phase_start}..{phase_end} must lie inside the event {start}..{end}")
        objects = []
        for j, obj_raw in enumerate(reader.items(phase, "objects", pw)):
            ow = f"{pw}.objects[{j}]"
            obj = reader.mapping(obj_raw, ow)
            zone = obj.get("zone")
            objects.append(
                ObjectCount(
                    object_class=_object_class(reader, obj, "class", ow),
                    count=int(reader.number(obj, "count", ow, low=0, high=500)),
                    zone=str(zone) if zone is not None else None,
                )
            )
        phases.append(Phase(start=phase_start, end=phase_end, objects=tuple(objects)))

    def ids(key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in reader.items(item, key, where))

    return Event(
        id=reader.text(item, "id", where),
        zone=reader.text(item, "zone", where),
        kind=reader.text(item, "kind", where),
        start=start,
        end=end,
        alert_expected=item["alert_expected"],
        description=str(item.get("description", "")),
        phases=tuple(phases),
        remove=ids("remove"),
        build=ids("build"),
    )
