"""Values the store keeps that are not domain types of ``sitewatch.core``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sitewatch.core.types import AlertState, ChangeRegion, Detection, IndicatorValue


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One step of an alert's history: who moved it to which state, when, and why."""

    state: AlertState
    who: str
    when: datetime
    """Aware UTC."""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """What one evidence step found for an observation, stored in one transaction
    (:meth:`~sitewatch.store.protocol.Store.record_evidence`).

    A part left None is left as stored; a part given replaces the stored one (an empty tuple
    removes it), so recording the same evidence twice leaves the same rows.
    """

    observation_id: str
    registration: tuple[tuple[float, float], float | None] | None = None
    """(shift (rows, cols) in site-grid pixels, confidence) applied to the observation's chip;
    ((0, 0), None) when compared as ingested."""
    change_regions: tuple[ChangeRegion, ...] | None = None
    detections: tuple[Detection, ...] | None = None
    indicators: tuple[IndicatorValue, ...] | None = None


@dataclass(frozen=True, slots=True)
class SourceCursor:
    """How far `sitewatch watch` has read one source."""

    source: str
    """The source's name in ``sitewatch.toml``."""
    until: datetime | None
    """Every item acquired before it is done (aware UTC); None: nothing read yet."""
    item_ids: tuple[str, ...] = ()
    """Of the items acquired exactly at ``until``, those done."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One row of the notification outbox: an alert event to deliver along one route."""

    id: int
    alert_id: str
    event_id: int
    """The alert event's id: with the alert and the route, what makes the delivery unique."""
    event: str
    """``raised`` for a new alert, else the state the alert moved to."""
    route: str
    attempts: int
    created: datetime
    who: str = ""
    comment: str = ""

    @property
    def delivery_id(self) -> str:
        """Stable across retries and resends: receivers dedupe on it (``X-Sitewatch-Delivery``)."""
        return f"{self.alert_id}/{self.event_id}/{self.route}"
