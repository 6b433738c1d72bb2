"""CLI verbs: ``sitewatch change observation ID`` and ``sitewatch change scene BEFORE AFTER OUT``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace

change_app = typer.Typer(
    name="change",
    help="Change detection: an observation against its site's reference, or two whole scenes.",
    no_args_is_help=True,
)

MethodOption = Annotated[
    str | None,
    typer.Option("--method", "-m", help="Change detector (default: chosen by pixel size and band names, "
                                        "see docs/change.md; `sitewatch eval change` lists them)."),
]


@change_app.command("observation")
def observation(
    observation_id: Annotated[str, typer.Argument(help="Observation to compare with its reference.")],
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Compare with this observation instead (a what-if: shown, not "
                                         "stored)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", "-m", help="Compare by this change detector instead (a what-if: shown, not "
                                            "stored; `sitewatch eval change` lists them)."),
    ] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """The observation's change evidence, as the monitor measures it: against the median of its last
    three earlier good observations, co-registered to the site's anchor, by the monitoring method;
    its change regions are stored (replacing earlier ones). See docs/change.md."""
    from sitewatch.analytics.change import get_change_detector
    from sitewatch.pipeline.change import detect_change
    from sitewatch.store import Workspace

    if method is not None:
        get_change_detector(method)  # an unknown name is refused before any pixel is read
    with Workspace.open(resolve_workspace(workspace)) as ws:
        outcome = detect_change(ws, observation_id, reference_id=reference, method=method)
    if json_output:
        data = asdict(outcome)
        data["reference_observation_id"] = outcome.reference_observation_id
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    if outcome.skipped:
        typer.echo(f"{outcome.observation_id}: not compared ({outcome.skipped})")
        raise typer.Exit(1)
    references = ", ".join(outcome.reference_observation_ids)
    typer.echo(f"{outcome.observation_id} against {references} ({outcome.detector}): "
               f"{outcome.regions} regions, {outcome.changed_area_m2:,.0f} m2; {outcome.operating_point}")
    typer.echo(f"method: {outcome.choice}; bands {', '.join(outcome.bands)}")
    typer.echo("stored as the observation's change evidence" if outcome.stored
               else "what-if comparison: not stored (the stored evidence is the monitor's)")


@change_app.command("scene")
def scene(
    before: Annotated[Path, typer.Argument(help="First date (any raster GDAL reads).")],
    after: Annotated[Path, typer.Argument(help="Second date, on the first date's grid.")],
    output: Annotated[Path, typer.Argument(help="GeoTIFF to write: band 1 mask, band 2 probability (%).")],
    method: MethodOption = None,
    window: Annotated[
        int | None, typer.Option(help="Window side in pixels (default: 2048).", show_default=False)
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Windows processed at a time (default: CPU count, at most 4).")
    ] = None,
    aligned: Annotated[
        bool, typer.Option("--aligned", help="The dates are already co-registered: measure no shift (for "
                                             "pairs too changed for the probe tiles to agree on one).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Compare two co-gridded rasters of any size window by window (one shift and one radiometric
    map for the whole scene); memory depends on the window, not on the scene."""
    from sitewatch.analytics.change import get_change_detector
    from sitewatch.analytics.change.scene import DEFAULT_WINDOW
    from sitewatch.pipeline.change import write_scene_change

    for path in (before, after):
        if not path.is_file():
            raise typer.BadParameter(f"{path} is not a file; give the path of a raster GDAL can read "
                                     "(GeoTIFF, JPEG2000, ...)")
    detector = get_change_detector(method) if method else None
    bar = Progress(TextColumn("windows"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True, disable=json_output)
    with bar:
        task = bar.add_task("windows", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        outcome = write_scene_change(before, after, output, detector=detector,
                                     window=DEFAULT_WINDOW if window is None else window, workers=workers,
                                     progress=advance, aligned=aligned)
    if json_output:
        typer.echo(json.dumps(asdict(outcome), indent=2, default=str))
        return
    shift, confidence = outcome.registration.shift, outcome.registration.confidence
    area = "area unknown: no CRS" if outcome.changed_area_m2 is None else f"{outcome.changed_area_m2:,.0f} m2"
    typer.echo(f"wrote {outcome.output}: {outcome.detector}, {outcome.windows} windows in "
               f"{outcome.seconds:.1f} s; shift ({shift[0]:+.2f}, {shift[1]:+.2f}) px, "
               f"confidence {confidence:.2f}; "
               f"{outcome.changed_pixels:,} of {outcome.valid_pixels:,} valid pixels changed "
               f"({area}); {outcome.operating_point}")
    typer.echo(f"method: {outcome.choice}; bands {', '.join(outcome.bands)}")


def register(app: typer.Typer) -> None:
    """Add the ``change`` verb group."""
    app.add_typer(change_app)
