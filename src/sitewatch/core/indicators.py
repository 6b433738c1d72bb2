"""The indicators a zone is measured by: their names, kinds and how the monitor reads them.

One place for every layer: the analytics produce values under these names, the monitor scores
them by their specs, evaluation simulates them and the reports label them. Use the specs'
``name`` (``CHANGED_AREA.name``) or :func:`count_indicator`, never a string literal.

Each name maps to an :class:`IndicatorSpec` saying which direction is "more activity" and the
smallest meaningful difference, which the baselines need. Counts of detected objects are one
indicator per class, ``count_<class>``, known by their prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sitewatch.core.errors import UnsupportedInputError


class IndicatorKind(StrEnum):
    """What an indicator measures; decides how its baseline spread is floored."""

    COUNT = "count"
    AREA = "area"
    FRACTION = "fraction"
    INDEX = "index"


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """How the monitor reads one indicator."""

    name: str
    kind: IndicatorKind
    direction: int
    """+1 when larger values mean more activity, -1 when smaller do, 0 for either way."""
    floor: float
    """Smallest spread worth alerting on, in the indicator's unit (keeps a zero-variance
    history from turning any tiny wobble into an alert)."""
    unit: str
    label: str
    """Words for the analyst sentence, e.g. "changed area"."""
    sequential: bool = True
    """Whether the slow-build (CUSUM) test watches it; not for pixel areas, which drift with the
    season by construction (shadows lengthen all autumn, so changed and darkened areas creep
    up), while counts of objects do not."""


CHANGED_AREA = IndicatorSpec("changed_area_m2", IndicatorKind.AREA, +1, 50.0, "m²", "changed area",
                             sequential=False)
BRIGHTENED_AREA = IndicatorSpec("brightened_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                                "area that changed and brightened (new surfaces)", sequential=False)
DARKENED_AREA = IndicatorSpec("darkened_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                              "area that changed and darkened (removed or shadowed surfaces)",
                              sequential=False)
NEW_STRUCTURE_AREA = IndicatorSpec("new_structure_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                                   "new structure area")
REMOVED_STRUCTURE_AREA = IndicatorSpec("removed_structure_area_m2", IndicatorKind.AREA, +1, 50.0, "m²",
                                       "removed structure area")
CHANGED_OBJECTS = IndicatorSpec("changed_objects", IndicatorKind.COUNT, +1, 2.0, "",
                                "vehicle-sized patches of change (objects that came or went)")
NDVI_MEAN = IndicatorSpec("ndvi_mean", IndicatorKind.INDEX, -1, 0.03, "", "mean vegetation index (NDVI)")

FIXED_INDICATORS: tuple[IndicatorSpec, ...] = (
    CHANGED_AREA, BRIGHTENED_AREA, DARKENED_AREA, NEW_STRUCTURE_AREA, REMOVED_STRUCTURE_AREA,
    CHANGED_OBJECTS, NDVI_MEAN,
)
"""Every indicator with a fixed name; detection counts (``count_<class>``) come on top."""

PIXEL_CHANGE_INDICATORS = frozenset(spec.name for spec in (CHANGED_AREA, BRIGHTENED_AREA, DARKENED_AREA,
                                                            CHANGED_OBJECTS))
"""Indicators read off the same changed pixels of a zone: they count once in the combined score."""

_FIXED_SPECS = {spec.name: spec for spec in FIXED_INDICATORS}
_COUNT_PREFIX = "count_"


def count_indicator(class_name: str) -> str:
    """Indicator name of the number of ``class_name`` detections in a zone."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", class_name.strip().lower()).strip("_")
    if not cleaned:
        raise UnsupportedInputError(
            f"detection class {class_name!r} has no letters or digits to name a count"
        )
    return _COUNT_PREFIX + cleaned


def is_detection_count(name: str) -> bool:
    """Whether indicator ``name`` counts one class of detected objects (``count_<class>``), as
    against counts read off changed pixels (``changed_objects``)."""
    return name.startswith(_COUNT_PREFIX) and len(name) > len(_COUNT_PREFIX)


def indicator_spec(name: str) -> IndicatorSpec:
    """The spec of indicator ``name``; counts of any detection class are known by prefix."""
    if name in _FIXED_SPECS:
        return _FIXED_SPECS[name]
    if is_detection_count(name):
        class_label = name[len(_COUNT_PREFIX):].replace("_", " ")
        return IndicatorSpec(name, IndicatorKind.COUNT, +1, 1.0, "", f"{class_label} count")
    known = ", ".join(sorted(_FIXED_SPECS))
    raise UnsupportedInputError(
        f"unknown indicator {name!r}; known: {known}, or count_<class> for detection counts"
    )


def indicator_label(name: str) -> str:
    """Words for an indicator, as a person reads it ("changed area"); unknown names lose their
    underscores."""
    try:
        return indicator_spec(name).label
    except UnsupportedInputError:
        return name.replace("_", " ")
