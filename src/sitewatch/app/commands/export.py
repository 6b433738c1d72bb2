"""CLI verb group ``export``: what the workspace holds, in formats other tools read (STAC catalogs,
KMZ for Google Earth, alerts as KML/GeoJSON)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.app.web import exports, kmz
from sitewatch.core.timeutil import parse_utc_bound
from sitewatch.core.types import AlertState
from sitewatch.store import Workspace

export_app = typer.Typer(
    help="Export what the workspace holds for other tools: STAC catalogs, KMZ, KML and GeoJSON.",
    no_args_is_help=True)


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

    with Workspace.open(resolve_workspace(workspace)) as ws:
        written = export_stac(ws, folder, site_ids=site or ())
    if as_json:
        typer.echo(json.dumps(written.to_dict()))
    else:
        typer.echo(f"{written.items} item(s) in {written.collections} collection(s): {written.catalog}")

BASE_URL_ENV = "SITEWATCH_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/"
"""Where ``sitewatch serve`` listens by default: the alerts' links point at its pages."""

BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", help=f"The dashboard the alerts link back to (default: ${BASE_URL_ENV} or "
                                    f"{DEFAULT_BASE_URL}).", show_default=False),
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Only from this ISO 8601 date or time on (inclusive).")
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until",
                 help="Only up to this ISO 8601 date or time (inclusive; a date means the whole day)."),
]


def _base_url(value: str | None) -> str:
    return value or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def _bound(value: str | None, *, upper: bool) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_utc_bound(value, upper=upper)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--until" if upper else "--since") from None


@export_app.command("kmz")
def export_kmz(
    site: Annotated[str, typer.Argument(help="Site id, name or alias.", show_default=False)],
    out: Annotated[Path, typer.Argument(metavar="OUT.kmz", help="The KMZ file to write.",
                                        show_default=False)],
    workspace: WorkspaceOption = None,
    base_url: BaseUrlOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    max_size: Annotated[
        int, typer.Option("--max-size", min=64, max=8192, help="Longest side of each overlay image, pixels.")
    ] = kmz.MAX_OVERLAY_PIXELS,
    as_json: JsonOption = False,
) -> None:
    """Write a site's history for Google Earth: images for the time slider, alerts, detections.

    Each chip becomes a GroundOverlay lasting until the site's next image; the alerts are time-stamped
    placemarks with their why and assessments; the detections span their image's time.
    """
    first, last = _bound(since, upper=False), _bound(until, upper=True)
    with Workspace.open(resolve_workspace(workspace)) as ws:
        resolved = ws.site(site)
        temporary = out.with_name(out.name + ".part")
        with temporary.open("wb") as sink:
            summary = kmz.write_site_kmz(ws, resolved, sink, base_url=_base_url(base_url), since=first,
                                         until=last, max_size=max_size)
        temporary.replace(out)
    if as_json:
        typer.echo(json.dumps({
            "path": str(out),
            "site_id": summary.site_id,
            "overlays": summary.overlays,
            "alerts": summary.alerts,
            "detections": summary.detections,
            "first": summary.first.isoformat() if summary.first else None,
            "last": summary.last.isoformat() if summary.last else None,
        }))
        return
    span = (f" from {summary.first:%Y-%m-%d} to {summary.last:%Y-%m-%d}"
            if summary.first and summary.last else "")
    typer.echo(f"{out}: {summary.overlays} image(s){span}, {summary.alerts} alert(s), "
               f"{summary.detections} detection(s)")


@export_app.command("alerts")
def export_alerts(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="alerts.kml or alerts.geojson (by its suffix).",
                                        show_default=False)],
    workspace: WorkspaceOption = None,
    site: Annotated[
        str | None, typer.Option("--site", "-s", help="Only this site (id, name or alias).")
    ] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Only alerts in this state: new, acknowledged, confirmed, "
                                                 "benign, false_alarm.")
    ] = None,
    base_url: BaseUrlOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Write alerts with their assessments as KML (time-stamped, styled by state) or GeoJSON."""
    suffix = out.suffix.lower()
    if suffix not in (".kml", ".geojson", ".json"):
        raise typer.BadParameter(f"{out.name!r} ends in neither .kml nor .geojson; name the file after the "
                                 "format you want", param_hint="OUT")
    try:
        wanted = AlertState(state.replace("-", "_")) if state else None
    except ValueError:
        raise typer.BadParameter(f"{state!r} is not one of: {', '.join(s.value for s in AlertState)}",
                                 param_hint="--state") from None
    first, last = _bound(since, upper=False), _bound(until, upper=True)
    with Workspace.open(resolve_workspace(workspace)) as ws:
        site_id = ws.site(site).id if site else None
        alerts = ws.alerts(site_id=site_id, state=wanted, since=first, until=last)
        rows = exports.alert_exports(alerts, {s.id: s for s in ws.sites()},
                                     {a.id: ws.assessments(a.id) for a in alerts}, _base_url(base_url))
    if suffix == ".kml":
        chunks = exports.kml_chunks("sitewatch alerts", (row.placemark() for row in rows))
    else:
        chunks = exports.geojson_chunks(exports.feature(row.geometry(), row.properties()) for row in rows)
    out.write_text("".join(chunks), encoding="utf-8")
    typer.echo(f"{out}: {len(rows)} alert(s)")


def register(app: typer.Typer) -> None:
    """Add the ``export`` verb group to ``app``."""
    app.add_typer(export_app, name="export")
