"""The monitoring pass over a workspace: new observations in, indicators and alerts out.

For each site, each observation without indicators yet, in time order, the evidence step
(:mod:`sitewatch.pipeline.evidence`) looks at it without touching the store: its chip aligned to
the site's anchor, its change against the median composite of its last ``reference_size``
earlier good observations, its detections when a detector is installed. The pass then turns the
evidence into zone indicators and stores all of it (the chip's shift, change regions, detections,
indicators) in one transaction per observation, replacing what an earlier run stored.

Then every site's whole indicator history is scored from the store (cheap, so it is
always redone: analysts' verdicts since the last pass are taken into account and the
result equals a full re-run), Benjamini–Hochberg decides per watchlist day, and alerts
not yet in the store are added with their explanation. Observations ingested out of
order (older than one already processed) make the pass recompute that site's
indicators from that observation on, since later references depend on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sitewatch.analytics.objects import get_detector
from sitewatch.core.errors import SitewatchError, ValidationError
from sitewatch.core.parallel import Scheduler, run_jobs
from sitewatch.core.types import Alert, Detection, Observation, Site
from sitewatch.monitor.alerting import IndicatorHistory, SiteScores, build_alerts, decide, score_history
from sitewatch.monitor.baselines import BaselineConfig
from sitewatch.monitor.engine import EngineConfig
from sitewatch.monitor.lifecycle import baseline_feedback
from sitewatch.monitor.policy import by_priority, held
from sitewatch.pipeline.context import load_hypothesis_inputs
from sitewatch.pipeline.evidence import REFERENCE_VALID, EvidenceOptions, SiteChips, SiteEvidence
from sitewatch.pipeline.ingest import verify_chips
from sitewatch.pipeline.models import workspace_change_card, workspace_detector
from sitewatch.pipeline.tasks import WorkspaceTarget
from sitewatch.store.protocol import Store

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
    """Registry name of a change detector, for experiments (its regions are then stored as the
    evidence); None: the monitoring rule, :func:`~sitewatch.analytics.change.choose_monitoring_detector`
    (``contrast`` at the site's GSD within 0.1-2 m, made for date-after-date monitoring:
    illumination, shadows and small misregistration are not change; else plain CVA)."""
    detect_objects: bool | None = None
    """Run object detection: True, False, or None for "when a detector is installed"."""
    reference_size: int = 3
    """Earlier good observations in the reference composite (1 to 3)."""
    coregistration: bool = True
    scheduler: Scheduler = field(default_factory=Scheduler)
    """Where the sites are computed: in this process (default), a LocalCluster or a running dask
    cluster, one task per site (a site's observations stay in order in it)."""
    shared_folder: str | None = None
    """The workspace folder as the scheduler's workers see it (a path or file:// URL); None: this
    process's path to it (a LocalCluster, or workers mounting it at the same path)."""
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.scheduler, Scheduler):
            raise ValidationError("MonitorOptions", "scheduler",
                                  f"{self.scheduler!r} is not a Scheduler; use Scheduler.parse('local:2')")


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    """What the pass did at one site."""

    site_id: str
    site_name: str
    observations: int
    processed: int
    new_alerts: tuple[Alert, ...]
    """New alerts reported to analysts, top priority first (benign-led ones ranked below the rest)."""
    alerts_total: int
    held_alerts: tuple[Alert, ...] = ()
    """New alerts led by a benign hypothesis at a site whose policy holds them back: stored with their
    p-value, left out of ``new_alerts`` (:mod:`sitewatch.monitor.policy`)."""
    detection_skipped: int = 0
    """Observations of this pass the object detector did not look at (imagery coarser than it
    resolves, or without its bands): their objects are not observed, which is not zero."""
    detection_skipped_reason: str | None = None
    """Why, for the last of them."""
    flagged: tuple[tuple[str, str], ...] = ()
    """(observation id, problem) of the site's observations flagged as not scored (a missing or corrupt
    chip, a failing evidence step); ``sitewatch ingest --repair`` recreates chips from their source."""
    problem: str | None = None
    """Why the site's new observations could not be computed at all this pass (they stay pending)."""


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


def _object_detection_available() -> bool:
    try:
        get_detector()
    except (SitewatchError, OSError) as error:
        log.info("object detection skipped: %s", error)
        return False
    return True


def _pending(observations: Sequence[Observation], processed: set[str], full: bool) -> int:
    """Index of the first observation to (re)compute; len(observations) when none. A flagged observation
    waits for its repair (which clears the flag) or ``full``, rather than being retried every pass."""
    if full:
        return 0
    for index, observation in enumerate(observations):
        if observation.id not in processed and observation.problem is None:
            return index
    return len(observations)


@dataclass(frozen=True, slots=True)
class _SiteWork:
    """What computing one site's indicators found worth reporting."""

    detection_skipped: int = 0
    detection_skipped_reason: str | None = None
    problem: str | None = None
    """Why the site's new observations could not be computed at all (they stay pending)."""


def _compute_site_safely(workspace: Store, site: Site, start: int, options: MonitorOptions, detect: bool,
                         progress: Progress | None) -> _SiteWork:
    """:func:`_compute_site`, a failure of the site as a whole reported rather than ending the pass."""
    try:
        return _compute_site(workspace, site, start, options, detect, progress)
    except Exception as error:
        problem = f"{type(error).__name__}: {error}"
        log.warning("site %s: its new observations were not computed: %s", site.id, problem, exc_info=True)
        return _SiteWork(problem=problem)


def _chips_read(observations: Sequence[Observation], start: int, reference_size: int) -> list[Observation]:
    """The observations whose chips computing ``observations[start:]`` may read, to verify first: those,
    the anchor and probe candidates (the first good ones), and the reference candidates before
    ``start``, with as many again in reserve for the ones found broken. Hashing every chip of a long
    history on each incremental pass would cost more than the pass (650 MB for the demo's 178)."""
    good = [o for o in observations[:start] if o.valid_fraction >= REFERENCE_VALID]
    reserve = 2 * (1 + SiteChips.PROBES)
    chosen = {o.id for o in [*good[:reserve], *good[-4 * reference_size:], *observations[start:]]}
    return [o for o in observations if o.id in chosen]


def _compute_site(workspace: Store, site: Site, start: int, options: MonitorOptions, detect: bool,
                  progress: Progress | None) -> _SiteWork:
    """Compute and store the evidence and indicators of ``site``'s observations from index ``start`` on.

    An observation whose chip is missing or corrupt (checked against the checksum kept at ingest), or
    whose evidence step fails in any way, is skipped and flagged with the reason: it is never an
    anchor or a reference of the others, and every other observation is still scored.
    """
    observations = workspace.observations(site.id)
    todo = {o.id for o in observations[start:]}
    broken = {found.observation.id for found in verify_chips(workspace, _chips_read(observations, start,
                                                                                  options.reference_size))}
    usable = [o for o in observations if o.id not in broken]
    # The workspace's fine-tuned models where it has them (sitewatch train ... -w), else the shipped ones.
    detector = (workspace_detector(workspace.root) or get_detector()) if detect else None
    first = next((i for i, o in enumerate(usable) if o.id in todo), len(usable))
    known: dict[str, list[Detection]] = {}
    if detect:  # stored detections of the earlier observations that may be a reference of this pass's
        candidates = [o for o in usable[:first] if o.valid_fraction >= REFERENCE_VALID]
        known = {o.id: workspace.detections(observation_id=o.id)
                 for o in candidates[-2 * options.reference_size:]}
    evidence_options = EvidenceOptions(
        min_valid_fraction=workspace.settings.min_valid_fraction, reference_size=options.reference_size,
        coregistration=options.coregistration, change_detector=options.change_detector,
        change_model=workspace_change_card(workspace.root))
    scenes = {scene.id: scene for scene in workspace.scenes(site.id)}
    step = SiteEvidence(site, usable, scenes, workspace.chip_path, evidence_options,
                        object_detector=detector, known_detections=known)
    skipped, reason = 0, None
    failed: set[str] = set()
    pending = usable[first:]
    for count, observation in enumerate(pending, start=1):
        earlier = [o for o in usable[:first + count - 1] if o.id not in failed]
        try:
            evidence = step.observe(observation, earlier)
            values = evidence.indicators(site, min_visible_fraction=evidence_options.min_valid_fraction)
            workspace.record_evidence(evidence.record(indicators=values))
        except Exception as error:  # one observation's failure must not stop the site, nor the pass
            failed.add(observation.id)
            # named inside the workspace: the API shows it to viewers, who need no server paths
            problem = f"not scored: {type(error).__name__}: {error}".replace(f"{workspace.root}/", "")
            log.warning("site %s: observation %s skipped and flagged: %s", site.id, observation.id, problem)
            workspace.flag_observation(observation.id, problem)
        else:
            if evidence.detection_skipped is not None:
                skipped, reason = skipped + 1, evidence.detection_skipped
        if progress is not None:
            progress(site.id, count, len(pending))
    if skipped:
        log.warning("site %s: object detection skipped on %d of %d observation(s), their objects not "
                    "observed: %s", site.id, skipped, len(pending), reason)
    return _SiteWork(skipped, reason)


def _site_task(target: WorkspaceTarget, site_id: str, start: int, options: MonitorOptions, detect: bool,
               report: Callable[[tuple[str, int, int]], None]) -> _SiteWork:
    """One site's indicators in a dask task: it opens the workspace folder (shared storage: settings and
    chips) and through it the store by its URL (SQLite, whose WAL serialises the tasks' short write
    transactions, or PostGIS). Each observation's evidence is one transaction that replaces what an
    earlier run stored, so a task run again after its worker was lost leaves no duplicates."""
    with target.open() as workspace:
        return _compute_site_safely(workspace, workspace.site(site_id), start, options, detect,
                                    lambda site, done, total: report((site, done, total)))


def run_monitor(workspace: Store, options: MonitorOptions | None = None, *,
                progress: Progress | None = None) -> MonitorReport:
    """One monitoring pass over every site of ``workspace`` (see the module docstring)."""
    options = options or MonitorOptions()
    alpha = options.false_alarm_rate if options.false_alarm_rate is not None \
        else workspace.settings.false_alarm_rate
    config = EngineConfig(false_alarm_rate=alpha, baseline=options.baseline)
    detect = _object_detection_available() if options.detect_objects is None else options.detect_objects
    sites = workspace.sites()
    # Read and checked before any image is: a typo in a holiday must not cost an hour of detection.
    inputs = load_hypothesis_inputs(workspace.root, sites)
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
    if options.scheduler.in_process:  # the open store, as it is (it may be one the tasks could not open)
        work = {site.id: _compute_site_safely(workspace, site, start, options, detect, progress)
                for site, start in pending}
    else:
        def forward(message: tuple[str, int, int]) -> None:
            if progress is not None:
                progress(*message)

        target = WorkspaceTarget.of(workspace, options.shared_folder)
        results = run_jobs(_site_task, [(target, site.id, start, options, detect)
                                        for site, start in pending], options.scheduler,
                           names=[f"monitor-{site.id}" for site, _ in pending], on_message=forward)
        work = {site.id: result for (site, _), result in zip(pending, results, strict=True)}

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
        built = build_alerts(site, site_scores, decided, config=config, earlier=existing, created=created,
                             patterns=inputs.patterns, context=inputs.context, picks=workspace.picks(site.id))
        fresh = [a for a in built if a.id not in known]
        workspace.upsert_alerts(fresh)
        policy = workspace.settings.benign_policy_for(site.id)
        outcomes.append(SiteOutcome(
            site_id=site.id, site_name=site.name, observations=totals[site.id],
            processed=processed_counts[site.id],
            new_alerts=tuple(by_priority([a for a in fresh if not held(a, policy)])),
            held_alerts=tuple(a for a in fresh if held(a, policy)),
            alerts_total=len(workspace.alerts(site_id=site.id)),
            detection_skipped=work.get(site.id, _SiteWork()).detection_skipped,
            detection_skipped_reason=work.get(site.id, _SiteWork()).detection_skipped_reason,
            flagged=tuple((o.id, o.problem) for o in workspace.observations(site.id) if o.problem),
            problem=work.get(site.id, _SiteWork()).problem,
        ))
    return MonitorReport(tuple(outcomes), alpha, options.change_detector or "contrast", detect)
