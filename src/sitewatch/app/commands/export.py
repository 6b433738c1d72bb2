"""CLI verb group ``export``: what the workspace holds, in formats other tools read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace

export_app = typer.Typer(help="Export what the workspace holds for other tools.", no_args_is_help=True)


@export_app.command("stac")
def stac_command(
    folder: Annotated[Path, typer.Argument(help="New or empty folder to write the static catalog into.",
                                           show_default=False)],
    site: Annotated[
        list[str] | None,
        typer.Option("--site", show_default=False, help="Only this site (id or alias; repeat for more)."),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the chips as a static STAC catalog (one collection per site, one item per observation,
    the chips as COGs) that pystac, odc-stac, stackstac and QGIS read."""
    from sitewatch.pipeline.stac_export import export_stac
    from sitewatch.store import Workspace

    with Workspace.open(resolve_workspace(workspace)) as ws:
        written = export_stac(ws, folder, site_ids=site or ())
    if as_json:
        typer.echo(json.dumps(written.to_dict()))
    else:
        typer.echo(f"{written.items} item(s) in {written.collections} collection(s): {written.catalog}")


def register(app: typer.Typer) -> None:
    """Add the ``export`` verb group to ``app``."""
    app.add_typer(export_app, name="export")
