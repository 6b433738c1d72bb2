"""CLI verbs ``sites list | show | add | validate | context``: the site catalog of a workspace, and
the calendars, schedules and activity patterns its alerts' hypotheses use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from sitewatch.app.errors import exit_code_for
from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.app.tables import add_id_column
from sitewatch.core.errors import CatalogError, ContextError, PatternError

if TYPE_CHECKING:
    from sitewatch.core.types import Site

sites_app = typer.Typer(help="The site catalog: list, show, add and validate sites.", no_args_is_help=True)


def _area_km2(site_geometry: object) -> float:
    from pyproj import Geod

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(site_geometry)
    return abs(area) / 1e6


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@sites_app.command("list")
def list_sites(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """List the workspace's sites (--json: the catalog as a GeoJSON FeatureCollection)."""
    from sitewatch.catalog import catalog_to_geojson
    from sitewatch.store import Workspace

    with Workspace.open(resolve_workspace(workspace)) as ws:
        sites = ws.sites()
    if as_json:
        typer.echo(json.dumps(catalog_to_geojson(sites), ensure_ascii=False))
        return
    table = Table(title=f"{len(sites)} site(s)")
    add_id_column(table, "id", (s.id for s in sites))
    for column in ("name", "country", "category", "zones", "GSD m", "location"):
        table.add_column(column, overflow="fold")
    for site in sites:
        table.add_row(site.id, site.name, site.country, site.category, str(len(site.zones)), f"{site.gsd:g}",
                      "approx." if site.approximate else "surveyed")
    _console().print(table)


@sites_app.command("show")
def show_site(
    site_id: Annotated[str, typer.Argument(metavar="ID", help="Site id, name or alias (e.g. Tongchang-ri).")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one site and its zones (--json: the site as a GeoJSON Feature)."""
    from sitewatch.catalog import site_to_feature
    from sitewatch.store import Workspace

    with Workspace.open(resolve_workspace(workspace)) as ws:
        site = ws.site(site_id)
        observations = ws.observations(site.id)
    if as_json:
        typer.echo(json.dumps(site_to_feature(site), ensure_ascii=False))
        return
    _print_site(site, len(observations))


def _print_site(site: Site, n_observations: int) -> None:
    console = _console()
    lon, lat = site.geometry.centroid.x, site.geometry.centroid.y
    console.print(f"[bold]{site.name}[/] ({site.id})")
    if site.aliases:
        console.print(f"  aliases:      {', '.join(site.aliases)}")
    console.print(f"  country:      {site.country}    category: {site.category}")
    console.print(f"  centre:       {lat:.5f} N, {lon:.5f} E    area: {_area_km2(site.geometry):.2f} km²"
                  + ("    (approximate public location)" if site.approximate else ""))
    console.print(f"  site grid:    EPSG:{site.utm_epsg} at {site.gsd:g} m per pixel")
    console.print(f"  observations: {n_observations}")
    if site.notes:
        console.print(f"  notes:        {site.notes}")
    for reference in site.references:
        console.print(f"  reference:    {reference}")
    table = Table(title="zones")
    for column in ("id", "kind", "name", "area m²"):
        table.add_column(column)
    for zone in site.zones:
        table.add_row(zone.id, zone.kind.value, zone.name, f"{_area_km2(zone.geometry) * 1e6:,.0f}")
    console.print(table)


@sites_app.command("add")
def add_sites(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="GeoJSON site catalog (docs/catalog.md).")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite sites whose id exists.")] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add the sites of a GeoJSON catalog file to the workspace, all or none."""
    from sitewatch.catalog import load_catalog
    from sitewatch.store import Workspace

    sites = load_catalog(file)
    with Workspace.open(resolve_workspace(workspace)) as ws:
        added = ws.add_sites(sites, replace=replace)
    if as_json:
        typer.echo(json.dumps({"file": str(file), "added": added}))
    else:
        typer.echo(f"added {len(added)} site(s) from {file}: {', '.join(added)}")


@sites_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="GeoJSON site catalog to check.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a catalog file and print every problem with its feature index and field (exit 4 if invalid).

    Needs no workspace; with one, its max_site_grid_side setting limits the size of a site's grid.
    """
    from sitewatch.catalog import read_catalog_document
    from sitewatch.catalog.geojson import parse_catalog
    from sitewatch.imagery.grid import check_site_grid
    from sitewatch.store.settings import Settings

    max_side = Settings.load(resolve_workspace(workspace)).max_site_grid_side  # defaults without one
    try:  # read and parsed once (a catalog of 100,000 sites takes seconds per pass)
        loaded: tuple[Site, ...] = parse_catalog(read_catalog_document(file), source=str(file))
        problems: list[str] = []
    except CatalogError as error:  # unreadable, not JSON, or invalid: every problem, listed
        loaded, problems = (), list(error.problems)
    problems += [problem for site in loaded if (problem := check_site_grid(site, max_side)) is not None]
    sites = [] if problems else [site.id for site in loaded]
    if as_json:
        report = {"file": str(file), "valid": not problems, "sites": sites, "problems": problems}
        typer.echo(json.dumps(report, ensure_ascii=False))
    elif problems:
        _echo_problems(str(file), problems)
    else:
        typer.echo(f"{file}: valid, {len(sites)} site(s): {', '.join(sites)}")
    if problems:
        raise typer.Exit(exit_code_for(CatalogError(str(file), problems)))


@sites_app.command("context")
def check_context(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Check the workspace's holiday calendars and site schedules (context.yaml) and its own activity
    patterns (patterns.yaml), against each other and the catalog; print every problem (exit 4 if any)."""
    from sitewatch.pipeline.context import load_hypothesis_inputs
    from sitewatch.store import Workspace

    with Workspace.open(resolve_workspace(workspace)) as ws:
        sites = ws.sites()
        try:
            inputs = load_hypothesis_inputs(ws.root, sites)
        except (ContextError, PatternError) as error:
            problems, source = list(error.problems), error.source
        else:
            problems, source = [], f"{inputs.context.source} with {inputs.patterns.source}"
    report: dict[str, object] = {"source": source, "valid": not problems, "problems": problems}
    if not problems:
        report["calendars"] = {
            c.country: {"name": c.name, "holidays": len(c.holidays), "sources": list(c.sources)}
            for c in inputs.context.calendars}
        report["schedules"] = [{"site": s.site_id, "name": s.name} for s in inputs.context.schedules]
        report["patterns"] = [p.id for p in inputs.patterns.patterns]
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
    elif problems:
        _echo_problems(source, problems)
    else:
        calendars = "; ".join(f"{c.country}: {len(c.holidays)} holidays" for c in inputs.context.calendars)
        patterns = ", ".join(p.id for p in inputs.patterns.patterns)
        typer.echo(f"{source}: valid. Calendars: {calendars or 'none'}. Site schedules: "
                   f"{len(inputs.context.schedules)}. Patterns: {patterns}.")
    if problems:
        raise typer.Exit(exit_code_for(ContextError(source, problems)))


def _echo_problems(source: str, problems: list[str]) -> None:
    """Every problem of a checked file, one per line under its name (what `sites check` and `sites
    context` print)."""
    typer.echo(f"{source}: {len(problems)} problem(s):")
    for problem in problems:
        typer.echo(f"  - {problem}")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""
    app.add_typer(sites_app, name="sites")
