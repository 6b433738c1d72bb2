"""CLI verb ``sitewatch monitor``: score new observations and raise alerts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sitewatch.app.options import (
    JsonOption,
    SchedulerOption,
    SharedFolderOption,
    WorkersOption,
    WorkspaceOption,
    resolve_workspace,
)
from sitewatch.core.parallel import resolve_scheduler

if TYPE_CHECKING:
    from sitewatch.core.types import Alert
    from sitewatch.pipeline.monitor import MonitorReport


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as plain JSON values (shared by ``monitor`` and ``alerts``)."""
    return {
        "id": alert.id,
        "site_id": alert.site_id,
        "observation_id": alert.observation_id,
        "acquired": alert.acquired.isoformat(),
        "created": alert.created.isoformat(),
        "zone_id": alert.zone_id,
        "indicator": alert.indicator,
        "value": alert.value,
        "baseline": alert.baseline,
        "score": alert.score,
        "p_value": alert.p_value,
        "state": alert.state.value,
        "explanation": alert.explanation,
        "hypotheses": [h.as_dict() for h in alert.hypotheses],
    }


def report_json(report: MonitorReport) -> dict[str, Any]:
    return {
        "false_alarm_rate": report.false_alarm_rate,
        "change_detector": report.change_detector,
        "object_detection": report.object_detection,
        "sites": [
            {
                "site_id": s.site_id,
                "name": s.site_name,
                "observations": s.observations,
                "processed": s.processed,
                "alerts_total": s.alerts_total,
                "detection_skipped": s.detection_skipped,
                "detection_skipped_reason": s.detection_skipped_reason,
                "flagged": [{"observation_id": o, "problem": problem} for o, problem in s.flagged],
                "problem": s.problem,
                "new_alerts": [alert_json(a) for a in s.new_alerts],
                "held_alerts": [alert_json(a) for a in s.held_alerts],
            }
            for s in report.sites
        ],
    }


def print_report(report: MonitorReport, console: Console) -> None:
    """The final table: alerts per site, then one line per new alert."""
    table = Table(title=f"Monitoring pass (false-alarm rate {report.false_alarm_rate:g} per observation)")
    for column in ("site", "observations", "scored now", "new alerts", "alerts in total", "flagged"):
        table.add_column(column)
    for site in report.sites:
        table.add_row(site.site_name, str(site.observations), str(site.processed), str(len(site.new_alerts)),
                      str(site.alerts_total), str(len(site.flagged)) if site.flagged else "-")
    console.print(table)
    for site in report.sites:
        if site.problem:
            console.print(f"[red]{site.site_id}: new observations not computed[/]: {escape(site.problem)}")
        for observation_id, problem in site.flagged:
            console.print(f"[yellow]flagged, not scored:[/] {observation_id}: {escape(problem)}")
    if any(site.flagged for site in report.sites):
        console.print("[dim]`sitewatch ingest --repair` recreates missing or corrupt chips from their "
                      "source; `sitewatch check` verifies every chip[/]")
    for alert in report.new_alerts:
        console.print(f"[bold]{alert.id}[/] {alert.acquired:%Y-%m-%d} {alert.site_id}: {alert.explanation}")
    held = sum(len(site.held_alerts) for site in report.sites)
    if held:
        console.print(f"[dim]{held} new alert(s) led by a benign hypothesis held back by the sites' policy "
                      "(`sitewatch alerts list --held`)[/]")
    if not report.object_detection:
        console.print("[dim]object detection not installed: indicators come from change detection only[/]")
    for site in report.sites:
        if site.detection_skipped:
            console.print(f"[dim]{site.site_id}: object detection skipped on {site.detection_skipped} "
                          f"observation(s), their objects not observed (not zero): "
                          f"{site.detection_skipped_reason}[/]")


def monitor(
    workspace: WorkspaceOption = None,
    false_alarm_rate: Annotated[
        float | None,
        typer.Option("--false-alarm-rate", "-a", min=1e-6, max=0.5,
                     help="Alpha: chance of a false alert per observation of a quiet site "
                          "(default: the workspace setting, 0.01 unless changed)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Recompute every observation's indicators, not only new ones.")
    ] = False,
    objects: Annotated[
        bool | None, typer.Option("--objects/--no-objects", show_default=False,
                                  help="Run object detection (default: when a detector is installed).")
    ] = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    shared_folder: SharedFolderOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score new observations of every site against its own history and raise alerts (one task per
    site; --scheduler runs them on a dask cluster)."""
    from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
    from sitewatch.store import Workspace

    options = MonitorOptions(false_alarm_rate=false_alarm_rate, full=full, detect_objects=objects,
                             scheduler=resolve_scheduler(scheduler, workers), shared_folder=shared_folder)
    console = Console(stderr=True, highlight=False)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=as_json)
    tasks: dict[str, Any] = {}

    def progress(site_id: str, done: int, total: int) -> None:
        if site_id not in tasks:
            tasks[site_id] = bar.add_task(f"monitoring {site_id}", total=total)
        bar.update(tasks[site_id], completed=done)

    with Workspace.open(resolve_workspace(workspace)) as ws, bar:
        report = run_monitor(ws, options, progress=progress)
    if as_json:
        typer.echo(json.dumps(report_json(report), ensure_ascii=False))
        return
    print_report(report, Console(highlight=False, soft_wrap=True))


def register(app: typer.Typer) -> None:
    """Add the ``monitor`` verb to ``app``."""
    app.command("monitor")(monitor)
