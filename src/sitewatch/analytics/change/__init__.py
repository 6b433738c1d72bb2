"""Change detection between two co-registered images of a site grid.

Every method implements :class:`ChangeDetector` and is named in the registry of ``base``, its
module imported when the method is first asked for (:func:`get_change_detector`); use it and
:func:`change_detectors` rather than the classes, and
:func:`choose_change_method` for the method to run on an input by default
(:func:`choose_monitoring_detector` for the monitor's indicators; ``choice`` says why two).
"""

from sitewatch.analytics.change.base import (
    ChangeDetector,
    ChangeResult,
    change_detectors,
    get_change_detector,
    register_change_detector,
)
from sitewatch.analytics.change.choice import (
    FALLBACK_CHANGE_METHOD,
    HIGH_RESOLUTION_LIMIT_M,
    MONITORING_CHANGE_METHOD,
    MethodChoice,
    choose_change_method,
    choose_monitoring_detector,
    input_bands,
    take_bands,
)

__all__ = [
    "FALLBACK_CHANGE_METHOD",
    "HIGH_RESOLUTION_LIMIT_M",
    "MONITORING_CHANGE_METHOD",
    "ChangeDetector",
    "ChangeResult",
    "MethodChoice",
    "change_detectors",
    "choose_change_method",
    "choose_monitoring_detector",
    "get_change_detector",
    "input_bands",
    "register_change_detector",
    "take_bands",
]
