"""CUSUM on conformal scores: catches slow builds no single observation reveals.

Weeks of construction raise an indicator a little at a time; each observation is only
mildly unusual. Each series' conformal p-value is turned into a normal score
``z = Φ⁻¹(1 − p)`` (standard normal when the history is quiet, whatever the
indicator's own distribution), clipped to ``±clip`` so one spike cannot trip the test
alone (that is the instant test's job), and accumulated:
``C_t = max(0, C_{t-1} + z_t − k)``. An alarm sounds when ``C_t >= h`` and the sum
restarts from zero.

``h`` is chosen for an in-control average run length of ``series / alpha``
observations (Siegmund's approximation for a normal CUSUM), so that across a site's
series about one false slow-build alarm comes per ``1 / alpha`` quiet observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtri


@dataclass(frozen=True, slots=True)
class CusumConfig:
    """Parameters of the slow-build test."""

    k: float = 0.5
    """Reference value: half the shift (in normal-score units) the test is tuned to find."""
    clip: float = 3.0
    """Normal scores are clipped to ±clip before accumulating."""


def average_run_length(h: float, k: float) -> float:
    """Siegmund's approximation of a normal CUSUM's in-control run length."""
    b = h + 1.166
    delta = -k
    return (math.exp(-2.0 * delta * b) + 2.0 * delta * b - 1.0) / (2.0 * delta * delta)


@lru_cache(maxsize=256)
def cusum_threshold(target_run_length: float, k: float = 0.5) -> float:
    """The ``h`` whose in-control average run length is ``target_run_length``."""
    if not (math.isfinite(target_run_length) and target_run_length > 1.0):
        raise ValueError(f"target run length {target_run_length!r} must be a finite number > 1")
    return float(brentq(lambda h: average_run_length(h, k) - target_run_length, 0.0, 200.0))


def normal_scores(p_values: np.ndarray, clip: float) -> np.ndarray:
    """``Φ⁻¹(1 − p)`` clipped to ±clip; NaN stays NaN (not observed)."""
    with np.errstate(divide="ignore"):
        scores = ndtri(1.0 - np.clip(p_values, 1e-300, 1.0))
    return np.clip(scores, -clip, clip)


def cusum_step(
    statistic: np.ndarray, scores: np.ndarray, *, k: float, threshold: float, armed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One CUSUM update: (statistic carried on, alarm, statistic reached before any restart).

    NaN scores leave a series unchanged.

    ``armed`` (bool, broadcastable) says where alarms may sound (warm-up over); the
    statistic restarts from zero after an alarm.
    """
    updated = np.where(np.isnan(scores), statistic, np.maximum(0.0, statistic + np.nan_to_num(scores) - k))
    alarm = armed & (updated >= threshold)
    return np.where(alarm, 0.0, updated), alarm, updated
