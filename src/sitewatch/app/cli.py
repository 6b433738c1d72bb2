"""The ``sitewatch`` command line: a thin layer over library calls."""

from __future__ import annotations

import functools
import importlib
import logging
import re
from collections.abc import Callable
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.markup import escape

from sitewatch import __version__
from sitewatch.app.commands import (
    alerts,
    brief,
    change,
    check,
    demo,
    evaluate,
    ingest,
    monitor,
    report,
    serve,
    simulate,
    sites,
    watch,
    workspace,
)
from sitewatch.app.errors import exit_code_for
from sitewatch.app.lazy import lazy_group
from sitewatch.app.options import UsageError, VerbGroup
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


def _group_of(module_name: str) -> typer.Typer:
    """The verb group that ``sitewatch.app.commands.<module_name>`` registers, imported now."""
    module = importlib.import_module(f"sitewatch.app.commands.{module_name}")
    scratch = typer.Typer()
    module.register(scratch)
    return cast(typer.Typer, scratch.registered_groups[0].typer_instance)  # the one group it adds


LAZY_GROUPS: dict[str, tuple[str, Callable[[], typer.Typer]]] = {
    name: (group_help, functools.partial(_group_of, name)) for name, group_help in (
        ("users", "User accounts of the web API and dashboard."),
        ("store", "The workspace database: copy it between SQLite and PostgreSQL/PostGIS."),
        ("export", "Export what the workspace holds for other tools: STAC catalogs, KMZ, KML and GeoJSON."),
        ("train", "Train the project's own models (needs torch: pip install 'sitewatch[train]')."),
    )
}
"""Verb groups whose modules load the store or torch helpers at import: name -> (help, commands).
The help is the group's own (tests/test_startup.py checks they agree); the module is imported
only when the group runs (:mod:`sitewatch.app.lazy`)."""


def _add_lazy_group(name: str) -> None:
    group_help, load = LAZY_GROUPS[name]
    app.add_typer(typer.Typer(help=group_help, no_args_is_help=True, cls=lazy_group(load)), name=name)


for module in (workspace, sites, ingest, simulate, monitor, watch, check, alerts, change, report, serve,
               brief):
    module.register(app)
_add_lazy_group("users")
demo.register(app)
evaluate.register(app)
_add_lazy_group("train")
_add_lazy_group("store")
_add_lazy_group("export")


def _verb_groups(group: typer.Typer) -> None:
    """Every group of verbs answers a missing verb with one usage line (see VerbGroup); the lazy
    groups' classes are VerbGroups already."""
    if not (isinstance(group.info.cls, type) and issubclass(group.info.cls, VerbGroup)):
        group.info.cls = VerbGroup
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _verb_groups(sub.typer_instance)


_verb_groups(app)


_CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
USAGE_EXIT_CODE = 2
_DID_YOU_MEAN = re.compile(r"\(Possible options: ([^)]*)\)|Did you mean [^?]*\?", re.IGNORECASE)


def usage_message(error: Exception) -> str:
    """One line for a usage error: the "did you mean" hint first, then what was wrong and where to look."""
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "sitewatch"
    format_message = getattr(error, "format_message", None)
    text = format_message() if callable(format_message) else str(error)
    text = " ".join(text.split())  # click may break "did you mean one of ..." over lines
    hint = _DID_YOU_MEAN.search(text)
    if hint is not None:
        first = f"Did you mean one of {hint.group(1)}?" if hint.group(1) else hint.group(0)
        text = " ".join(f"{first} {text[:hint.start()]} {text[hint.end():]}".split())
    return f"{text.rstrip('.')}; `{command} --help` lists what is accepted"


def main() -> None:
    """Console entry point: library errors become a message and a meaningful exit code, usage errors
    one line and exit 2, never a traceback."""
    try:
        # Outside standalone mode click returns typer.Exit's code instead of exiting with it.
        code = app(standalone_mode=False, prog_name="sitewatch")  # the same words however it was started
        if isinstance(code, int) and code != 0:
            raise SystemExit(code)
    except SitewatchError as error:
        stderr.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
        raise SystemExit(exit_code_for(error)) from None
    except UsageError as error:
        stderr.print(f"[bold red]usage:[/] {escape(usage_message(error))}", highlight=False, soft_wrap=True)
        raise SystemExit(USAGE_EXIT_CODE) from None
    except _CLICK_ERROR as error:  # e.g. a file option that cannot be opened
        format_message = getattr(error, "format_message", None)
        message = " ".join((format_message() if callable(format_message) else str(error)).split())
        stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise SystemExit(getattr(error, "exit_code", 1)) from None
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("aborted")
        raise SystemExit(130) from None
