"""CLI verbs: users (add, list, passwd, token) — accounts for the web API and dashboard."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.store.users import Role, user_store
from sitewatch.store.workspace import Workspace

RoleOption = Annotated[
    Role,
    typer.Option("--role", "-r", help="admin: everything; analyst: triage and assess; viewer: read only."),
]


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def register(app: typer.Typer) -> None:
    """Add this module's verbs to ``app``."""
    users = typer.Typer(help="User accounts of the web API and dashboard.", no_args_is_help=True)
    app.add_typer(users, name="users")

    @users.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="User name (letters, digits, '_', '.', '@', '-').")],
        role: RoleOption = Role.VIEWER,
        password: Annotated[
            str | None, typer.Option(help="Password (prompted when left out; at least 8 characters).")
        ] = None,
        workspace: WorkspaceOption = None,
    ) -> None:
        """Create a user who logs in to the dashboard with a password."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            user = user_store(ws).add_user(name, _password(password), role)
        typer.echo(f"added user {user.name} ({user.role.value})")

    @users.command("passwd")
    def passwd(
        name: Annotated[str, typer.Argument(help="User name.")],
        password: Annotated[str | None, typer.Option(help="New password (prompted when left out).")] = None,
        workspace: WorkspaceOption = None,
    ) -> None:
        """Set a user's password."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            user_store(ws).set_password(name, _password(password))
        typer.echo(f"password of {name} changed")

    @users.command("list")
    def list_users(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
        """List users and their roles."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            found = user_store(ws).users()
        if as_json:
            typer.echo(
                json.dumps(
                    [{"name": u.name, "role": u.role.value, "created": u.created.isoformat()} for u in found]
                )
            )
            return
        for user in found:
            typer.echo(f"{user.name}\t{user.role.value}\t{user.created:%Y-%m-%d}")

    @users.command("token")
    def token(
        name: Annotated[str, typer.Argument(help="User name.")],
        label: Annotated[str, typer.Option(help="What the token is for.")] = "",
        workspace: WorkspaceOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Issue an API token, printed once (only its hash is stored).

        Send it as 'Authorization: Bearer TOKEN'.
        """
        with Workspace.open(resolve_workspace(workspace)) as ws:
            secret = user_store(ws).issue_token(name, label)
        typer.echo(json.dumps({"name": name, "token": secret}) if as_json else secret)
