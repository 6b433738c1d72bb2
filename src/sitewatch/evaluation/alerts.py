"""How good are the alerts? Event recall, false alarms and lead time over many simulated seeds.

Rendering full images for many seeds is slow, so the main evaluation runs at the
**indicator level**: an indicator simulator derived from a scenario produces, per site,
zone and revisit, what the detectors would measure, and the real monitoring engine
scores it. The simulator (:func:`simulate_site`) uses the scenario's own revisit
schedule, cloud model, routine traffic (Poisson counts with weekday factors) and
events (object counts per phase, structures built or removed), and adds:

* detection noise: each object is found with probability ``DETECTION_RATE``, and each
  zone and class gets Poisson(``FALSE_POSITIVES``) spurious detections;
* changed area against a composite reference: the footprints (with shadow) of the
  objects present, plus the change in standing structures against the reference's
  dates, plus log-normal background change (misregistration, illumination);
* visibility from the cloud model: objects under cloud are not seen (each is in the clear part
  of its zone with the zone's visible fraction), and, as in the pipeline, counts and areas from
  the clear part are scaled up to the whole zone and weighted by the pipeline's quality weight;
  with the pipeline's floors, changed area needs ``CHANGE_MIN_VISIBLE`` of the zone visible
  and counts ``MIN_VISIBLE_FOR_COUNTS``;
* ``lead_in_days`` of routine history before the scenario starts, so sites have a
  baseline (the image-level demo instead starts on the scenario's own start date);
* ``inject`` extra events per seed, each a copy of the scenario's largest expected event
  phase (the reference Sanumdong surge) scaled by 1–1.5, placed at a random site, zone
  layout and date in the second half of the history: they measure recall "for events at
  least as large as the reference surge".

Reported per false-alarm rate: recall of expected events (scenario and injected),
alerts per quiet observation (no event of any kind), alerts on busy-but-routine days,
and lead time (observations from an event's first observation to its first alert).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from pyproj import Geod

from sitewatch.analytics.indicators import MIN_VISIBLE_FOR_COUNTS, quality_weight
from sitewatch.catalog.context import Context, load_context
from sitewatch.core.indicators import CHANGED_AREA, count_indicator
from sitewatch.core.types import Hypothesis, Site
from sitewatch.imagery.simulate.activity import structure_progress
from sitewatch.imagery.simulate.scenario import Event, ObjectCount, Phase, Scenario, SiteScenario
from sitewatch.imagery.simulate.schedule import acquisition_time, revisit_dates
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.monitor.alerting import IndicatorHistory, SiteScores, decide, hypotheses_at, score_history
from sitewatch.monitor.engine import EngineConfig
from sitewatch.monitor.policy import top_priority
from sitewatch.store.settings import Settings

DETECTION_RATE = 0.9
FALSE_POSITIVES = 0.2
FOOTPRINT_M2 = {"car": 8.0, "large_vehicle": 30.0, "tanker_truck": 30.0, "rail_car": 45.0, "crane": 150.0}
"""Ground footprint of each object class in m², shadow included."""
SHADOW_FACTOR = 1.5
BACKGROUND_CHANGE = 0.004
"""Median share of a zone's area read as change on a quiet day."""
CHANGE_MIN_VISIBLE = Settings().min_valid_fraction
"""The pipeline's default floor for pixel-change indicators (the workspace's ``min_valid_fraction``)."""
METHOD = "indicator-level simulation"
EXPECTED_PATTERNS: dict[str, frozenset[str]] = {
    "launch_preparation": frozenset({"launch_preparation"}),
    "staff_gathering": frozenset({"routine_gathering"}),
    "holiday_gathering": frozenset({"holiday"}),
    "routine_delivery": frozenset({"routine_delivery"}),
    "dismantling": frozenset({"dismantling"}),
    "rebuilding": frozenset({"construction"}),
    "construction": frozenset({"construction"}),
    "production_surge": frozenset({"production_surge"}),
    "injected_surge": frozenset({"launch_preparation", "production_surge"}),
}
"""The activity pattern(s) a correct leading hypothesis names for each scenario event kind. An injected
surge is the reference launch preparation moved to random zones of any site (a nuclear site has no
launch preparation pattern), so either massing pattern is right for it; its zones are drawn at random
(rail cars may land in a parking), so it is reported apart and left out of the pooled accuracy."""
INJECTED_KIND = "injected_surge"
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True, slots=True)
class EventWindow:
    """Ground truth of one event at a site."""

    site_id: str
    id: str
    start: date
    end: date
    alert_expected: bool
    injected: bool
    objects: int
    """Objects the event adds on its busiest day (its size)."""
    zones: tuple[str, ...] = ()
    """Zones the event touches."""
    kind: str = ""
    """The scenario's event kind (launch_preparation, staff_gathering, ...)."""

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class SimulatedSite:
    """One site's simulated indicator history and its events."""

    site: Site
    history: IndicatorHistory
    events: tuple[EventWindow, ...]


def _zone_areas(site: Site) -> dict[str, float]:
    return {z.id: abs(_GEOD.geometry_area_perimeter(z.geometry)[0]) for z in site.zones}


def _phase_size(phase: Phase) -> int:
    return sum(o.count for o in phase.objects)


def reference_surge(scenario: Scenario) -> tuple[Event, Phase]:
    """The scenario's largest expected event phase (by objects): the reference surge."""
    best: tuple[int, Event, Phase] | None = None
    for plan in scenario.sites:
        for event in plan.events:
            for phase in event.phases if event.alert_expected else ():
                if best is None or _phase_size(phase) > best[0]:
                    best = (_phase_size(phase), event, phase)
    if best is None:
        raise ValueError(f"scenario {scenario.name!r} has no expected event with objects to copy")
    return best[1], best[2]


def _injected_events(plan: SiteScenario, site: Site, days: Sequence[date], surge: tuple[Event, Phase],
                     count: int, rng: np.random.Generator) -> list[Event]:
    event, phase = surge
    zones = [z.id for z in site.zones]
    busy = [(e.start - timedelta(days=14), e.end + timedelta(days=14)) for e in plan.events]
    candidates = [d for d in days[len(days) // 2:] if not any(a <= d <= b for a, b in busy)]
    injected: list[Event] = []
    source_zones = sorted({o.zone or event.zone for o in phase.objects})
    for index in range(min(count, len(candidates))):
        start = candidates[int(rng.integers(len(candidates)))]
        candidates = [d for d in candidates if abs((d - start).days) > 14]
        mapping = dict(zip(source_zones, rng.permutation(zones)[: len(source_zones)].tolist(), strict=False))
        scale = float(rng.uniform(1.0, 1.5))
        objects = tuple(
            ObjectCount(o.object_class, math.ceil(o.count * scale),
                        mapping.get(o.zone or event.zone, zones[0]))
            for o in phase.objects
        )
        length = (phase.end - phase.start).days
        injected.append(Event(
            id=f"injected_{site.id}_{index}", zone=objects[0].zone or zones[0], kind="injected_surge",
            start=start, end=start + timedelta(days=length), alert_expected=True,
            phases=(Phase(start, start + timedelta(days=length), objects),),
        ))
        if not candidates:
            break
    return injected


def simulate_site(scenario: Scenario, plan: SiteScenario, seed: int, *, lead_in_days: int = 365,
                  inject: int = 0, surge: tuple[Event, Phase] | None = None) -> SimulatedSite:
    """Indicator history of one site of ``scenario`` for ``seed`` (see the module docstring)."""
    site = site_by_id(plan.site_id)
    rng = np.random.default_rng([seed, zlib.crc32(site.id.encode()), 11])
    extended = Scenario(
        name=scenario.name, description=scenario.description,
        start=scenario.start - timedelta(days=lead_in_days), end=scenario.end, sensor=scenario.sensor,
        platform=scenario.platform, gsd=scenario.gsd, revisit_days=scenario.revisit_days,
        acquisition_time=scenario.acquisition_time, clouds=scenario.clouds, sites=scenario.sites,
    )
    days = list(revisit_dates(extended, plan, rng))
    events = list(plan.events)
    if inject:
        events += _injected_events(plan, site, days, surge or reference_surge(scenario), inject, rng)
    full_plan = SiteScenario(plan.site_id, plan.layout, plan.traffic, tuple(events), plan.pinned_dates)
    areas = _zone_areas(site)
    zones = list(areas)
    classes = sorted({t.object_class for t in plan.traffic}
                     | {o.object_class for e in events for p in e.phases for o in p.objects})
    series = [(zone, name) for zone in zones for name in [CHANGED_AREA.name, *map(count_indicator, classes)]]
    row = {key: i for i, key in enumerate(series)}
    values = np.full((len(series), len(days)), np.nan)
    quality = np.zeros((len(series), len(days)))
    structures = {s.id: s for s in plan.layout.structures}
    structure_area = {s.id: s.place.size[0] * s.place.size[1] for s in plan.layout.structures}
    clouds = scenario.clouds
    cloud_levels = np.array([clouds.clear, clouds.partial, clouds.mostly, clouds.full])
    cloud_levels = cloud_levels / cloud_levels.sum()
    acquired = []
    for t, day in enumerate(days):
        acquired.append(acquisition_time(extended, day, rng))
        level = int(rng.choice(4, p=cloud_levels)) if day not in plan.pinned_dates else 0
        visible_site = (1.0, rng.uniform(0.5, 0.95), rng.uniform(0.1, 0.5), rng.uniform(0.0, 0.1))[level]
        present: dict[tuple[str, str], int] = {}
        for traffic in plan.traffic:
            mean = traffic.mean * traffic.weekdays[day.weekday()]
            key = (traffic.zone, traffic.object_class)
            present[key] = present.get(key, 0) + (int(rng.poisson(mean)) if mean > 0 else 0)
        for event in events:
            for phase in event.phases:
                if phase.start <= day <= phase.end:
                    for obj in phase.objects:
                        key = (obj.zone or event.zone, obj.object_class)
                        present[key] = present.get(key, 0) + obj.count
        now = structure_progress(full_plan, day)
        reference_day = days[max(0, t - 3)]
        before = structure_progress(full_plan, reference_day)
        for zone in zones:
            visible = float(np.clip(visible_site + rng.normal(0, 0.05), 0.0, 1.0))
            if visible < min(MIN_VISIBLE_FOR_COUNTS, CHANGE_MIN_VISIBLE):
                continue
            in_view = {c: int(rng.binomial(n, visible)) for (z, c), n in present.items() if z == zone}
            changed = sum(FOOTPRINT_M2.get(c, 30.0) * n for c, n in in_view.items()) / visible
            changed += sum(abs(now[s] - before[s]) * structure_area[s] * SHADOW_FACTOR
                           for s in now if structures[s].place.zone == zone)
            changed += areas[zone] * BACKGROUND_CHANGE * float(rng.lognormal(0.0, 0.5))
            if visible >= CHANGE_MIN_VISIBLE:
                values[row[(zone, CHANGED_AREA.name)], t] = changed
            for class_name in classes:
                found = (int(rng.binomial(in_view.get(class_name, 0), DETECTION_RATE))
                         + int(rng.poisson(FALSE_POSITIVES * visible)))
                values[row[(zone, count_indicator(class_name))], t] = found / visible
            names = [count_indicator(c) for c in classes]
            names += [CHANGED_AREA.name] if visible >= CHANGE_MIN_VISIBLE else []
            quality[[row[(zone, name)] for name in names], t] = quality_weight(
                visible, gsd=site.gsd, site_gsd=site.gsd, haze=None)
    observation_ids = tuple(f"{site.id}-{a:%Y%m%dT%H%M%S}" for a in acquired)
    history = IndicatorHistory(site.id, observation_ids, tuple(acquired), tuple(series), values, quality)
    windows = tuple(
        EventWindow(site.id, e.id, e.start, e.end, e.alert_expected, e.kind == "injected_surge",
                    max((_phase_size(p) for p in e.phases), default=0), e.zones, e.kind)
        for e in events
    )
    return SimulatedSite(site, history, windows)


def proportion(hits: int, trials: int) -> dict[str, float | int]:
    """A share with its binomial standard error (NaN for no trials)."""
    if not trials:
        return {"value": float("nan"), "standard_error": float("nan"), "hits": hits, "trials": trials}
    share = hits / trials
    return {"value": share, "standard_error": math.sqrt(share * (1 - share) / trials), "hits": hits,
            "trials": trials}


@dataclass(frozen=True, slots=True)
class KindAccuracy:
    """How often the leading hypothesis of an event's first instant alert named its activity."""

    kind: str
    alerted: int
    """Events of this kind with at least one instant alert."""
    correct: int
    """Of those, events whose first alert's leading hypothesis is an expected pattern of the kind."""
    expected: tuple[str, ...]
    """The patterns counted right (empty: the kind has no expected pattern; not scored)."""
    leading: tuple[tuple[str, int], ...]
    """Leading pattern of each first alert, with counts, most frequent first."""
    benign_led: int = 0
    """Events whose first alert leads with a benign pattern (a policy ranking benign alerts lower
    would rank these lower)."""

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "expected_patterns": list(self.expected),
                "top1_accuracy": proportion(self.correct, self.alerted) if self.expected else None,
                "alerted_events": self.alerted, "led_by_benign": self.benign_led,
                "leading_hypotheses": dict(self.leading)}


@dataclass(frozen=True, slots=True)
class RateSummary:
    """Alert quality at one false-alarm rate, pooled over seeds."""

    false_alarm_rate: float
    events: int
    events_detected: int
    large_events: int
    large_events_detected: int
    quiet_observations: int
    quiet_alerts: int
    quiet_slow_build_alerts: int
    routine_observations: int
    routine_alerts: int
    lead_times: tuple[int, ...]
    missed: tuple[str, ...] = field(default=())
    seen_events: int = 0
    """Expected events with at least one observation where one of their zones was observed."""
    seen_events_detected: int = 0
    seen_large_events: int = 0
    """Large expected events (at least the reference surge's objects) seen at least once."""
    seen_large_events_detected: int = 0
    routine_top_priority_alerts: int = 0
    """Routine busy observations raising a top-priority alert: an instant alert whose leading hypothesis
    is not benign, or a slow-build alert (which has no hypotheses)."""
    hypothesis_accuracy: tuple[KindAccuracy, ...] = ()
    seen_large_events_top_priority: int = 0
    """Large events seen whose alerts include a top-priority one: detected under the ``hold`` policy,
    where benign-led alerts are held back (:mod:`sitewatch.monitor.policy`)."""
    quiet_held_alerts: int = 0
    """Alerts on quiet observations led by a benign hypothesis: held back under ``hold``, yet counted in
    the false-alarm rate, which stays the honest one under either policy."""

    @property
    def top1_accuracy(self) -> dict[str, float | int]:
        """Leading-hypothesis accuracy pooled over the scenario's events of every scored kind (injected
        surges apart, see :data:`EXPECTED_PATTERNS`)."""
        scored = [k for k in self.hypothesis_accuracy if k.expected and k.kind != INJECTED_KIND]
        return proportion(sum(k.correct for k in scored), sum(k.alerted for k in scored))

    @property
    def seen_large_event_recall(self) -> float:
        return (self.seen_large_events_detected / self.seen_large_events if self.seen_large_events
                else float("nan"))

    @property
    def recall(self) -> float:
        return self.events_detected / self.events if self.events else float("nan")

    @property
    def seen_event_recall(self) -> float:
        return self.seen_events_detected / self.seen_events if self.seen_events else float("nan")

    @property
    def large_event_recall(self) -> float:
        return self.large_events_detected / self.large_events if self.large_events else float("nan")

    @property
    def false_alarms_per_quiet_observation(self) -> float:
        return self.quiet_alerts / self.quiet_observations if self.quiet_observations else float("nan")

    @property
    def false_alarm_standard_error(self) -> float:
        n = self.quiet_observations
        return math.sqrt(self.false_alarm_rate * (1 - self.false_alarm_rate) / n) if n else float("nan")

    @property
    def median_lead_time(self) -> float:
        return float(np.median(self.lead_times)) if self.lead_times else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "false_alarm_rate": self.false_alarm_rate,
            "events": self.events,
            "events_detected": self.events_detected,
            "event_recall": self.recall,
            "seen_events": self.seen_events,
            "seen_events_detected": self.seen_events_detected,
            "seen_event_recall": self.seen_event_recall,
            "large_events": self.large_events,
            "large_events_detected": self.large_events_detected,
            "large_event_recall": self.large_event_recall,
            "seen_large_events": self.seen_large_events,
            "seen_large_events_detected": self.seen_large_events_detected,
            "seen_large_event_recall": self.seen_large_event_recall,
            "quiet_observations": self.quiet_observations,
            "quiet_alerts": self.quiet_alerts,
            "false_alarms_per_quiet_observation": self.false_alarms_per_quiet_observation,
            "false_alarm_standard_error": self.false_alarm_standard_error,
            "quiet_slow_build_alerts": self.quiet_slow_build_alerts,
            "routine_busy_observations": self.routine_observations,
            "routine_busy_alerts": self.routine_alerts,
            "routine_busy_alerted": proportion(self.routine_alerts, self.routine_observations),
            "routine_busy_top_priority": proportion(self.routine_top_priority_alerts,
                                                    self.routine_observations),
            "top1_hypothesis_accuracy": self.top1_accuracy,
            "under_hold_policy": {
                "seen_large_event_recall": proportion(self.seen_large_events_top_priority,
                                                      self.seen_large_events),
                "quiet_alerts_held": self.quiet_held_alerts,
                "false_alarms_per_quiet_observation": self.false_alarms_per_quiet_observation,
                "routine_busy_notified": proportion(self.routine_top_priority_alerts,
                                                    self.routine_observations),
            },
            "top1_hypothesis_accuracy_by_kind": [k.as_dict() for k in self.hypothesis_accuracy],
            "median_lead_time_observations": self.median_lead_time,
            "lead_times": list(self.lead_times),
            "missed_events": list(self.missed),
        }


def _kind_accuracy(firsts: Sequence[tuple[str, Hypothesis]]) -> tuple[KindAccuracy, ...]:
    """Per event kind, from (kind, leading hypothesis of the event's first alert) pairs."""
    result = []
    for kind in sorted({k for k, _ in firsts}):
        led = [h for k, h in firsts if k == kind]
        leading = Counter(h.pattern for h in led)
        expected = EXPECTED_PATTERNS.get(kind, frozenset())
        result.append(KindAccuracy(kind, len(led), sum(leading[p] for p in expected), tuple(sorted(expected)),
                                   tuple(leading.most_common()), sum(h.benign for h in led)))
    return tuple(result)


def _summarise(alpha: float, sites: Sequence[SimulatedSite], alerted: Sequence[np.ndarray],
               slow: Sequence[np.ndarray], surge_size: int,
               hypotheses: Sequence[dict[int, tuple[Hypothesis, ...]]]) -> RateSummary:
    counts = dict.fromkeys(("events", "detected", "large", "large_detected", "quiet", "quiet_alerts",
                            "quiet_slow", "routine", "routine_alerts", "routine_top", "seen", "seen_detected",
                            "seen_large", "seen_large_detected", "seen_large_top", "quiet_held"), 0)
    lead_times: list[int] = []
    missed: list[str] = []
    firsts: list[tuple[str, Hypothesis]] = []
    for simulated, instant, building, ranked in zip(sites, alerted, slow, hypotheses, strict=True):
        days = [a.date() for a in simulated.history.acquired]
        any_alert = instant | building
        # One alert per observation, as the monitor builds them: the instant one, else the slow build.
        top = np.array([bool(any_alert[t]) and (not instant[t] or top_priority(ranked.get(t, ())))
                        for t in range(len(days))], dtype=bool)
        for t, day in enumerate(days):
            covering = [e for e in simulated.events if e.covers(day)]
            if not covering:
                counts["quiet"] += 1
                counts["quiet_alerts"] += int(instant[t])
                counts["quiet_slow"] += int(building[t] and not instant[t])
                counts["quiet_held"] += int(any_alert[t] and not top[t])
            elif not any(e.alert_expected for e in covering):
                counts["routine"] += 1
                counts["routine_alerts"] += int(any_alert[t])
                counts["routine_top"] += int(top[t])
        for event in simulated.events:
            during = [t for t, day in enumerate(days) if event.covers(day)]
            first = next((t for t in during if instant[t] and ranked.get(t)), None)
            if first is not None:
                firsts.append((event.kind, ranked[first][0]))
            if not event.alert_expected or not during:
                continue
            large = event.objects >= surge_size
            rows = [i for i, (zone, _) in enumerate(simulated.history.series) if zone in event.zones]
            seen = any(not np.isnan(simulated.history.values[rows, t]).all() for t in during)
            counts["seen"] += int(seen)
            counts["seen_large"] += int(seen and large)
            counts["events"] += 1
            counts["large"] += int(large)
            hits = [t for t in during if any_alert[t]]
            if hits:
                counts["detected"] += 1
                counts["large_detected"] += int(large)
                counts["seen_detected"] += int(seen)
                counts["seen_large_detected"] += int(seen and large)
                counts["seen_large_top"] += int(seen and large and any(top[t] for t in hits))
                lead_times.append(during.index(hits[0]))
            else:
                missed.append(f"{event.site_id}:{event.id}@{event.start.isoformat()}")
    return RateSummary(alpha, counts["events"], counts["detected"], counts["large"], counts["large_detected"],
                       counts["quiet"], counts["quiet_alerts"], counts["quiet_slow"], counts["routine"],
                       counts["routine_alerts"], tuple(lead_times), tuple(missed), counts["seen"],
                       counts["seen_detected"], counts["seen_large"], counts["seen_large_detected"],
                       counts["routine_top"], _kind_accuracy(firsts), counts["seen_large_top"],
                       counts["quiet_held"])


@dataclass(frozen=True, slots=True)
class AlertEvaluation:
    """The result of ``sitewatch eval alerts``."""

    scenario: str
    seeds: tuple[int, ...]
    lead_in_days: int
    injected_per_site: int
    surge_objects: int
    rates: tuple[RateSummary, ...]
    method: str = METHOD
    calendars: bool = True
    """Whether the built-in holiday calendars raised the holiday pattern's prior on holidays."""

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "calendars": self.calendars,
            "method_note": (
                "Indicator-level simulation derived from the scenario (revisits, clouds, traffic, events), "
                "with detection noise and background change; the real monitoring engine scores it. "
                f"{self.lead_in_days} days of routine history precede the scenario start; "
                f"{self.injected_per_site} copies per site of the reference surge "
                f"({self.surge_objects} objects) scaled 1-1.5x are injected."
            ),
            "scenario": self.scenario,
            "seeds": list(self.seeds),
            "lead_in_days": self.lead_in_days,
            "injected_per_site": self.injected_per_site,
            "reference_surge_objects": self.surge_objects,
            "rates": [r.as_dict() for r in self.rates],
        }


def _alerts_with_triage(sites: Sequence[SimulatedSite], config: EngineConfig,
                        triage: bool) -> tuple[list[np.ndarray], list[np.ndarray], list[SiteScores]]:
    """Instant and slow-build alerts per site, BH across the watchlist day, with modelled triage.

    Verdicts only change baselines after the alert, so re-scoring with the verdicts of the
    previous round fixes the timeline from the front; a few rounds reach the fixed point.
    """
    feedback: list[dict[str, int]] = [{} for _ in sites]
    for _ in range(6 if triage else 1):
        scored = [score_history(s.history, config, f, s.site.zones)
                  for s, f in zip(sites, feedback, strict=True)]
        instant = decide(scored, config.instant_rate)  # the monitor's own decision, BH per watchlist day
        slow = [sc.result.slow_build[0].any(axis=0) for sc in scored]
        verdicts = []
        for simulated, raised, building in zip(sites, instant, slow, strict=True):
            words = {}
            for t in np.flatnonzero(raised | building):
                day = simulated.history.acquired[t].date()
                expected = any(e.alert_expected and e.covers(day) for e in simulated.events)
                words[simulated.history.observation_ids[t]] = -1 if expected else 1
            verdicts.append(words)
        if verdicts == feedback:
            break
        feedback = verdicts
    return instant, slow, scored


def _ranked_hypotheses(sites: Sequence[SimulatedSite], instant: Sequence[np.ndarray],
                       scored: Sequence[SiteScores], config: EngineConfig,
                       context: Context | None) -> list[dict[int, tuple[Hypothesis, ...]]]:
    """The ranked hypotheses of every instant alert, by observation index, per site, with the day's
    holidays in ``context`` raising the patterns they name."""
    return [{int(t): hypotheses_at(simulated.site, scores, int(t), config, context=context)
             for t in np.flatnonzero(raised)}
            for simulated, raised, scores in zip(sites, instant, scored, strict=True)]


def evaluate_alerts(
    scenario: Scenario,
    seeds: Sequence[int],
    *,
    false_alarm_rates: Sequence[float] = (0.01, 0.05),
    lead_in_days: int = 365,
    inject: int = 2,
    triage: bool = True,
    calendars: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> AlertEvaluation:
    """Simulate every seed at the indicator level and score alerts at each false-alarm rate.

    With ``triage``, analysts are modelled as resolving every alert before the next
    observation: confirmed during an expected event (kept out of the baseline), benign or
    false alarm otherwise (kept in), as the lifecycle rules say.
    """
    if not seeds:
        raise ValueError("give at least one seed, e.g. --seeds 100-119")
    surge = reference_surge(scenario)
    surge_size = _phase_size(surge[1])
    pooled: dict[float, list[tuple[list[SimulatedSite], list[np.ndarray], list[np.ndarray],
                                   list[dict[int, tuple[Hypothesis, ...]]]]]] = {
        a: [] for a in false_alarm_rates
    }
    context = load_context() if calendars else None
    for done, seed in enumerate(seeds, start=1):
        sites = [simulate_site(scenario, plan, seed, lead_in_days=lead_in_days, inject=inject, surge=surge)
                 for plan in scenario.sites]
        for alpha in false_alarm_rates:
            config = EngineConfig(false_alarm_rate=alpha)
            instant, slow, scored = _alerts_with_triage(sites, config, triage)
            ranked = _ranked_hypotheses(sites, instant, scored, config, context)
            pooled[alpha].append((sites, instant, slow, ranked))
        if progress is not None:
            progress(done, len(seeds))
    rates = []
    for alpha in false_alarm_rates:
        all_sites = [s for sites, _, _, _ in pooled[alpha] for s in sites]
        all_instant = [a for _, instant, _, _ in pooled[alpha] for a in instant]
        all_slow = [a for _, _, slow, _ in pooled[alpha] for a in slow]
        all_ranked = [r for _, _, _, ranked in pooled[alpha] for r in ranked]
        rates.append(_summarise(alpha, all_sites, all_instant, all_slow, surge_size, all_ranked))
    return AlertEvaluation(scenario.name, tuple(seeds), lead_in_days, inject, surge_size, tuple(rates),
                           calendars=calendars)


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from ``"1,2,5"``, ``"100-119"`` or a mix ``"1-3,9"``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                low, high = part.split("-", 1)
                if int(high) < int(low):
                    raise ValueError
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"seeds {text!r}: {part!r} is not an integer or a range like 100-119") from None
    if not seeds:
        raise ValueError(f"seeds {text!r} name no seed; write e.g. 100-119 or 1,2,3")
    return tuple(seeds)

