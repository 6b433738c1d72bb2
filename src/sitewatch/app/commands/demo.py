"""CLI verb: ``sitewatch demo`` — simulate the reference scenario, ingest, monitor, report."""

from __future__ import annotations

import json
import logging
import secrets
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sitewatch.core.errors import SitewatchError
from sitewatch.core.parallel import Scheduler

if TYPE_CHECKING:
    from sitewatch.core.types import Alert, Observation
    from sitewatch.store import Workspace
    from sitewatch.store.protocol import Store

DEMO_SCENARIO = "reference"
DEMO_SEED = 2019
DEMO_ANALYST = "analyst"
CREDENTIALS_FILE = "demo-credentials.toml"


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)


def demo(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Demo workspace folder (created if missing).")
    ] = Path("demo/workspace"),
    imagery: Annotated[
        Path | None,
        typer.Option("--imagery", help="Folder for the simulated images (default: beside the workspace)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = DEMO_SEED,
) -> None:
    """Run the main job end to end on the built-in demo: simulate → ingest → monitor → report."""
    from sitewatch.app.report import build_report
    from sitewatch.imagery.simulate import load_scenario, simulate
    from sitewatch.pipeline.ingest import ingest
    from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
    from sitewatch.store import Workspace

    console = Console()
    images = imagery if imagery is not None else workspace.parent / "imagery"
    started = time.perf_counter()

    with _step(console, "simulate the reference scenario") as bar:
        existing = _existing_simulation(images, seed)
        if existing is not None:
            console.print(f"  images already simulated in {images} (seed {seed}), reusing them")
        else:
            task = bar.add_task("simulate", total=None)

            def on_image(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=f"simulate {label}")

            result = simulate(load_scenario(DEMO_SCENARIO), images, seed=seed, progress=on_image,
                              scheduler=Scheduler.parse("local"))
            console.print(f"  {result.image_count} images in {images} ({result.seconds:.0f} s)")

    with Workspace.init(workspace) as ws:
        with _step(console, "ingest") as bar:
            task = bar.add_task("ingest", total=None)

            def on_file(path: Path, index: int, total: int, outcome: object) -> None:
                bar.update(task, completed=index + (outcome is not None), total=total,
                           description=f"ingest {path.name}")

            report = ingest(ws, [images], progress=on_file)
            console.print(f"  {len(report.ingested)} ingested, {len(report.skipped)} already there, "
                          f"{len(report.failed)} failed")
            for outcome in report.failed:
                console.print(f"  [red]failed[/] {outcome.message}", highlight=False)

        with _step(console, "monitor") as bar:
            task = bar.add_task("monitor", total=None)

            def on_observation(site_id: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"monitor {site_id}")

            # Object detection only for the alerts' evidence below: on every chip it would double
            # the demo's time, and the alerts come from the change indicators.
            options = MonitorOptions(detect_objects=False, scheduler=Scheduler.parse("local"))
            monitored = run_monitor(ws, options, progress=on_observation)
            evidence = _detect_for_alerts(ws)
            if evidence:
                console.print(f"  objects detected on the {evidence} observation(s) behind the alerts")

        with _step(console, "report") as bar:
            report_result = build_report(ws)

        alerts = sorted(ws.alerts(), key=lambda a: (a.site_id, a.acquired))
        console.print(_alert_table(ws, alerts))
        password = _demo_analyst(ws)

    console.print(f"\nfalse-alarm rate α = {monitored.false_alarm_rate} per site and observation; "
                  f"{len(alerts)} alert(s) in all; demo took {time.perf_counter() - started:.0f} s")
    console.print(f"report: [bold]{report_result.path}[/]", highlight=False)
    console.print(
        "dashboard: run [bold]make serve[/] (or `sitewatch serve -w "
        f"{workspace}`), open http://127.0.0.1:8000 and log in as "
        f"[bold]{DEMO_ANALYST}[/] with password [bold]{password}[/]",
        highlight=False,
    )


@contextmanager
def _step(console: Console, title: str) -> Iterator[Progress]:
    console.print(f"[bold]» {title}[/]")
    with Progress(
        TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        yield bar


def _detect_for_alerts(ws: Store) -> int:
    """Run the object detector on each alerted observation and the one before it; how many."""
    try:
        from sitewatch.pipeline.detect import detect_observation

        alerted = {a.observation_id for a in ws.alerts()}
        chosen: dict[str, Observation] = {}
        for site in ws.sites():
            observations = ws.observations(site.id)
            for index, observation in enumerate(observations):
                if observation.id in alerted:
                    chosen.update((o.id, o) for o in observations[max(0, index - 1): index + 1])
        for observation in chosen.values():
            detect_observation(ws, observation)
    except (ImportError, SitewatchError, OSError) as problem:  # the demo goes on without them
        logging.getLogger(__name__).warning("object detection for the alerts skipped: %s", problem)
        return 0
    return len(chosen)


def _existing_simulation(folder: Path, seed: int) -> object | None:
    """The earlier run's ground truth when ``folder`` holds this scenario and seed already."""
    from sitewatch.imagery.simulate import load_ground_truth

    if not (folder / "ground_truth.json").is_file():
        return None
    try:
        truth = load_ground_truth(folder)
    except (SitewatchError, OSError, ValueError, KeyError):
        return None
    if truth.scenario != DEMO_SCENARIO or truth.seed != seed:
        return None
    if not all((folder / image.file).is_file() for image in truth.images):
        return None
    return truth


def _alert_table(ws: Store, alerts: list[Alert]) -> Table:
    table = Table(title="Alerts per site", title_justify="left", box=box.SIMPLE, pad_edge=False,
                  collapse_padding=True)
    for column, width in (("site", 9), ("acquired", 10), ("zone", 0), ("indicator", 0),
                          ("value (usual)", 11), ("p", 6)):
        table.add_column(column, no_wrap=True, min_width=width or None)
    for site in ws.sites():
        site_alerts = [a for a in alerts if a.site_id == site.id]
        if not site_alerts:
            table.add_row(site.id, "–", "", "no alerts", "", "")
        for alert in site_alerts:
            table.add_row(
                site.id, f"{alert.acquired:%Y-%m-%d}", alert.zone_id or "site", alert.indicator,
                f"{alert.value:.3g} ({alert.baseline:.3g})",
                f"{alert.p_value:.0e}" if alert.p_value is not None else "–",
            )
    return table


def _demo_analyst(ws: Workspace) -> str:
    """Create the demo analyst once; its password is kept in the workspace so re-runs print the same."""
    from sitewatch.store.users import user_store

    path = ws.root / CREDENTIALS_FILE
    if path.is_file():
        password = str(tomllib.loads(path.read_text(encoding="utf-8"))["password"])
    else:
        password = secrets.token_urlsafe(12)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(
            f"# Demo analyst of this workspace (local demo only).\nuser = {json.dumps(DEMO_ANALYST)}\n"
            f"password = {json.dumps(password)}\n",
            encoding="utf-8",
        )
        temporary.chmod(0o600)
        temporary.replace(path)
    user_store(ws).ensure_user(DEMO_ANALYST, password, "analyst")
    return password
