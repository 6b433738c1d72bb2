"""Object-scale change: local contrast that appeared or vanished, tolerant of what is not change.

Built for watching a site date after date, where most of the "change" a plain difference sees
is not activity: haze and cloud shadows, illumination and season, the shadows of tall
buildings swinging with the sun, and the pixel or two of misregistration left after
co-registration. Each of those is taken out by one step:

1. **log brightness**, so a multiplicative change of illumination (a cloud shadow, a darker
   day) becomes an additive offset;
2. **high-pass** (minus a masked box-filtered local mean over ``context_m``), which removes
   every offset that is smooth at that scale, leaving objects, edges and texture;
3. **tolerant difference**: a pixel counts as changed when its value on one date lies outside
   the range of the other date's values within ``tolerance_m`` of it (an object that appeared,
   or one that went), so an edge that moved by a pixel or two is not change;
4. **relief**: pixels within ``relief_m`` of the long strong edges of the reference (walls,
   roof lines, shadow edges: at least ``edge_length_m`` of edge stronger than
   ``edge_strength``) are left out, since a tall structure leans by its height times the
   tangent of the view angle, differently on every date;
5. **large shadows** (dark areas wider than ``shadow_width_m`` on either date, grown by
   ``shadow_margin_m``) are left out: a building's shadow moves with the sun, a truck's shadow
   travels with its truck.

Pairs finer than ``working_gsd`` are block-averaged to it first. The operating point is a fixed
rule, not fitted to labels: median plus ``sigmas`` robust standard deviations of the pair's
scores, never below ``floor`` (a contrast change of about e^floor - 1 in the log domain);
changed patches thinner than ``min_width_m`` (slivers along edges) or smaller than
``min_area_m2`` (speckle) are dropped. Left-out pixels get probability 0: a truck parked in a
building's shadow or against its wall is missed, the price of not calling shadows activity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from sitewatch.analytics.change.base import (
    BoolMask,
    ChangeResult,
    FloatImage,
    check_pair,
    register_change_detector,
    score_result,
)
from sitewatch.core.errors import UnsupportedInputError


def _masked_mean(image: FloatImage, valid: BoolMask, size: int, weight: FloatImage) -> FloatImage:
    """Box-filtered mean of ``image`` over its valid pixels only; ``weight`` is :func:`_valid_share`."""
    total = ndimage.uniform_filter(np.where(valid, image, 0.0).astype(np.float32), size, mode="constant")
    return np.asarray(total / weight, dtype=np.float32)


def _valid_share(valid: BoolMask, size: int) -> FloatImage:
    """Share of valid pixels in each box (at least 1e-3): the divisor of every masked mean over ``valid``,
    computed once for all bands and both dates."""
    weight = ndimage.uniform_filter(valid.astype(np.float32), size, mode="constant")
    return np.maximum(weight, np.float32(1e-3))


def _high_pass(image: FloatImage, valid: BoolMask, size: int, weight: FloatImage) -> FloatImage:
    return np.stack([band - _masked_mean(band, valid, size, weight) for band in image]).astype(np.float32)


def _window_range(image: FloatImage, size: int) -> tuple[FloatImage, FloatImage]:
    """Lowest and highest value of ``image`` within a ``size`` x ``size`` window (edges repeated).

    scipy's minimum and maximum filters (``mode="nearest"``), whose answer this is; for the 3-pixel
    window of the monitoring scale, the shifted views of one edge-padded copy give it ten times
    faster (minimum and maximum are exact, so in any order the same numbers)."""
    if size != 3:
        return (ndimage.minimum_filter(image, size=size, mode="nearest"),
                ndimage.maximum_filter(image, size=size, mode="nearest"))
    padded = np.pad(image, 1, mode="edge")
    extremes = []
    for pick in (np.minimum, np.maximum):
        rows = pick(pick(padded[:-2], padded[1:-1]), padded[2:])
        extremes.append(pick(pick(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:]))
    return extremes[0], extremes[1]


def _outside(value: FloatImage, other: FloatImage, size: int) -> FloatImage:
    """How far ``value`` lies outside the range of ``other`` within a ``size`` window (0 inside)."""
    low, high = _window_range(other, size)
    return np.maximum(np.maximum(value - high, low - value), 0.0)


ScalarT = TypeVar("ScalarT", np.float32, np.bool_)


def _block_mean(image: FloatImage, factor: int) -> FloatImage:
    """Mean of each ``factor`` x ``factor`` block (edges repeated to whole blocks).

    Summed from strided views, each block's row first and then the rows, in the order numpy's mean
    over the blocks' two axes adds them (the same float32 numbers), at a sixth of its time."""
    rows, cols = image.shape[1:]
    padded = image if rows % factor == 0 and cols % factor == 0 else \
        np.pad(image, ((0, 0), (0, -rows % factor), (0, -cols % factor)), mode="edge")

    def row_sums(i: int) -> FloatImage:
        row = np.array(padded[:, i::factor, 0::factor], dtype=np.float32)
        for j in range(1, factor):
            row += padded[:, i::factor, j::factor]
        return row

    total = row_sums(0)
    for i in range(1, factor):
        total += row_sums(i)
    total /= np.float32(factor * factor)
    return total


def _block_all(mask: BoolMask, factor: int) -> BoolMask:
    rows, cols = mask.shape
    padded = np.pad(mask, ((0, -rows % factor), (0, -cols % factor)), mode="constant")
    return np.asarray(padded.reshape(padded.shape[0] // factor, factor, -1, factor).all(axis=(1, 3)), bool)


def _expand(image: NDArray[ScalarT], factor: int, shape: tuple[int, ...]) -> NDArray[ScalarT]:
    rows, cols = image.shape
    blocks = np.broadcast_to(image[:, None, :, None], (rows, factor, cols, factor))
    return blocks.reshape(rows * factor, cols * factor)[: shape[0], : shape[1]]


def _large_shadows(log_luminance: FloatImage, valid: BoolMask, width_px: int) -> BoolMask:
    """Dark areas (well below the site's typical brightness) at least ``width_px`` wide."""
    if not valid.any():
        return np.zeros(valid.shape, bool)
    typical = float(np.median(log_luminance[valid][:: max(1, int(valid.sum()) // 200_000)]))
    dark = (valid & (log_luminance < typical + math.log(0.6))).astype(np.uint8)
    if width_px <= 1:
        return dark > 0
    opened = ndimage.maximum_filter(ndimage.minimum_filter(dark, size=width_px), size=width_px)
    return np.asarray(opened > 0, bool)


@register_change_detector("contrast")
@dataclass(frozen=True, slots=True)
class ContrastChange:
    """Tolerant change of local log contrast, for monitoring a site over time (see the module)."""

    gsd: float = 0.5
    """Ground sample distance of the pair in metres (sets the scales below in pixels)."""
    context_m: float = 12.0
    tolerance_m: float = 1.0
    shadow_width_m: float = 8.0
    shadow_margin_m: float = 4.0
    relief_m: float = 5.0
    edge_strength: float = 0.2
    edge_length_m: float = 20.0
    sigmas: float = 6.0
    floor: float = 0.25
    min_area_m2: float = 2.0
    min_width_m: float = 1.5
    working_gsd: float = 1.0
    """Finer pairs are block-averaged to about this GSD first: vehicles stay several pixels, and
    the work drops with the square of the factor."""
    name: str = "contrast"
    min_bands: int = 1
    bands: tuple[str, ...] = ()
    gsd_range: tuple[float, float] = (0.1, 2.0)
    description: str = ("tolerant change of high-passed log brightness, large shadows left out; operating "
                        "point: median + 6 robust sigmas of the pair's scores, at least 0.25")

    def __post_init__(self) -> None:
        low, high = self.gsd_range
        if not (math.isfinite(self.gsd) and low <= self.gsd <= high):
            raise UnsupportedInputError(
                f"contrast: ground sample distance {self.gsd!r} m is outside its range {low}..{high} m; "
                "objects the size of vehicles are not resolved there, use cva or irmad"
            )

    @property
    def context_px(self) -> int:
        """The widest of its scales, in whole blocks of the working GSD: a long edge and its relief
        margin (25 m by default), the local mean's box, a large shadow and its rim."""
        metres = max(self.edge_length_m + self.relief_m, self.context_m,
                     self.shadow_width_m + self.shadow_margin_m)
        factor = max(1, int(self.working_gsd / self.gsd + 1e-6))
        return -(-math.ceil(metres / self.gsd) // factor) * factor

    def _pixels(self, metres: float, minimum: int = 1) -> int:
        return max(minimum, round(metres / self.gsd))

    def _strong_edges(self, high: FloatImage, valid: BoolMask) -> BoolMask:
        """Pixels within ``relief_m`` of a long strong edge of the reference (walls, roof lines), the
        strength being the largest over the bands (a blue roof on brown ground is a colour edge)."""
        strength = np.zeros(valid.shape, np.float32)
        for band in high:
            rows, cols = np.gradient(band)
            np.maximum(strength, np.hypot(rows, cols), out=strength)
        strong = valid & (strength >= self.edge_strength)
        if not strong.any():
            return strong
        labels, _ = ndimage.label(strong, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        long_edges = (sizes * self.gsd >= self.edge_length_m)[labels]  # walls, not cars
        size = 2 * self._pixels(self.relief_m, 0) + 1
        return np.asarray(ndimage.maximum_filter(long_edges, size=size), bool)

    def score(self, before: FloatImage, after: FloatImage, valid: BoolMask) -> tuple[FloatImage, BoolMask]:
        """Per-pixel change score and the pixels it is defined on (valid, not in a large shadow)."""
        reference = float(np.median(before[:, valid])) if valid.any() else 1.0
        offset = max(0.05 * abs(reference), 1e-6)
        log_before = np.log(np.maximum(before, 0.0) + offset, dtype=np.float32)
        log_after = np.log(np.maximum(after, 0.0) + offset, dtype=np.float32)
        shadows = _large_shadows(log_before.mean(axis=0), valid, self._pixels(self.shadow_width_m)) | \
            _large_shadows(log_after.mean(axis=0), valid, self._pixels(self.shadow_width_m))
        if shadows.any():  # their rims move with the season
            shadows = ndimage.maximum_filter(shadows, size=2 * self._pixels(self.shadow_margin_m, 0) + 1)
        usable = valid & ~shadows
        context = self._pixels(self.context_m, 3) | 1
        weight = _valid_share(valid, context)
        high_before = _high_pass(log_before, valid, context, weight)
        high_after = _high_pass(log_after, valid, context, weight)
        window = 2 * self._pixels(self.tolerance_m, 0) + 1
        near_edges = self._strong_edges(high_before, valid)
        usable &= ~near_edges
        squared = np.zeros(valid.shape, np.float32)
        for band_before, band_after in zip(high_before, high_after, strict=True):
            difference = np.maximum(_outside(band_after, band_before, window),
                                    _outside(band_before, band_after, window))
            squared += difference * difference
        score = np.sqrt(squared, dtype=np.float32)
        score[~usable] = 0.0
        return score, usable

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        before, after, valid = check_pair(self, before, after, valid, gsd=self.gsd)
        factor = max(1, int(self.working_gsd / self.gsd + 1e-6))
        if factor > 1:
            working = replace(self, gsd=self.gsd * factor, working_gsd=self.gsd * factor)
            small_score, small_usable = working.score(_block_mean(before, factor), _block_mean(after, factor),
                                                      _block_all(valid, factor))
            score = _expand(small_score, factor, valid.shape)
            usable = _expand(small_usable, factor, valid.shape) & valid
        else:
            score, usable = self.score(before, after, valid)
        if not usable.any():
            return score_result(self.name, score, np.inf, usable, "no valid pixels", softness=1.0)
        sample = score[usable][:: max(1, int(usable.sum()) // 200_000)]
        median = float(np.median(sample))
        sigma = 1.4826 * float(np.median(np.abs(sample - median)))
        threshold = max(self.floor, median + self.sigmas * sigma)
        changed = (score >= threshold) & usable
        width = self._pixels(self.min_width_m)
        if width > 1:  # slivers along edges that moved are thinner than any vehicle
            changed = ndimage.binary_opening(changed, structure=np.ones((width, width), bool))
        labels, count = ndimage.label(changed, structure=np.ones((3, 3), bool))
        if count:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            small = sizes * self.gsd * self.gsd < self.min_area_m2
            changed &= ~small[labels]
        score = np.where(changed, score, np.minimum(score, threshold * 0.99)).astype(np.float32)
        return score_result(self.name, score, threshold, usable,
                            f"median + {self.sigmas:g} robust sigmas of the pair's scores, at least "
                            f"{self.floor:g}; components under {self.min_area_m2:g} m² dropped",
                            softness=max(sigma, 0.02))
