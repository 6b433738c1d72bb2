"""CLI verbs: store copy — move a workspace's database between SQLite and PostgreSQL/PostGIS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption
from sitewatch.core.errors import WorkspaceNotFoundError
from sitewatch.store import Settings
from sitewatch.store.chips import CHIPS_DIR
from sitewatch.store.copy import copy_database
from sitewatch.store.settings import SETTINGS_FILE
from sitewatch.store.workspace import database_url

PLACE_HELP = ("A workspace folder (its database) or a database URL: sqlite:////PATH/sitewatch.db or "
              "postgresql+psycopg://USER@HOST:PORT/DATABASE.")


def _url(place: str, *, destination: bool) -> tuple[str, Path | None]:
    """The database URL ``place`` names, and its workspace folder when it is one."""
    if "://" in place:
        return place, None
    root = Path(place)
    if (root / SETTINGS_FILE).is_file():
        return database_url(root, Settings.load(root)), root
    if destination and not root.exists():
        return database_url(root, Settings()), root
    raise WorkspaceNotFoundError(
        f"{place} is neither a database URL nor a sitewatch workspace (no {SETTINGS_FILE}); give a "
        "workspace folder, a new folder (as destination), or a URL such as postgresql+psycopg://USER@HOST/DB")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""
    store = typer.Typer(help="The workspace database: copy it between SQLite and PostgreSQL/PostGIS.",
                        no_args_is_help=True)
    app.add_typer(store, name="store")

    @store.command("copy")
    def copy(
        source: Annotated[str, typer.Argument(help=f"Where to copy from. {PLACE_HELP}")],
        destination: Annotated[str, typer.Argument(
            help=f"Where to copy to: an empty database, or a new folder (a SQLite workspace with the "
                 f"source's settings and chips). {PLACE_HELP}")],
        as_json: JsonOption = False,
    ) -> None:
        """Copy every table into an empty database; commits only when row counts and checksums match."""
        source_url, source_root = _url(source, destination=False)
        destination_url, destination_root = _url(destination, destination=True)
        new_folder = destination_root is not None and not destination_root.exists()
        if new_folder and destination_root is not None:
            destination_root.mkdir(parents=True)
        try:
            report = copy_database(source_url, destination_url)
        except BaseException:
            if new_folder and destination_root is not None:
                shutil.rmtree(destination_root, ignore_errors=True)
            raise
        if new_folder and destination_root is not None:
            settings = Settings.load(source_root) if source_root is not None else Settings()
            settings = settings.replace(name=destination_root.resolve().name, database_url="")
            (destination_root / SETTINGS_FILE).write_text(settings.to_toml(), encoding="utf-8")
            if source_root is not None and (source_root / CHIPS_DIR).is_dir():
                shutil.copytree(source_root / CHIPS_DIR, destination_root / CHIPS_DIR)
            else:
                typer.echo(f"warning: {source} is a URL, so no chips were copied; copy the chips/ folder of "
                           f"its workspace into {destination_root} (or copy from the workspace folder)",
                           err=True)
        if as_json:
            typer.echo(json.dumps({
                "source": report.source, "destination": report.destination, "rows": report.rows,
                "tables": {s.table: {"rows": s.rows, "checksum": s.checksum} for s in report.tables}}))
            return
        for summary in report.tables:
            typer.echo(f"{summary.table:<18} {summary.rows:>9} rows  checksum {summary.checksum[:16]}  ok")
        typer.echo(f"copied {report.rows} rows from {report.source} to {report.destination}; counts and "
                   "checksums match")
        if source_root is not None and not new_folder and destination_root is None:
            settings_path = source_root / SETTINGS_FILE
            typer.echo(f"to use the copy, set database_url = \"{destination}\" in {settings_path} "
                       "(or export SITEWATCH_DATABASE_URL)")
