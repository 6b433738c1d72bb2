"""CLI verb: serve (the web API and dashboard over a workspace)."""

from __future__ import annotations

from typing import Annotated

import typer

from sitewatch.app.options import WorkspaceOption, resolve_workspace


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""

    @app.command("serve")
    def serve(
        workspace: WorkspaceOption = None,
        host: Annotated[
            str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    ) -> None:
        """Serve the JSON API and the dashboard; open http://HOST:PORT/ and log in.

        Create users first: `sitewatch users add NAME --role analyst`.
        """
        from sitewatch.app.web.server import serve as run_server
        from sitewatch.store.workspace import Workspace

        root = resolve_workspace(workspace)
        Workspace.open(root).close()  # fail here, naming `sitewatch init`, before announcing anything
        typer.echo(f"sitewatch: serving {root} on http://{host}:{port}/ (API schema at /docs; Ctrl-C stops)")
        run_server(root, host=host, port=port, workers=workers)
