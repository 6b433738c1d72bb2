"""The sentence an analyst reads with an alert: what, where, how unusual, how sure.

It names the zone and indicator, the value against the site's usual value, the
p-value and what it means at the chosen false-alarm rate, the other zones and
indicators that moved, whether the history was long enough for the distribution-free
guarantee (warm-up), and the site's track record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sitewatch.core.indicators import IndicatorKind, IndicatorSpec
from sitewatch.core.types import NONE_HYPOTHESIS, Hypothesis
from sitewatch.monitor.lifecycle import TrackRecord

SHOWN_HYPOTHESES = 3
"""Hypotheses named in an alert's sentence (and "none of these" when it is not among them)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One zone × indicator behind an alert."""

    zone_name: str
    spec: IndicatorSpec
    value: float
    baseline: float
    p_value: float


def format_value(spec: IndicatorSpec, value: float) -> str:
    """A value in the indicator's unit, rounded for reading."""
    if spec.kind is IndicatorKind.COUNT:
        return f"{value:.0f}"
    if spec.kind is IndicatorKind.AREA:
        return f"{value:,.0f} {spec.unit}".strip()
    return f"{value:.3g}"


def format_p(p_value: float) -> str:
    return f"{p_value:.1e}" if p_value < 0.001 else f"{p_value:.3f}"


def _phrase(item: Evidence) -> str:
    return (f"{item.spec.label} in {item.zone_name} {format_value(item.spec, item.value)} "
            f"(usually {format_value(item.spec, item.baseline)})")


def describe_hypotheses(hypotheses: Sequence[Hypothesis]) -> str:
    """E.g. "Hypotheses: likely production surge (LR ≈ 12); unlikely holiday gathering (LR ≈ 0.2)."."""
    if not hypotheses:
        return ""
    shown = list(hypotheses[:SHOWN_HYPOTHESES])
    shown += [h for h in hypotheses[SHOWN_HYPOTHESES:] if h.pattern == NONE_HYPOTHESIS]
    return "Hypotheses: " + "; ".join(h.describe() for h in shown) + "."


def explain_alert(
    *,
    site_name: str,
    primary: Evidence,
    others: Sequence[Evidence],
    site_p: float,
    false_alarm_rate: float,
    n_history: int,
    extrapolated: bool,
    record: TrackRecord,
    hypotheses: Sequence[Hypothesis] = (),
    occasions: Sequence[str] = (),
) -> str:
    """The analyst sentence of an instant (unusual observation) alert, with its ranked hypotheses
    and what the calendar and the site's schedules say of the day (``occasions``)."""
    text = f"Unusual activity at {site_name}: {_phrase(primary)}"
    if others:
        text += "; also " + "; ".join(_phrase(o) for o in others[:3])
        if len(others) > 3:
            text += f"; and {len(others) - 3} more"
    text += (f". Combined p = {format_p(site_p)} against {n_history} earlier observations "
             f"(alerting at a false-alarm rate of {false_alarm_rate:g} per observation).")
    if extrapolated:
        text += (f" Warm-up: with under {round(1 / false_alarm_rate) - 1} earlier observations the p-value "
                 "relies on an exponential tail beyond the largest past score, not on ranks alone.")
    if occasions:
        text += f" The day is {'; '.join(occasions)}, which raised the prior of the hypotheses it names."
    if hypotheses:
        text += " " + describe_hypotheses(hypotheses)
    return f"{text} {record.describe()}"


def explain_slow_build(
    *,
    site_name: str,
    primary: Evidence,
    observations: int,
    statistic: float,
    record: TrackRecord,
) -> str:
    """The analyst sentence of a slow-build (CUSUM) alert."""
    return (
        f"Slow build at {site_name}: {primary.spec.label} in {primary.zone_name} has run above its usual "
        f"level across recent observations, now {format_value(primary.spec, primary.value)} "
        f"(usually {format_value(primary.spec, primary.baseline)}); cumulative evidence {statistic:.1f} "
        f"crossed the slow-build threshold after {observations} observations of history. "
        f"{record.describe()}"
    )
