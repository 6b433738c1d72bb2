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

from collections.abc import Iterable
from dataclasses import dataclass

from sitewatch.core.errors import SitewatchError
from sitewatch.core.types import Alert, AlertState

RESOLVED = frozenset({AlertState.CONFIRMED, AlertState.BENIGN, AlertState.FALSE_ALARM})


class AlertTransitionError(SitewatchError, ValueError):
    """An analyst asked for a move the alert lifecycle does not allow."""


_ALLOWED: dict[AlertState, frozenset[AlertState]] = {
    AlertState.NEW: frozenset({AlertState.ACKNOWLEDGED, *RESOLVED}),
    AlertState.ACKNOWLEDGED: RESOLVED,
    AlertState.CONFIRMED: RESOLVED - {AlertState.CONFIRMED},
    AlertState.BENIGN: RESOLVED - {AlertState.BENIGN},
    AlertState.FALSE_ALARM: RESOLVED - {AlertState.FALSE_ALARM},
}


def check_transition(alert_id: str, current: AlertState, target: AlertState) -> None:
    """Raise :class:`AlertTransitionError` unless ``current → target`` is allowed."""
    if target not in _ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in _ALLOWED[current])) or "none"
        raise AlertTransitionError(
            f"alert {alert_id} is {current.value}; it cannot become {target.value} "
            f"(allowed from {current.value}: {allowed})"
        )


def parse_resolution(text: str) -> AlertState:
    """An analyst's verdict from the CLI spelling: ``confirmed``, ``benign`` or ``false-alarm``."""
    cleaned = text.strip().lower().replace("-", "_").replace(" ", "_")
    for state in RESOLVED:
        if state.value == cleaned:
            return state
    raise AlertTransitionError(f"{text!r} is not a verdict; use one of: confirmed, benign, false-alarm")


def baseline_feedback(state: AlertState) -> int:
    """What a verdict tells the baseline: -1 keep the observation out, 0 or +1 keep it in."""
    if state is AlertState.CONFIRMED:
        return -1
    if state in (AlertState.BENIGN, AlertState.FALSE_ALARM):
        return 1
    return 0


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """How earlier alerts at a site turned out."""

    raised: int = 0
    confirmed: int = 0
    benign: int = 0
    false_alarm: int = 0
    open: int = 0

    @property
    def resolved(self) -> int:
        return self.confirmed + self.benign + self.false_alarm

    def describe(self) -> str:
        """The sentence shown with every new alert, e.g. "2 of 7 earlier alerts here were confirmed"."""
        if self.raised == 0:
            return "No earlier alerts at this site."
        plural = "alert" if self.raised == 1 else "alerts"
        verb = "was" if self.raised == 1 else "were"
        parts = [f"{self.confirmed} of {self.raised} earlier {plural} here {verb} confirmed"]
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


def track_record(alerts: Iterable[Alert]) -> TrackRecord:
    """Count ``alerts`` by outcome."""
    items = list(alerts)
    return TrackRecord(
        raised=len(items),
        confirmed=sum(a.state is AlertState.CONFIRMED for a in items),
        benign=sum(a.state is AlertState.BENIGN for a in items),
        false_alarm=sum(a.state is AlertState.FALSE_ALARM for a in items),
        open=sum(a.state not in RESOLVED for a in items),
    )
