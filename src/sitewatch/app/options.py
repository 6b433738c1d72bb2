"""Options shared by CLI verbs (one registry, like rasterio's ``rio/options.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

DEFAULT_WORKSPACE = "sitewatch-workspace"


def default_workspace() -> Path:
    """``$SITEWATCH_WORKSPACE`` when set, else ``./sitewatch-workspace``."""
    return Path(os.environ.get("SITEWATCH_WORKSPACE", DEFAULT_WORKSPACE))


WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $SITEWATCH_WORKSPACE or ./sitewatch-workspace).",
        show_default=False,
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def resolve_workspace(path: Path | None) -> Path:
    return path if path is not None else default_workspace()


# typer (0.16+) vendors its own copy of click, whose exceptions are not click's: the usage-error
# class is found from typer's own BadParameter, so this holds whichever click typer parses with.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class VerbGroup(TyperGroup):
    """A group of verbs (``sitewatch``, ``sitewatch alerts``, ...): without a verb it answers one
    usage line naming the verbs, where click would print the whole help and then the error."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            verbs = ", ".join(self.list_commands(ctx))
            raise UsageError(f"a command is needed: one of {verbs}", ctx)
        return super().parse_args(ctx, args)


SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Where the work runs: tcp://HOST:PORT of a running dask scheduler, local or local:N for a "
             "LocalCluster of N processes started for this run (default: $SITEWATCH_SCHEDULER, else in "
             "this process).",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", "-j", min=1, max=256, show_default=False,
                 help="Shorthand for --scheduler local:N (-j 1: in this process)."),
]
SharedFolderOption = Annotated[
    str | None,
    typer.Option("--shared-folder", show_default=False,
                 help="With --scheduler tcp://…: the workspace folder as the dask workers mount it (a path "
                      "or file:// URL); default: this machine's path to it."),
]


def pause_seconds(env_name: str) -> float:
    """Seconds to pause between items, from environment variable ``env_name`` (0 when unset): the tests
    use it to kill a run mid-way; a value that is not a number is a usage error naming the variable."""
    text = os.environ.get(env_name, "").strip()
    try:
        return max(0.0, float(text)) if text else 0.0
    except ValueError:
        raise typer.BadParameter(f"{env_name}={text!r} is not a number of seconds") from None
