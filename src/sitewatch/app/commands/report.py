"""CLI verb: ``sitewatch report`` writes a static HTML report of a workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report")(report)


def report(
    workspace: WorkspaceOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for report.html, one file with its pictures embedded "
                     "(default: WORKSPACE/report)."),
    ] = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", "-s", help="Only these sites (id or alias); repeatable.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a static HTML report: per site the observation timeline and alerts with before/after chips."""
    from sitewatch.app.report import build_report
    from sitewatch.store import Workspace

    console = Console(stderr=True)
    with Workspace.open(resolve_workspace(workspace)) as ws, Progress(
        console=console, transient=True, disable=as_json
    ) as bar:
        task = bar.add_task("report", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=f"report: {label}", completed=done, total=total)

        result = build_report(ws, out, site_ids=site, progress=progress)
    if as_json:
        typer.echo(json.dumps({
            "path": str(result.path),
            "sites": result.sites,
            "observations": result.observations,
            "alerts": result.alerts,
            "alerts_per_site": result.per_site,
        }, indent=2))
    else:
        typer.echo(f"{result.sites} site(s), {result.observations} observation(s), {result.alerts} alert(s)")
        typer.echo(f"report: {result.path}")
