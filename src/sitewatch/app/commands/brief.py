"""CLI verb ``sitewatch brief``: an alert's annotated before/after figure as PNG and PDF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace


def register(app: typer.Typer) -> None:
    """Add ``brief`` to ``app``."""
    app.command("brief")(brief)


def brief(
    alert_id: Annotated[
        str,
        typer.Argument(metavar="ALERT_ID", help="Alert id (see `sitewatch alerts list`).",
                       show_default=False),
    ],
    workspace: WorkspaceOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write: OUT.png and OUT.pdf (default: ./brief-ALERT_ID).",
                     show_default=False),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option("--margin", min=0.0, max=5.0, show_default=False,
                     help="Context around the alert's zone, as a fraction of the zone's larger side "
                          "(default: 0.35)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Draw an alert's briefing figure as PNG and PDF.

    Before and after side by side on the alert's zone, detections called out, scale bar, north arrow,
    dates, sensor and the imagery credit; pixels an image did not see are hatched.
    """
    from sitewatch.app.report.brief import DEFAULT_MARGIN, write_brief
    from sitewatch.store import Workspace

    target = out if out is not None else Path(f"brief-{_safe_name(alert_id)}")
    with Workspace.open(resolve_workspace(workspace)) as ws:
        files = write_brief(ws, alert_id, target, margin=DEFAULT_MARGIN if margin is None else margin)
    if as_json:
        typer.echo(json.dumps({"alert_id": files.alert_id, "png": str(files.png), "pdf": str(files.pdf),
                               "callouts": list(files.callouts)}))
        return
    callouts = ", ".join(files.callouts) or "no detections in view"
    typer.echo(f"{files.png}\n{files.pdf}\ncallouts: {callouts}")


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
