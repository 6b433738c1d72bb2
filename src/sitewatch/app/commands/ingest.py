"""CLI verb ``ingest``: add images (files, folders, or a STAC source) to a workspace, one chip per
covered site."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sitewatch.app.options import (
    JsonOption,
    SchedulerOption,
    SharedFolderOption,
    WorkersOption,
    WorkspaceOption,
    pause_seconds,
    resolve_workspace,
)
from sitewatch.app.tables import add_id_column
from sitewatch.core.timeutil import parse_utc

if TYPE_CHECKING:
    from sitewatch.pipeline.ingest import FileOutcome, IngestReport

FAILED_EXIT_CODE = 5
"""Exit code when any file failed (the imagery code of ``sitewatch.app.errors``)."""
PAUSE_ENV = "SITEWATCH_INGEST_PAUSE_S"
"""Seconds to wait after each file: lets crash tests kill an ingest between two files."""

_STATUS_STYLE = {"ingested": "green", "skipped": "yellow", "repaired": "cyan", "failed": "red"}


def _parse_acquired(value: str | None, option: str = "--acquired") -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def _parse_bands(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(","))
    if not all(names):
        raise typer.BadParameter(f"{value!r} has an empty band name; give names such as red,green,blue,nir",
                                 param_hint="--bands")
    return names



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
    stac: Annotated[
        str | None,
        typer.Option("--stac", show_default=False,
                     help="Ingest from a STAC source instead of files: a STAC API URL, a static catalog "
                          "(catalog.json, local or http) or an ItemCollection file. Only the windows over "
                          "the sites are read; stored items are skipped."),
    ] = None,
    site: Annotated[
        list[str] | None,
        typer.Option("--site", show_default=False,
                     help="With --stac: only items over this site (id or alias; repeat for more). "
                          "Default: every site of the workspace."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", show_default=False,
                     help="With --stac: items acquired at or after (ISO 8601)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", show_default=False,
                     help="With --stac: items acquired at or before (ISO 8601)."),
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", show_default=False,
                     help="With --stac: only this collection (repeatable)."),
    ] = None,
    max_cloud: Annotated[
        float | None,
        typer.Option("--max-cloud", min=0.0, max=100.0, show_default=False,
                     help="With --stac: largest eo:cloud_cover, percent (items that do not say pass)."),
    ] = None,
    max_off_nadir: Annotated[
        float | None,
        typer.Option("--max-off-nadir", min=0.0, max=90.0, show_default=False,
                     help="With --stac: largest view:off_nadir, degrees (items that do not say pass)."),
    ] = None,
    max_gsd: Annotated[
        float | None,
        typer.Option("--max-gsd", min=0.0, show_default=False,
                     help="With --stac: coarsest gsd, metres (items that do not say pass)."),
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Alone (no PATHS, no --stac): verify every chip and recreate the "
                           "missing or corrupt ones from the files or STAC assets their scenes came from.")
    ] = False,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    shared_folder: SharedFolderOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest images (files, folders or --stac SOURCE): one chip per site the footprint covers;
    exits 5 when any file or item failed. --repair alone recreates missing or corrupt chips."""
    from sitewatch.core.parallel import resolve_scheduler
    from sitewatch.pipeline.ingest import FileStatus, ingest, ingest_stac
    from sitewatch.pipeline.ingest import repair as repair_chips
    from sitewatch.store import Workspace

    if sum((bool(paths), stac is not None, repair)) != 1:
        raise typer.BadParameter("give image files or folders to ingest, or --stac SOURCE, or --repair alone "
                                 "to recreate missing or corrupt chips: one of them, not both",
                                 param_hint="PATHS / --stac / --repair")
    stac_only = {"--site": site, "--since": since, "--until": until, "--collection": collection,
                 "--max-cloud": max_cloud, "--max-off-nadir": max_off_nadir, "--max-gsd": max_gsd}
    if stac is None and (given := [name for name, value in stac_only.items() if value]):
        raise typer.BadParameter(f"{', '.join(given)} filter STAC items; use them with --stac SOURCE",
                                 param_hint=given[0])
    if stac is not None and (acquired or sensor or bands):
        raise typer.BadParameter("STAC items say their time, sensor and bands; --acquired, --sensor and "
                                 "--bands apply to files only", param_hint="--stac")
    if (scheduler is not None or workers is not None) and not paths:
        raise typer.BadParameter("files are ingested as dask tasks; --stac and --repair run in this process",
                                 param_hint="--scheduler / -j")
    tasks_on = resolve_scheduler(scheduler, workers)
    when = _parse_acquired(acquired)
    names = _parse_bands(bands)
    start, end = _parse_acquired(since, "--since"), _parse_acquired(until, "--until")
    pause = pause_seconds(PAUSE_ENV)
    out = Console()
    err = Console(stderr=True)
    with Workspace.open(resolve_workspace(workspace)) as ws:
        progress = Progress(TextColumn("[bold]ingest[/]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                            disable=as_json or not err.is_terminal, transient=True)
        with progress:
            task = progress.add_task("", total=None)

            def report_progress(path: Path | str, index: int, total: int,
                                outcome: FileOutcome | None) -> None:
                if outcome is None:
                    name = path.name if isinstance(path, Path) else path.rsplit("/", 1)[-1]
                    progress.update(task, total=total, description=name)
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
            elif stac is not None:
                report = ingest_stac(ws, stac, site_ids=site or (), since=start, until=end,
                                     collections=collection or (), max_cloud=max_cloud,
                                     max_off_nadir=max_off_nadir, max_gsd=max_gsd, progress=report_progress)
            else:
                report = ingest(ws, paths or [], acquired=when, sensor=sensor, bands=names,
                                progress=report_progress, scheduler=tasks_on, shared_folder=shared_folder)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        _print_summary(out, report)
    if not report.outcomes and repair:
        err.print("every chip is whole; nothing to repair", highlight=False)
    elif not report.outcomes and stac is not None:
        err.print(f"no items in {stac} over the sites that pass the filters", highlight=False)
    elif not report.outcomes:
        err.print(f"no image files found in {', '.join(str(p) for p in paths or [])}", highlight=False)
    if not report.ok:
        raise typer.Exit(FAILED_EXIT_CODE)


def _print_summary(console: Console, report: IngestReport) -> None:
    from sitewatch.pipeline.ingest import FileStatus

    table = Table(title="ingest", show_lines=False)
    table.add_column("file / asset", overflow="fold")
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
