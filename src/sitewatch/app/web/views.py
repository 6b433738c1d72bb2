"""Composite views the API and dashboard share: site status, track record, timeline, alert evidence."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sitewatch.app.compare import reference_for
from sitewatch.app.web import serialize
from sitewatch.core.types import Alert, AlertState, IndicatorValue, Observation, Site, latest_picks
from sitewatch.monitor import lifecycle
from sitewatch.store.protocol import Store

# The state that most needs an analyst's eye comes first; a site shows its alerts' most pressing one.
STATE_PRIORITY = (
    AlertState.NEW,
    AlertState.ACKNOWLEDGED,
    AlertState.CONFIRMED,
    AlertState.BENIGN,
    AlertState.FALSE_ALARM,
)
OPEN_STATES = frozenset({AlertState.NEW, AlertState.ACKNOWLEDGED})
_MAD_SCALE = 1.4826  # makes the MAD a consistent estimate of the standard deviation for normal data
_BAND_WIDTH = 3.0
_MIN_BASELINE_POINTS = 3


def site_status(alerts: Sequence[Alert]) -> tuple[str | None, int]:
    """(most pressing alert state or None, number of open alerts)."""
    states = {a.state for a in alerts}
    pressing = next((s.value for s in STATE_PRIORITY if s in states), None)
    return pressing, sum(1 for a in alerts if a.state in OPEN_STATES)


def site_summary(ws: Store, site: Site, alerts: Sequence[Alert] | None = None) -> dict[str, Any]:
    if alerts is None:
        alerts = ws.alerts(site_id=site.id)
    state, open_count = site_status(alerts)
    return serialize.site(site, alert_state=state, open_alerts=open_count)


def site_summaries(ws: Store) -> list[dict[str, Any]]:
    by_site: dict[str, list[Alert]] = defaultdict(list)
    for alert in ws.alerts():
        by_site[alert.site_id].append(alert)
    return [site_summary(ws, site, by_site.get(site.id, [])) for site in ws.sites()]


def track_record(alerts: Sequence[Alert], *, before: Alert | None = None) -> dict[str, Any]:
    """How the site's alerts (those acquired before ``before``, when given) were judged: the one
    :class:`~sitewatch.monitor.lifecycle.TrackRecord`, as the API shows it."""
    record = lifecycle.track_record(alerts, before=before.acquired if before is not None else None)
    return {"total": record.raised, "by_state": record.by_state(), "summary": record.describe()}


def baseline_band(values: Sequence[float]) -> dict[str, float] | None:
    """Robust centre and band of a series: median ± 3 scaled MADs; None with too few points.

    This is for display only (the monitor has its own baselines): it shows where the
    usual values lie so an alert's value can be read against them.
    """
    if len(values) < _MIN_BASELINE_POINTS:
        return None
    centre = statistics.median(values)
    spread = _MAD_SCALE * statistics.median(abs(v - centre) for v in values)
    return {"centre": centre, "low": centre - _BAND_WIDTH * spread, "high": centre + _BAND_WIDTH * spread}


def series(
    indicators: Sequence[IndicatorValue], alerts: Sequence[Alert], observations: Sequence[Observation]
) -> list[dict[str, Any]]:
    """Indicator values grouped per (zone, name), columnar, with a baseline band from the quiet values.

    Columns (``observation``: index into ``observations``, ``value``, ``quality``) keep the
    timeline of a site with years of observations small. Values of observations that raised a confirmed
    alert for the same indicator are kept out of the band, as the monitor keeps confirmed
    activity out of its baselines.
    """
    confirmed = {
        (a.observation_id, a.zone_id, a.indicator) for a in alerts if a.state is AlertState.CONFIRMED
    }
    index = {o.id: i for i, o in enumerate(observations)}
    grouped: dict[tuple[str, str], list[IndicatorValue]] = defaultdict(list)
    for value in indicators:
        if value.observation_id in index:
            grouped[(value.zone_id, value.name)].append(value)
    out = []
    for (zone_id, name), values in sorted(grouped.items()):
        values.sort(key=lambda v: v.acquired)
        quiet = [
            v.value
            for v in values
            if v.value is not None and (v.observation_id, zone_id, name) not in confirmed
        ]
        out.append(
            {
                "zone_id": zone_id,
                "name": name,
                "observation": [index[v.observation_id] for v in values],
                "value": [v.value for v in values],
                "quality": [v.quality for v in values],
                "baseline": baseline_band(quiet),
            }
        )
    return out


def timeline(ws: Store, site: Site) -> dict[str, Any]:
    alerts = ws.alerts(site_id=site.id)
    observations = ws.observations(site.id)
    return {
        "site": site_summary(ws, site, alerts),
        "observations": [serialize.observation(o) for o in observations],
        "series": series(ws.indicators(site.id), alerts, observations),
        "alerts": [serialize.alert(a) for a in alerts],
        "track_record": track_record(alerts),
    }


def alert_detail(ws: Store, alert_id: str) -> dict[str, Any]:
    alert = ws.alert(alert_id)
    site = ws.site(alert.site_id)
    site_alerts = ws.alerts(site_id=site.id)
    observation = ws.observation(alert.observation_id)
    reference = reference_for(ws, observation)
    assessments = ws.assessments(alert.id)
    return {
        "alert": serialize.alert(alert),
        "site": site_summary(ws, site, site_alerts),
        "observation": serialize.observation(observation),
        "scene": serialize.scene(ws.scene(observation.scene_id)),
        "reference": serialize.observation(reference) if reference else None,
        "history": [serialize.alert_event(e) for e in ws.alert_history(alert.id)],
        "assessments": [serialize.assessment(a) for a in assessments],
        "picks": latest_picks(assessments),
        "track_record": track_record(site_alerts, before=alert),
    }
