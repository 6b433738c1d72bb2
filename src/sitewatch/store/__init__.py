"""Workspaces: settings, the SQL store with migrations, and raster artefacts beside it.

The names below are imported on first use (PEP 562): importing one light module of the
package (``sitewatch.store.settings``, ``sitewatch.store.chips``) must not load SQLAlchemy,
Alembic and the whole store, which every CLI verb would otherwise pay for at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sitewatch.store.chips import chip_relpath
    from sitewatch.store.records import AlertEvent
    from sitewatch.store.settings import Settings
    from sitewatch.store.workspace import Workspace

_EXPORTS = {
    "AlertEvent": "sitewatch.store.records",
    "Settings": "sitewatch.store.settings",
    "Workspace": "sitewatch.store.workspace",
    "chip_relpath": "sitewatch.store.chips",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["AlertEvent", "Settings", "Workspace", "chip_relpath"]
