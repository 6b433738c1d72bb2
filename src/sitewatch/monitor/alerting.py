"""From stored indicator values to alerts: one site's history in, scored, decided, explained.

The store hands over :class:`~sitewatch.core.types.IndicatorValue` rows; this module
lays them out as a (series × time) table, runs the engine, applies
Benjamini–Hochberg per watchlist day across sites, and writes the
:class:`~sitewatch.core.types.Alert` values with their evidence and sentence. Alert
ids depend only on the site, the observation and the kind of alert, so scoring the
same history twice yields the same alerts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from sitewatch.catalog.context import Context
from sitewatch.core.indicators import (
    PIXEL_CHANGE_INDICATORS,
    IndicatorSpec,
    indicator_spec,
    is_detection_count,
)
from sitewatch.core.types import Alert, Hypothesis, IndicatorValue, Site, Zone
from sitewatch.monitor.combine import contributions, daily_benjamini_hochberg, group_weight
from sitewatch.monitor.engine import EngineConfig, EngineResult, score_sites
from sitewatch.monitor.explain import Evidence, explain_alert, explain_slow_build
from sitewatch.monitor.hypotheses import Reading, built_in_patterns, score_hypotheses
from sitewatch.monitor.lifecycle import track_record
from sitewatch.monitor.patterns import PatternLibrary
from sitewatch.monitor.priors import prior_weights, resolution_counts

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class IndicatorHistory:
    """One site's indicator values as a (series × time) table, observations in time order."""

    site_id: str
    observation_ids: tuple[str, ...]
    acquired: tuple[datetime, ...]
    series: tuple[tuple[str, str], ...]
    """(zone_id, indicator name) of each row."""
    values: np.ndarray
    """(series, time); NaN = not observed."""
    quality: np.ndarray
    """(series, time) weights 0..1."""

    @classmethod
    def from_values(cls, site_id: str, values: Sequence[IndicatorValue]) -> IndicatorHistory:
        """Lay out ``values`` of one site; a series missing at an observation is not observed there."""
        times: dict[str, datetime] = {}
        for item in values:
            times.setdefault(item.observation_id, item.acquired)
        order = sorted(times, key=lambda oid: (times[oid], oid))
        series = sorted({(v.zone_id, v.name) for v in values})
        column = {oid: i for i, oid in enumerate(order)}
        row = {key: i for i, key in enumerate(series)}
        table = np.full((len(series), len(order)), np.nan)
        quality = np.zeros((len(series), len(order)))
        for item in values:
            if item.value is not None:
                r, c = row[(item.zone_id, item.name)], column[item.observation_id]
                table[r, c] = item.value
                quality[r, c] = item.quality
        return cls(site_id, tuple(order), tuple(times[o] for o in order), tuple(series), table, quality)

    @property
    def specs(self) -> list[IndicatorSpec]:
        return [indicator_spec(name) for _, name in self.series]

    def days(self) -> np.ndarray:
        return np.array([a.timestamp() / SECONDS_PER_DAY for a in self.acquired])

    def rest_days(self, rest: Sequence[int]) -> np.ndarray:
        return np.array([a.weekday() in rest for a in self.acquired], dtype=bool)


@dataclass(frozen=True, slots=True)
class SiteScores:
    """A site's history with the engine's scores of it (the engine's site axis dropped)."""

    history: IndicatorHistory
    result: EngineResult

    def site_p(self) -> np.ndarray:
        return self.result.site_p[0]


def score_history(
    history: IndicatorHistory, config: EngineConfig, feedback: Mapping[str, int] | None = None,
    zones: Sequence[Zone] = (),
) -> SiteScores:
    """Score every observation of ``history``; ``feedback`` maps observation id → -1/0/+1.

    The pixel-change indicators of one zone (changed area, its brightened and darkened parts,
    changed objects: one set of pixels measured four ways) form one group of the combined score;
    each detection count is its own (cars and trucks are different objects). Every group is
    weighed by the kind of its zone in ``zones``, by its indicator (cars count half), and a
    pixel-change group beside detection counts by half (see
    :func:`~sitewatch.monitor.combine.group_weight`).
    """
    kinds = {zone.id: zone.kind.value for zone in zones}
    keys = [(zone, "change" if name in PIXEL_CHANGE_INDICATORS else name) for zone, name in history.series]
    labels = sorted(set(keys))
    counted = {zone for zone, name in history.series if is_detection_count(name)}

    def weight(zone: str, group: str) -> float:
        return group_weight(kinds.get(zone), group, beside_counts=zone in counted)

    word = np.array([[(feedback or {}).get(o, 0) for o in history.observation_ids]], dtype=np.int8)
    result = score_sites(
        history.values[None], history.quality[None], history.days()[None], history.specs,
        config=config, rest_day=history.rest_days(config.baseline.rest_days)[None], feedback=word,
        groups=np.array([labels.index(key) for key in keys], dtype=np.intp),
        group_weights=np.array([weight(zone, group) for zone, group in labels]),
    )
    return SiteScores(history, result)


def decide(scored: Sequence[SiteScores], level: float) -> list[np.ndarray]:
    """Which candidate observations become alerts: BH at ``level`` (the instant test's share of α)
    over each UTC day of the watchlist."""
    labels: list[str] = []
    p_values: list[float] = []
    for site in scored:
        armed = site.result.n_history[0] >= 1
        for when, p, armed_here in zip(site.history.acquired, site.site_p(), armed, strict=True):
            labels.append(when.date().isoformat())
            p_values.append(float(p) if armed_here else float("nan"))
    rejected = daily_benjamini_hochberg(np.array(labels), np.array(p_values), level)
    decisions = []
    start = 0
    for site in scored:
        count = len(site.history.observation_ids)
        decisions.append(site.result.candidate[0] & rejected[start:start + count])
        start += count
    return decisions


def alert_id(site_id: str, observation_id: str, kind: str) -> str:
    """Stable id of the ``kind`` alert ("activity" or "slow-build") raised by an observation."""
    digest = hashlib.sha1(f"{site_id}\0{observation_id}\0{kind}".encode()).hexdigest()[:8]
    return f"{site_id}-{kind}-{digest}"


def _evidence(site: Site, scores: SiteScores, row: int, t: int) -> Evidence:
    zone_id, name = scores.history.series[row]
    zone_name = next((z.name for z in site.zones if z.id == zone_id), zone_id)
    return Evidence(
        zone_name=zone_name,
        spec=indicator_spec(name),
        value=float(scores.history.values[row, t]),
        baseline=float(scores.result.location[0, row, t]),
        p_value=float(scores.result.series_p[0, row, t]),
    )


def readings_at(site: Site, scores: SiteScores, t: int, min_quality: float) -> list[Reading]:
    """The series observed at observation ``t`` with the routine baselines they were scored against.

    A series counts as observed as the engine counts it: a value with at least ``min_quality``;
    the rest are left out, not read as zero."""
    zones = {zone.id: zone for zone in site.zones}
    history, result = scores.history, scores.result
    readings = []
    for row, (zone_id, name) in enumerate(history.series):
        value, quality = float(history.values[row, t]), float(history.quality[row, t])
        baseline, spread = float(result.location[0, row, t]), float(result.scale[0, row, t])
        if (zone_id in zones and quality >= min_quality and quality > 0
                and all(map(np.isfinite, (value, baseline, spread))) and spread > 0):
            readings.append(Reading(zones[zone_id], name, value, baseline, spread, quality))
    return readings


def hypotheses_at(site: Site, scores: SiteScores, t: int, config: EngineConfig,
                  library: PatternLibrary | None = None, *, context: Context | None = None,
                  resolved: Sequence[Alert] = (),
                  picks: Mapping[str, Sequence[str]] | None = None) -> tuple[Hypothesis, ...]:
    """The ranked hypotheses of observation ``t`` (see :mod:`sitewatch.monitor.hypotheses`), with
    priors learned from the site's ``resolved`` alerts acquired before it (and analysts' ``picks``)
    and raised by the day's occasions in ``context`` (:mod:`sitewatch.monitor.priors`)."""
    acquired = scores.history.acquired[t]
    patterns = (library or built_in_patterns()).for_site(site)
    priors = prior_weights(
        patterns, counts=resolution_counts(patterns, resolved, picks, before=acquired),
        factors=context.prior_factors(site, acquired) if context is not None else None)
    return score_hypotheses(site, readings_at(site, scores, t, config.baseline.min_quality), library,
                            priors=priors)


def build_alerts(
    site: Site,
    scores: SiteScores,
    decisions: np.ndarray,
    *,
    config: EngineConfig,
    earlier: Sequence[Alert],
    created: datetime,
    patterns: PatternLibrary | None = None,
    context: Context | None = None,
    picks: Mapping[str, Sequence[str]] | None = None,
) -> list[Alert]:
    """Alerts of ``site`` for the decided observations and for CUSUM alarms, oldest first.

    Each instant alert carries its ranked hypotheses over ``patterns`` (the built-in library
    when not given), named in its sentence too; their priors learn from the ``earlier`` alerts
    analysts resolved (and the hypotheses they picked, ``picks`` by alert id) and are raised by
    the day's holidays and site schedules in ``context`` (see :func:`hypotheses_at`).

    ``earlier`` are the site's alerts already known (any state): each new alert's track
    record counts those, in their stored state, and the ones built here, acquired before it.
    """
    history, result = scores.history, scores.result
    built: list[Alert] = []
    known = {a.id: a for a in earlier}
    slow_any = result.slow_build[0].any(axis=0)
    for t in (int(i) for i in np.flatnonzero(decisions | slow_any)):
        observation_id, acquired = history.observation_ids[t], history.acquired[t]
        record = track_record((*known.values(), *built), before=acquired)
        n_history = int(result.n_history[0, t])
        if decisions[t]:
            shares = contributions(result.series_score[0, :, t])
            order = [int(r) for r in np.argsort(-shares, kind="stable") if shares[r] > 0]
            if not order:
                order = [int(np.nanargmax(result.series_score[0, :, t]))]
            primary = _evidence(site, scores, order[0], t)
            others = [_evidence(site, scores, r, t) for r in order[1:]]
            site_p = float(result.site_p[0, t])
            hypotheses = hypotheses_at(site, scores, t, config, patterns, context=context,
                                       resolved=tuple(known.values()), picks=picks)
            built.append(Alert(
                id=alert_id(site.id, observation_id, "activity"),
                site_id=site.id,
                observation_id=observation_id,
                acquired=acquired,
                created=created,
                indicator=primary.spec.name,
                value=primary.value,
                baseline=primary.baseline,
                score=float(result.site_score[0, t]),
                explanation=explain_alert(
                    site_name=site.name, primary=primary, others=others, site_p=site_p,
                    false_alarm_rate=config.false_alarm_rate, n_history=n_history,
                    extrapolated=bool(result.extrapolated[0, t]),
                    conformal_history=config.conformal_history, record=record, hypotheses=hypotheses,
                    occasions=[f"{o.name} ({o.source})" for o in context.occasions(site, acquired)]
                    if context is not None else (),
                ),
                zone_id=history.series[order[0]][0],
                p_value=site_p,
                hypotheses=hypotheses,
            ))
        elif slow_any[t]:
            rows = np.flatnonzero(result.slow_build[0, :, t])
            row = int(rows[np.argmax(result.series_score[0, rows, t])])
            primary = _evidence(site, scores, row, t)
            if not np.isfinite(primary.value):
                continue
            built.append(Alert(
                id=alert_id(site.id, observation_id, "slow-build"),
                site_id=site.id,
                observation_id=observation_id,
                acquired=acquired,
                created=created,
                indicator=primary.spec.name,
                value=primary.value,
                baseline=primary.baseline if np.isfinite(primary.baseline) else 0.0,
                score=float(np.max(result.cusum[0, rows, t])),
                explanation=explain_slow_build(
                    site_name=site.name, primary=primary, observations=n_history,
                    statistic=float(np.max(result.cusum[0, rows, t])), record=record,
                    false_alarm_rate=config.false_alarm_rate,
                ),
                zone_id=history.series[row][0],
                p_value=primary.p_value,
            ))
    return built
