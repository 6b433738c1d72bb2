"""What happens to an alert whose best hypothesis is benign: ranked lower, or held back.

Policy, not silence. Every alert is kept with its p-value whatever the policy, so the false-alarm
rate reported stays the honest one (alerts per quiet observation, benign-led or not):

* ``rank`` (the default): alerts led by a benign hypothesis (routine gathering, delivery, holiday)
  are listed below the rest;
* ``hold``: they are also held back: left out of the monitor's new alerts (what a pass reports to
  analysts) and out of the default alert list, listed under ``alerts list --held``.

A *top-priority* alert is one that is not led by a benign hypothesis: an instant alert whose leading
hypothesis is an activity or "none of these", or a slow-build alert (which has none). The evaluation
counts routine busy days by this rule too (:mod:`sitewatch.evaluation.alerts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from sitewatch.core.types import Alert, Hypothesis


class BenignPolicy(StrEnum):
    """A site's policy for alerts led by a benign hypothesis."""

    RANK = "rank"
    HOLD = "hold"


def led_by_benign(hypotheses: Sequence[Hypothesis]) -> bool:
    """Whether the most probable hypothesis is a benign pattern (none: not benign-led)."""
    return bool(hypotheses) and hypotheses[0].benign


def top_priority(hypotheses: Sequence[Hypothesis]) -> bool:
    """Whether an alert with these ranked hypotheses is top priority (see the module docstring)."""
    return not led_by_benign(hypotheses)


def held(alert: Alert, policy: BenignPolicy) -> bool:
    """Whether ``alert`` is held back under ``policy``."""
    return policy is BenignPolicy.HOLD and led_by_benign(alert.hypotheses)


def by_priority(alerts: Sequence[Alert]) -> list[Alert]:
    """``alerts`` with the top-priority ones first, each group in its given order."""
    return sorted(alerts, key=lambda alert: not top_priority(alert.hypotheses))
