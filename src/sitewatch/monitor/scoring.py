"""Conformal p-values of new observations against a site's own history.

Nonconformity score of an indicator value ``x`` in a series with baseline location
``m`` and spread ``s``: ``direction * (x - m) / s`` times the value's quality weight
(two-sided indicators use the absolute value). The baseline is refitted on the window
*with* the new value in it, so the new value and the calibration values are scored by
the same symmetric rule and, when the history is exchangeable, the rank of the new
score is uniform: the p-value ``(1 + #{calibration scores >= new}) / (n + 1)`` is then
a valid p-value (DESIGN.md §4).

With ``n`` calibration values that p-value cannot go below ``1 / (n + 1)``. Beyond the
largest calibration score it is extended by an exponential tail whose scale is the mean
excess of the top calibration scores (peaks over threshold, at least
``tail_scale_floor`` score units): ``p = exp(-(s - max) / beta) / (n + 1)``. The
decision ``p <= alpha`` is therefore exactly conformal once ``n >= 1/alpha - 1``, and
model-based below that (the *warm-up*: flagged as such on every alert it raises).
"""

from __future__ import annotations

import numpy as np

TINY = 1e-300
"""Smallest tail probability reported: p is never exactly 0."""

TAIL_POINTS = 5
"""Largest calibration scores used to estimate the exponential tail's scale."""


def conformal_p_values(
    calibration: np.ndarray,
    new: np.ndarray,
    *,
    tail_scale_floor: float = 1.0,
    n: np.ndarray | None = None,
) -> np.ndarray:
    """p-value of each ``new`` score against the ``calibration`` scores on its last axis.

    ``calibration`` is (..., n) with NaN for missing entries; ``new`` is (...). A NaN new
    score, or an empty calibration set, gives p = 1 (nothing to say). ``n``, the count of
    calibration scores per row, may be passed when the caller has it.
    """
    if n is None:
        n = np.count_nonzero(~np.isnan(calibration), axis=-1)
    at_least = np.count_nonzero(calibration >= new[..., None], axis=-1)  # NaN compares False
    p = (1.0 + at_least) / (n + 1.0)
    if calibration.shape[-1] > 0:
        maximum = np.fmax.reduce(calibration, axis=-1)
        beyond = (n > 0) & (new > maximum)
        if beyond.any():
            p[beyond] = _tail_p_values(calibration[beyond], new[beyond], n[beyond], tail_scale_floor)
    return np.where(np.isnan(new) | (n == 0), 1.0, p)


def _tail_p_values(calibration: np.ndarray, new: np.ndarray, n: np.ndarray, floor: float) -> np.ndarray:
    """Exponential-tail p-values of rows whose new score exceeds every calibration score."""
    filled = np.where(np.isnan(calibration), -np.inf, calibration)
    k = min(TAIL_POINTS, calibration.shape[-1])
    top = -np.sort(-np.partition(filled, calibration.shape[-1] - k, axis=-1)[..., -k:], axis=-1)
    kk = np.minimum(n, k)
    maximum = top[..., 0]
    threshold = np.take_along_axis(top, np.maximum(kk - 1, 0)[..., None], axis=-1)[..., 0]
    keep = np.arange(k) < (kk - 1)[..., None]
    excess = np.where(keep, top - np.where(keep, threshold[..., None], 0.0), 0.0)
    beta = np.where(kk > 1, excess.sum(axis=-1) / np.maximum(kk - 1, 1), 0.0)
    beta = np.fmax(beta, floor)
    return np.maximum(np.exp(-(new - maximum) / beta), TINY) / (n + 1.0)


def nonconformity(
    values: np.ndarray,
    location: np.ndarray,
    scale: np.ndarray,
    quality: np.ndarray,
    directions: np.ndarray,
) -> np.ndarray:
    """Quality-weighted robust z-scores; larger means more unusual activity.

    ``values``, ``location`` and ``quality`` share a shape (..., series, time);
    ``scale`` is (..., series) and ``directions`` (series,).
    """
    z = (values - location) / scale[..., None]
    signed = np.where(directions[:, None] == 0, np.abs(z), directions[:, None] * z)
    return signed * quality
