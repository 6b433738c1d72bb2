"""Combining evidence: across a site's zones and indicators, and across a watchlist day.

Within a site, the combined score of an observation adds up, over its zones and
indicators, how far each series score (robust z, weighted by quality) exceeds
``SERIES_SLACK``, each term capped at ``SERIES_CAP``:
``S = Σ_zones max_k∈zone min(max(z_k − slack, 0), cap)``: the indicators of one zone rise
together with the same cars, so a zone adds its strongest term only. The cap keeps one busy
car park (a holiday, a staff gathering) from outweighing everything, the slack keeps the
many quiet series from adding noise, and activity that shows in several zones and indicators at once (trucks,
cranes, rail cars and fresh change together, the signature of a launch preparation)
adds up. Its p-value is the conformal rank of ``S`` among the calibration observations'
``S``, so correlation between zones and indicators is accounted for by the data, not by
a Bonferroni bound, and the statistic's choice affects power only, never validity.

Across a watchlist, the site p-values of all observations acquired on one UTC day are
passed through Benjamini–Hochberg at level α, so that on a busy day with many sites the
expected share of false alerts among the day's alerts stays at most α.
"""

from __future__ import annotations

import numpy as np

SERIES_SLACK = 1.0
"""Series scores up to this many robust standard deviations add nothing to the site score."""
SERIES_CAP = 6.0
"""Most one series can add to the site score."""


ZONE_KIND_WEIGHTS: dict[str, float] = {"parking": 0.5, "support": 0.75}
"""How much one zone's activity adds to a site's combined score, by zone kind (others 1).

A full car park or a busy depot is weak evidence of what a site watcher looks for; trucks at
an assembly hall or a launch pad are strong. Weights change power only, never validity: the
combined score is calibrated on the site's own history whatever it is."""


CHANGE_BESIDE_COUNTS_WEIGHT = 0.5
"""Weight of a zone's pixel-change group, relative to its detection counts, where it has both.

Changed pixels and counted objects witness the same vehicles, but pixels also change with
shadows, haze, wet ground and cloud edges: where the detector counts the objects themselves,
the pixel change is the noisier witness and weighs half (on simulated scenarios this raised
large-event recall and lowered false alarms at once; see docs/monitoring.md). A zone
without counts (no detector run) keeps its pixel change at full weight."""


INDICATOR_WEIGHTS: dict[str, float] = {"count_car": 0.5}
"""How much one indicator's group adds to a site's combined score, by indicator (others 1).

Cars are what every routine busy day brings, a staff gathering, a holiday crowd, a market day,
while the activity a site watcher looks for moves heavy vehicles, rail cars and cranes. A surge of
cars alone counts half, like a full car park. Chosen on development seeds of both scenarios
(docs/monitoring.md, "Cars count half"): at α = 0.01 it raised large-event recall under the
cloudy regime from 0.966 to 0.985 and cut routine busy days alerted from 29 % to 13 %, and
moved recall under the reference regime by 2 events of 274. Like the zone weights it changes
power only, never validity."""


def zone_weight(kind: str | None) -> float:
    """Weight of a zone of ``kind`` in the combined score (see :data:`ZONE_KIND_WEIGHTS`)."""
    return ZONE_KIND_WEIGHTS.get(kind or "", 1.0)


def group_weight(zone_kind: str | None, group: str, *, beside_counts: bool) -> float:
    """Weight of one group of a zone's series in the combined score.

    ``group`` is an indicator name, or ``"change"`` for the zone's pixel-change indicators, which
    weigh :data:`CHANGE_BESIDE_COUNTS_WEIGHT` where the zone also has detection counts
    (``beside_counts``). The zone's kind weighs every group (:data:`ZONE_KIND_WEIGHTS`) and the
    indicator its own (:data:`INDICATOR_WEIGHTS`).
    """
    change = CHANGE_BESIDE_COUNTS_WEIGHT if group == "change" and beside_counts else 1.0
    return zone_weight(zone_kind) * change * INDICATOR_WEIGHTS.get(group, 1.0)


def site_scores(series_scores: np.ndarray, groups: np.ndarray | None = None,
                weights: np.ndarray | None = None) -> np.ndarray:
    """Combined score along axis -2 of (..., series, time); NaN where no series was observed.

    ``groups`` (series,) labels series that measure the same thing (the indicators of one
    zone: its changed area, changed objects and counts all rise with the same cars); within
    a group only the largest term counts, so one busy zone adds at most ``SERIES_CAP``,
    times its ``weights`` entry (one per group label, in sorted label order) when given.
    """
    observed = ~np.isnan(series_scores)
    excess = np.clip(np.nan_to_num(series_scores, nan=0.0) - SERIES_SLACK, 0.0, SERIES_CAP)
    if groups is None:
        total = excess.sum(axis=-2)
    else:
        labels = np.asarray(groups)
        unique = np.unique(labels)
        factors = np.ones(len(unique)) if weights is None else np.asarray(weights, dtype=np.float64)
        total = sum(factor * excess[..., labels == label, :].max(axis=-2)
                    for label, factor in zip(unique, factors, strict=True))
    return np.where(observed.any(axis=-2), total, np.nan)


def contributions(series_scores: np.ndarray) -> np.ndarray:
    """Each series' share of the combined score (same shape; NaN counts 0)."""
    return np.clip(np.nan_to_num(series_scores, nan=0.0) - SERIES_SLACK, 0.0, SERIES_CAP)


def benjamini_hochberg(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Which hypotheses Benjamini–Hochberg rejects at false discovery rate ``alpha``.

    NaN p-values are not tested (never rejected and not counted in m).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"false discovery rate {alpha!r} must lie strictly between 0 and 1")
    p = np.asarray(p_values, dtype=np.float64)
    tested = ~np.isnan(p)
    m = int(tested.sum())
    rejected = np.zeros(p.shape, dtype=bool)
    if m == 0:
        return rejected
    indices = np.flatnonzero(tested)
    order = indices[np.argsort(p[indices], kind="stable")]
    thresholds = alpha * np.arange(1, m + 1) / m
    passing = np.flatnonzero(p[order] <= thresholds)
    if passing.size:
        rejected[order[: passing[-1] + 1]] = True
    return rejected


def daily_benjamini_hochberg(days: np.ndarray, p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini–Hochberg within each day: ``days`` labels each p-value with its UTC day."""
    days = np.asarray(days)
    p = np.asarray(p_values, dtype=np.float64)
    if days.shape != p.shape:
        raise ValueError(f"days {days.shape} and p-values {p.shape} must have the same shape")
    rejected = np.zeros(p.shape, dtype=bool)
    for day in np.unique(days):
        members = days == day
        rejected[members] = benjamini_hochberg(p[members], alpha)
    return rejected
