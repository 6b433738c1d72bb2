"""Combining evidence: across a site's zones and indicators, and across a watchlist day.

Within a site, the combined score of an observation is its largest series score (each
already in robust-z units, weighted by quality); its p-value is the conformal rank of
that maximum among the maxima of the calibration observations, so correlation between
zones and indicators is accounted for by the data, not by a Bonferroni bound.

Across a watchlist, the site p-values of all observations acquired on one UTC day are
passed through Benjamini–Hochberg at level α, so that on a busy day with many sites the
expected share of false alerts among the day's alerts stays at most α.
"""

from __future__ import annotations

import numpy as np


def site_scores(series_scores: np.ndarray) -> np.ndarray:
    """Largest series score along axis -2 of (..., series, time); NaN where none observed."""
    filled = np.where(np.isnan(series_scores), -np.inf, series_scores)
    best = filled.max(axis=-2)
    return np.where(np.isneginf(best), np.nan, best)


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
