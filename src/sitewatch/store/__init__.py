"""Workspaces: settings, the SQL store with migrations, and raster artefacts beside it."""
