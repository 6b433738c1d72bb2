"""Activity patterns as data: the activities an analyst tells apart, as expected signatures.

A pattern says, per zone kind and indicator, how the indicator moves when the activity happens
(rises, falls, may rise, may fall, by how much); everything it does not name stays as the site's
routine. The built-in library is ``patterns.yaml`` beside this module (documented there and in
docs/hypotheses.md); :func:`load_patterns` reads it or an analyst's own file and reports every
problem at once, like the site catalog. :mod:`sitewatch.monitor.hypotheses` scores them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from sitewatch.catalog.files import read_yaml_document
from sitewatch.core.errors import PatternError, UnsupportedInputError
from sitewatch.core.indicators import indicator_spec
from sitewatch.core.types import Site, Zone, ZoneKind

FOCUS = "focus"
"""The word a term's ``zones`` use for the one zone where a focused pattern centres."""
ANY_CATEGORY = "*"
BUILT_IN = "patterns.yaml"
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_PATTERN_KEYS = {"label", "description", "benign", "categories", "sites", "prior", "focus", "signature"}
WORKSPACE_FILE = "patterns.yaml"
"""A workspace's own patterns: each replaces the library's of the same id, or adds one."""


class Change(StrEnum):
    """How an indicator moves under a pattern."""

    RISE = "rise"
    FALL = "fall"
    MAY_RISE = "may_rise"
    MAY_FALL = "may_fall"

    @property
    def sign(self) -> int:
        return +1 if self in (Change.RISE, Change.MAY_RISE) else -1

    @property
    def optional(self) -> bool:
        """Whether the indicator may also stay as usual (even odds)."""
        return self in (Change.MAY_RISE, Change.MAY_FALL)


@dataclass(frozen=True, slots=True)
class Effect:
    """One indicator's expected move under a pattern."""

    indicator: str
    change: Change
    smallest: float
    """Smallest size of the move, in the indicator's unit (objects, m², ...)."""
    largest: float
    """Largest size; sizes between are equally likely on a log scale."""


@dataclass(frozen=True, slots=True)
class Term:
    """Effects on every zone of some kinds (or on the focus zone)."""

    zones: tuple[str, ...]
    """Zone kinds (:class:`~sitewatch.core.types.ZoneKind` values) or ``focus``."""
    effects: tuple[Effect, ...]


@dataclass(frozen=True, slots=True)
class Pattern:
    """An activity an analyst tells apart, as an expected signature over zones and indicators."""

    id: str
    label: str
    description: str
    benign: bool
    categories: tuple[str, ...]
    """Site categories it applies to; ``*`` for every site."""
    signature: tuple[Term, ...]
    prior: float = 1.0
    focus: tuple[str, ...] = ()
    """Zone kinds where the activity centres in one zone; empty when it has no single centre."""
    sites: tuple[str, ...] = ()
    """Site ids it is limited to (an analyst's pattern for one site); empty: every site of its categories."""

    def applies_to(self, site: Site) -> bool:
        """Whether the pattern is one of ``site``'s hypotheses: its category (and site, when it names
        sites), and a focus zone if needed."""
        if ANY_CATEGORY not in self.categories and site.category not in self.categories:
            return False
        if self.sites and site.id not in self.sites:
            return False
        return not self.focus or bool(self.focus_zones(site))

    def focus_zones(self, site: Site) -> tuple[Zone, ...]:
        return tuple(z for z in site.zones if z.kind.value in self.focus)

    def effects(self, zone: Zone, *, focus: Zone | None) -> dict[str, Effect]:
        """The effects the pattern expects in ``zone`` when it centres on ``focus``, by indicator."""
        chosen: dict[str, Effect] = {}
        for term in self.signature:
            if zone.kind.value in term.zones:
                chosen.update({e.indicator: e for e in term.effects})
        if focus is not None and zone.id == focus.id:
            for term in self.signature:
                if FOCUS in term.zones:
                    chosen.update({e.indicator: e for e in term.effects})
        return chosen


@dataclass(frozen=True, slots=True)
class PatternLibrary:
    """The activity patterns of a workspace (or the built-in ones), with where they came from."""

    patterns: tuple[Pattern, ...]
    source: str

    def for_site(self, site: Site) -> tuple[Pattern, ...]:
        """The patterns that are hypotheses at ``site``."""
        return tuple(p for p in self.patterns if p.applies_to(site))

    def overridden_by(self, other: PatternLibrary) -> PatternLibrary:
        """This library with ``other``'s patterns replacing those of the same id and added after."""
        theirs = {p.id: p for p in other.patterns}
        merged = [theirs.pop(p.id, p) for p in self.patterns]
        return PatternLibrary((*merged, *theirs.values()), f"{self.source} + {other.source}")

    def get(self, pattern_id: str) -> Pattern:
        for pattern in self.patterns:
            if pattern.id == pattern_id:
                return pattern
        known = ", ".join(p.id for p in self.patterns)
        raise UnsupportedInputError(f"no activity pattern {pattern_id!r} in {self.source}; known: {known}")


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def validate_patterns(document: object) -> list[str]:
    """Every problem of a pattern document; empty when it is valid."""
    problems = _Problems()
    _parse(document, problems)
    return problems.items


def parse_patterns(document: object, source: str) -> PatternLibrary:
    """A :class:`PatternLibrary` from a parsed YAML document; :class:`PatternError` lists every problem."""
    problems = _Problems()
    patterns = _parse(document, problems)
    if problems.items:
        raise PatternError(source, problems.items)
    return PatternLibrary(patterns, source)


def load_patterns(path: Path | str | None = None) -> PatternLibrary:
    """The pattern library in ``path``, or the built-in one."""
    def builtin() -> str:
        return resources.files("sitewatch.monitor").joinpath(BUILT_IN).read_text(encoding="utf-8")

    document, source = read_yaml_document(path, builtin=(builtin, BUILT_IN), error=PatternError)
    return parse_patterns(document, source)


def _parse(document: object, problems: _Problems) -> tuple[Pattern, ...]:
    if not isinstance(document, Mapping) or not document:
        problems.add("(top)", "must map pattern ids to patterns, e.g. 'production_surge: {label: ...}'")
        return ()
    patterns = []
    for key, body in document.items():
        path = str(key)
        if not isinstance(key, str) or not _ID_PATTERN.match(key) or key == "none":
            problems.add(path, "is not a pattern id; use lower-case letters, digits, '_' or '-' "
                               "('none' is kept for \"none of these\")")
            continue
        pattern = _parse_pattern(key, body, problems)
        if pattern is not None:
            patterns.append(pattern)
    return tuple(patterns)


def _parse_pattern(key: str, body: object, problems: _Problems) -> Pattern | None:
    if not isinstance(body, Mapping):
        problems.add(key, "must be a mapping with label, description, benign, categories and signature")
        return None
    before = len(problems.items)
    for unknown in sorted(set(map(str, body)) - _PATTERN_KEYS):
        problems.add(f"{key}.{unknown}", f"is not a pattern field; use: {', '.join(sorted(_PATTERN_KEYS))}")
    texts = {}
    for name in ("label", "description"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.add(f"{key}.{name}", "must be non-empty text")
        texts[name] = str(value).strip()
    benign = body.get("benign")
    if not isinstance(benign, bool):
        problems.add(f"{key}.benign", f"{benign!r} must be true or false")
    categories = body.get("categories")
    if not isinstance(categories, list) or not categories or not all(
            isinstance(c, str) and c.strip() for c in categories):
        problems.add(f"{key}.categories", "must be a non-empty list of site categories, or [\"*\"] for all")
        categories = []
    prior = body.get("prior", 1.0)
    if (isinstance(prior, bool) or not isinstance(prior, int | float)
            or not (math.isfinite(prior) and prior > 0)):
        problems.add(f"{key}.prior", f"{prior!r} must be a positive number")
    focus = _zone_kinds(f"{key}.focus", body.get("focus", []), problems, allow_focus=False)
    sites = body.get("sites", [])
    if not isinstance(sites, list) or not all(isinstance(s, str) and s.strip() for s in sites):
        problems.add(f"{key}.sites", "must be a list of site ids (leave it out for every site)")
        sites = []
    signature = body.get("signature")
    terms: list[tuple[int, Term]] = []
    if not isinstance(signature, list) or not signature:
        problems.add(f"{key}.signature", "must be a non-empty list of terms ({zones: [...], rise: {...}})")
    else:
        for index, raw in enumerate(signature):
            term = _parse_term(f"{key}.signature[{index}]", raw, problems, focused=bool(focus))
            if term is not None:
                terms.append((index, term))
        _check_overlaps(key, terms, problems)
        if focus and not any(FOCUS in t.zones for _, t in terms):
            problems.add(f"{key}.signature",
                         "has a focus but no term on zones [focus]; add one or drop focus")
    if len(problems.items) > before:
        return None
    return Pattern(key, texts["label"], texts["description"], bool(benign), tuple(categories),
                   tuple(t for _, t in terms), float(prior), focus, tuple(sites))


def _zone_kinds(path: str, raw: object, problems: _Problems, *, allow_focus: bool) -> tuple[str, ...]:
    known = {k.value for k in ZoneKind} | ({FOCUS} if allow_focus else set())
    if not isinstance(raw, list) or not all(isinstance(z, str) for z in raw):
        problems.add(path, f"must be a list of zone kinds ({', '.join(sorted(known))})")
        return ()
    for zone in raw:
        if zone not in known:
            problems.add(path, f"{zone!r} is not a zone kind; use one of: {', '.join(sorted(known))}")
    return tuple(raw)


def _parse_term(path: str, raw: object, problems: _Problems, *, focused: bool) -> Term | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "must be a mapping like {zones: [parking], rise: {count_car: [8, 120]}}")
        return None
    before = len(problems.items)
    allowed = {"zones"} | {c.value for c in Change}
    for unknown in sorted(set(map(str, raw)) - allowed):
        problems.add(f"{path}.{unknown}", f"is not a term field; use: {', '.join(sorted(allowed))}")
    zones = _zone_kinds(f"{path}.zones", raw.get("zones"), problems, allow_focus=True)
    if not zones and isinstance(raw.get("zones"), list):
        problems.add(f"{path}.zones", "is empty; name at least one zone kind")
    if FOCUS in zones and not focused:
        problems.add(f"{path}.zones", "names focus but the pattern has no focus zone kinds")
    effects: list[Effect] = []
    for change in Change:
        entries = raw.get(change.value, {})
        if not isinstance(entries, Mapping):
            problems.add(f"{path}.{change.value}", "must map indicators to [smallest, largest] sizes")
            continue
        for indicator, size in entries.items():
            where = f"{path}.{change.value}.{indicator}"
            try:
                indicator_spec(str(indicator))
            except UnsupportedInputError as error:
                problems.add(where, str(error))
                continue
            if any(e.indicator == indicator for e in effects):
                problems.add(where, "is named under two changes in one term; keep one")
                continue
            if (not isinstance(size, list) or len(size) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in size)
                    or not (0 < size[0] <= size[1] < math.inf)):
                problems.add(where, f"{size!r} must be [smallest, largest] with 0 < smallest <= largest")
                continue
            effects.append(Effect(str(indicator), change, float(size[0]), float(size[1])))
    if not effects and len(problems.items) == before:
        problems.add(path, "names no indicator; give rise, fall, may_rise or may_fall")
    if len(problems.items) > before:
        return None
    return Term(zones, tuple(effects))


def _check_overlaps(key: str, terms: list[tuple[int, Term]], problems: _Problems) -> None:
    """Two terms may not both say how one indicator of one zone kind moves."""
    seen: dict[tuple[str, str], int] = {}
    for index, term in terms:
        for zone in term.zones:
            for effect in term.effects:
                first = seen.setdefault((zone, effect.indicator), index)
                if first != index:
                    problems.add(f"{key}.signature[{index}]",
                                 f"{effect.indicator} in {zone} zones is already set by term {first}; "
                                 "merge the two")
