"""Opaque-cloud masks from the pixels of a chip, for imagery delivered without one.

Very-high-resolution products often come without a usable cloud mask, and a cloud over a
site is the largest "change" a detector will ever see. The test here is deliberately
simple and conservative, so it flags thick cloud and leaves bright roofs alone:

* **bright and colourless**: mean visible reflectance at least ``core_brightness`` of the
  sensor's full scale with a saturation (max-min over max of the visible bands) under
  ``max_saturation``; cloud edges are grown by hysteresis down to ``edge_brightness``;
* **large**: connected areas smaller than ``min_area_m2`` are dropped (white roofs, vehicles,
  snow-free concrete are small next to a cloud);
* **soft-edged**: the mask is grown by ``margin_m`` to cover the translucent rim.

It needs three visible bands (red, green, blue by name, else the first three); with fewer it
returns an empty mask, since a single band cannot tell a cloud from a white roof. Thin haze
and cloud shadows are not masked: the change detectors handle them as smooth illumination.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.bands import rgb_bands


@dataclass(frozen=True, slots=True)
class CloudSettings:
    """Thresholds of :func:`cloud_mask`; the defaults suit 8- to 16-bit visible imagery."""

    core_brightness: float = 0.8
    edge_brightness: float = 0.6
    max_saturation: float = 0.12
    min_area_m2: float = 1000.0
    margin_m: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.edge_brightness <= self.core_brightness <= 1.0:
            raise UnsupportedInputError(
                "CloudSettings: need 0 < edge_brightness <= core_brightness <= 1, got "
                f"{self.edge_brightness} and {self.core_brightness}"
            )


def full_scale(array: NDArray[np.generic], valid: NDArray[np.bool_]) -> float:
    """The value of a fully bright pixel for ``array``'s dtype and range.

    8-bit is 255; 16-bit is 11- or 12-bit counts when the data stay under 2047 or 4095,
    else reflectance × 10,000; floats are reflectance (1.0) unless they exceed 1.5.
    """
    if array.dtype == np.uint8:
        return 255.0
    sample = array[:, valid] if valid.any() else array.reshape(array.shape[0], -1)
    top = float(np.nanmax(sample)) if sample.size else 0.0
    if np.issubdtype(array.dtype, np.integer):
        return 2047.0 if top <= 2047 else 4095.0 if top <= 4095 else 10000.0
    return 1.0 if top <= 1.5 else 10000.0


def _visible(array: NDArray[np.generic], bands: Sequence[str]) -> NDArray[np.float32] | None:
    found = rgb_bands(bands)
    if found is not None:
        return array[list(found)].astype(np.float32)
    if array.shape[0] >= 3:
        return array[:3].astype(np.float32)
    return None


def cloud_mask(
    array: NDArray[np.generic],
    valid: NDArray[np.bool_],
    bands: Sequence[str],
    gsd: float,
    settings: CloudSettings | None = None,
) -> NDArray[np.bool_]:
    """Pixels of ``array`` (bands, rows, cols) under opaque cloud, on a grid of ``gsd`` metres."""
    settings = settings or CloudSettings()
    if not (math.isfinite(gsd) and gsd > 0):
        raise UnsupportedInputError(f"cloud_mask: gsd must be positive metres, got {gsd!r}")
    empty = np.zeros(array.shape[1:], dtype=bool)
    visible = _visible(array, bands)
    if visible is None or not valid.any():
        return empty
    scale = full_scale(array, valid)
    # The same float32 operations in the same order as the plain formulas (mean over the bands, then
    # / scale; (max - min) / max(max, 1e-6)), in place: one scratch array each instead of one per step.
    brightness = np.add(visible[0], visible[1])
    for band in visible[2:]:
        brightness += band
    brightness /= np.float32(len(visible))
    brightness /= np.float32(scale)
    top, bottom = visible.max(axis=0), visible.min(axis=0)
    np.subtract(top, bottom, out=bottom)
    np.maximum(top, np.float32(1e-6), out=top)
    saturation = np.divide(bottom, top, out=bottom)
    colourless = saturation < settings.max_saturation
    colourless &= valid
    core = colourless & (brightness >= settings.core_brightness)
    if not core.any():
        return empty
    edge = brightness >= settings.edge_brightness
    edge &= colourless
    labels, _ = ndimage.label(edge, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())
    keep = np.zeros(sizes.shape, bool)
    keep[labels[core]] = True  # areas grown from a bright core (hysteresis) ...
    keep &= sizes * gsd * gsd >= settings.min_area_m2  # ... and large enough to be cloud
    keep[0] = False
    clouds = keep[labels]
    margin = round(settings.margin_m / gsd)
    if margin > 0 and clouds.any():
        clouds = grow(clouds, margin)
    clouds &= valid
    return np.asarray(clouds, dtype=bool)


def grow(mask: NDArray[np.bool_], steps: int) -> NDArray[np.bool_]:
    """``mask`` dilated ``steps`` times by the 3 x 3 square, pixels beyond the edge unset.

    The same pixels as ``ndimage.binary_dilation(mask, np.ones((3, 3)), iterations=steps)``: the
    square repeated ``steps`` times is the (2 steps + 1) square, which separates into a running
    maximum along rows then columns (two passes instead of ``steps``).
    """
    size = 2 * steps + 1
    grown = ndimage.maximum_filter1d(mask.view(np.uint8), size, axis=1, mode="constant", cval=0)
    ndimage.maximum_filter1d(grown, size, axis=0, output=grown, mode="constant", cval=0)
    return grown.view(bool)
