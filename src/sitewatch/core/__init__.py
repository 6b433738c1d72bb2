"""Domain types, errors and geometry/time helpers. No I/O.

The errors are imported here at once; the domain types on first use (PEP 562), because they
need shapely and numpy, which a command such as ``sitewatch --version`` that only needs the
errors should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sitewatch.core.errors import (
    CatalogError,
    ImageryError,
    NoSiteCoverageError,
    NotFoundError,
    NotGeoreferencedError,
    NoValidPixelsError,
    SitewatchError,
    StoreError,
    UnsupportedInputError,
    ValidationError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    from sitewatch.core.types import (
        Alert,
        AlertState,
        Assessment,
        ChangeRegion,
        Confidence,
        Detection,
        IndicatorValue,
        Likelihood,
        Observation,
        Scene,
        Site,
        Zone,
        ZoneKind,
    )

_TYPES = frozenset({
    "Alert", "AlertState", "Assessment", "ChangeRegion", "Confidence", "Detection", "IndicatorValue",
    "Likelihood", "Observation", "Scene", "Site", "Zone", "ZoneKind",
})


def __getattr__(name: str) -> Any:
    if name in _TYPES:
        return getattr(importlib.import_module("sitewatch.core.types"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Alert",
    "AlertState",
    "Assessment",
    "CatalogError",
    "ChangeRegion",
    "Confidence",
    "Detection",
    "ImageryError",
    "IndicatorValue",
    "Likelihood",
    "NoSiteCoverageError",
    "NoValidPixelsError",
    "NotFoundError",
    "NotGeoreferencedError",
    "Observation",
    "Scene",
    "Site",
    "SitewatchError",
    "StoreError",
    "UnsupportedInputError",
    "ValidationError",
    "WorkspaceNotFoundError",
    "Zone",
    "ZoneKind",
]
