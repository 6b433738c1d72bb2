"""CLI verb ``simulate``: render a scenario into a folder of georeferenced images with ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sitewatch.app.options import JsonOption
from sitewatch.core.parallel import Scheduler

DEFAULT_SEED = 1


def simulate_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write images and ground truth into.")],
    scenario: Annotated[
        str,
        typer.Argument(help="Built-in scenario name (reference, quick, cloudy) or a scenario YAML file."),
    ] = "reference",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives byte-identical files.")
    ] = DEFAULT_SEED,
    gsd: Annotated[
        float | None,
        typer.Option(
            "--gsd",
            help="Ground sample distance in metres for every site (default: the scenario's, "
            "never finer than a site's grid).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Simulate a scenario: GeoTIFFs with STAC items per site and date, and ground_truth.json.

    Prints the folder, the number of images and the run's checksum (equal for equal seeds).
    """
    from sitewatch.imagery.simulate import load_scenario, simulate

    plan = load_scenario(scenario)
    console = Console(stderr=True, highlight=False)
    with Progress(
        TextColumn("simulating {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
        disable=as_json,
        transient=False,
    ) as bar:
        task = bar.add_task(plan.name, total=None, current="")

        def report(done: int, total: int, current: str) -> None:
            bar.update(task, completed=done, total=total, current=current)

        result = simulate(plan, out, seed=seed, gsd=gsd, progress=report,
                          scheduler=Scheduler.parse("local"))
    sites = sorted({i.site_id for i in result.images})
    summary: dict[str, Any] = {
        "folder": str(result.folder),
        "scenario": result.scenario,
        "seed": result.seed,
        "images": result.image_count,
        "images_per_site": {s: sum(1 for i in result.images if i.site_id == s) for s in sites},
        "ground_truth": str(result.ground_truth),
        "checksum": result.checksum,
        "seconds": round(result.seconds, 2),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"folder:   {summary['folder']}")
    per_site = ", ".join(f"{site} {count}" for site, count in summary["images_per_site"].items())
    typer.echo(f"images:   {result.image_count} ({per_site})")
    typer.echo(f"truth:    {summary['ground_truth']}")
    typer.echo(f"checksum: {result.checksum}")
    typer.echo(f"time:     {result.seconds:.1f} s")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""
    app.command(
        "simulate",
        help="Simulate a scenario (built-in or a YAML file) into a folder of GeoTIFF images with STAC "
        "items and ground truth.",
    )(simulate_command)
