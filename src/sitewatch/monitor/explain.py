"""The sentence an analyst reads with an alert: what, where, how unusual, how sure.

It names the zone and indicator, the value against the site's usual value, the
p-value and what it means at the chosen false-alarm rate, the other zones and
indicators that moved, whether the history was long enough for the distribution-free
guarantee (warm-up), and the site's track record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sitewatch.core import words
from sitewatch.core.indicators import IndicatorSpec
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


def _phrase(item: Evidence) -> str:
    return (f"{item.spec.label} in {item.zone_name} {words.amount(item.spec, item.value)} "
            f"(usually {words.amount(item.spec, item.baseline)})")


def none_fits(hypotheses: Sequence[Hypothesis]) -> bool:
    """Whether no hypothesis fits the readings better than the site's routine (every LR ≤ 1): the
    ranking then rests on priors alone, and the alert is unusual in what no pattern speaks of."""
    return bool(hypotheses) and max(h.likelihood_ratio for h in hypotheses) <= 1.0


def lead_phrase(hypotheses: Sequence[Hypothesis]) -> str | None:
    """The leading hypothesis in words, or that none fits better than routine; None without any."""
    if not hypotheses:
        return None
    if none_fits(hypotheses):
        return "no activity pattern fits better than the site's routine"
    return hypotheses[0].describe()


def describe_hypotheses(hypotheses: Sequence[Hypothesis]) -> str:
    """E.g. "Hypotheses: likely production surge (LR ≈ 12); unlikely holiday gathering (LR ≈ 0.2)."."""
    if not hypotheses:
        return ""
    shown = list(hypotheses[:SHOWN_HYPOTHESES])
    shown += [h for h in hypotheses[SHOWN_HYPOTHESES:] if h.pattern == NONE_HYPOTHESIS]
    heading = ("Hypotheses (none fits the readings better than the site's routine, so their order is their "
               "priors'): " if none_fits(hypotheses) else "Hypotheses: ")
    return heading + "; ".join(h.describe() for h in shown) + "."


def explain_alert(
    *,
    site_name: str,
    primary: Evidence,
    others: Sequence[Evidence],
    site_p: float,
    false_alarm_rate: float,
    n_history: int,
    extrapolated: bool,
    conformal_history: int,
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
    text += (f". Combined p = {words.p_value(site_p)} against {n_history} earlier observations "
             f"(alerting at a false-alarm rate of {false_alarm_rate:g} per observation).")
    if extrapolated:
        text += (f" Early days: the site has fewer than {conformal_history} earlier "
                 "observations, too few to rank this one among them, so its p is estimated from how "
                 "quickly the largest past values thin out, and is less certain than it will be later.")
    if occasions:
        text += f" The day is {'; '.join(occasions)}, which raised the prior of the hypotheses it names."
    if hypotheses:
        text += " " + describe_hypotheses(hypotheses)
    return f"{text} {record.describe()}"


def slow_build_p_note(p_value: float, false_alarm_rate: float) -> str:
    """Why a slow-build alert may carry a p far above the false-alarm rate: the one sentence the
    alert's explanation, the dashboard and the report all give."""
    return (f"Its p = {words.p_value(p_value)} is the last observation's alone and may be well above "
            f"α = {false_alarm_rate:g}: a slow-build alert comes from the run of observations above the "
            "usual level added up (a CUSUM), not from any single one.")


def explain_slow_build(
    *,
    site_name: str,
    primary: Evidence,
    observations: int,
    statistic: float,
    record: TrackRecord,
    false_alarm_rate: float,
) -> str:
    """The analyst sentence of a slow-build (CUSUM) alert."""
    return (
        f"Slow build at {site_name}: {primary.spec.label} in {primary.zone_name} has run above its usual "
        f"level across recent observations, now {words.amount(primary.spec, primary.value)} "
        f"(usually {words.amount(primary.spec, primary.baseline)}); cumulative evidence {statistic:.1f} "
        f"crossed the slow-build threshold after {observations} observations of history. "
        f"{slow_build_p_note(primary.p_value, false_alarm_rate)} {record.describe()}"
    )
