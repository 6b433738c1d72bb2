"""Per site × zone × indicator baselines learned from the site's own history.

A baseline is a robust location and spread of an indicator over a window of the
site's recent, trusted observations:

* robust: median and inter-quartile range, so a few busy days or a past event do not
  move it;
* count-aware: the spread of a count never falls below the Poisson spread
  ``sqrt(max(median, 1))``, and every indicator has a floor in its own unit
  (:attr:`~sitewatch.core.indicators.IndicatorSpec.floor`), so a history of zeros
  does not turn one truck into an alarm;
* irregular revisits: the window is the last ``window`` usable observations no older
  than ``max_age_days``, whatever the spacing between them;
* weekday term: where the history supports it (at least ``min_group`` observations on
  working days and on rest days, and group medians further apart than twice their
  standard error), the location is taken per group. Seasons are left to the sliding
  window (a year at most), which follows slow seasonal drift.

Everything is vectorised over leading axes so the monitor scores thousands of series
in one call. Missing values ("not observed") are NaN and are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sitewatch.core.errors import ValidationError
from sitewatch.core.indicators import IndicatorKind, IndicatorSpec

IQR_TO_SIGMA = 1.349
"""Inter-quartile range of a unit normal: IQR / 1.349 estimates the standard deviation."""

MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)
"""Standard error of a median is about this times sigma / sqrt(n)."""


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """How baselines are learned (see the module docstring)."""

    window: int = 150
    """Most calibration observations kept per site."""
    max_age_days: float = 730.0
    """Observations older than this are forgotten."""
    min_history: int = 20
    """Warm-up: no alert before this many usable observations of the site."""
    refit_every: int = 10
    """Baselines are refitted every this many observations (every one during warm-up)."""
    min_quality: float = 0.3
    """Indicator values with a lower quality weight count as not observed."""
    weekday_term: bool = True
    rest_days: tuple[int, ...] = (6,)
    """ISO weekdays minus one (Monday 0 … Sunday 6) that are rest days at these sites."""
    min_group: int = 8
    """Observations needed in each weekday group before a weekday term is used."""

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValidationError("BaselineConfig", "window", f"{self.window} must be at least 2")
        if self.min_history < 1:
            raise ValidationError("BaselineConfig", "min_history", f"{self.min_history} must be at least 1")
        if self.refit_every < 1:
            raise ValidationError("BaselineConfig", "refit_every", f"{self.refit_every} must be at least 1")
        if not 0.0 <= self.min_quality <= 1.0:
            raise ValidationError("BaselineConfig", "min_quality", f"{self.min_quality} must lie in 0..1")
        if any(not 0 <= d <= 6 for d in self.rest_days):
            raise ValidationError("BaselineConfig", "rest_days",
                                  f"{self.rest_days} must be weekdays 0 (Mon) .. 6 (Sun)")


def spec_floors(specs: list[IndicatorSpec]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-series floor, direction and count flag arrays for ``specs``."""
    floors = np.array([s.floor for s in specs], dtype=np.float64)
    directions = np.array([s.direction for s in specs], dtype=np.float64)
    counts = np.array([s.kind is IndicatorKind.COUNT for s in specs], dtype=bool)
    return floors, directions, counts


def _quantile_sorted(sorted_values: np.ndarray, n_valid: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` along the last axis of NaN-last sorted values with ``n_valid`` leading numbers."""
    position = np.maximum(n_valid - 1, 0) * q
    low = np.floor(position).astype(np.intp)
    high = np.ceil(position).astype(np.intp)
    lo = np.take_along_axis(sorted_values, low[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(sorted_values, high[..., None], axis=-1)[..., 0]
    result = lo + (hi - lo) * (position - low)
    return np.where(n_valid > 0, result, np.nan)


@dataclass(frozen=True, slots=True)
class Baseline:
    """Location and spread of each series, broadcast over the leading axes."""

    location: np.ndarray
    """(..., ) pooled median."""
    scale: np.ndarray
    """(..., ) robust spread, floored."""
    n: np.ndarray
    """(..., ) number of values the baseline was learned from."""
    rest_location: np.ndarray
    """(..., ) median on rest days where the weekday term is used, else the pooled median."""
    work_location: np.ndarray
    """(..., ) median on working days where the weekday term is used, else the pooled median."""
    weekday_term: np.ndarray
    """(..., ) bool: the weekday term is used for this series."""

    def location_for(self, rest_day: np.ndarray) -> np.ndarray:
        """Location of each value along a trailing axis, given whether it fell on a rest day."""
        return np.where(rest_day, self.rest_location[..., None], self.work_location[..., None])


def fit_baseline(
    values: np.ndarray,
    rest_day: np.ndarray,
    *,
    floors: np.ndarray,
    counts: np.ndarray,
    config: BaselineConfig,
) -> Baseline:
    """Fit baselines of series along the last axis of ``values`` (NaN = not observed).

    ``rest_day`` has the shape of ``values`` (bool); ``floors`` and ``counts`` broadcast
    over the series axes (all but the last).
    """
    sorted_values = np.sort(values, axis=-1)  # NaN sorts last
    observed = ~np.isnan(values)
    n = np.count_nonzero(observed, axis=-1)
    median = _quantile_sorted(sorted_values, n, 0.5)
    upper, lower = _quantile_sorted(sorted_values, n, 0.75), _quantile_sorted(sorted_values, n, 0.25)
    spread = (upper - lower) / IQR_TO_SIGMA
    floor = np.broadcast_to(floors, median.shape)
    poisson = np.sqrt(np.maximum(np.nan_to_num(median), 1.0))
    floor = np.where(np.broadcast_to(counts, median.shape), np.maximum(floor, poisson), floor)
    scale = np.fmax(np.nan_to_num(spread, nan=0.0), floor)
    if not config.weekday_term:
        supported = np.zeros(median.shape, dtype=bool)
        return Baseline(median, scale, n, median, median, supported)
    n_rest = np.count_nonzero(rest_day & observed, axis=-1)
    n_work = n - n_rest
    if not np.any((n_rest >= config.min_group) & (n_work >= config.min_group)):
        supported = np.zeros(median.shape, dtype=bool)
        return Baseline(median, scale, n, median, median, supported)
    rest_median = _quantile_sorted(np.sort(np.where(rest_day, values, np.nan), axis=-1), n_rest, 0.5)
    work_median = _quantile_sorted(np.sort(np.where(rest_day, np.nan, values), axis=-1), n_work, 0.5)
    standard_error = MEDIAN_EFFICIENCY * scale * np.sqrt(
        1.0 / np.maximum(n_rest, 1) + 1.0 / np.maximum(n_work, 1)
    )
    supported = (
        (n_rest >= config.min_group)
        & (n_work >= config.min_group)
        & (np.abs(rest_median - work_median) > 2.0 * standard_error)
    )
    return Baseline(
        location=median,
        scale=scale,
        n=n,
        rest_location=np.where(supported, rest_median, median),
        work_location=np.where(supported, work_median, median),
        weekday_term=supported,
    )
