"""The scoring engine: every observation of many sites, in time order, against each site's history.

Inputs are arrays (sites × series × time) so the same code scores one site in the
monitoring pass and 1,000 sites in the benchmark. For each observation time ``t``:

1. the calibration window is the site's last usable observations before ``t``
   (:class:`~sitewatch.monitor.baselines.BaselineConfig`);
2. baselines are fitted on window + new value, every value is scored
   (:func:`~sitewatch.monitor.scoring.nonconformity`);
3. series p-values and the site p-value come from conformal ranks
   (:func:`~sitewatch.monitor.scoring.conformal_p_values`,
   :func:`~sitewatch.monitor.combine.site_scores`);
4. an observation whose site p-value is at most α (after warm-up) is a *candidate*
   and stays out of later baselines, unless analysts resolved it benign or false alarm
   (``feedback = +1``); confirmed activity (``feedback = -1``) always stays out;
5. the CUSUM of each series is updated (:mod:`sitewatch.monitor.sequential`).

Whether a candidate becomes an alert is decided after, per watchlist day, by
Benjamini–Hochberg (:func:`~sitewatch.monitor.combine.daily_benjamini_hochberg`).
The result depends only on the inputs, so scoring the whole history again gives
exactly what scoring it piece by piece gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sitewatch.core.errors import ValidationError
from sitewatch.core.indicators import IndicatorSpec
from sitewatch.monitor.baselines import BaselineConfig, fit_baseline, spec_floors
from sitewatch.monitor.combine import site_scores
from sitewatch.monitor.scoring import conformal_p_values, nonconformity
from sitewatch.monitor.sequential import CusumConfig, cusum_step, cusum_threshold, normal_scores


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything that decides a score: the false-alarm rate and the baseline and CUSUM settings."""

    false_alarm_rate: float = 0.01
    """α: the per-site, per-observation false-alarm rate."""
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    cusum: CusumConfig = field(default_factory=CusumConfig)
    tail_scale_floor: float = 1.0
    """Smallest exponential-tail scale, in score units, used beyond the calibration maximum."""
    min_site_score: float = 4.0
    """Materiality floor: an instant alert also needs a combined score of at least this (e.g. one
    indicator 5 robust standard deviations above normal, or two at 3). During warm-up the tail
    model would otherwise call a single z = 3 wobble unusual; analysts want activity."""
    sequential_share: float = 0.2
    """Share of α spent on the slow-build test; the instant test gets the rest, so that both
    together raise at most about α false alerts per quiet observation."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.sequential_share < 1.0:
            raise ValidationError("EngineConfig", "sequential_share",
                                  f"{self.sequential_share!r} must lie in [0, 1)")
        if not 0.0 < self.false_alarm_rate < 0.5:
            raise ValidationError(
                "EngineConfig", "false_alarm_rate",
                f"{self.false_alarm_rate!r} must lie in (0, 0.5); typical values are 0.01 or 0.05",
            )

    @property
    def instant_rate(self) -> float:
        """The level the per-observation (instant) test runs at."""
        return self.false_alarm_rate * (1.0 - self.sequential_share)

    @property
    def sequential_rate(self) -> float:
        """The false-alarm rate per observation allotted to the slow-build test."""
        return self.false_alarm_rate * self.sequential_share

    @property
    def conformal_history(self) -> int:
        """Calibration observations from which the instant decision is exactly conformal."""
        return max(self.baseline.min_history, int(np.ceil(1.0 / self.instant_rate)) - 1)


def refit_due(step: int, config: BaselineConfig) -> bool:
    """Whether baselines are refitted before scoring observation ``step`` of a site.

    Every observation while the history is short (the first ``2 * min_history``), then
    every ``refit_every``: a fixed schedule, so a site's scores depend on its own inputs only.
    """
    return step <= 2 * config.min_history or step % config.refit_every == 0


@dataclass(frozen=True, slots=True)
class EngineResult:
    """Scores of every observation (arrays over sites × [series ×] time)."""

    site_p: np.ndarray
    """(sites, time) p-value of the combined score; 1 where nothing was observed."""
    site_score: np.ndarray
    """(sites, time) combined score (largest series score); NaN where nothing was observed."""
    n_history: np.ndarray
    """(sites, time) calibration observations the site had."""
    candidate: np.ndarray
    """(sites, time) bool: p at most the instant test's level, after warm-up, score material."""
    extrapolated: np.ndarray
    """(sites, time) bool: history shorter than ``config.conformal_history``, so p <= α relied on the
    tail model."""
    series_p: np.ndarray
    """(sites, series, time) p-value of each series."""
    series_score: np.ndarray
    """(sites, series, time) robust quality-weighted z-score of each series."""
    location: np.ndarray
    """(sites, series, time) baseline value each observation was compared with."""
    scale: np.ndarray
    """(sites, series, time) baseline spread."""
    weekday_term: np.ndarray
    """(sites, series, time) bool: a weekday term was used."""
    cusum: np.ndarray
    """(sites, series, time) CUSUM statistic the observation brought it to (before a restart)."""
    slow_build: np.ndarray
    """(sites, series, time) bool: CUSUM alarm."""


def score_sites(
    values: np.ndarray,
    quality: np.ndarray,
    days: np.ndarray,
    specs: list[IndicatorSpec],
    *,
    config: EngineConfig,
    rest_day: np.ndarray | None = None,
    feedback: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    group_weights: np.ndarray | None = None,
) -> EngineResult:
    """Score ``values`` (sites, series, time; NaN = not observed) in time order.

    ``quality`` has the shape of ``values``; ``days`` (sites, time) is acquisition time
    in days, increasing along time; ``rest_day`` (sites, time) bool; ``feedback``
    (sites, time) int: +1 analysts said benign/false alarm (use in baselines), -1
    confirmed (keep out), 0 no word. ``groups`` (series,) labels the series of one zone
    (see :func:`~sitewatch.monitor.combine.site_scores`); None: every series on its own;
    ``group_weights`` weighs each group's term (one per label, sorted).
    """
    if values.ndim != 3 or quality.shape != values.shape:
        raise ValidationError(
            "score_sites", "values",
            f"values {values.shape} and quality {quality.shape} must both be (sites, series, time)",
        )
    n_sites, n_series, n_time = values.shape
    if len(specs) != n_series:
        raise ValidationError("score_sites", "specs", f"{len(specs)} specs for {n_series} series")
    if days.shape != (n_sites, n_time):
        raise ValidationError("score_sites", "days",
                              f"{days.shape} must be (sites, time) = {(n_sites, n_time)}")
    rest = np.zeros((n_sites, n_time), bool) if rest_day is None else rest_day.astype(bool)
    word = np.zeros((n_sites, n_time), np.int8) if feedback is None else feedback.astype(np.int8)
    floors, directions, counts = spec_floors(specs)
    floors_b, counts_b = floors[None, :], counts[None, :]
    cfg = config.baseline
    alpha = config.instant_rate
    width = cfg.window
    watched = np.array([spec.sequential for spec in specs], dtype=bool)
    threshold = (cusum_threshold(max(int(watched.sum()), 1) / config.sequential_rate, config.cusum.k)
                 if config.sequential_share > 0 else np.inf)

    # float32 buffers: half the memory traffic, and indicator values need no more precision.
    buf_values = np.full((n_sites, n_series, width), np.nan, np.float32)
    buf_quality = np.zeros((n_sites, n_series, width), np.float32)
    buf_rest = np.zeros((n_sites, width), bool)
    buf_day = np.full((n_sites, width), -np.inf)
    buf_scores = np.full((n_sites, n_series, width), np.nan, np.float32)  # under the current baselines
    buf_site = np.full((n_sites, width), np.nan, np.float32)
    filled = np.zeros(n_sites, np.intp)
    position = np.zeros(n_sites, np.intp)
    statistic = np.zeros((n_sites, n_series))
    sites = np.arange(n_sites)
    nan_series = np.full((n_sites, n_series), np.nan)
    work_location, rest_location, scale = nan_series, nan_series, nan_series
    weekday = np.zeros((n_sites, n_series), bool)

    out_site_p = np.ones((n_sites, n_time))
    out_site_score = np.full((n_sites, n_time), np.nan)
    out_n = np.zeros((n_sites, n_time), np.intp)
    out_candidate = np.zeros((n_sites, n_time), bool)
    out_series_p = np.ones((n_sites, n_series, n_time))
    out_series_score = np.full((n_sites, n_series, n_time), np.nan)
    out_location = np.full((n_sites, n_series, n_time), np.nan)
    out_scale = np.full((n_sites, n_series, n_time), np.nan)
    out_weekday = np.zeros((n_sites, n_series, n_time), bool)
    out_cusum = np.zeros((n_sites, n_series, n_time))
    out_slow = np.zeros((n_sites, n_series, n_time), bool)

    for t in range(n_time):
        used = int(min(width, filled.max(initial=0)))  # slots beyond this are empty for every site
        stale = (days[:, t, None] - buf_day[:, :used]) > cfg.max_age_days
        if stale.any():  # forget observations older than max_age_days
            where_stale = np.nonzero(stale)
            buf_values[where_stale[0], :, where_stale[1]] = np.nan
            buf_scores[where_stale[0], :, where_stale[1]] = np.nan
            buf_site[where_stale] = np.nan
            buf_day[where_stale] = -np.inf
        if used and refit_due(t, cfg):
            history = buf_values[:, :, :used]
            rest_b = np.broadcast_to(buf_rest[:, None, :used], history.shape)
            baseline = fit_baseline(history, rest_b, floors=floors_b, counts=counts_b, config=cfg)
            work_location, rest_location = baseline.work_location, baseline.rest_location
            scale, weekday = baseline.scale, baseline.weekday_term
            location = np.where(buf_rest[:, None, :used], rest_location[..., None], work_location[..., None])
            buf_scores[:, :, :used] = nonconformity(
                buf_values[:, :, :used], location, scale, buf_quality[:, :, :used], directions
            )
            buf_site[:, :used] = site_scores(buf_scores[:, :, :used], groups, group_weights)
        calibration = buf_scores[:, :, :used]
        calibration_site = buf_site[:, :used]

        new_quality = quality[:, :, t]
        new_values = np.where(new_quality >= cfg.min_quality, values[:, :, t], np.nan)
        new_location = np.where(rest[:, t, None], rest_location, work_location)
        new_scores = nonconformity(
            new_values[:, :, None], new_location[:, :, None], scale, new_quality[:, :, None], directions
        )[:, :, 0]
        n_series_history = np.count_nonzero(~np.isnan(calibration), axis=2)
        series_p = conformal_p_values(calibration, new_scores, tail_scale_floor=config.tail_scale_floor,
                                      n=n_series_history)
        new_site = site_scores(new_scores[:, :, None], groups, group_weights)[:, 0]
        site_p = conformal_p_values(calibration_site, new_site, tail_scale_floor=config.tail_scale_floor)
        n_history = np.sum(~np.isnan(calibration_site), axis=1)
        observed = ~np.isnan(new_site)
        # The materiality floor is on the unweighted score: zone weights rank evidence, they must not
        # make a huge surge in a car park immaterial.
        material = (new_site if group_weights is None
                    else site_scores(new_scores[:, :, None], groups)[:, 0]) >= config.min_site_score
        candidate = observed & (n_history >= cfg.min_history) & (site_p <= alpha) & material
        # Not observed yet scored (no baseline yet): still history for the next baseline.
        include = np.any(~np.isnan(new_values), axis=1) & (word[:, t] >= 0)

        normal = np.where(np.isnan(new_scores) | ~watched[None, :], np.nan,
                          normal_scores(series_p, config.cusum.clip))
        armed = n_series_history >= cfg.min_history
        statistic, alarm, reached = cusum_step(statistic, normal, k=config.cusum.k, threshold=threshold,
                                               armed=armed)

        chosen = sites[include]
        slot = position[chosen]
        buf_values[chosen, :, slot] = new_values[chosen]
        buf_quality[chosen, :, slot] = new_quality[chosen]
        buf_scores[chosen, :, slot] = new_scores[chosen]
        buf_site[chosen, slot] = new_site[chosen]
        buf_rest[chosen, slot] = rest[chosen, t]
        buf_day[chosen, slot] = days[chosen, t]
        position[chosen] = (slot + 1) % width
        filled[chosen] += 1

        out_site_p[:, t] = np.where(observed, site_p, 1.0)
        out_site_score[:, t] = new_site
        out_n[:, t] = n_history
        out_candidate[:, t] = candidate
        out_series_p[:, :, t] = series_p
        out_series_score[:, :, t] = new_scores
        out_location[:, :, t] = new_location
        out_scale[:, :, t] = scale
        out_weekday[:, :, t] = weekday
        out_cusum[:, :, t] = reached
        out_slow[:, :, t] = alarm

    return EngineResult(
        site_p=out_site_p,
        site_score=out_site_score,
        n_history=out_n,
        candidate=out_candidate,
        extrapolated=out_candidate & (out_n < config.conformal_history),
        series_p=out_series_p,
        series_score=out_series_score,
        location=out_location,
        scale=out_scale,
        weekday_term=out_weekday,
        cusum=out_cusum,
        slow_build=out_slow,
    )
