"""CLI verb ``sitewatch check``: verify every chip against the checksum kept at ingest."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace

BROKEN_EXIT_CODE = 5
"""Exit code when a chip is missing or corrupt (the imagery code of ``sitewatch.app.errors``)."""


def check(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Verify every chip against the checksum kept at ingest.

    The missing or corrupt ones are listed and flagged (the monitor skips them, the API shows why), and
    the verb exits 5 when there are any; `sitewatch ingest --repair` recreates them."""
    from sitewatch.pipeline.ingest import check_chips
    from sitewatch.store import Workspace

    with Workspace.open(resolve_workspace(workspace)) as ws:
        total = len(ws.observations())
        broken = check_chips(ws)
    if as_json:
        typer.echo(json.dumps({"chips": total, "broken": [
            {"observation_id": found.observation.id, "site_id": found.observation.site_id,
             "scene_id": found.observation.scene_id, "chip_path": found.observation.chip_path,
             "problem": found.problem} for found in broken]}, ensure_ascii=False))
    else:
        console = Console(highlight=False, soft_wrap=True)
        for found in broken:
            console.print(f"[red]broken:[/] {found.observation.id}: {escape(found.problem)}")
        console.print(f"{total} chip(s) checked, {len(broken)} missing or corrupt"
                      + ("; recreate them with `sitewatch ingest --repair`" if broken else ""))
    if broken:
        raise typer.Exit(BROKEN_EXIT_CODE)


def register(app: typer.Typer) -> None:
    """Add the ``check`` verb to ``app``."""
    app.command("check")(check)
