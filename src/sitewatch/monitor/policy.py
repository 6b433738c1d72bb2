"""What happens to an alert whose best hypothesis is benign: ranked lower, or held back.

Policy, not silence. Every alert is kept with its p-value whatever the policy, so the false-alarm
rate reported stays the honest one (alerts per quiet observation, benign-led or not):

* ``rank`` (the default): alerts led by a benign hypothesis (routine gathering, delivery, holiday)
  are listed below the rest;
* ``hold``: they are also held back: left out of the monitor's new alerts (what a pass reports to
  analysts) and out of the default alert list, listed under ``alerts list --held``.

A *top-priority* alert is one that is not led by a benign hypothesis: an instant alert whose leading
hypothesis is an activity or "none of these", or a benign pattern the readings do not favour over
routine (LR ≤ 1: a lead on priors alone), or a slow-build alert (which has none). The evaluation
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


BENIGN_EVIDENCE_LR = 1.0
"""A benign hypothesis lowers an alert only when the readings favour it over routine (its likelihood
ratio above this). One that leads on its prior alone, LR ≤ 1 (at Sohae, with no parking zone, a
routine gathering names no series that was observed), has no evidence that the alert is benign."""


def led_by_benign(hypotheses: Sequence[Hypothesis]) -> bool:
    """Whether the most probable hypothesis is a benign pattern that the readings favour over routine
    (none: not benign-led)."""
    return bool(hypotheses) and hypotheses[0].benign and hypotheses[0].likelihood_ratio > BENIGN_EVIDENCE_LR


def top_priority(hypotheses: Sequence[Hypothesis]) -> bool:
    """Whether an alert with these ranked hypotheses is top priority (see the module docstring)."""
    return not led_by_benign(hypotheses)


def held(alert: Alert, policy: BenignPolicy) -> bool:
    """Whether ``alert`` is held back under ``policy``."""
    return policy is BenignPolicy.HOLD and led_by_benign(alert.hypotheses)


def by_priority(alerts: Sequence[Alert]) -> list[Alert]:
    """``alerts`` with the top-priority ones first, each group in its given order."""
    return sorted(alerts, key=lambda alert: not top_priority(alert.hypotheses))
