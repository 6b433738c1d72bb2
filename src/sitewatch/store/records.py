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
