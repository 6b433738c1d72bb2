"""CLI verb: ``sitewatch demo`` — simulate the reference scenario, ingest, monitor, report."""

from __future__ import annotations

import json
import secrets
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sitewatch.core.errors import SitewatchError
from sitewatch.core.parallel import Scheduler

if TYPE_CHECKING:
    from sitewatch.core.types import Alert
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
    stac: Annotated[bool, typer.Option(
        "--stac", help="Serve the simulated scenes as a static STAC catalog and let one `sitewatch watch "
                       "--once` cycle ingest and monitor them (a watch table is added to the workspace's "
                       "sitewatch.toml).")] = False,
) -> None:
    """Run the main job end to end on the built-in demo: simulate → ingest → monitor → report
    (with --stac: simulate → static STAC catalog → watch --once → report)."""
    from sitewatch.app.report import build_report
    from sitewatch.imagery.simulate import load_scenario, simulate
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
        alpha = _watch_once(ws, images, console) if stac else _ingest_and_monitor(ws, images, console)

        with _step(console, "report") as bar:
            report_result = build_report(ws)

        alerts = sorted(ws.alerts(), key=lambda a: (a.site_id, a.acquired))
        console.print(_alert_table(ws, alerts))
        password = _demo_analyst(ws)

    console.print(f"\nfalse-alarm rate α = {alpha} per site and observation; "
                  f"{len(alerts)} alert(s) in all; demo took {time.perf_counter() - started:.0f} s")
    console.print(f"report: [bold]{report_result.path}[/]", highlight=False)
    console.print(
        "dashboard: run [bold]make serve[/] (or `sitewatch serve -w "
        f"{workspace}`), open http://127.0.0.1:8000 and log in as "
        f"[bold]{DEMO_ANALYST}[/] with password [bold]{password}[/]",
        highlight=False,
    )


def _ingest_and_monitor(ws: Workspace, images: Path, console: Console) -> float:
    """Ingest the simulated images as files, then one monitoring pass; the false-alarm rate used."""
    from sitewatch.pipeline.ingest import ingest
    from sitewatch.pipeline.monitor import MonitorOptions, run_monitor

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

        # Objects are counted on every observation (when a detector is installed): the counts
        # need a baseline, or an alert's hypotheses see pixel change only and cannot tell a
        # launch preparation from construction or a holiday (docs/hypotheses.md, "The demo").
        options = MonitorOptions(scheduler=Scheduler.parse("local"))
        monitored = run_monitor(ws, options, progress=on_observation)
        if not monitored.object_detection:
            console.print("  object detection not installed: alerts and hypotheses from change only")
        return monitored.false_alarm_rate


WATCH_TABLE = """
[watch]

[[watch.sources]]
name = "demo-catalog"
stac = {catalog}
interval = "1h"
"""


def _watch_once(ws: Workspace, images: Path, console: Console) -> float:
    """The simulated scenes as a static STAC catalog, read by one watch cycle (`watch --once`); the
    false-alarm rate used."""
    import os
    import threading

    from sitewatch.imagery.simulate.writer import write_static_catalog
    from sitewatch.pipeline.monitor import MonitorOptions
    from sitewatch.pipeline.watch import serve
    from sitewatch.pipeline.watch_config import load_watch_config
    from sitewatch.store.settings import SETTINGS_FILE

    with _step(console, "watch --once over a static STAC catalog"):
        catalog = write_static_catalog(images, title="sitewatch demo: the reference scenario")
        settings = ws.root / SETTINGS_FILE
        text = settings.read_text(encoding="utf-8")
        if "[watch]" not in text:
            settings.write_text(text + WATCH_TABLE.format(catalog=json.dumps(str(catalog.resolve()))),
                                encoding="utf-8")
        config = load_watch_config(ws.root, site_ids=[site.id for site in ws.sites()])
        options = MonitorOptions(scheduler=Scheduler.parse("local"))
        cycle = serve(ws, config, stop=threading.Event(), environ=os.environ, once=True, monitor=options)
        for source in cycle.sources:
            if source.error is not None:
                console.print(f"  [red]{source.name} not read[/]: {source.error}", highlight=False)
            if source.report is not None:
                report = source.report
                console.print(f"  {catalog}: {len(report.ingested)} ingested, {len(report.skipped)} already "
                              f"there, {len(report.failed)} failed", highlight=False)
        console.print(f"  {len(cycle.new_alerts)} new alert(s) this cycle")
    return ws.settings.false_alarm_rate


@contextmanager
def _step(console: Console, title: str) -> Iterator[Progress]:
    console.print(f"[bold]» {title}[/]")
    with Progress(
        TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        yield bar


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


def _alert_table(ws: Store, alerts: list[Alert]) -> Group:
    """The demo's alerts under each site's name, in words: zone and indicator names, the image's
    time to the minute (UTC), values rounded to what they mean, p to two significant digits."""
    from sitewatch.core import words

    parts: list[RenderableType] = [Text("Alerts per site", style="bold")]
    for site in ws.sites():
        site_alerts = [a for a in alerts if a.site_id == site.id]
        plural = "" if len(site_alerts) == 1 else "s"
        parts.append(Text(f"{site.name}: {len(site_alerts) or 'no'} alert{plural}"))
        if not site_alerts:
            continue
        table = Table(box=box.SIMPLE, pad_edge=False, collapse_padding=True)
        # Names wrap in their column; dates and numbers never do.
        table.add_column("image (UTC)", no_wrap=True, min_width=16)
        table.add_column("zone", max_width=24)
        table.add_column("indicator", max_width=30)
        table.add_column("value (usual)", no_wrap=True)
        table.add_column("p", no_wrap=True)
        for alert in site_alerts:
            value, usual = (words.amount(alert.indicator, v) for v in (alert.value, alert.baseline))
            table.add_row(f"{alert.acquired:%Y-%m-%d %H:%M}", words.human_name(alert.zone_id, site),
                          words.human_name(alert.indicator), f"{value} ({usual})",
                          words.p_value(alert.p_value))
        parts.append(table)
    return Group(*parts)


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
