"""The monitoring pass over a workspace: new observations in, indicators and alerts out.

For each site, each observation without indicators yet, in time order:

1. the reference is a per-pixel median composite of the site's last
   ``reference_size`` earlier observations with at least ``reference_valid`` of the
   grid visible (a robust picture of "normal", unlike a single earlier image that may
   hold its own cars, clouds or shadows);
2. the observation is co-registered and radiometrically matched to the reference and
   the change detector runs; object detection runs too when a detector is installed;
3. zone indicators are extracted and stored (replacing any earlier ones).

Then every site's whole indicator history is scored from the store (cheap, so it is
always redone: analysts' verdicts since the last pass are taken into account and the
result equals a full re-run), Benjamini–Hochberg decides per watchlist day, and alerts
not yet in the store are added with their explanation. Observations ingested out of
order (older than one already processed) make the pass recompute that site's
indicators from that observation on, since later references depend on it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import rasterio

from sitewatch.analytics.change import get_change_detector
from sitewatch.analytics.change.regions import change_regions
from sitewatch.analytics.indicators import (
    ObservationEvidence,
    ZoneMasks,
    extract_indicators,
    zone_masks,
)
from sitewatch.core.errors import SitewatchError
from sitewatch.core.types import Alert, Detection, IndicatorValue, Observation, Site
from sitewatch.imagery.chips import Chip, read_chip
from sitewatch.imagery.coregister import CoregistrationError, coregister
from sitewatch.imagery.radiometry import RadiometryError, fit_radiometry
from sitewatch.monitor.alerting import IndicatorHistory, SiteScores, build_alerts, decide, score_history
from sitewatch.monitor.baselines import BaselineConfig
from sitewatch.monitor.engine import EngineConfig
from sitewatch.monitor.lifecycle import baseline_feedback
from sitewatch.pipeline.change import default_detector
from sitewatch.store.workspace import Workspace

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(site_id, observations done, observations to do) after each observation."""


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    """Choices of one monitoring pass."""

    false_alarm_rate: float | None = None
    """α per site and observation; None: the workspace setting."""
    full: bool = False
    """Recompute every observation's indicators, not only new ones."""
    change_detector: str | None = None
    """Registry name of the change detector; None: the project's choice for the site's GSD."""
    detect_objects: bool | None = None
    """Run object detection: True, False, or None for "when a detector is installed"."""
    reference_size: int = 5
    reference_valid: float = 0.7
    baseline: BaselineConfig = field(default_factory=BaselineConfig)


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    """What the pass did at one site."""

    site_id: str
    site_name: str
    observations: int
    processed: int
    new_alerts: tuple[Alert, ...]
    alerts_total: int


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """What one monitoring pass did, per site."""

    sites: tuple[SiteOutcome, ...]
    false_alarm_rate: float
    change_detector: str
    """The detector asked for, or "default" (the project's choice per site GSD)."""
    object_detection: bool

    @property
    def new_alerts(self) -> list[Alert]:
        return [a for s in self.sites for a in s.new_alerts]


class _ChipCache:
    """The last few chips read, so reference composites do not re-read files."""

    def __init__(self, workspace: Workspace, size: int) -> None:
        self.workspace = workspace
        self.size = size
        self.chips: OrderedDict[str, Chip] = OrderedDict()

    def get(self, observation: Observation) -> Chip:
        if observation.id in self.chips:
            self.chips.move_to_end(observation.id)
            return self.chips[observation.id]
        chip = read_chip(self.workspace.chip_path(observation))
        self.chips[observation.id] = chip
        while len(self.chips) > self.size:
            self.chips.popitem(last=False)
        return chip


def reference_composite(chips: Sequence[Chip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of ``chips`` over their valid pixels: (bands, rows, cols) float32 and valid mask."""
    valid = np.any(np.stack([c.valid for c in chips]), axis=0)
    if len(chips) == 1:
        return chips[0].array.astype(np.float32), chips[0].valid.copy()
    # Sort along a trailing axis (NaN last) and pick the middle valid value(s): nanmedian's speed
    # over millions of 5-long columns is poor.
    stack = np.stack([np.where(c.valid, c.array.astype(np.float32), np.nan) for c in chips], axis=-1)
    stack.sort(axis=-1)
    count = np.count_nonzero(~np.isnan(stack), axis=-1)
    low = np.take_along_axis(stack, (np.maximum(count - 1, 0) // 2)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(stack, np.minimum(count // 2, len(chips) - 1)[..., None], axis=-1)[..., 0]
    composite = 0.5 * (low + high)  # odd counts: the same middle value twice
    return np.nan_to_num(composite, nan=0.0).astype(np.float32), valid


def _grid_masks(workspace: Workspace, site: Site, observation: Observation) -> ZoneMasks:
    with rasterio.open(workspace.chip_path(observation)) as dataset:
        crs = dataset.crs.to_string() if dataset.crs is not None else f"EPSG:{site.utm_epsg}"
        return zone_masks(site, transform=dataset.transform, shape=(dataset.height, dataset.width), crs=crs)


def _object_detection_available() -> bool:
    try:
        from sitewatch.analytics.objects import get_detector

        get_detector()
    except (ImportError, SitewatchError, OSError) as error:
        log.info("object detection skipped: %s", error)
        return False
    return True


class _SiteIndicators:
    """Computes one site's indicators observation by observation."""

    def __init__(self, workspace: Workspace, site: Site, options: MonitorOptions, detect: bool) -> None:
        self.workspace = workspace
        self.site = site
        self.options = options
        self.detect = detect
        self.detector = get_change_detector(options.change_detector) if options.change_detector else None
        self.cache = _ChipCache(workspace, options.reference_size + 1)
        self.min_valid = workspace.settings.min_valid_fraction
        self.masks: ZoneMasks | None = None

    def evidence(self, observation: Observation, earlier: Sequence[Observation],
                 masks: ZoneMasks) -> ObservationEvidence:
        scene = self.workspace.scene(observation.scene_id)
        chip = self.cache.get(observation)
        good = [o for o in earlier if o.valid_fraction >= self.options.reference_valid]
        references = good[-self.options.reference_size:]
        detections: list[Detection] | None = None
        previous: list[Detection] | None = None
        if self.detect:
            from sitewatch.pipeline.detect import detect_observation

            detect_observation(self.workspace, observation)
            detections = self.workspace.detections(observation_id=observation.id)
            if references:
                previous = self.workspace.detections(observation_id=references[-1].id)
        if not references:
            return ObservationEvidence(valid=chip.valid, gsd=scene.gsd, detections=detections,
                                       haze=scene.cloud_cover)
        before, before_valid = reference_composite([self.cache.get(o) for o in references])
        after = chip.array.astype(np.float32)
        valid = chip.valid & before_valid
        try:
            after, after_valid, _ = coregister(before, after, valid_reference=before_valid,
                                               valid_moving=chip.valid)
        except CoregistrationError as refusal:
            # An unregistered pair reports edges as change: change is "not measured" here, not zero.
            log.info("%s: change not measured, co-registration refused (%s)", observation.id, refusal)
            return ObservationEvidence(valid=chip.valid, gsd=scene.gsd, detections=detections,
                                       reference_detections=previous, haze=scene.cloud_cover)
        valid = after_valid & before_valid
        try:
            after = fit_radiometry(before, after, valid=valid).apply(after)
        except RadiometryError as problem:
            log.info("%s: radiometry left as is (%s)", observation.id, problem)
        detector = self.detector or default_detector(self.site.gsd, before.shape[0])
        result = detector(before, after, valid=valid)
        by_zone = dict(zip(masks.zone_ids, masks.masks, strict=True)) if self.site.zones else None
        regions = change_regions(
            result, masks.transform, observation_id=observation.id,
            reference_observation_id=references[-1].id, zone_masks=by_zone,
        )
        self.workspace.replace_change_regions(observation.id, regions)
        brightness = (after - before).mean(axis=0)
        bands = {name.lower(): after[i] for i, name in enumerate(chip.bands)}
        return ObservationEvidence(
            valid=valid,
            gsd=scene.gsd,
            change_probability=result.probability,
            detections=detections,
            reference_detections=previous,
            brightness_change=brightness,
            bands=bands,
            haze=scene.cloud_cover,
        )

    def indicators(self, observation: Observation, earlier: Sequence[Observation]) -> list[IndicatorValue]:
        if self.masks is None:
            self.masks = _grid_masks(self.workspace, self.site, observation)
        if observation.valid_fraction < self.min_valid:
            evidence = ObservationEvidence(valid=np.zeros(self.masks.shape, bool), gsd=self.site.gsd)
        else:
            evidence = self.evidence(observation, earlier, self.masks)
        values = extract_indicators(self.site, observation, self.masks, evidence,
                                    min_visible_fraction=self.min_valid)
        if not values:  # nothing measurable yet: record "not observed" so the observation counts as done
            values = [IndicatorValue(observation.id, self.site.id, zone_id, "changed_area_m2", None, 0.0,
                                     observation.acquired) for zone_id in self.masks.zone_ids]
        return values


def _pending(observations: Sequence[Observation], processed: set[str], full: bool) -> int:
    """Index of the first observation to (re)compute; len(observations) when none."""
    if full:
        return 0
    for index, observation in enumerate(observations):
        if observation.id not in processed:
            return index
    return len(observations)


def run_monitor(workspace: Workspace, options: MonitorOptions | None = None, *,
                progress: Progress | None = None) -> MonitorReport:
    """One monitoring pass over every site of ``workspace`` (see the module docstring)."""
    options = options or MonitorOptions()
    alpha = options.false_alarm_rate if options.false_alarm_rate is not None \
        else workspace.settings.false_alarm_rate
    config = EngineConfig(false_alarm_rate=alpha, baseline=options.baseline)
    detect = _object_detection_available() if options.detect_objects is None else options.detect_objects
    sites = workspace.sites()
    processed_counts: dict[str, int] = {}
    totals: dict[str, int] = {}
    for site in sites:
        observations = workspace.observations(site.id)
        totals[site.id] = len(observations)
        done = {v.observation_id for v in workspace.indicators(site.id)}
        start = _pending(observations, done, options.full)
        todo = observations[start:]
        processed_counts[site.id] = len(todo)
        if not todo:
            continue
        computer = _SiteIndicators(workspace, site, options, detect)
        for count, observation in enumerate(todo, start=1):
            earlier = observations[:start + count - 1]
            workspace.replace_indicators(observation.id, computer.indicators(observation, earlier))
            if progress is not None:
                progress(site.id, count, len(todo))

    scored: list[SiteScores] = []
    for site in sites:
        values = workspace.indicators(site.id)
        alerts = workspace.alerts(site_id=site.id)
        feedback: dict[str, int] = {}
        for alert in alerts:  # confirmed anywhere keeps the observation out; else benign/false puts it in
            word, current = baseline_feedback(alert.state), feedback.get(alert.observation_id, 0)
            feedback[alert.observation_id] = -1 if -1 in (word, current) else max(word, current)
        scored.append(score_history(IndicatorHistory.from_values(site.id, values), config, feedback))
    decisions = decide(scored, config.instant_rate)

    created = datetime.now(UTC)
    outcomes = []
    for site, site_scores, decided in zip(sites, scored, decisions, strict=True):
        existing = workspace.alerts(site_id=site.id)
        known = {a.id for a in existing}
        built = build_alerts(site, site_scores, decided, config=config, earlier=existing, created=created)
        fresh = [a for a in built if a.id not in known]
        workspace.upsert_alerts(fresh)
        outcomes.append(SiteOutcome(
            site_id=site.id, site_name=site.name, observations=totals[site.id],
            processed=processed_counts[site.id], new_alerts=tuple(fresh),
            alerts_total=len(workspace.alerts(site_id=site.id)),
        ))
    return MonitorReport(tuple(outcomes), alpha, options.change_detector or "default", detect)
