"""The object-detector contract and registry.

Each detector declares what it accepts (bands, a ground-sample-distance range) and what it
returns (its class names), like titiler's algorithms declare their bands, so callers can
check before they run it and the detector can refuse imagery it would answer with
nonsense.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from sitewatch.core.errors import UnsupportedInputError


@dataclass(frozen=True, slots=True)
class ObjectBox:
    """One detected object in the pixel grid of the image given to the detector."""

    class_name: str
    score: float
    """Confidence 0..1."""
    x0: float
    y0: float
    x1: float
    y1: float
    """Axis-aligned box: column/row of the top-left and bottom-right corners (pixel edges)."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or not all(
            math.isfinite(v) for v in (self.x0, self.y0, self.x1, self.y1)
        ):
            raise ValueError(f"ObjectBox: bad score or corners in {self!r}")
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"ObjectBox: empty box {self!r}")

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    """What a detector accepts and returns."""

    name: str
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    """Band names expected, in order (for example red, green, blue)."""
    gsd_range: tuple[float, float]
    """Accepted input ground sample distances in metres, inclusive."""
    model_gsd: float
    """GSD the model works at internally; inputs are resampled to it."""
    score_threshold: float
    """Operating threshold: detections at or above it are reported and counted (classes without
    one of their own in ``class_thresholds``)."""
    validated_on_real: tuple[str, ...] = ()
    """Classes measured on real imagery (the others only on simulated imagery, or not at all)."""
    class_thresholds: tuple[tuple[str, float], ...] = ()
    """Per-class operating thresholds, where chosen on data of that class."""

    def threshold(self, class_name: str) -> float:
        """The operating threshold of ``class_name``."""
        return dict(self.class_thresholds).get(class_name, self.score_threshold)

    def thresholds(self) -> dict[str, float]:
        """Operating threshold of every class."""
        return {name: self.threshold(name) for name in self.classes}

    def check(self, image: np.ndarray, gsd: float) -> None:
        """Raise :class:`UnsupportedInputError` unless ``image`` (bands, rows, cols) at ``gsd`` fits."""
        if image.ndim != 3 or image.shape[0] != len(self.bands):
            raise UnsupportedInputError(
                f"detector {self.name!r} needs an array (bands, rows, cols) with {len(self.bands)} bands "
                f"({', '.join(self.bands)}), got shape {image.shape}; select those bands first"
            )
        if image.shape[1] < 8 or image.shape[2] < 8:
            raise UnsupportedInputError(
                f"detector {self.name!r}: image of {image.shape[1]}x{image.shape[2]} pixels is too small"
            )
        problem = self.gsd_problem(gsd)
        if problem is not None:
            raise UnsupportedInputError(
                f"{problem}; use finer imagery or skip object detection for this scene")

    def gsd_problem(self, gsd: float) -> str | None:
        """Why imagery of ``gsd`` metres is outside what the detector resolves; None when it is inside."""
        low, high = self.gsd_range
        if isinstance(gsd, int | float) and math.isfinite(gsd) and low <= gsd <= high:
            return None
        return (f"detector {self.name!r} accepts imagery of {low}-{high} m ground sample distance, got "
                f"{gsd!r} m: vehicles are not resolved reliably outside that range")


@runtime_checkable
class ObjectDetector(Protocol):
    """Finds objects in one image.

    ``detect`` takes pixels as (bands, rows, cols) in the declared band order and the
    image's GSD in metres, and returns boxes in that image's pixel grid with scores at or
    above ``score_threshold`` (each class's declared operating threshold when None).
    """

    @property
    def info(self) -> DetectorInfo: ...

    def detect(self, image: np.ndarray, gsd: float, *, score_threshold: float | None = None,
               nodata_mask: np.ndarray | None = None) -> list[ObjectBox]: ...


DetectorFactory = Callable[[], ObjectDetector]
_REGISTRY: dict[str, DetectorFactory] = {}
_CACHE: dict[str, ObjectDetector] = {}
DEFAULT_DETECTOR = "vehicles"


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Make a detector available by name; factories are called once, on first use."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"a detector named {name!r} is already registered; pass replace=True to override")
    _REGISTRY[name] = factory
    _CACHE.pop(name, None)


def available_detectors() -> list[str]:
    return sorted(_REGISTRY)


def get_detector(name: str = DEFAULT_DETECTOR) -> ObjectDetector:
    """The registered detector ``name`` (built once, then shared)."""
    if name not in _REGISTRY:
        raise UnsupportedInputError(
            f"no object detector named {name!r}; available: {', '.join(sorted(_REGISTRY)) or 'none'}"
        )
    if name not in _CACHE:
        _CACHE[name] = _REGISTRY[name]()
    return _CACHE[name]
