"""Values the store keeps that are not domain types of ``sitewatch.core``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sitewatch.core.types import AlertState


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One step of an alert's history: who moved it to which state, when, and why."""

    state: AlertState
    who: str
    when: datetime
    """Aware UTC."""
    comment: str = ""
