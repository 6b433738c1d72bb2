"""Workflows that join the library layers to a workspace: ingest, monitor, report data."""
