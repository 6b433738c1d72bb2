"""CLI verbs: users (add, list, passwd, role, disable, enable, delete, token, tokens, revoke).

Accounts of the web API and dashboard, and the means to cut a leaked credential off.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.store.users import Role, User, user_store
from sitewatch.store.workspace import Workspace

RoleOption = Annotated[
    Role,
    typer.Option("--role", "-r", help="admin: everything; analyst: triage and assess; viewer: read only."),
]


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


NameArgument = Annotated[str, typer.Argument(help="User name.")]


def _as_json(user: User) -> dict[str, object]:
    return {
        "name": user.name,
        "role": user.role.value,
        "created": user.created.isoformat(),
        "disabled": user.disabled,
    }


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
        typer.echo(
            f"password of {name} changed; their browser sessions were ended (API tokens stay: `users revoke`)"
        )

    @users.command("list")
    def list_users(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
        """List users, their roles and whether they are disabled."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            found = user_store(ws).users()
        if as_json:
            typer.echo(json.dumps([_as_json(u) for u in found]))
            return
        for user in found:
            state = "disabled" if user.disabled else "enabled"
            typer.echo(f"{user.name}\t{user.role.value}\t{state}\t{user.created:%Y-%m-%d}")

    @users.command("role")
    def role(
        name: NameArgument,
        new_role: Annotated[Role, typer.Argument(metavar="ROLE", help="admin, analyst or viewer.")],
        workspace: WorkspaceOption = None,
    ) -> None:
        """Give a user another role; their browser sessions end (tokens follow the new role at once)."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            user = user_store(ws).set_role(name, new_role)
        typer.echo(f"{user.name} now has role {user.role.value}; their browser sessions were ended")

    @users.command("disable")
    def disable(name: NameArgument, workspace: WorkspaceOption = None) -> None:
        """Stop a user logging in: ends their sessions and revokes their API tokens."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            user_store(ws).disable_user(name)
        typer.echo(f"{name} disabled; their sessions were ended and their API tokens revoked")

    @users.command("enable")
    def enable(name: NameArgument, workspace: WorkspaceOption = None) -> None:
        """Let a disabled user log in again (and lift a log-in lockout); issue them new tokens if needed."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            user_store(ws).enable_user(name)
        typer.echo(f"{name} enabled")

    @users.command("delete")
    def delete(
        name: NameArgument,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
        workspace: WorkspaceOption = None,
    ) -> None:
        """Delete a user with their tokens and sessions; assessments they wrote keep their name."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            users_of_workspace = user_store(ws)
            users_of_workspace.user(name)
            if not yes:
                typer.confirm(f"delete user {name} and their tokens?", abort=True)
            users_of_workspace.delete_user(name)
        typer.echo(f"deleted user {name}")

    @users.command("token")
    def token(
        name: Annotated[str, typer.Argument(help="User name.")],
        label: Annotated[str, typer.Option(help="What the token is for.")] = "",
        expires_days: Annotated[
            int | None,
            typer.Option(
                min=1, max=3650, help="Days it stays valid [default: the token_lifetime_days setting, 90]."
            ),
        ] = None,
        workspace: WorkspaceOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Issue an API token, printed once (only its hash is stored).

        Send it as 'Authorization: Bearer TOKEN'.
        """
        lifetime = None if expires_days is None else timedelta(days=expires_days)
        with Workspace.open(resolve_workspace(workspace)) as ws:
            users_of_workspace = user_store(ws)
            secret = users_of_workspace.issue_token(name, label, lifetime=lifetime)
            _, expires = users_of_workspace.token_holder(secret)
        if as_json:
            typer.echo(json.dumps({"name": name, "token": secret, "expires": expires.isoformat()}))
        else:
            typer.echo(secret)
            typer.echo(f"(expires {expires:%Y-%m-%d %H:%M} UTC)", err=True)

    @users.command("tokens")
    def tokens(name: NameArgument, workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
        """List a user's API tokens: id, label, issued and expiry (never the secret)."""
        with Workspace.open(resolve_workspace(workspace)) as ws:
            found = user_store(ws).tokens(name)
        now = datetime.now(UTC)
        if as_json:
            typer.echo(
                json.dumps(
                    [
                        {
                            "id": t.id,
                            "label": t.label,
                            "created": t.created.isoformat(),
                            "expires": t.expires.isoformat(),
                            "expired": t.expires <= now,
                        }
                        for t in found
                    ]
                )
            )
            return
        for item in found:
            state = "expired" if item.expires <= now else "valid"
            typer.echo(
                f"{item.id}\t{item.label or '-'}\t{item.created:%Y-%m-%d}\t"
                f"expires {item.expires:%Y-%m-%d}\t{state}"
            )

    @users.command("revoke")
    def revoke(
        name: NameArgument,
        token_id: Annotated[
            int | None, typer.Option("--token", help="Id of the token to revoke (`users tokens NAME`).")
        ] = None,
        all_tokens: Annotated[bool, typer.Option("--all", help="Revoke every token of the user.")] = False,
        workspace: WorkspaceOption = None,
    ) -> None:
        """Revoke one API token of a user (--token ID) or all of them (--all); refused at once."""
        if (token_id is None) == (not all_tokens):
            raise typer.BadParameter("give either --token ID or --all", param_hint="--token/--all")
        with Workspace.open(resolve_workspace(workspace)) as ws:
            users_of_workspace = user_store(ws)
            if token_id is not None:
                users_of_workspace.revoke_token(token_id, user_name=name)
                typer.echo(f"revoked token {token_id} of {name}")
            else:
                count = users_of_workspace.revoke_tokens(name)
                typer.echo(f"revoked {count} token(s) of {name}")
