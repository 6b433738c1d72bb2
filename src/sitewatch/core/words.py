"""Words for what a person reads: human names for machine names, dates and numbers rounded to what
they mean. The dashboard, the CLI tables, the report and the alerts' explanations all go through
these, so a name or a date reads the same everywhere.

- :func:`human_name` turns a machine name (an indicator such as ``changed_objects``, a zone of a
  site such as ``assembly_hall``, a zone kind, an alert state) into the words the catalog or the
  indicator specs give it.
- :func:`when` writes a time in UTC to the minute (``2019-02-22 02:20 UTC``).
- :func:`p_value`, :func:`area` and :func:`count` round to what the number means: p to two
  significant digits, areas to 10 m², counts to whole objects; :func:`amount` picks the rounding
  from an indicator's kind.
"""

from __future__ import annotations

import math
from datetime import datetime

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.indicators import (
    FIXED_INDICATORS,
    IndicatorKind,
    IndicatorSpec,
    indicator_label,
    indicator_spec,
    is_detection_count,
)
from sitewatch.core.timeutil import ensure_utc
from sitewatch.core.types import AlertState, Site, ZoneKind

_KIND_WORDS = {
    ZoneKind.LAUNCH_PAD: "launch pad",
    ZoneKind.ENGINE_TEST_STAND: "engine test stand",
    ZoneKind.ASSEMBLY_HALL: "assembly hall",
    ZoneKind.RAIL_YARD: "rail yard",
    ZoneKind.PARKING: "parking",
    ZoneKind.SUPPORT: "support area",
    ZoneKind.OTHER: "other area",
}
_STATE_WORDS = {state.value: state.value.replace("_", " ") for state in AlertState}
_INDICATORS = frozenset(spec.name for spec in FIXED_INDICATORS)
WHOLE_SITE = "whole site"


def human_name(name: str | None, site: Site | None = None) -> str:
    """The words for machine name ``name``: a zone of ``site`` by its catalog name, an indicator by
    its spec's label, a zone kind or an alert state in plain words; anything else loses its
    underscores. ``None`` as a zone is the whole site."""
    if name is None:
        return WHOLE_SITE
    if site is not None:
        for zone in site.zones:
            if zone.id == name:
                return zone.name
    if name in _INDICATORS or is_detection_count(name):
        return indicator_label(name)
    if name in _KIND_WORDS:
        return _KIND_WORDS[ZoneKind(name)]
    if name in _STATE_WORDS:
        return _STATE_WORDS[name]
    return name.replace("_", " ")


def when(value: datetime) -> str:
    """A time as a person reads it: UTC, to the minute (``2019-02-22 02:20 UTC``)."""
    return f"{ensure_utc(value):%Y-%m-%d %H:%M} UTC"


def p_value(value: float | None) -> str:
    """A p-value to two significant digits (``0.0012``, ``0.2``); ``—`` when there is none."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.2g}"


def area(value_m2: float) -> str:
    """An area in square metres, rounded to 10 m² (finer is below what a chip can tell)."""
    return f"{round(value_m2, -1):,.0f} m²"


def count(value: float) -> str:
    """A count of objects as a whole number."""
    return f"{round(value):,d}"


def amount(spec: IndicatorSpec | str, value: float) -> str:
    """A value of an indicator (its spec or name) rounded to what it means: counts whole, areas to
    10 m², fractions and indices to three significant digits."""
    if isinstance(spec, str):
        try:
            spec = indicator_spec(spec)
        except UnsupportedInputError:
            return f"{value:.3g}"
    if not math.isfinite(value):
        return "—"
    if spec.kind is IndicatorKind.COUNT:
        return count(value)
    if spec.kind is IndicatorKind.AREA:
        return area(value)
    return f"{value:.3g}"
