"""Options shared by CLI verbs (one registry, like rasterio's ``rio/options.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

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
