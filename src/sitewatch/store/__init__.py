"""Workspaces: settings, the SQL store with migrations, and raster artefacts beside it."""

from sitewatch.store.chips import chip_relpath
from sitewatch.store.records import AlertEvent
from sitewatch.store.settings import Settings
from sitewatch.store.workspace import Workspace

__all__ = ["AlertEvent", "Settings", "Workspace", "chip_relpath"]
