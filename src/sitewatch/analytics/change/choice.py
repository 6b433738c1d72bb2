"""Which change method to run on an input, decided once from what is known about it.

Every caller that runs "the default" general change map (``sitewatch change scene``,
``sitewatch eval change``'s ``default`` entry) asks :func:`choose_change_method` with the input's
ground sample distance and band names, so that what is scored is what the pipeline runs:

1. GSD unknown (PNG/JPEG pairs, rasters without a CRS): :data:`FALLBACK_CHANGE_METHOD`, a method
   that holds on any input, rather than a model whose range cannot be checked;
2. GSD within the learned model's declared range and red, green and blue found by name:
   ``learned`` on those three bands;
3. GSD at or finer than :data:`HIGH_RESOLUTION_LIMIT_M`: ``segments`` on every band;
4. coarser: ``irmad`` on two or more bands, ``cva`` on one.

Bands are found by their names (:mod:`sitewatch.imagery.bands`), never by position: unnamed
bands (``b1``, ``b2``, ...) are not taken for RGB, so no RGB-only method is chosen for them.

The monitor has a second rule, :func:`choose_monitoring_detector`, on purpose: its indicators
count vehicle-sized patches and areas of change date after date against a composite of earlier
dates, so it needs *object-scale* change that ignores illumination, shadows and a residual shift
(``contrast`` within its 0.1-2 m range, else ``cva``), where :func:`choose_change_method` picks
the best *general change map* of one pair (buildings, land). An observation's stored change
evidence is the monitor's (see :mod:`sitewatch.pipeline.evidence`); the general map is what
``sitewatch change scene`` writes and ``sitewatch change observation --method`` shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sitewatch.analytics.change.base import ChangeDetector, get_change_detector
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.bands import describe_bands, find_bands

FALLBACK_CHANGE_METHOD = "segments"
"""The method for inputs whose GSD is unknown. It must hold on any imagery, since nothing can be
checked against a declared range; ``segments`` (label-free, object-based) is the choice for now."""

LEARNED_CHANGE_METHOD = "learned"
"""The project's learned model, chosen within its declared GSD range on RGB imagery."""

HIGH_RESOLUTION_LIMIT_M = 5.0
"""Grids at or finer than this (and not for the learned model) use the object-based ``segments``
detector, coarser ones IR-MAD (it scores best on the Landsat pairs, see docs/change.md)."""


@dataclass(frozen=True, slots=True)
class MethodChoice:
    """The change method for one input, and what to give it."""

    method: str
    """Registry name of the detector (:func:`get_change_detector`)."""
    bands: tuple[int, ...]
    """0-based indices of the input's bands to pass the detector, in order."""
    reason: str
    """One line: why this method for this input."""

    def detector(self) -> ChangeDetector:
        """A new detector of the chosen method."""
        return get_change_detector(self.method)


def input_bands(detector: ChangeDetector, band_names: Sequence[str]) -> tuple[int, ...]:
    """Indices of the bands to pass ``detector``: the ones it names (``detector.bands``), found by
    name, in its order; every band when it names none. Raises when a named band is missing."""
    if not detector.bands:
        return tuple(range(len(band_names)))
    found = find_bands(band_names, detector.bands)
    if found is None:
        raise UnsupportedInputError(
            f"{detector.name} reads the {', '.join(detector.bands)} bands, found by name, and the image's "
            f"bands are called {describe_bands(band_names)}; name its bands (band descriptions, "
            "or colour interpretation: gdal_edit.py -colorinterp_1 red ...) or choose another method"
        )
    return found


def take_bands(image: NDArray[np.floating], bands: Sequence[int]) -> NDArray[np.floating]:
    """``image`` (bands, rows, cols) itself when ``bands`` is every band in order, else those bands."""
    if tuple(bands) == tuple(range(image.shape[0])):
        return image
    return image[list(bands)]


def _usable(method: str, band_names: Sequence[str]) -> tuple[int, ...] | None:
    """The bands ``method`` would get from an input with ``band_names``, or None when it cannot run."""
    detector = get_change_detector(method)
    try:
        bands = input_bands(detector, band_names)
    except UnsupportedInputError:
        return None
    return bands if len(bands) >= detector.min_bands else None


def _coarse(band_names: Sequence[str], why: str) -> MethodChoice:
    every = tuple(range(len(band_names)))
    if len(band_names) >= 2:
        return MethodChoice("irmad", every, f"{why}: IR-MAD on all {len(band_names)} bands")
    return MethodChoice("cva", every, f"{why}: CVA on the single band")


def choose_change_method(gsd: float | None, band_names: Sequence[str]) -> MethodChoice:
    """The change method for an input of ``gsd`` metres per pixel (None: unknown) whose bands are
    called ``band_names`` (one per band, as chips and rasters carry them)."""
    if not band_names:
        raise UnsupportedInputError("choose_change_method: the input has no bands; give at least one")
    if gsd is None or not math.isfinite(gsd) or gsd <= 0:
        bands = _usable(FALLBACK_CHANGE_METHOD, band_names)
        if bands is not None:
            return MethodChoice(FALLBACK_CHANGE_METHOD, bands,
                                "GSD unknown: the fallback method, which holds on any imagery")
        return _coarse(band_names, f"GSD unknown and {FALLBACK_CHANGE_METHOD} cannot run on these bands")
    learned = get_change_detector(LEARNED_CHANGE_METHOD)
    low, high = learned.gsd_range
    if low <= gsd <= high:
        rgb = _usable(LEARNED_CHANGE_METHOD, band_names)
        if rgb is not None:
            return MethodChoice(LEARNED_CHANGE_METHOD, rgb,
                                f"{gsd:g} m within the learned model's {low:g}-{high:g} m, RGB bands by name")
        why = "no red, green and blue bands by name"
    else:
        why = f"outside the learned model's {low:g}-{high:g} m"
    if gsd <= HIGH_RESOLUTION_LIMIT_M:
        return MethodChoice("segments", tuple(range(len(band_names))),
                            f"{gsd:g} m, {why}: object-based change (segments) at <= "
                            f"{HIGH_RESOLUTION_LIMIT_M:g} m")
    return _coarse(band_names, f"{gsd:g} m, coarser than {HIGH_RESOLUTION_LIMIT_M:g} m")


MONITORING_CHANGE_METHOD = "contrast"
"""The monitor's change method within its declared GSD range (``ContrastChange.gsd_range``)."""

MONITORING_FALLBACK_METHOD = "cva"
"""The monitor's change method on grids outside that range."""


def choose_monitoring_detector(gsd: float) -> tuple[ChangeDetector, str]:
    """The change detector the monitor's indicators are measured with on a site grid of ``gsd``
    metres, and why: ``contrast`` at that GSD within its declared range, else plain CVA.

    Not :func:`choose_change_method` (see the module docstring): the indicators need object-scale
    change that illumination, shadows and small misregistration do not trigger, date after date,
    on every band the chips have.
    """
    # here, not at the top: contrast's module loads scipy.ndimage, which the other methods need not
    from sitewatch.analytics.change.contrast import ContrastChange

    contrast = ContrastChange()
    low, high = contrast.gsd_range
    if math.isfinite(gsd) and low <= gsd <= high:
        return (ContrastChange(gsd=gsd),
                f"{gsd:g} m within {MONITORING_CHANGE_METHOD}'s {low:g}-{high:g} m: object-scale change for "
                "the monitor's indicators")
    return (get_change_detector(MONITORING_FALLBACK_METHOD),
            f"{gsd:g} m outside {MONITORING_CHANGE_METHOD}'s {low:g}-{high:g} m: "
            f"{MONITORING_FALLBACK_METHOD} for the monitor's indicators")
