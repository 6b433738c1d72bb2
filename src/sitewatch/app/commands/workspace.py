"""CLI verb ``init``: create a workspace folder (settings, database, chips) with the reference sites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Workspace folder (default: $SITEWATCH_WORKSPACE or ./sitewatch-workspace).",
                       show_default=False),
    ] = None,
    workspace: WorkspaceOption = None,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Load the sites of this GeoJSON catalog instead of the built-in ones.",
                     show_default=False),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Database URL, e.g. postgresql+psycopg://USER@HOST:5432/DB for a "
                     "PostGIS server (default: the SQLite file sitewatch.db in the workspace).",
                     show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace (safe to re-run: opens, migrates and adds missing sites)."""
    from sitewatch.catalog import load_catalog
    from sitewatch.store import Workspace

    if directory is not None and workspace is not None and directory != workspace:
        raise typer.BadParameter(f"got both DIR {directory} and --workspace {workspace}; give one")
    root = directory if directory is not None else resolve_workspace(workspace)
    sites = load_catalog(catalog) if catalog is not None else None
    with Workspace.init(root, sites=sites, database_url=store) as ws:
        site_ids = [site.id for site in ws.sites()]
        if as_json:
            typer.echo(json.dumps({"workspace": str(ws.root), "sites": site_ids, "store": ws.store_name()}))
            return
        typer.echo(f"workspace ready at {ws.root} ({len(site_ids)} site(s): {', '.join(site_ids) or 'none'}; "
                   f"store {ws.store_name()})")
        typer.echo(f"use it with -w {ws.root} on each verb, or: export SITEWATCH_WORKSPACE={ws.root}")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""
    app.command("init")(init)
