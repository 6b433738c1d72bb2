"""The monitoring pass over a workspace: new observations in, indicators and alerts out.

For each site, each observation without indicators yet, in time order:

1. the reference is a per-pixel median composite of the site's last
   ``reference_size`` earlier observations with at least ``REFERENCE_VALID`` of the
   grid visible (a robust picture of "normal", unlike a single earlier image that may
   hold its own cars, clouds or shadows);
2. every chip is co-registered to the site's anchor (its first good observation), the
   observation is radiometrically matched to the reference and the change detector runs;
   object detection runs too when a detector is installed;
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
from pathlib import Path

import numpy as np
import rasterio

from sitewatch.analytics.change import ChangeDetector, get_change_detector, input_bands, take_bands
from sitewatch.analytics.change.contrast import ContrastChange
from sitewatch.analytics.change.regions import change_regions
from sitewatch.analytics.indicators import (
    MIN_VISIBLE_FOR_COUNTS,
    ObservationEvidence,
    ZoneMasks,
    extract_indicators,
    zone_masks,
)
from sitewatch.core.errors import SitewatchError, UnsupportedInputError, ValidationError
from sitewatch.core.indicators import CHANGED_AREA
from sitewatch.core.parallel import map_in_processes
from sitewatch.core.types import Alert, Detection, IndicatorValue, Observation, Site
from sitewatch.imagery.chips import read_chip
from sitewatch.imagery.coregister import CoregistrationError, Registration, coregister
from sitewatch.imagery.grid import SiteGrid
from sitewatch.imagery.radiometry import RadiometryError, fit_radiometry
from sitewatch.monitor.alerting import IndicatorHistory, SiteScores, build_alerts, decide, score_history
from sitewatch.monitor.baselines import BaselineConfig
from sitewatch.monitor.engine import EngineConfig
from sitewatch.monitor.lifecycle import baseline_feedback
from sitewatch.store.workspace import Workspace

log = logging.getLogger(__name__)

REFERENCE_VALID = 0.7
"""Share of the grid an observation must show to anchor co-registration or join a reference."""

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
    """Registry name of a change detector; None: :class:`ContrastChange` at the site's GSD (made for
    date-after-date monitoring: illumination, shadows and small misregistration are not change;
    a fraction of a second on a 1400x1000 chip), or plain CVA for sites coarser than 2 m."""
    detect_objects: bool | None = None
    """Run object detection: True, False, or None for "when a detector is installed"."""
    reference_size: int = 3
    """Earlier good observations in the reference composite (1 to 3)."""
    coregistration: bool = True
    workers: int = 1
    """Processes computing sites side by side (a site's observations stay in order in one)."""
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValidationError("MonitorOptions", "workers",
                                  f"{self.workers!r} must be a whole number >= 1")


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    """What the pass did at one site."""

    site_id: str
    site_name: str
    observations: int
    processed: int
    new_alerts: tuple[Alert, ...]
    alerts_total: int
    detection_skipped: int = 0
    """Observations of this pass the object detector did not look at (imagery coarser than it
    resolves, or without its bands): their objects are not observed, which is not zero."""
    detection_skipped_reason: str | None = None
    """Why, for the last of them."""


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """What one monitoring pass did, per site."""

    sites: tuple[SiteOutcome, ...]
    false_alarm_rate: float
    change_detector: str
    object_detection: bool

    @property
    def new_alerts(self) -> list[Alert]:
        return [a for s in self.sites for a in s.new_alerts]


@dataclass(frozen=True, slots=True, eq=False)
class AlignedChip:
    """A chip's pixels as float32 after co-registration to the site's anchor observation."""

    pixels: np.ndarray
    valid: np.ndarray
    bands: tuple[str, ...]
    registered: bool | None = None
    """True: aligned to the anchor; False: co-registration refused although the site's chips
    register (so comparing it would show misregistration as change); None: not attempted."""
    registration: Registration | None = None
    """The shift applied (None unless ``registered``)."""


class _AlignedChips:
    """Reads chips and aligns each to the site's anchor once; keeps the last few in memory.

    The anchor is the site's first observation with a good view. Whether a site's chips are
    co-registered at all is decided from fixed data, the first ``PROBES`` good observations
    after the anchor: when co-registration refuses most of them, the site's chips are compared
    as ingested (already resampled to the site grid) and that is logged once. So a pass over new
    observations aligns them exactly as a full re-run would. The shift applied to each chip (none
    when compared as ingested or refused) is recorded on its observation.
    """

    PROBES = 3

    def __init__(self, workspace: Workspace, size: int, coregistration: bool) -> None:
        self.workspace = workspace
        self.size = size
        self.coregistration = coregistration
        self.anchor: AlignedChip | None = None
        self.registrable: bool | None = None
        self.chips: OrderedDict[str, AlignedChip] = OrderedDict()

    def set_anchor(self, good: Sequence[Observation]) -> None:
        """Fix the anchor (``good[0]``) and probe co-registration on the next good observations."""
        if self.anchor is not None:
            return
        chip = read_chip(self.workspace.chip_path(good[0]))
        self.anchor = AlignedChip(chip.array.astype(np.float32), chip.valid, chip.bands)

    def _probe(self, site_id: str) -> bool:
        """Whether most of the first good observations after the anchor register to it.

        One success in three is no evidence that the site's images register: where the landscape
        changes between dates (water, crops, season), tiles disagree on most dates, and treating each
        of those refusals as "not observed" would blind the monitor to most of the site; the
        georeferenced site grid is then the better alignment."""
        good = [o for o in self.workspace.observations(site_id)
                if o.valid_fraction >= REFERENCE_VALID][1:1 + self.PROBES]
        registered = sum(self._align(observation) is not None for observation in good)
        if 2 * registered <= len(good):
            log.warning("site %s: co-registration refused on %d of its first %d good observations; comparing "
                        "its chips as ingested on the site grid", site_id, len(good) - registered, len(good))
        return 2 * registered > len(good) or not good

    def _align(self, observation: Observation) -> AlignedChip | None:
        chip = read_chip(self.workspace.chip_path(observation))
        if self.anchor is None:
            return None
        try:
            pixels, valid, registration = coregister(
                self.anchor.pixels, chip.array.astype(np.float32), valid_reference=self.anchor.valid,
                valid_moving=chip.valid)
        except CoregistrationError as refusal:
            log.info("%s: not co-registered (%s)", observation.id, refusal)
            return None
        return AlignedChip(pixels, valid, chip.bands, registered=True, registration=registration)

    def get(self, observation: Observation) -> AlignedChip:
        if observation.id in self.chips:
            self.chips.move_to_end(observation.id)
            return self.chips[observation.id]
        aligned: AlignedChip | None = None
        if self.anchor is not None and self.coregistration:
            if self.registrable is None:
                self.registrable = self._probe(observation.site_id)
            if self.registrable:
                aligned = self._align(observation)
        if aligned is None:
            chip = read_chip(self.workspace.chip_path(observation))
            refused = self.anchor is not None and self.coregistration and bool(self.registrable)
            aligned = AlignedChip(chip.array.astype(np.float32), chip.valid, chip.bands,
                                  registered=False if refused else None)
        applied = aligned.registration
        shift, confidence = (applied.shift, applied.confidence) if applied else ((0.0, 0.0), None)
        if (observation.shift, observation.shift_confidence) != (shift, confidence):
            self.workspace.set_registration(observation.id, shift, confidence)
        self.chips[observation.id] = aligned
        while len(self.chips) > self.size:
            self.chips.popitem(last=False)
        return aligned


def reference_composite(chips: Sequence[AlignedChip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of up to three chips over their valid pixels, and where any was valid.

    Three is enough to drop a car parked on one date, and a min/max network over three
    arrays costs a few element-wise passes, where a general median over millions of pixels
    costs seconds. Where one chip is invalid the larger of the other two is used; where two
    are, the remaining one.
    """
    if not 1 <= len(chips) <= 3:
        raise UnsupportedInputError(f"a reference composite takes 1 to 3 chips, got {len(chips)}")
    layers = [np.where(c.valid, c.pixels, np.nan) for c in chips]
    valid = np.any(np.stack([c.valid for c in chips]), axis=0)
    if len(layers) == 1:
        composite = layers[0]
    elif len(layers) == 2:
        composite = 0.5 * (layers[0] + layers[1])
        composite = np.where(np.isnan(composite), np.fmax(layers[0], layers[1]), composite)
    else:
        low, high = np.fmin(layers[0], layers[1]), np.fmax(layers[0], layers[1])
        composite = np.fmax(low, np.fmin(high, layers[2]))
    return np.nan_to_num(composite, nan=0.0).astype(np.float32), valid


def _match_radiometry(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``after`` mapped onto ``before``'s radiometry, fitted on every 4th pixel (16 times faster)."""
    try:
        fit = fit_radiometry(before[:, ::4, ::4], after[:, ::4, ::4], valid=valid[::4, ::4])
    except RadiometryError as problem:
        log.info("radiometry left as is (%s)", problem)
        return after
    return fit.apply(after)


def _grid_masks(workspace: Workspace, site: Site, observation: Observation) -> ZoneMasks:
    """Zone masks on the grid the site's chips were written on (read from a chip)."""
    path = workspace.chip_path(observation)
    with rasterio.open(path) as dataset:
        epsg = dataset.crs.to_epsg() if dataset.crs is not None else None
        if epsg is None:
            raise UnsupportedInputError(f"chip {path} has no EPSG CRS; re-ingest its scene to rebuild it")
        grid = SiteGrid(epsg=epsg, transform=dataset.transform, width=dataset.width, height=dataset.height,
                        gsd=float(abs(dataset.transform.a)))
    return zone_masks(site, grid)


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
        self.detector: ChangeDetector = (
            get_change_detector(options.change_detector) if options.change_detector
            else ContrastChange(gsd=site.gsd) if 0.1 <= site.gsd <= 2.0 else get_change_detector("cva")
        )
        self.chips = _AlignedChips(workspace, 2 * options.reference_size + 1, options.coregistration)
        self.min_valid = workspace.settings.min_valid_fraction
        self.masks: ZoneMasks | None = None
        self.detection_skipped: str | None = None
        """Why object detection did not look at the last observation it was asked to (None: it looked)."""

    def evidence(self, observation: Observation, earlier: Sequence[Observation],
                 masks: ZoneMasks, *, change: bool = True) -> ObservationEvidence:
        """What the detectors see in ``observation``; with ``change`` False, detections only."""
        scene = self.workspace.scene(observation.scene_id)
        good = [o for o in earlier if o.valid_fraction >= REFERENCE_VALID]
        if good:
            self.chips.set_anchor(good)
        chip = self.chips.get(observation)
        references: list[Observation] = []
        # Detections alone (``change`` False) need no reference: do not read or align any.
        candidates = reversed(good[-2 * self.options.reference_size:]) if change else ()
        for candidate in candidates:
            if len(references) == self.options.reference_size:
                break
            if self.chips.get(candidate).registered is not False:
                references.insert(0, candidate)
        detections: list[Detection] | None = None
        classes: tuple[str, ...] = ()
        previous: list[Detection] | None = None
        if self.detect:
            from sitewatch.analytics.objects import get_detector
            from sitewatch.pipeline.detect import detect_observation, detection_problem

            summary = detect_observation(self.workspace, observation)
            self.detection_skipped = summary.skipped
            if summary.skipped is not None:
                # Objects the detector cannot resolve are not observed: no counts, not zero counts.
                log.info("%s: object detection skipped: %s", observation.id, summary.skipped)
            else:
                classes = summary.classes
                detections = self.workspace.detections(observation_id=observation.id)
                last = references[-1] if references else None
                # A reference the detector could not look at has no boxes, which is not "no structures".
                if last is not None and detection_problem(
                        get_detector().info, grid_gsd=abs(masks.transform.a),
                        image_gsd=self.workspace.scene(last.scene_id).gsd,
                        bands=self.chips.get(last).bands) is None:
                    previous = self.workspace.detections(observation_id=last.id)
        if not change or len(references) < self.options.reference_size or chip.registered is False:
            # Change against a thinner composite is not the same measurement, and an observation
            # that would not co-register would show its misregistration as change: not observed.
            return ObservationEvidence(valid=chip.valid, gsd=scene.gsd, detections=detections,
                                       detection_classes=classes,
                                       off_nadir=scene.off_nadir)
        before, before_valid = reference_composite([self.chips.get(o) for o in references])
        valid = chip.valid & before_valid
        after = _match_radiometry(before, chip.pixels, valid)
        read = input_bands(self.detector, chip.bands)  # an RGB-only method gets RGB, by name
        result = self.detector(take_bands(before, read), take_bands(after, read), valid=valid)
        by_zone = dict(zip(masks.zone_ids, masks.masks, strict=True)) if self.site.zones else None
        try:
            regions = change_regions(
                result, masks.transform, observation_id=observation.id,
                reference_observation_id=references[-1].id, zone_masks=by_zone,
            )
        except ValidationError as problem:
            # Regions are for display; the indicators come from the probability map itself.
            log.warning("%s: change regions not stored (%s)", observation.id, problem)
        else:
            self.workspace.replace_change_regions(observation.id, regions)
        brightness = (after - before).mean(axis=0)
        bands = {name.lower(): after[i] for i, name in enumerate(chip.bands)}
        return ObservationEvidence(
            valid=valid,
            gsd=scene.gsd,
            change_probability=result.probability,
            detections=detections,
            detection_classes=classes,
            reference_detections=previous,
            brightness_change=brightness,
            bands=bands,
            off_nadir=scene.off_nadir,  # no haze term: ingest masked the clouds themselves
        )

    def indicators(self, observation: Observation, earlier: Sequence[Observation]) -> list[IndicatorValue]:
        if self.masks is None:
            self.masks = _grid_masks(self.workspace, self.site, observation)
        valid = observation.valid_fraction
        if valid >= self.min_valid or (self.detect and valid >= MIN_VISIBLE_FOR_COUNTS):
            # Too clouded for change, a gap in the clouds may still show how many vehicles there are.
            evidence = self.evidence(observation, earlier, self.masks, change=valid >= self.min_valid)
        else:
            evidence = ObservationEvidence(valid=np.zeros(self.masks.shape, bool), gsd=self.site.gsd)
        values = extract_indicators(self.site, observation, self.masks, evidence,
                                    min_visible_fraction=self.min_valid)
        if not values:  # nothing measurable yet: record "not observed" so the observation counts as done
            values = [IndicatorValue(observation.id, self.site.id, zone_id, CHANGED_AREA.name, None, 0.0,
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


@dataclass(frozen=True, slots=True)
class _SiteWork:
    """What computing one site's indicators found worth reporting."""

    detection_skipped: int = 0
    detection_skipped_reason: str | None = None


def _compute_site(workspace: Workspace, site: Site, start: int, options: MonitorOptions, detect: bool,
                  progress: Progress | None) -> _SiteWork:
    """Compute and store the indicators of ``site``'s observations from index ``start`` on."""
    observations = workspace.observations(site.id)
    todo = observations[start:]
    computer = _SiteIndicators(workspace, site, options, detect)
    skipped, reason = 0, None
    for count, observation in enumerate(todo, start=1):
        earlier = observations[:start + count - 1]
        computer.detection_skipped = None
        workspace.replace_indicators(observation.id, computer.indicators(observation, earlier))
        if computer.detection_skipped is not None:
            skipped, reason = skipped + 1, computer.detection_skipped
        if progress is not None:
            progress(site.id, count, len(todo))
    if skipped:
        log.warning("site %s: object detection skipped on %d of %d observation(s), their objects not "
                    "observed: %s", site.id, skipped, len(todo), reason)
    return _SiteWork(skipped, reason)


def _site_worker(root: Path, site_id: str, start: int, options: MonitorOptions, detect: bool,
                 report: Callable[[tuple[str, int, int]], None]) -> _SiteWork:
    """One site's indicators in a worker process, with its own connection to the store (SQLite WAL
    serialises the workers' short write transactions)."""
    with Workspace.open(root) as workspace:
        return _compute_site(workspace, workspace.site(site_id), start, options, detect,
                             lambda site, done, total: report((site, done, total)))


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
    pending: list[tuple[Site, int]] = []
    for site in sites:
        observations = workspace.observations(site.id)
        totals[site.id] = len(observations)
        done = {v.observation_id for v in workspace.indicators(site.id)}
        start = _pending(observations, done, options.full)
        processed_counts[site.id] = len(observations) - start
        if processed_counts[site.id]:
            pending.append((site, start))
    workers = min(options.workers, len(pending))
    if workers > 1:
        def forward(message: tuple[str, int, int]) -> None:
            if progress is not None:
                progress(*message)

        results = map_in_processes(_site_worker, [(workspace.root, site.id, start, options, detect)
                                                  for site, start in pending], workers, forward)
        work = {site.id: result for (site, _), result in zip(pending, results, strict=True)}
    else:
        work = {site.id: _compute_site(workspace, site, start, options, detect, progress)
                for site, start in pending}

    scored: list[SiteScores] = []
    for site in sites:
        values = workspace.indicators(site.id)
        alerts = workspace.alerts(site_id=site.id)
        feedback: dict[str, int] = {}
        for alert in alerts:  # confirmed anywhere keeps the observation out; else benign/false puts it in
            word, current = baseline_feedback(alert.state), feedback.get(alert.observation_id, 0)
            feedback[alert.observation_id] = -1 if -1 in (word, current) else max(word, current)
        history = IndicatorHistory.from_values(site.id, values)
        scored.append(score_history(history, config, feedback, site.zones))
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
            detection_skipped=work.get(site.id, _SiteWork()).detection_skipped,
            detection_skipped_reason=work.get(site.id, _SiteWork()).detection_skipped_reason,
        ))
    return MonitorReport(tuple(outcomes), alpha, options.change_detector or "contrast", detect)
