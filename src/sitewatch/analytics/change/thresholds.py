"""Fixed thresholding rules, so operating points never depend on labels of the scored data."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_MAX_SAMPLES = 1_000_000


def sample_valid(values: NDArray[np.floating], valid: NDArray[np.bool_], *,
                 limit: int = _MAX_SAMPLES) -> NDArray[np.float32]:
    """Valid values, thinned to at most ``limit`` by a regular stride (statistics, not pixels, need it).

    A stride is deterministic and costs nothing, unlike a random draw without replacement.
    """
    pixels = np.asarray(values, dtype=np.float32)
    if valid.all():  # the same values as boolean indexing gives, without its pass over the mask
        flat = pixels.ravel()
        if flat.size > limit:
            return flat[:: -(-flat.size // limit)].copy()
        return flat.copy()
    picked = pixels[valid]
    if picked.size > limit:
        picked = picked[:: -(-picked.size // limit)]
    return picked


def otsu_threshold(values: NDArray[np.floating], *, bins: int = 256) -> float:
    """Otsu's threshold: the cut that maximises the between-class variance of a histogram.

    Returns ``inf`` when all values are equal: nothing can be separated, so nothing is above the cut.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("otsu_threshold: no finite values to threshold")
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return float("inf")
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2.0
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])
