"""Context as data: public holidays per country and known schedules per site.

What is known in advance about a day at a site changes what an analyst expects to see: cars
massing on Party Foundation Day are likelier a holiday than on a Tuesday. The built-in file is
``data/context.yaml`` (format documented there and in docs/hypotheses.md); a workspace keeps its
own copy (``context.yaml``, written by ``sitewatch init``), which :func:`load_context` reads and
checks as a whole, reporting every problem at once like the site catalog.

An entry ``raises`` patterns: it multiplies their prior odds on its days
(:meth:`Context.prior_factors`); the hypotheses use that (:mod:`sitewatch.monitor.hypotheses`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path

from sitewatch.catalog.files import read_yaml_document
from sitewatch.core.errors import ContextError
from sitewatch.core.types import Site

BUILT_IN = "context.yaml"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CALENDAR_KEYS = {"name", "aliases", "utc_offset", "sources", "raises", "holidays"}
_HOLIDAY_KEYS = {"date", "name", "raises"}
_SCHEDULE_KEYS = {"name", "weekdays", "dates", "raises", "source"}


@dataclass(frozen=True, slots=True)
class DayRule:
    """Days of a year: a fixed month-day every year, or one date."""

    month: int
    day: int
    year: int | None = None

    def matches(self, when: date) -> bool:
        return (when.month, when.day) == (self.month, self.day) and self.year in (None, when.year)


@dataclass(frozen=True, slots=True)
class Occasion:
    """Something known in advance about a day: a holiday or a scheduled event."""

    name: str
    source: str
    """Where it is written: ``calendar KP`` or ``schedule of sanumdong``."""
    raises: tuple[tuple[str, float], ...]
    """(pattern id, prior factor) pairs."""


@dataclass(frozen=True, slots=True)
class Holiday:
    name: str
    rule: DayRule
    raises: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Calendar:
    """Public holidays and recurring events of one country."""

    country: str
    name: str
    aliases: tuple[str, ...]
    utc_offset: float
    sources: tuple[str, ...]
    holidays: tuple[Holiday, ...]

    def local_date(self, when: datetime) -> date:
        return (when + timedelta(hours=self.utc_offset)).date()


@dataclass(frozen=True, slots=True)
class Schedule:
    """A known recurring event at one site."""

    site_id: str
    name: str
    weekdays: tuple[int, ...]
    """0 = Monday .. 6 = Sunday."""
    dates: tuple[DayRule, ...]
    raises: tuple[tuple[str, float], ...]
    source: str = ""

    def matches(self, when: date) -> bool:
        return when.weekday() in self.weekdays or any(rule.matches(when) for rule in self.dates)


@dataclass(frozen=True, slots=True)
class Context:
    """The calendars and site schedules of a workspace, with where they came from."""

    calendars: tuple[Calendar, ...]
    schedules: tuple[Schedule, ...]
    source: str

    def calendar(self, country: str) -> Calendar | None:
        """The calendar of ``country`` (its code or an alias, any case), or None."""
        wanted = country.strip().casefold()
        for calendar in self.calendars:
            if wanted in {calendar.country.casefold(), *(a.casefold() for a in calendar.aliases)}:
                return calendar
        return None

    def occasions(self, site: Site, when: datetime) -> tuple[Occasion, ...]:
        """What is known in advance about ``site`` on the (local) day of ``when``."""
        calendar = self.calendar(site.country)
        day = calendar.local_date(when) if calendar is not None else when.date()
        found: list[Occasion] = []
        if calendar is not None:
            found += [Occasion(h.name, f"calendar {calendar.country}", h.raises)
                      for h in calendar.holidays if h.rule.matches(day)]
        found += [Occasion(s.name, f"schedule of {s.site_id}", s.raises)
                  for s in self.schedules if s.site_id == site.id and s.matches(day)]
        return tuple(found)

    def prior_factors(self, site: Site, when: datetime) -> dict[str, float]:
        """Pattern id → product of the prior factors of that day's occasions at ``site``."""
        factors: dict[str, float] = {}
        for occasion in self.occasions(site, when):
            for pattern, factor in occasion.raises:
                factors[pattern] = factors.get(pattern, 1.0) * factor
        return factors

    def problems_with(self, *, pattern_ids: Sequence[str], site_ids: Sequence[str]) -> list[str]:
        """Every reference to a pattern or site that the workspace does not have."""
        problems = []
        known_patterns, known_sites = set(pattern_ids), set(site_ids)
        raised = [(f"calendars.{c.country}.holidays ({h.name})", p) for c in self.calendars
                  for h in c.holidays for p, _ in h.raises]
        raised += [(f"schedules.{s.site_id} ({s.name})", p) for s in self.schedules for p, _ in s.raises]
        for where, pattern in raised:
            if pattern not in known_patterns:
                problems.append(f"{where}: raises {pattern!r}, which is not an activity pattern; "
                                f"use one of: {', '.join(sorted(known_patterns))}")
        for site_id in sorted({s.site_id for s in self.schedules} - known_sites):
            problems.append(f"schedules.{site_id}: no such site in the catalog; "
                            f"use a site id ({', '.join(sorted(known_sites)) or 'none yet'})")
        return problems


def builtin_context_text() -> str:
    return resources.files("sitewatch.catalog").joinpath("data", BUILT_IN).read_text(encoding="utf-8")


def write_builtin_context(root: Path) -> bool:
    """Copy the built-in file into the workspace at ``root`` as ``context.yaml`` for analysts to edit;
    False when it has one already (never overwrite their edits)."""
    path = Path(root) / BUILT_IN
    if path.exists():
        return False
    path.write_text(builtin_context_text(), encoding="utf-8")
    return True


def load_context(path: Path | str | None = None) -> Context:
    """The calendars and schedules in ``path``, or the built-in ones; :class:`ContextError` lists
    every problem."""
    document, source = read_yaml_document(path, builtin=(builtin_context_text, BUILT_IN),
                                          error=ContextError)
    return parse_context(document, source)


def parse_context(document: object, source: str) -> Context:
    """A :class:`Context` from a parsed YAML document; :class:`ContextError` lists every problem."""
    problems: list[str] = []
    if not isinstance(document, Mapping):
        raise ContextError(source, ["(top): must be a mapping with 'calendars' and 'schedules'"])
    for unknown in sorted(set(map(str, document)) - {"calendars", "schedules"}):
        problems.append(f"{unknown}: is not a section; use calendars or schedules")
    calendars: list[Calendar] = []
    raw_calendars = document.get("calendars") or {}
    if not isinstance(raw_calendars, Mapping):
        problems.append("calendars: must map country codes to calendars")
    else:
        for country, body in raw_calendars.items():
            calendar = _calendar(str(country), body, problems)
            if calendar is not None:
                calendars.append(calendar)
    schedules: list[Schedule] = []
    raw_schedules = document.get("schedules") or {}
    if not isinstance(raw_schedules, Mapping):
        problems.append("schedules: must map site ids to lists of schedules")
    else:
        for site_id, entries in raw_schedules.items():
            if not isinstance(entries, list):
                problems.append(f"schedules.{site_id}: must be a list of {{name, weekdays or dates, raises}}")
                continue
            for index, entry in enumerate(entries):
                schedule = _schedule(str(site_id), f"schedules.{site_id}[{index}]", entry, problems)
                if schedule is not None:
                    schedules.append(schedule)
    if problems:
        raise ContextError(source, problems)
    return Context(tuple(calendars), tuple(schedules), source)


def _unknown_keys(path: str, body: Mapping[object, object], allowed: set[str], problems: list[str]) -> None:
    for unknown in sorted(set(map(str, body)) - allowed):
        problems.append(f"{path}.{unknown}: is not a field; use: {', '.join(sorted(allowed))}")


def _text(path: str, value: object, problems: list[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{path}: must be non-empty text")
        return ""
    return value.strip()


def _raises(path: str, raw: object, problems: list[str]) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append(f"{path}: must map pattern ids to prior factors, e.g. {{holiday: 10}}")
        return ()
    pairs = []
    for pattern, factor in raw.items():
        if (isinstance(factor, bool) or not isinstance(factor, int | float)
                or not (math.isfinite(factor) and factor > 0)):
            problems.append(f"{path}.{pattern}: {factor!r} must be a positive number (1 changes nothing)")
            continue
        pairs.append((str(pattern), float(factor)))
    return tuple(pairs)


def _day_rule(path: str, raw: object, problems: list[str]) -> DayRule | None:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return DayRule(raw.month, raw.day, raw.year)
    text = str(raw).strip()
    parts = text.split("-")
    try:
        if len(parts) == 2:
            when = date(2000, int(parts[0]), int(parts[1]))  # a leap year, so 02-29 is allowed
            return DayRule(when.month, when.day)
        if len(parts) == 3:
            when = date(int(parts[0]), int(parts[1]), int(parts[2]))
            return DayRule(when.month, when.day, when.year)
    except ValueError:
        pass
    problems.append(f"{path}: {raw!r} is not a date; write MM-DD (every year) or YYYY-MM-DD (one day), "
                    "quoted")
    return None


def _calendar(country: str, body: object, problems: list[str]) -> Calendar | None:
    path = f"calendars.{country}"
    if not isinstance(body, Mapping):
        problems.append(f"{path}: must be a mapping with name, utc_offset, sources, raises and holidays")
        return None
    before = len(problems)
    _unknown_keys(path, body, _CALENDAR_KEYS, problems)
    name = _text(f"{path}.name", body.get("name"), problems)
    aliases = body.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        problems.append(f"{path}.aliases: must be a list of names")
        aliases = []
    offset = body.get("utc_offset")
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not -12 <= offset <= 14:
        problems.append(f"{path}.utc_offset: {offset!r} must be hours east of UTC, from -12 to 14")
        offset = 0
    sources = body.get("sources")
    if (not isinstance(sources, list) or not sources
            or not all(isinstance(s, str) and s.strip() for s in sources)):
        problems.append(f"{path}.sources: must list at least one source of the dates")
        sources = []
    default = _raises(f"{path}.raises", body.get("raises"), problems)
    holidays: list[Holiday] = []
    raw_holidays = body.get("holidays")
    if not isinstance(raw_holidays, list) or not raw_holidays:
        problems.append(f"{path}.holidays: must be a non-empty list of {{date, name}}")
        raw_holidays = []
    for index, entry in enumerate(raw_holidays):
        where = f"{path}.holidays[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be a mapping like {{date: '10-10', name: Party Foundation Day}}")
            continue
        _unknown_keys(where, entry, _HOLIDAY_KEYS, problems)
        rule = _day_rule(f"{where}.date", entry.get("date"), problems)
        label = _text(f"{where}.name", entry.get("name"), problems)
        raises = _raises(f"{where}.raises", entry["raises"], problems) if "raises" in entry else default
        if rule is not None and label:
            holidays.append(Holiday(label, rule, raises))
    if len(problems) > before:
        return None
    return Calendar(country, name, tuple(a.strip() for a in aliases), float(offset), tuple(sources),
                    tuple(holidays))


def _schedule(site_id: str, path: str, entry: object, problems: list[str]) -> Schedule | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{path}: must be a mapping like {{name: market day, weekdays: [sun], "
                        "raises: {routine_gathering: 5}}")
        return None
    before = len(problems)
    _unknown_keys(path, entry, _SCHEDULE_KEYS, problems)
    name = _text(f"{path}.name", entry.get("name"), problems)
    weekdays: list[int] = []
    raw_weekdays = entry.get("weekdays", [])
    if not isinstance(raw_weekdays, list):
        problems.append(f"{path}.weekdays: must be a list of {', '.join(WEEKDAYS)}")
        raw_weekdays = []
    for day in raw_weekdays:
        if str(day).lower() not in WEEKDAYS:
            problems.append(f"{path}.weekdays: {day!r} is not a weekday; use one of {', '.join(WEEKDAYS)}")
        else:
            weekdays.append(WEEKDAYS.index(str(day).lower()))
    raw_dates = entry.get("dates", [])
    if not isinstance(raw_dates, list):
        problems.append(f"{path}.dates: must be a list of MM-DD or YYYY-MM-DD")
        raw_dates = []
    rules = [_day_rule(f"{path}.dates[{i}]", d, problems) for i, d in enumerate(raw_dates)]
    if not raw_weekdays and not raw_dates:
        problems.append(f"{path}: names no day; give weekdays or dates")
    raises = _raises(f"{path}.raises", entry.get("raises"), problems)
    source = entry.get("source", "")
    if not isinstance(source, str):
        problems.append(f"{path}.source: must be text")
    if len(problems) > before:
        return None
    return Schedule(site_id, name, tuple(weekdays), tuple(r for r in rules if r is not None), raises,
                    str(source))
