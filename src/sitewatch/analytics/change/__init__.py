"""Change detection between two co-registered images of a site grid.

Every method implements :class:`ChangeDetector` and registers itself here on import;
use :func:`get_change_detector` / :func:`change_detectors` rather than the classes.
"""

from sitewatch.analytics.change import contrast, cva, irmad, learned, pcakmeans, segments
from sitewatch.analytics.change.base import (
    ChangeDetector,
    ChangeResult,
    change_detectors,
    get_change_detector,
    register_change_detector,
)

__all__ = [
    "ChangeDetector",
    "ChangeResult",
    "change_detectors",
    "contrast",
    "cva",
    "get_change_detector",
    "irmad",
    "learned",
    "pcakmeans",
    "register_change_detector",
    "segments",
]
