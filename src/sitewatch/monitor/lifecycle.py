"""Alert states, the moves analysts may make between them, and what their verdicts teach.

    new ──ack──> acknowledged ──resolve──> confirmed | benign | false_alarm
     └──────────────resolve──────────────┘

A resolved alert may be resolved again (an analyst corrects a verdict) but never goes
back to new. Verdicts feed the monitor: confirmed activity is kept out of the site's
baseline (it is not normal); benign activity and false alarms stay in it (they are what
normal looks like here). Unresolved alerts stay in the baseline too, so the
false-alarm rate holds even when nobody triages. The store persists states and their
history; this module holds the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sitewatch.core.errors import AlertTransitionError, UnsupportedInputError
from sitewatch.core.types import Alert, AlertState

RESOLVED = frozenset({AlertState.CONFIRMED, AlertState.BENIGN, AlertState.FALSE_ALARM})


_ALLOWED: dict[AlertState, frozenset[AlertState]] = {
    AlertState.NEW: frozenset({AlertState.ACKNOWLEDGED, *RESOLVED}),
    AlertState.ACKNOWLEDGED: RESOLVED,
    AlertState.CONFIRMED: RESOLVED - {AlertState.CONFIRMED},
    AlertState.BENIGN: RESOLVED - {AlertState.BENIGN},
    AlertState.FALSE_ALARM: RESOLVED - {AlertState.FALSE_ALARM},
}


def allowed_from(target: AlertState) -> frozenset[AlertState]:
    """The states an alert may be moved to ``target`` from."""
    return frozenset(state for state, targets in _ALLOWED.items() if target in targets)


def check_transition(alert_id: str, current: AlertState, target: AlertState) -> None:
    """Raise :class:`AlertTransitionError` unless ``current → target`` is allowed."""
    if target not in _ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in _ALLOWED[current])) or "none"
        raise AlertTransitionError(
            f"alert {alert_id} is {current.value}; it cannot become {target.value} "
            f"(allowed from {current.value}: {allowed})"
        )


REASON_REQUIRED = frozenset({AlertState.BENIGN, AlertState.FALSE_ALARM})
"""Verdicts that dismiss an alert: they feed the baseline and the site's track record, and a later
analyst must be able to see why, so they are never recorded without a reason."""


def check_reason(alert_id: str, target: AlertState, comment: str) -> None:
    """Raise :class:`UnsupportedInputError` when ``target`` dismisses the alert without a reason."""
    if target in REASON_REQUIRED and not comment.strip():
        raise UnsupportedInputError(
            f"alert {alert_id}: a {target.value.replace('_', ' ')} verdict needs a reason; give a comment "
            "saying why (what explains the activity, or what was mistaken for it)"
        )


def parse_resolution(text: str) -> AlertState:
    """An analyst's verdict from the CLI spelling: ``confirmed``, ``benign`` or ``false-alarm``."""
    cleaned = text.strip().lower().replace("-", "_").replace(" ", "_")
    for state in RESOLVED:
        if state.value == cleaned:
            return state
    raise UnsupportedInputError(f"{text!r} is not a verdict; use one of: confirmed, benign, false-alarm")


def baseline_feedback(state: AlertState) -> int:
    """What a verdict tells the baseline: -1 keep the observation out, 0 or +1 keep it in."""
    if state is AlertState.CONFIRMED:
        return -1
    if state in (AlertState.BENIGN, AlertState.FALSE_ALARM):
        return 1
    return 0


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """How a site's alerts were judged: every alert of the site, or the earlier ones an alert is read
    against ("2 of 7 earlier alerts here were confirmed").

    One rule wherever it is shown (the alert's sentence, ``sitewatch alerts show``, the API and
    dashboard, the report): build it with :func:`track_record`. An alert's earlier alerts are the
    site's alerts acquired strictly before it, so an observation's two alerts (activity and slow
    build) are not each other's history, and each alert counts once, in its stored state.
    """

    new: int = 0
    acknowledged: int = 0
    confirmed: int = 0
    benign: int = 0
    false_alarm: int = 0
    earlier: bool = True
    """Whether these are the alerts before one alert (the sentence then says "earlier")."""

    @property
    def raised(self) -> int:
        return self.new + self.acknowledged + self.resolved

    @property
    def open(self) -> int:
        """Alerts nobody has resolved yet (new or acknowledged)."""
        return self.new + self.acknowledged

    @property
    def resolved(self) -> int:
        return self.confirmed + self.benign + self.false_alarm

    def by_state(self) -> dict[str, int]:
        """Count per lifecycle state, every state present."""
        counts = {AlertState.NEW: self.new, AlertState.ACKNOWLEDGED: self.acknowledged,
                  AlertState.CONFIRMED: self.confirmed, AlertState.BENIGN: self.benign,
                  AlertState.FALSE_ALARM: self.false_alarm}
        return {state.value: counts[state] for state in AlertState}

    def describe(self) -> str:
        """The sentence shown with every new alert, e.g. "2 of 7 earlier alerts here were confirmed"."""
        what = "earlier alert" if self.earlier else "alert"
        if self.raised == 0:
            return f"No {what}s at this site."
        plural = what if self.raised == 1 else f"{what}s"
        verb = "was" if self.raised == 1 else "were"
        parts = [f"{self.confirmed} of {self.raised} {plural} here {verb} confirmed"]
        if self.false_alarm:
            parts.append(f"{self.false_alarm} false alarm{'s' if self.false_alarm != 1 else ''}")
        if self.benign:
            parts.append(f"{self.benign} benign")
        if self.open:
            parts.append(f"{self.open} not yet resolved")
        return ", ".join(parts) + "."

    def as_dict(self) -> dict[str, int]:
        return {"raised": self.raised, "confirmed": self.confirmed, "benign": self.benign,
                "false_alarm": self.false_alarm, "open": self.open}


def track_record(alerts: Iterable[Alert], *, before: datetime | None = None) -> TrackRecord:
    """The track record of ``alerts`` (one site's), or of those acquired strictly before ``before``
    (the earlier alerts of an alert acquired then). An id given twice counts once, as given first."""
    unique: dict[str, Alert] = {}
    for alert in alerts:
        if before is None or alert.acquired < before:
            unique.setdefault(alert.id, alert)
    counts = Counter(alert.state for alert in unique.values())
    return TrackRecord(new=counts[AlertState.NEW], acknowledged=counts[AlertState.ACKNOWLEDGED],
                       confirmed=counts[AlertState.CONFIRMED], benign=counts[AlertState.BENIGN],
                       false_alarm=counts[AlertState.FALSE_ALARM], earlier=before is not None)


class Severity(StrEnum):
    """How unusual an alert is, for routing notifications: from its p-value against the site's own
    baseline (the smaller, the rarer such activity is when nothing is going on)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


SEVERITY_P_VALUES: tuple[tuple[Severity, float], ...] = ((Severity.HIGH, 0.001), (Severity.MEDIUM, 0.01))
"""p-value at or below which an alert is of that severity; above every one it is low."""


def severity_of(alert: Alert) -> Severity:
    """:data:`SEVERITY_P_VALUES` applied to the alert's p-value; an alert without one (raised by the
    first pass's change threshold, before a baseline exists) is medium."""
    if alert.p_value is None:
        return Severity.MEDIUM
    for severity, bound in SEVERITY_P_VALUES:
        if alert.p_value <= bound:
            return severity
    return Severity.LOW
