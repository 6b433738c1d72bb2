"""`sitewatch watch`: poll STAC sources, ingest what is new, monitor it, and notify.

One cycle: each source that is due is read from its cursor on (:func:`~sitewatch.pipeline.ingest.ingest_stac`
moves the cursor in the transaction that stores each scene), the monitoring pass scores what arrived,
the alert events since the last cycle go into the outbox (one transaction), and the outbox is
delivered. Every step is idempotent against the store, so a process killed anywhere loses and
repeats nothing but, at most, one notification a route had accepted before it was marked sent.

A source that fails is retried after a wait that doubles with each failure in a row, up to a cap;
the others go on. A stop request (SIGTERM) is honoured between two steps: between items, before
the monitor, between deliveries, or while waiting for the next cycle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sitewatch.core.errors import SitewatchError
from sitewatch.pipeline.ingest import FileOutcome, FileStatus, IngestReport, ingest_stac
from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
from sitewatch.pipeline.notify import DeliveryReport, deliver_pending, routes_for
from sitewatch.pipeline.watch_config import WatchConfig, WatchSource
from sitewatch.store.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one cycle did with one source."""

    name: str
    report: IngestReport | None = None
    error: str | None = None
    """Why the source could not be read, or was left part-read (it is retried after a back-off);
    None when it was read."""


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle did."""

    sources: tuple[SourceResult, ...] = ()
    new_alerts: tuple[str, ...] = ()
    queued: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    interrupted: bool = False
    """A stop request ended the cycle before its last step."""

    @property
    def ingested(self) -> int:
        return sum(len(s.report.ingested) for s in self.sources if s.report is not None)

    def to_dict(self) -> dict[str, object]:
        return {
            "sources": [{"name": s.name, "error": s.error,
                         **(s.report.to_dict() if s.report is not None else {})} for s in self.sources],
            "new_alerts": list(self.new_alerts), "queued": self.queued,
            "sent": list(self.delivery.sent), "failed_deliveries": list(self.delivery.failed),
            "interrupted": self.interrupted,
        }


def run_cycle(workspace: Workspace, config: WatchConfig, *, sources: tuple[WatchSource, ...] | None = None,
              stop: threading.Event | None = None, environ: Mapping[str, str],
              monitor: MonitorOptions | None = None, after_item: Callable[[], None] | None = None,
              retry_wait_s: float | None = None) -> CycleReport:
    """One cycle over ``sources`` (default: all of ``config``'s); see the module docstring.

    ``after_item`` is called after each item (crash tests pause there)."""
    stop = stop or threading.Event()
    results: list[SourceResult] = []
    for source in config.sources if sources is None else sources:
        if stop.is_set():
            return CycleReport(tuple(results), interrupted=True)
        results.append(poll_source(workspace, source, stop=stop, after_item=after_item))
    if stop.is_set():
        return CycleReport(tuple(results), interrupted=True)
    report = run_monitor(workspace, monitor or MonitorOptions(detect_objects=config.detect_objects))
    new_alerts = tuple(alert.id for alert in report.new_alerts)
    for alert_id in new_alerts:
        log.warning("new alert %s", alert_id)
    queued = workspace.enqueue_notifications(routes_for(config.routes))
    if stop.is_set():
        return CycleReport(tuple(results), new_alerts, queued, interrupted=True)
    extra = {} if retry_wait_s is None else {"retry_wait_s": retry_wait_s}
    delivery = deliver_pending(workspace, config.routes, max_attempts=config.max_attempts, environ=environ,
                               should_stop=stop.is_set, **extra)
    return CycleReport(tuple(results), new_alerts, queued, delivery, interrupted=stop.is_set())


OUTAGE_FAILURES = 3
"""Items failing in a row, for reasons that may pass, after which a source is taken to be down: the
rest of its items wait for the next cycle (the cursor is held before the first failure)."""


def poll_source(workspace: Workspace, source: WatchSource, *, stop: threading.Event,
                after_item: Callable[[], None] | None = None) -> SourceResult:
    """Ingest what is new in ``source`` since its cursor; a source that cannot be read is a result."""
    in_a_row: list[FileOutcome] = []

    def progress(_href: str, _index: int, _total: int, outcome: FileOutcome | None) -> None:
        if outcome is None:
            return
        if outcome.status is FileStatus.FAILED and not outcome.final:
            in_a_row.append(outcome)
        else:
            in_a_row.clear()
        if after_item is not None:
            after_item()

    def should_stop() -> bool:
        return stop.is_set() or len(in_a_row) >= OUTAGE_FAILURES

    try:
        report = ingest_stac(
            workspace, source.stac, site_ids=source.site_ids, since=source.since,
            collections=source.collections, max_cloud=source.max_cloud, max_off_nadir=source.max_off_nadir,
            max_gsd=source.max_gsd, cursor=workspace.watch_cursor(source.name),
            late=timedelta(seconds=source.late_s), should_stop=should_stop,
            progress=progress)
    except SitewatchError as error:
        return SourceResult(source.name, error=str(error))
    for outcome in report.failed:
        log.warning("source %s: %s", source.name, outcome.message)
    log.info("source %s: %d ingested, %d already stored, %d failed", source.name, len(report.ingested),
             len(report.skipped), len(report.failed))
    if len(in_a_row) >= OUTAGE_FAILURES:
        return SourceResult(source.name, report, error=(
            f"{OUTAGE_FAILURES} items in a row failed (the last: {in_a_row[-1].message}); the source looks "
            "down, so its other items wait for the next try"))
    return SourceResult(source.name, report)


@dataclass
class Backoff:
    """When each source is due next: its interval after a success, a doubling wait after failures."""

    config: WatchConfig
    clock: Callable[[], float] = time.monotonic
    due: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def due_now(self) -> tuple[WatchSource, ...]:
        now = self.clock()
        return tuple(s for s in self.config.sources if self.due.get(s.name, 0.0) <= now)

    def record(self, source: WatchSource, error: str | None) -> float:
        """Note the outcome of polling ``source``; the seconds until it is due again."""
        if error is None:
            self.failures[source.name] = 0
            wait = source.interval_s
        else:
            failures = self.failures.get(source.name, 0) + 1
            self.failures[source.name] = failures
            wait = min(self.config.max_backoff_s, self.config.backoff_s * 2 ** (failures - 1))
            log.error("source %s failed (%d in a row): %s; trying it again in %.0f s", source.name, failures,
                      error, wait)
        self.due[source.name] = self.clock() + wait
        return wait

    def delay(self, seconds: float) -> None:
        """Push every source back by ``seconds`` from now (after a cycle failed as a whole)."""
        for source in self.config.sources:
            self.due[source.name] = max(self.due.get(source.name, 0.0), self.clock() + seconds)

    def seconds_to_next(self) -> float:
        now = self.clock()
        return max(0.0, min((self.due.get(s.name, 0.0) for s in self.config.sources), default=0.0) - now)


def serve(workspace: Workspace, config: WatchConfig, *, stop: threading.Event, environ: Mapping[str, str],
          once: bool = False, monitor: MonitorOptions | None = None,
          after_item: Callable[[], None] | None = None) -> CycleReport:
    """Cycles until ``stop`` is set (or one, with ``once``); the last cycle's report.

    Notifications start from the first call on this workspace: alerts raised before are not sent.
    A cycle that fails as a whole (the database unreachable, say) is logged and retried after the
    back-off, as a failing source is."""
    workspace.start_notifications()
    schedule = Backoff(config)
    failures = 0
    last = CycleReport()
    while not stop.is_set():
        due = config.sources if once else schedule.due_now()
        if due:
            try:
                last = run_cycle(workspace, config, sources=due, stop=stop, environ=environ, monitor=monitor,
                                 after_item=after_item)
                failures = 0
            except SitewatchError as error:
                if once:
                    raise
                failures += 1
                wait = min(config.max_backoff_s, config.backoff_s * 2 ** (failures - 1))
                log.error("the watch cycle failed (%d in a row): %s; trying again in %.0f s", failures, error,
                          wait)
                schedule.delay(wait)
            else:
                for result in last.sources:
                    source = next(s for s in config.sources if s.name == result.name)
                    schedule.record(source, result.error)
                log.info("cycle: %d ingested, %d new alert(s), %d notification(s) sent, %d failed",
                         last.ingested, len(last.new_alerts), len(last.delivery.sent),
                         len(last.delivery.failed))
        if once or last.interrupted:
            break
        stop.wait(schedule.seconds_to_next())
    return last
