"""The ``sitewatch`` command line: a thin layer over library calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, cast

import typer
from rich.console import Console

from sitewatch import __version__
from sitewatch.app.commands import (
    alerts,
    brief,
    change,
    demo,
    evaluate,
    ingest,
    monitor,
    report,
    serve,
    simulate,
    sites,
    workspace,
)
from sitewatch.app.errors import exit_code_for
from sitewatch.app.lazy import lazy_group
from sitewatch.core.errors import SitewatchError

app = typer.Typer(
    name="sitewatch",
    help="Watch sites through time series of satellite and aerial images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sitewatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output.")
    ] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less log output.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)),
                        format="%(levelname)s %(name)s: %(message)s")


def _train_commands() -> typer.Typer:
    from sitewatch.app.commands import train

    return train.train_app


def _users_commands() -> typer.Typer:
    from sitewatch.app.commands import users

    scratch = typer.Typer()
    users.register(scratch)
    return cast(typer.Typer, scratch.registered_groups[0].typer_instance)  # the one group it adds


def _export_commands() -> typer.Typer:
    from sitewatch.app.commands import export

    return export.export_app


def _store_commands() -> typer.Typer:
    from sitewatch.app.commands import store

    scratch = typer.Typer()
    store.register(scratch)
    return cast(typer.Typer, scratch.registered_groups[0].typer_instance)  # the one group it adds


LAZY_GROUPS: dict[str, tuple[str, Callable[[], typer.Typer]]] = {
    "users": ("User accounts of the web API and dashboard.", _users_commands),
    "store": ("The workspace database: copy it between SQLite and PostgreSQL/PostGIS.", _store_commands),
    "export": ("Export what the workspace holds for other tools: STAC catalogs, KMZ, KML and GeoJSON.",
               _export_commands),
    "train": ("Train the project's own models (needs torch: pip install 'sitewatch[train]').",
              _train_commands),
}
"""Verb groups whose modules load the store or torch helpers at import: name -> (help, commands).
The help is the group's own (tests/test_startup.py checks they agree); the module is imported
only when the group runs (:mod:`sitewatch.app.lazy`)."""


def _add_lazy_group(name: str) -> None:
    group_help, load = LAZY_GROUPS[name]
    app.add_typer(typer.Typer(help=group_help, no_args_is_help=True, cls=lazy_group(load)), name=name)


for module in (workspace, sites, ingest, simulate, monitor, alerts, change, report, serve, brief):
    module.register(app)
_add_lazy_group("users")
demo.register(app)
evaluate.register(app)
_add_lazy_group("train")
_add_lazy_group("store")
_add_lazy_group("export")


def main() -> None:
    """Console entry point: library errors become a message and a meaningful exit code."""
    try:
        # Outside standalone mode click returns typer.Exit's code instead of exiting with it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            raise SystemExit(code)
    except SitewatchError as error:
        stderr.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
        raise SystemExit(exit_code_for(error)) from None
    except typer.Abort:
        stderr.print("aborted")
        raise SystemExit(130) from None
    except Exception as error:  # click usage errors carry their own exit code
        import click

        # Recent typer vendors its own click (typer._click), whose exceptions are not click's:
        # recognised by their shape (show() and exit_code), a mistyped option is a usage message.
        show, code = getattr(error, "show", None), getattr(error, "exit_code", None)
        if isinstance(error, click.exceptions.ClickException) or (callable(show) and isinstance(code, int)):
            error.show()  # type: ignore[attr-defined]
            raise SystemExit(code) from None
        if isinstance(error, click.exceptions.Exit):
            raise SystemExit(error.exit_code) from None
        raise
