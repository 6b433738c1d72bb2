"""The change-detector contract: one small protocol, one result type, one registry.

A detector compares two co-registered images of the same grid and says, per pixel,
how likely it changed. Like titiler's algorithm base, each detector declares what it
accepts (band count, ground sample distance) so callers can refuse unsuitable inputs
before spending time, and each result states how its operating point was chosen, so
that no figure hides a threshold tuned on the data it is scored on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from sitewatch.analytics.change.thresholds import sample_valid
from sitewatch.core.errors import UnsupportedInputError

FloatImage = NDArray[np.float32]
"""Pixels as float32 ``(bands, rows, cols)``."""
BoolMask = NDArray[np.bool_]
"""A ``(rows, cols)`` boolean mask."""


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What a detector says about one pair of images."""

    probability: NDArray[np.float32]
    """Change probability 0..1 per pixel, ``(rows, cols)``; 0 where the input was not valid."""
    mask: BoolMask
    """Changed pixels at the detector's operating point: ``probability >= threshold``."""
    threshold: float
    """Operating point on the probability scale."""
    rule: str
    """How the operating point was chosen (a fixed rule, or the data it was chosen on)."""
    detector: str
    """Name of the detector that produced the result."""

    def __post_init__(self) -> None:
        if self.probability.ndim != 2 or self.probability.shape != self.mask.shape:
            raise ValueError(
                f"ChangeResult.probability {self.probability.shape} and mask {self.mask.shape} must be "
                "the same (rows, cols) shape"
            )
        if self.mask.dtype != np.bool_:
            raise ValueError(f"ChangeResult.mask must be boolean, got {self.mask.dtype}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"ChangeResult.threshold {self.threshold} must lie in 0..1")

    @property
    def changed_fraction(self) -> float:
        """Fraction of pixels in the mask (0 for an empty image)."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@runtime_checkable
class ChangeDetector(Protocol):
    """A change detector: declares its contract, then maps (before, after) to a result."""

    @property
    def name(self) -> str:
        """Registry name, e.g. ``"cva"``."""

    @property
    def min_bands(self) -> int:
        """Fewest bands the method needs."""

    @property
    def bands(self) -> tuple[str, ...]:
        """Names of the bands the method reads, in the order it reads them (``("red", "green",
        "blue")``); callers find them by name (:func:`sitewatch.analytics.change.input_bands`) and
        pass those alone. Empty: any bands, all of them."""

    @property
    def gsd_range(self) -> tuple[float, float]:
        """Ground sample distances in metres the method was designed and checked for (inclusive)."""

    @property
    def description(self) -> str:
        """One line: the method and how its operating point is chosen."""

    @property
    def context_px(self) -> int:
        """How many pixels on each side of a pixel its answer depends on (0: on the pixel alone).
        Whoever cuts a large image into windows (:func:`~sitewatch.analytics.change.scene.scene_change`)
        reads that margin around each window and keeps the window's part, so window edges are not
        image edges to the method."""

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        """The change between two dates on one grid. The result's arrays are new, never views
        of the inputs (callers may reuse input buffers), and the inputs are left as they were."""
        ...


def check_pair(
    detector: ChangeDetector,
    before: NDArray[np.floating],
    after: NDArray[np.floating],
    valid: BoolMask | None,
    *,
    gsd: float | None = None,
) -> tuple[FloatImage, FloatImage, BoolMask]:
    """Validate a pair against ``detector``'s contract; return float32 copies and the valid mask.

    The valid mask excludes pixels that are invalid in the given mask or non-finite in either image,
    so detectors never fit statistics to nodata.
    """
    for label, image in (("before", before), ("after", after)):
        if image.ndim != 3:
            raise UnsupportedInputError(
                f"{detector.name}: {label} image has shape {image.shape}; give (bands, rows, cols)"
            )
    if before.shape != after.shape:
        raise UnsupportedInputError(
            f"{detector.name}: before {before.shape} and after {after.shape} differ; resample both to the "
            "same grid (co-register the observation to its reference) first"
        )
    if before.shape[0] < detector.min_bands:
        raise UnsupportedInputError(
            f"{detector.name}: needs at least {detector.min_bands} band(s), the images have {before.shape[0]}"
        )
    if gsd is not None:
        low, high = detector.gsd_range
        if not low <= gsd <= high:
            raise UnsupportedInputError(
                f"{detector.name}: ground sample distance {gsd} m is outside its range {low}..{high} m; "
                "choose another detector (see `change_detectors()`)"
            )
    before32 = np.asarray(before, dtype=np.float32)
    after32 = np.asarray(after, dtype=np.float32)
    finite: BoolMask = np.asarray(np.isfinite(before32).all(axis=0) & np.isfinite(after32).all(axis=0))
    if valid is not None:
        if valid.shape != before.shape[1:]:
            raise UnsupportedInputError(
                f"{detector.name}: valid mask {valid.shape} does not match the images {before.shape[1:]}"
            )
        finite &= valid.astype(bool)
    if not finite.all():
        unseen = ~finite
        # new arrays (never write into the caller's pixels), unless every unseen pixel already is
        # +0.0 in both: a caller that zeroed them (scene windows) is spared two copies of the pair
        if _any_bits(before32, unseen) or _any_bits(after32, unseen):
            before32 = np.where(finite, before32, np.float32(0.0))
            after32 = np.where(finite, after32, np.float32(0.0))
    return before32, after32, finite


def _any_bits(image: FloatImage, where: BoolMask) -> bool:
    """Whether any pixel of ``image`` (float32) at ``where`` is not +0.0 (NaN and -0.0 included)."""
    return bool(image[:, where].view(np.uint32).any())


def logistic_inplace(values: NDArray[np.float32]) -> NDArray[np.float32]:
    """``1 / (1 + exp(-values))`` written over ``values`` (clipped to ±30 first) and returned:
    one float32 array, no temporaries, for whole-image probability maps."""
    np.negative(values, out=values)
    np.clip(values, -30.0, 30.0, out=values)
    np.exp(values, out=values)
    values += 1.0
    return np.reciprocal(values, out=values)


_MEDIAN_SAMPLES = 200_000
"""Valid scores (a regular stride) whose median centres the probability's logistic."""


def score_result(
    detector: str,
    score: NDArray[np.floating],
    score_threshold: float,
    valid: BoolMask,
    rule: str,
    *,
    softness: float | None = None,
) -> ChangeResult:
    """Turn a change score and its threshold into a :class:`ChangeResult`.

    The probability is a logistic of the score centred on the threshold, so the mask at
    probability 0.5 is exactly ``score >= score_threshold``; ``softness`` (default a quarter
    of the threshold's distance from the median score) sets how quickly it saturates.
    """
    score = np.asarray(score, dtype=np.float32)
    if not np.isfinite(score_threshold):
        # nothing separable (e.g. identical images): no pixel is changed
        zero = np.zeros(score.shape, np.float32)
        return ChangeResult(zero, zero > 0, 0.5, rule, detector)
    if softness is None:
        centre = float(np.median(sample_valid(score, valid, limit=_MEDIAN_SAMPLES))) if valid.any() else 0.0
        softness = max(abs(score_threshold - centre) / 4.0, 1e-6)
    probability = np.subtract(score, np.float32(score_threshold), dtype=np.float32)
    probability /= np.float32(softness)
    logistic_inplace(probability)
    if not valid.all():
        probability[~valid] = 0.0
    mask = (score >= score_threshold) & valid
    return ChangeResult(probability=probability, mask=mask, threshold=0.5, rule=rule, detector=detector)


# --- registry ---------------------------------------------------------------------------------

DetectorFactory = Callable[[], ChangeDetector]
_REGISTRY: dict[str, DetectorFactory | str] = {
    "contrast": "sitewatch.analytics.change.contrast:ContrastChange",
    "cva": "sitewatch.analytics.change.cva:ChangeVectorAnalysis",
    "irmad": "sitewatch.analytics.change.irmad:IrMad",
    "learned": "sitewatch.analytics.change.learned:LearnedBuildings",
    "learned-site": "sitewatch.analytics.change.learned:LearnedSite",
    "pca-kmeans": "sitewatch.analytics.change.pcakmeans:PcaKMeans",
    "segments": "sitewatch.analytics.change.segments:SegmentChange",
}
"""Change detectors by name: the class, or for a built-in method not used yet where it lives
(``module:class``). Its module is imported on first use (where its ``register_change_detector``
puts the class in), not with this package: the methods' modules load scipy, onnxruntime and
scikit-image, which a CVA run does not need (issue 18: a third of ``sitewatch change scene``'s
time on a 4,096 px pair)."""


def register_change_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Class decorator adding a detector (built with no arguments) to the registry under ``name``."""

    def add(factory: DetectorFactory) -> DetectorFactory:
        known = _REGISTRY.get(name)
        where = f"{getattr(factory, '__module__', '')}:{getattr(factory, '__qualname__', '')}"
        if known is not None and known != where:
            raise ValueError(f"change detector {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return add


def change_detectors() -> list[str]:
    """Names of the registered change detectors: the built-in ones, then those registered since."""
    return list(_REGISTRY)


def get_change_detector(name: str) -> ChangeDetector:
    """A new detector of the given registry name."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnsupportedInputError(
            f"no change detector named {name!r}; choose one of: {known}"
        ) from None
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)  # registers itself on import
    return factory()

