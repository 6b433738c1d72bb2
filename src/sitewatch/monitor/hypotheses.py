"""Competing hypotheses on an alert: how likely the observation is under each activity pattern.

The p-value says an observation is unusual; this says unusual *in what way*. For each series
(zone × indicator) observed at the alert, the engine gives the value ``x``, the routine baseline
``m`` and spread ``s`` the p-value was computed against, and the quality ``q``. The reading is
modelled as ``x = m + Δ + (s / q)·ε`` with ``ε`` Student-t (``NU`` degrees of freedom: robust
baselines are rough, and one odd series must not veto an otherwise clear pattern):

* routine: ``Δ = 0`` for every series;
* a pattern (:mod:`sitewatch.monitor.patterns`): ``Δ`` rises (or falls) by a size drawn
  log-uniformly from the pattern's range for the series it names, with even odds of staying at
  routine for ``may_rise`` / ``may_fall``, and ``Δ = 0`` for every series it does not name; a
  focused pattern is averaged over the site's zones it could centre on;
* "none of these": every series independently stays at routine, or (with probability
  ``NONE_SHIFT_SHARE``) moves either way by 1-100 of its spreads.

Each hypothesis gets its likelihood ratio against routine, the product over the observed series
(of the indicators some pattern names) of the ratio of their likelihoods. Series not observed (no
value, or quality below the baselines' ``min_quality``) are left out of every product: not observed
is not zero. The hypotheses' shares of belief are their priors times their ratios, normalised; the
words come from those shares (:meth:`~sitewatch.core.types.Likelihood.from_probability`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.special import logsumexp

from sitewatch.core.types import NONE_HYPOTHESIS, Hypothesis, Site, Zone
from sitewatch.monitor.patterns import Effect, Pattern, PatternLibrary, load_patterns

NU = 4.0
"""Degrees of freedom of the Student-t reading noise."""
GRID = 41
"""Sizes tried between a change's smallest and largest (log-spaced)."""
NONE_ID = NONE_HYPOTHESIS
NONE_LABEL = "none of these (unusual in another way)"
NONE_SHIFT_SHARE = 0.2
"""Chance that a series moves under "none of these"."""
NONE_SPREADS = (1.0, 100.0)
"""Sizes of a move under "none of these", in the series' baseline spreads."""
NONE_PRIOR = 1.0


@dataclass(frozen=True, slots=True)
class Reading:
    """One observed series at the alert's observation, against its routine baseline."""

    zone: Zone
    indicator: str
    value: float
    baseline: float
    spread: float
    quality: float

    @property
    def noise(self) -> float:
        """Standard spread of the reading: the baseline spread, widened by poor quality."""
        return self.spread / self.quality


@cache
def built_in_patterns() -> PatternLibrary:
    """The library shipped with sitewatch (read once)."""
    return load_patterns()


def _log_kernel(z: np.ndarray) -> np.ndarray:
    """Log of the Student-t density up to its constant (which cancels in every ratio)."""
    return -(NU + 1.0) / 2.0 * np.log1p(z * z / NU)


def _shift_log_ratio(reading: Reading, sign: int, smallest: float, largest: float) -> float:
    """log L(x | Δ = sign · size, size log-uniform in [smallest, largest]) − log L(x | Δ = 0)."""
    z = (reading.value - reading.baseline) / reading.noise
    sizes = np.geomspace(smallest, largest, GRID) if largest > smallest else np.array([smallest])
    shifted = _log_kernel(z - sign * sizes / reading.noise)
    return float(logsumexp(shifted) - math.log(sizes.size) - _log_kernel(np.array(z)))


def _effect_log_ratio(reading: Reading, effect: Effect) -> float:
    ratio = _shift_log_ratio(reading, effect.change.sign, effect.smallest, effect.largest)
    if effect.change.optional:
        return float(np.logaddexp(math.log(0.5), math.log(0.5) + ratio))
    return ratio


def _none_log_ratio(reading: Reading) -> float:
    low, high = (reading.spread * k for k in NONE_SPREADS)
    up = _shift_log_ratio(reading, +1, low, high)
    down = _shift_log_ratio(reading, -1, low, high)
    moved = math.log(NONE_SHIFT_SHARE / 2) + np.logaddexp(up, down)
    return float(np.logaddexp(math.log(1.0 - NONE_SHIFT_SHARE), moved))


def pattern_log_ratio(pattern: Pattern, site: Site, readings: Sequence[Reading]) -> float:
    """log likelihood ratio of ``pattern`` against routine for the observed ``readings``."""
    centres: Sequence[Zone | None] = pattern.focus_zones(site) if pattern.focus else (None,)
    totals = []
    for centre in centres:
        expected = {zone.id: pattern.effects(zone, focus=centre) for zone in site.zones}
        total = 0.0
        for reading in readings:
            effect = expected.get(reading.zone.id, {}).get(reading.indicator)
            if effect is not None:
                total += _effect_log_ratio(reading, effect)
        totals.append(total)
    return float(logsumexp(totals) - math.log(len(totals)))


def none_log_ratio(readings: Sequence[Reading]) -> float:
    """log likelihood ratio of "none of these" against routine."""
    return float(sum(_none_log_ratio(r) for r in readings))


def score_hypotheses(site: Site, readings: Sequence[Reading], library: PatternLibrary | None = None, *,
                     priors: Mapping[str, float] | None = None) -> tuple[Hypothesis, ...]:
    """Every pattern of ``site`` and "none of these", most probable first.

    ``priors`` weighs each hypothesis by id (:func:`sitewatch.monitor.priors.prior_weights`: the
    site's track record and the day's calendar); where it says nothing, the library's ``prior``
    (and :data:`NONE_PRIOR`). Only ratios between priors matter.

    The hypotheses are weighed on the same evidence: the readings of indicators some pattern of the
    site speaks of. An indicator none of them names (e.g. ``changed_objects``, read off the same
    pixels as changed area) cannot tell the patterns apart, and would only lend "none of these" the
    movement every activity causes in it."""
    patterns = (library or built_in_patterns()).for_site(site)
    named = {e.indicator for p in patterns for term in p.signature for e in term.effects}
    readings = [r for r in readings if r.indicator in named]
    weights = dict(priors or {})
    entries = [(p.id, p.label, p.benign, math.log(weights.get(p.id, p.prior)),
                pattern_log_ratio(p, site, readings)) for p in patterns]
    entries.append((NONE_ID, NONE_LABEL, False, math.log(weights.get(NONE_ID, NONE_PRIOR)),
                    none_log_ratio(readings)))
    posterior = np.array([prior + ratio for _, _, _, prior, ratio in entries])
    shares = np.exp(posterior - logsumexp(posterior))
    ranked = sorted(range(len(entries)), key=lambda i: (-posterior[i], entries[i][0]))
    return tuple(
        Hypothesis(pattern=entries[i][0], label=entries[i][1], benign=entries[i][2],
                   likelihood_ratio=float(np.exp(np.clip(entries[i][4], -700.0, 700.0))),
                   probability=float(np.clip(shares[i], 0.0, 1.0)))
        for i in ranked
    )

