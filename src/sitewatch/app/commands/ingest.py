"""CLI verb ``ingest``: add images (files or folders) to a workspace, one chip per covered site."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.app.tables import add_id_column
from sitewatch.core.timeutil import parse_utc
from sitewatch.pipeline.ingest import FileOutcome, FileStatus, IngestReport, ingest
from sitewatch.pipeline.ingest import repair as repair_chips
from sitewatch.store import Workspace

FAILED_EXIT_CODE = 5
"""Exit code when any file failed (the imagery code of ``sitewatch.app.errors``)."""
PAUSE_ENV = "SITEWATCH_INGEST_PAUSE_S"
"""Seconds to wait after each file: lets crash tests kill an ingest between two files."""

_STATUS_STYLE = {FileStatus.INGESTED: "green", FileStatus.SKIPPED: "yellow", FileStatus.REPAIRED: "cyan",
                 FileStatus.FAILED: "red"}


def _parse_acquired(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--acquired") from None


def _parse_bands(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(","))
    if not all(names):
        raise typer.BadParameter(f"{value!r} has an empty band name; give names such as red,green,blue,nir",
                                 param_hint="--bands")
    return names


def _pause_seconds() -> float:
    text = os.environ.get(PAUSE_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else 0.0
    except ValueError:
        raise typer.BadParameter(f"{PAUSE_ENV}={text!r} is not a number of seconds") from None


def ingest_command(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Image files or folders (searched recursively). A file already ingested is skipped, or has its "
             "missing or corrupt chips recreated.", show_default=False)] = None,
    acquired: Annotated[
        str | None,
        typer.Option("--acquired", help="Acquisition time (ISO 8601, UTC if no offset) for every file; "
                     "needed when a file's tags, STAC item and name do not say it.", show_default=False),
    ] = None,
    sensor: Annotated[
        str | None,
        typer.Option("--sensor", show_default=False,
                     help="Sensor name for every file (default: from tags or STAC, else 'unknown')."),
    ] = None,
    bands: Annotated[
        str | None,
        typer.Option("--bands", show_default=False,
                     help="Band names of every file, comma-separated in file order (e.g. red,green,blue,nir "
                          "for NAIP); needed when the files do not name their bands (default: band "
                          "descriptions or RGB colour interpretation, else b1..bn)."),
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Without PATHS: verify every chip and recreate the missing or "
                           "corrupt ones from the files their scenes were ingested from.")
    ] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest images: one chip per site the footprint covers; exits 5 when any file failed."""
    if bool(paths) == repair:
        raise typer.BadParameter("give image files or folders to ingest, or --repair alone to recreate "
                                 "missing or corrupt chips", param_hint="PATHS / --repair")
    when = _parse_acquired(acquired)
    names = _parse_bands(bands)
    pause = _pause_seconds()
    out = Console()
    err = Console(stderr=True)
    with Workspace.open(resolve_workspace(workspace)) as ws:
        progress = Progress(TextColumn("[bold]ingest[/]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                            disable=as_json or not err.is_terminal, transient=True)
        with progress:
            task = progress.add_task("", total=None)

            def report_progress(path: Path, index: int, total: int, outcome: FileOutcome | None) -> None:
                if outcome is None:
                    progress.update(task, total=total, description=path.name)
                    return
                progress.update(task, completed=index + 1)
                if outcome.status is FileStatus.FAILED and not as_json:
                    # soft_wrap: a path in the message must stay whole, to be copied or grepped
                    progress.console.print(f"[red]failed:[/] {outcome.message}", highlight=False,
                                           soft_wrap=True)
                if pause:
                    time.sleep(pause)

            if repair:
                report = repair_chips(ws, progress=report_progress)
            else:
                report = ingest(ws, paths or [], acquired=when, sensor=sensor, bands=names,
                                progress=report_progress)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        _print_summary(out, report)
    if not report.outcomes:
        err.print("every chip is whole; nothing to repair" if repair else
                  f"no image files found in {', '.join(str(p) for p in paths or [])}", highlight=False)
    if not report.ok:
        raise typer.Exit(FAILED_EXIT_CODE)


def _print_summary(console: Console, report: IngestReport) -> None:
    table = Table(title="ingest", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("status")
    add_id_column(table, "scene", (o.scene_id or "" for o in report.outcomes))
    table.add_column("sites / problem", overflow="fold")
    for outcome in report.outcomes:
        style = _STATUS_STYLE[outcome.status]
        detail = ", ".join(outcome.site_ids) if outcome.status is FileStatus.INGESTED else outcome.message
        detail = detail.removeprefix(f"{outcome.path}: ")  # the file column names it already
        status = f"[{style}]{outcome.status.value}[/]"
        table.add_row(str(outcome.path), status, outcome.scene_id or "", detail)
    console.print(table)
    repaired = f"{len(report.repaired)} repaired, " if report.repaired else ""
    console.print(f"{len(report.ingested)} ingested, {len(report.skipped)} skipped, {repaired}"
                  f"{len(report.failed)} failed", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""
    app.command("ingest")(ingest_command)
