"""Composite views the API and dashboard share: site status, track record, timeline, alert evidence."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sitewatch.app.compare import reference_for
from sitewatch.app.web import serialize
from sitewatch.core import words
from sitewatch.core.errors import SitewatchError, UnsupportedInputError
from sitewatch.core.indicators import indicator_spec
from sitewatch.core.types import Alert, AlertState, IndicatorValue, Observation, Scene, Site, latest_picks
from sitewatch.monitor import lifecycle
from sitewatch.monitor.baselines import BaselineConfig
from sitewatch.monitor.explain import lead_phrase, none_fits
from sitewatch.monitor.policy import held, top_priority
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
_FAR = 2.0
"""A spike is "far" outside the display band when it lies beyond twice the band's reach."""


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
    indicators: Sequence[IndicatorValue],
    alerts: Sequence[Alert],
    observations: Sequence[Observation],
    site: Site | None = None,
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
        try:
            spec = indicator_spec(name)
        except UnsupportedInputError:
            kind, unit = None, ""
        else:
            kind, unit = spec.kind.value, spec.unit
        out.append(
            {
                "zone_id": zone_id,
                "name": name,
                "zone_name": words.human_name(zone_id, site),
                "label": words.human_name(name),
                "kind": kind,
                "unit": unit,
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
    indicators = ws.indicators(site.id)
    return {
        "site": site_summary(ws, site, alerts),
        "observations": [serialize.observation(o) for o in observations],
        "series": series(indicators, alerts, observations, site),
        "unalerted": unalerted_spikes(site, observations, indicators, alerts,
                                      false_alarm_rate=ws.settings.false_alarm_rate),
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
        "none_fits": none_fits(alert.hypotheses),
        "track_record": track_record(site_alerts, before=alert),
    }


def _queue_order(alert: Alert) -> tuple[bool, float, float]:
    """Top priority first (alerts led by a benign hypothesis below the rest: the sites' policy), then
    the newest image; among alerts on the same image, the smallest p (the most unusual) first."""
    p = alert.p_value if alert.p_value is not None else 1.0
    return (not top_priority(alert.hypotheses), -alert.acquired.timestamp(), p)


def queue_item(alert: Alert, site: Site | None, *, last_visit: datetime | None) -> dict[str, Any]:
    """One untriaged alert as the morning queue lists it, in words a person reads."""
    thumbnail = f"/api/observations/{quote(alert.observation_id)}/thumbnail.png"
    if alert.zone_id is not None:
        thumbnail += f"?zone={quote(alert.zone_id)}"
    return {
        "id": alert.id,
        "url": f"/alerts/{quote(alert.id)}",
        "site_id": alert.site_id,
        "site_name": site.name if site is not None else alert.site_id,
        "zone_id": alert.zone_id,
        "zone_name": words.human_name(alert.zone_id, site),
        "indicator": alert.indicator,
        "indicator_name": words.human_name(alert.indicator),
        "acquired": serialize.iso(alert.acquired),
        "acquired_text": words.when(alert.acquired),
        "created": serialize.iso(alert.created),
        "p_value": alert.p_value,
        "p_text": words.p_value(alert.p_value),
        "explanation": alert.explanation,
        "thumbnail": thumbnail,
        "new": last_visit is None or alert.created > last_visit,
        "top_priority": top_priority(alert.hypotheses),
        "lead": lead_phrase(alert.hypotheses),
    }


def site_latest(ws: Store, site: Site, alerts: Sequence[Alert]) -> dict[str, Any]:
    """A site's line on the home page: the date of its last image and the state of its latest alert."""
    observations = ws.observations(site.id)
    last_image = max((o.acquired for o in observations), default=None)
    latest = max(alerts, key=lambda a: (a.acquired, a.created), default=None)
    _, open_count = site_status(alerts)
    return {
        "id": site.id,
        "name": site.name,
        "country": site.country,
        "category": site.category,
        "approximate": site.approximate,
        "last_image": serialize.iso(last_image) if last_image is not None else None,
        "last_image_text": words.when(last_image) if last_image is not None else "no image yet",
        "latest_alert_state": latest.state.value if latest is not None else None,
        "latest_alert_text": words.human_name(latest.state.value) if latest is not None else "no alerts",
        "latest_alert_id": latest.id if latest is not None else None,
        "open_alerts": open_count,
    }


def morning_queue(ws: Store, *, last_visit: datetime | None) -> dict[str, Any]:
    """The analyst's morning: the alerts nobody has triaged yet (top priority first, then newest, then
    by p; those a site's benign policy holds back are only counted), each
    marked new when it was raised after ``last_visit`` (all are new on a first visit), and per
    site the last image's date and its latest alert's state."""
    sites = {site.id: site for site in ws.sites()}
    by_site: dict[str, list[Alert]] = defaultdict(list)
    for alert in ws.alerts():
        by_site[alert.site_id].append(alert)
    untriaged = [a for alerts in by_site.values() for a in alerts if a.state is AlertState.NEW]
    settings = ws.settings
    holding = [held(a, settings.benign_policy_for(a.site_id)) for a in untriaged]
    held_back = [a for a, h in zip(untriaged, holding, strict=True) if h]
    waiting = sorted((a for a, h in zip(untriaged, holding, strict=True) if not h), key=_queue_order)
    items = [queue_item(a, sites.get(a.site_id), last_visit=last_visit) for a in waiting]
    return {
        "last_visit": serialize.iso(last_visit) if last_visit is not None else None,
        "last_visit_text": words.when(last_visit) if last_visit is not None else None,
        "new_count": sum(1 for item in items if item["new"]),
        "held_count": len(held_back),
        "items": items,
        "sites": [site_latest(ws, site, by_site.get(site.id, [])) for site in sites.values()],
    }


def _outside_band(name: str, value: float, band: dict[str, float]) -> bool:
    """Whether ``value`` lies beyond the display band, by more than the indicator's smallest
    meaningful difference (a count of 1 where 0 is usual is not a spike)."""
    try:
        floor = indicator_spec(name).floor
    except UnsupportedInputError:
        floor = 0.0
    centre = band["centre"]
    reach = max(band["high"] - centre, centre - band["low"], _BAND_WIDTH * floor)
    return abs(value - centre) > _FAR * reach


def unalerted_spikes(
    site: Site,
    observations: Sequence[Observation],
    indicators: Sequence[IndicatorValue],
    alerts: Sequence[Alert],
    *,
    false_alarm_rate: float,
    config: BaselineConfig | None = None,
) -> list[dict[str, Any]]:
    """Values far outside their display band that raised no alert, each with the reason the stored
    data gives: the image was not scored (its problem), the zone was poorly seen (quality under the
    monitor's minimum), the site was still in warm-up (fewer earlier observed images than the
    monitor needs), or the site's alert on the same image already covers it. Otherwise the monitor
    scored the image and raised nothing, so the site's combined evidence stayed under the alert
    level: said so, without guessing which part of the test it missed (that is not stored).

    ``config`` is the monitor's baseline settings (its defaults unless given)."""
    config = config or BaselineConfig()
    seen = {
        v.observation_id for v in indicators if v.value is not None and v.quality >= config.min_quality
    }
    earlier_seen: dict[str, int] = {}
    count = 0
    for observation in observations:
        earlier_seen[observation.id] = count
        count += observation.id in seen
    alerted = {(a.observation_id, a.zone_id, a.indicator) for a in alerts}
    site_alert = {a.observation_id: a for a in alerts}
    out = []
    for entry in series(indicators, alerts, observations, site):
        band = entry["baseline"]
        if band is None:
            continue
        for index, value, quality in zip(entry["observation"], entry["value"], entry["quality"], strict=True):
            observation = observations[index]
            if value is None or not _outside_band(entry["name"], value, band):
                continue
            if (observation.id, entry["zone_id"], entry["name"]) in alerted:
                continue
            reason = _spike_reason(observation, quality, earlier_seen[observation.id], site_alert, site,
                                   config, false_alarm_rate)
            out.append({
                "observation_id": observation.id,
                "observation": index,
                "acquired": serialize.iso(observation.acquired),
                "acquired_text": words.when(observation.acquired),
                "zone_id": entry["zone_id"],
                "zone_name": words.human_name(entry["zone_id"], site),
                "indicator": entry["name"],
                "indicator_name": words.human_name(entry["name"]),
                "value": value,
                "value_text": words.amount(entry["name"], value),
                "usual_text": words.amount(entry["name"], band["centre"]),
                "reason": reason,
            })
    return out


def _spike_reason(
    observation: Observation,
    quality: float,
    earlier: int,
    site_alert: dict[str, Alert],
    site: Site,
    config: BaselineConfig,
    false_alarm_rate: float,
) -> str:
    if observation.problem:
        return f"not scored: {observation.problem}"
    if quality < config.min_quality:
        return (f"not alerted: poor visibility (quality {quality:.1f}, under the {config.min_quality:g} "
                "the monitor needs)")
    if earlier < config.min_history:
        return (f"not alerted: within warm-up ({earlier} earlier images seen; the monitor alerts from "
                f"{config.min_history})")
    alert = site_alert.get(observation.id)
    if alert is not None:
        return (f"site under alert already: its alert on this image names "
                f"{words.human_name(alert.indicator)} in {words.human_name(alert.zone_id, site)}")
    return (f"not alerted: scored with the site's other zones and indicators, the combined evidence "
            f"stayed under the alert level (α = {false_alarm_rate:g})")


def viewer_observations(ws: Store, site_id: str) -> list[dict[str, Any]]:
    """Every observation of a site, oldest first, with what the evidence viewer's caption and date
    strip show: date (UTC, to the minute), sensor, GSD, off-nadir angle, valid fraction over the site.

    The valid fraction is measured on the chip over the site; the scene's cloud cover is the
    provider's figure for the whole scene, which can read 0 % over a site that was masked.
    """
    scenes: dict[str, Scene] = {}
    out = []
    for observation in ws.observations(site_id):
        scene = scenes.get(observation.scene_id)
        if scene is None:
            scene = scenes[observation.scene_id] = ws.scene(observation.scene_id)
        out.append(
            {
                "id": observation.id,
                "acquired": words.when(observation.acquired),
                "day": observation.acquired.strftime("%Y-%m-%d"),
                "sensor": scene.sensor,
                "gsd": scene.gsd,
                "off_nadir": scene.off_nadir,
                "cloud_cover": scene.cloud_cover,
                "valid_fraction": observation.valid_fraction,
                "problem": observation.problem,
                "evidence": f"/api/observations/{quote(observation.id, safe='')}/evidence.png",
            }
        )
    return out


def zone_seen(ws: Store, observation_id: str | None, site: Site, zone_id: str | None) -> float | None:
    """Share of zone ``zone_id`` that the chip of ``observation_id`` saw (its valid pixels over the
    zone); None without a zone or an observation, or when the chip cannot be read.

    A scene's cloud cover is the provider's figure for the whole scene; a launch pad masked in the
    chip reads 0 % there, and this is the figure that says so.
    """
    zone = next((z for z in site.zones if z.id == zone_id), None)
    if zone is None or observation_id is None:
        return None
    from sitewatch.imagery.chips import chip_grid, read_chip
    from sitewatch.imagery.grid import rasterize_polygon

    path = ws.chip_path(ws.observation(observation_id))
    try:
        grid = chip_grid(path)
        valid = read_chip(path).valid
    except (SitewatchError, OSError):
        return None
    inside = rasterize_polygon(grid, zone.geometry, all_touched=True)
    return float(valid[inside].mean()) if inside.any() else None
