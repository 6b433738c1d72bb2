"""The ``sitewatch`` command line: a thin layer over library calls."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from sitewatch import __version__
from sitewatch.app.commands import (
    alerts,
    brief,
    change,
    demo,
    evaluate,
    export,
    ingest,
    monitor,
    report,
    serve,
    simulate,
    sites,
    train,
    users,
    workspace,
)
from sitewatch.app.errors import exit_code_for
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


for module in (
    workspace, sites, ingest, simulate, monitor, alerts, change, report, serve, users, demo, evaluate, train,
    export, brief,
):
    module.register(app)


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
