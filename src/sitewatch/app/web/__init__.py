"""The web API and dashboard over a workspace (FastAPI); see ``create_app`` and docs/web.md."""

from __future__ import annotations

from sitewatch.app.web.app import create_app

__all__ = ["create_app"]
