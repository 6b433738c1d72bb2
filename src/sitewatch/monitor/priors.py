"""Prior weights of a site's hypotheses: the library's, learned from resolutions, raised by the day.

The track record learns by a Dirichlet count update. The library's priors ``π_k`` (normalised over
the site's patterns and "none of these") are a Dirichlet with ``PRIOR_STRENGTH`` pseudo-alerts;
each alert of the site that analysts resolved adds one alert's worth of counts ``n_k``, and the
prior of a new alert is the posterior mean, proportional to ``PRIOR_STRENGTH · π_k + n_k``:

* a *confirmed* alert counts for the activity patterns (not benign, or "none of these"), a
  *benign* one for the benign patterns; a false alarm (nothing happened) counts for none;
* the one alert is split evenly over the hypotheses the analysts who assessed it picked, those
  that agree with the resolution (two analysts who disagree get half each); with no such pick,
  over the alert's own shares of belief among the hypotheses that agree with the resolution.

Then the day's occasions (:meth:`sitewatch.catalog.context.Context.prior_factors`: holidays,
site schedules) multiply the weights of the patterns they raise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sitewatch.core.types import NONE_HYPOTHESIS, Alert, AlertState
from sitewatch.monitor.hypotheses import NONE_PRIOR
from sitewatch.monitor.patterns import Pattern

PRIOR_STRENGTH = 10.0
"""Pseudo-alerts the library's priors are worth: ten resolved alerts weigh as much as the library."""
COUNTED_STATES = (AlertState.CONFIRMED, AlertState.BENIGN)


def resolution_counts(patterns: Sequence[Pattern], alerts: Sequence[Alert],
                      picks: Mapping[str, Sequence[str]] | None = None, *,
                      before: datetime | None = None) -> dict[str, float]:
    """Counts ``n_k`` per hypothesis id from the confirmed and benign ``alerts`` (acquired before
    ``before`` when given); ``picks`` maps an alert id to the hypotheses its analysts picked."""
    benign = {p.id for p in patterns if p.benign}
    activity = {p.id for p in patterns if not p.benign} | {NONE_HYPOTHESIS}
    counts: dict[str, float] = {}
    for alert in alerts:
        if alert.state not in COUNTED_STATES or (before is not None and alert.acquired >= before):
            continue
        agreeing = activity if alert.state is AlertState.CONFIRMED else benign
        chosen = [p for p in (picks or {}).get(alert.id, ()) if p in agreeing]
        if chosen:
            shares = {p: chosen.count(p) / len(chosen) for p in set(chosen)}
        else:
            held = {h.pattern: h.probability for h in alert.hypotheses if h.pattern in agreeing}
            total = sum(held.values())
            if total <= 0:
                continue  # no word on which activity it was: counts nothing
            shares = {p: v / total for p, v in held.items()}
        for pattern, share in shares.items():
            counts[pattern] = counts.get(pattern, 0.0) + share
    return counts


def prior_weights(patterns: Sequence[Pattern], *, counts: Mapping[str, float] | None = None,
                  factors: Mapping[str, float] | None = None) -> dict[str, float]:
    """Prior weight of each of the site's hypotheses (see the module docstring)."""
    base = {p.id: p.prior for p in patterns} | {NONE_HYPOTHESIS: NONE_PRIOR}
    total = sum(base.values())
    weights = {k: PRIOR_STRENGTH * v / total + (counts or {}).get(k, 0.0) for k, v in base.items()}
    for pattern, factor in (factors or {}).items():
        if pattern in weights:
            weights[pattern] *= factor
    return weights
