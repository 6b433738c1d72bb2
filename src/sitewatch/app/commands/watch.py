"""CLI verb ``sitewatch watch``: the service that polls STAC sources, monitors and notifies."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, pause_seconds, resolve_workspace

INTERRUPTED_EXIT_CODE = 143
"""128 + SIGTERM: a stop request had to end a cycle before its last step."""
SOURCE_FAILED_EXIT_CODE = 5
"""With --once: a source could not be read (the imagery code of ``sitewatch.app.errors``)."""
PAUSE_ENV = "SITEWATCH_WATCH_PAUSE_S"
"""Seconds to wait after each item: lets crash tests kill the service mid-cycle."""


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the service ends between two steps) instead of killing it."""

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)



def watch(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle over every source and exit "
                                       "(for cron and systemd timers).")] = False,
    check: Annotated[bool, typer.Option("--check", help="Only validate the watch table of sitewatch.toml "
                                        "and the environment variables it names, then exit.")] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Poll the STAC sources of sitewatch.toml's watch table, ingest new items, monitor them and notify
    new alerts and state changes; runs until SIGTERM (exit 0, or 143 when a cycle had to be cut short).
    With --once, one cycle: exit 5 when a source could not be read."""
    from sitewatch.pipeline.watch import serve
    from sitewatch.pipeline.watch_config import load_watch_config
    from sitewatch.store import Workspace

    pause = pause_seconds(PAUSE_ENV)
    stop = threading.Event()
    with Workspace.open(resolve_workspace(workspace)) as ws:
        config = load_watch_config(ws.root, site_ids=[site.id for site in ws.sites()])
        if check:
            typer.echo(f"{ws.root}: [watch] is valid: {len(config.sources)} source(s), "
                       f"{len(config.routes)} route(s)")
            return
        with _stop_on_signals(stop):
            report = serve(ws, config, stop=stop, environ=os.environ, once=once,
                           after_item=(lambda: time.sleep(pause)) if pause else None)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    elif once:
        for source in report.sources:
            if source.error is not None:
                typer.echo(f"{source.name}: not read: {source.error}", err=True)
            elif source.report is not None:
                typer.echo(f"{source.name}: {len(source.report.ingested)} ingested, "
                           f"{len(source.report.skipped)} already stored, {len(source.report.failed)} failed")
        typer.echo(f"{len(report.new_alerts)} new alert(s); {len(report.delivery.sent)} notification(s) "
                   f"sent, {len(report.delivery.failed)} failed")
    if report.interrupted:
        raise typer.Exit(INTERRUPTED_EXIT_CODE)
    if once and any(source.error is not None for source in report.sources):
        raise typer.Exit(SOURCE_FAILED_EXIT_CODE)


def register(app: typer.Typer) -> None:
    """Add the ``watch`` verb to ``app``."""
    app.command("watch")(watch)
