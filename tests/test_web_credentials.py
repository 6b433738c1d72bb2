"""Cutting credentials off over the API and the CLI, log-in throttling, and Secure cookies behind a proxy
(issue 17, items 2, 6 and 7): each test reproduces a finding first."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from e2e.sample_workspace import PASSWORD, SampleWorkspace, build_sample_workspace
from sitewatch.app.commands import users as users_commands
from sitewatch.app.errors import exit_code_for
from sitewatch.app.web import create_app
from sitewatch.core.errors import SitewatchError
from sitewatch.store.users import UserStore, user_store
from sitewatch.store.workspace import Workspace
from test_web_security import assert_error


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    return build_sample_workspace(tmp_path_factory.mktemp("web-credentials") / "ws")


@pytest.fixture(scope="module")
def client(sample: SampleWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(sample.root)) as test_client:
        yield test_client


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    users_commands.register(app)
    return app


def admin(sample: SampleWorkspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {sample.tokens['admin']}"}


def add_user(client: TestClient, sample: SampleWorkspace, name: str, role: str = "analyst") -> str:
    """Create ``name`` through the API; returns an API token of theirs."""
    made = client.post(
        "/api/users", headers=admin(sample), json={"name": name, "password": PASSWORD, "role": role}
    )
    assert made.status_code == 201, made.text
    issued = client.post(f"/api/users/{name}/tokens", headers=admin(sample), json={"label": "test"})
    assert issued.status_code == 201, issued.text
    return str(issued.json()["token"])


def log_in(client: TestClient, name: str, address: str = "192.0.2.1") -> TestClient:
    browser = TestClient(client.app, client=(address, 50000))
    answer = browser.post("/api/auth/login", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return browser


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the admin API -----------------------------------------------------------------------------------


def test_admin_disables_a_user_cutting_off_token_and_session(
    client: TestClient, sample: SampleWorkspace
) -> None:
    token = add_user(client, sample, "leaky")
    browser = log_in(client, "leaky")
    assert client.get("/api/sites", headers=bearer(token)).status_code == 200
    assert browser.get("/api/sites").status_code == 200
    changed = client.patch("/api/users/leaky", headers=admin(sample), json={"disabled": True})
    assert changed.status_code == 200 and changed.json()["disabled"] is True
    assert_error(client.get("/api/sites", headers=bearer(token)), 401)
    assert_error(browser.get("/api/sites"), 401)
    assert client.get("/api/users/leaky/tokens", headers=admin(sample)).json() == []
    assert_error(
        TestClient(client.app, client=("192.0.2.2", 1)).post(
            "/api/auth/login", json={"name": "leaky", "password": PASSWORD}
        ),
        401,
    )
    assert (
        client.patch("/api/users/leaky", headers=admin(sample), json={"disabled": False}).status_code == 200
    )
    log_in(client, "leaky", "192.0.2.3")


def test_admin_changes_a_role_ending_sessions(client: TestClient, sample: SampleWorkspace) -> None:
    token = add_user(client, sample, "promoted", "viewer")
    browser = log_in(client, "promoted")
    changed = client.patch("/api/users/promoted", headers=admin(sample), json={"role": "analyst"})
    assert changed.json()["role"] == "analyst"
    assert_error(browser.get("/api/auth/me"), 401)
    assert client.get("/api/auth/me", headers=bearer(token)).json()["role"] == "analyst"
    assert_error(client.patch("/api/users/promoted", headers=admin(sample), json={"role": "boss"}), 400)
    assert_error(client.patch("/api/users/promoted", headers=admin(sample), json={"name": "x"}), 400)


def test_admin_lists_and_revokes_tokens(client: TestClient, sample: SampleWorkspace) -> None:
    first = add_user(client, sample, "tokened")
    second = client.post(
        "/api/users/tokened/tokens",
        headers=admin(sample),
        json={"label": "laptop", "expires_days": 7},
    ).json()
    listed = client.get("/api/users/tokened/tokens", headers=admin(sample)).json()
    assert [t["label"] for t in listed] == ["test", "laptop"]
    assert all(set(t) == {"id", "label", "created", "expires", "expired"} for t in listed)
    assert not any("swt_" in str(t) for t in listed)  # never the secret
    week = datetime.fromisoformat(listed[1]["expires"]) - datetime.fromisoformat(listed[1]["created"])
    assert week == timedelta(days=7) and second["expires"] == listed[1]["expires"]
    revoked = client.delete(f"/api/users/tokened/tokens/{listed[1]['id']}", headers=admin(sample))
    assert revoked.status_code == 204
    assert_error(client.get("/api/sites", headers=bearer(second["token"])), 401)
    assert client.get("/api/sites", headers=bearer(first)).status_code == 200
    assert_error(client.delete(f"/api/users/admin/tokens/{listed[0]['id']}", headers=admin(sample)), 404)
    assert_error(
        client.post("/api/users/tokened/tokens", headers=admin(sample), json={"expires_days": 0}), 400
    )


def test_admin_deletes_a_user(client: TestClient, sample: SampleWorkspace) -> None:
    token = add_user(client, sample, "gone")
    browser = log_in(client, "gone")
    assert client.delete("/api/users/gone", headers=admin(sample)).status_code == 204
    assert_error(client.get("/api/sites", headers=bearer(token)), 401)
    assert_error(browser.get("/api/sites"), 401)
    assert "gone" not in [u["name"] for u in client.get("/api/users", headers=admin(sample)).json()]
    assert_error(client.delete("/api/users/gone", headers=admin(sample)), 404)


def test_the_last_admin_cannot_lock_everyone_out(client: TestClient, sample: SampleWorkspace) -> None:
    error = assert_error(
        client.patch("/api/users/admin", headers=admin(sample), json={"disabled": True}), 409, "conflict"
    )
    assert "only enabled admin" in error["message"]
    assert_error(client.delete("/api/users/admin", headers=admin(sample)), 409)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PATCH", "/api/users/viewer"),
        ("DELETE", "/api/users/viewer"),
        ("GET", "/api/users/viewer/tokens"),
        ("DELETE", "/api/users/viewer/tokens/1"),
    ],
)
def test_only_admins_manage_credentials(
    client: TestClient, sample: SampleWorkspace, method: str, url: str
) -> None:
    kwargs: dict[str, Any] = {"json": {"disabled": True}} if method == "PATCH" else {}
    analyst = {"Authorization": f"Bearer {sample.tokens['analyst']}"}
    assert_error(client.request(method, url, headers=analyst, **kwargs), 403, "forbidden")
    assert_error(client.request(method, url, **kwargs), 401)


def test_expired_tokens_are_refused(client: TestClient, sample: SampleWorkspace) -> None:
    with Workspace.open(sample.root) as ws:
        users = user_store(ws)
        long_ago = UserStore(
            users._engine, users.policy, clock=lambda: datetime.now(UTC) - timedelta(days=91)
        )
        stale = long_ago.issue_token("viewer", "old")
    error = assert_error(client.get("/api/sites", headers=bearer(stale)), 401)
    assert "expired" in error["message"] and "sitewatch users token viewer" in error["message"]


# --- the CLI -----------------------------------------------------------------------------------------


def test_passwd_ends_sessions_and_revoke_cuts_tokens(
    client: TestClient, sample: SampleWorkspace, cli: typer.Typer
) -> None:
    token = add_user(client, sample, "changer")
    browser = log_in(client, "changer")
    runner = CliRunner()
    root = str(sample.root)
    changed = runner.invoke(cli, ["users", "passwd", "changer", "--password", "brand-new-pass", "-w", root])
    assert changed.exit_code == 0, changed.output
    assert_error(browser.get("/api/sites"), 401)  # the old session cookie no longer answers
    assert client.get("/api/sites", headers=bearer(token)).status_code == 200  # tokens are separate
    revoked = runner.invoke(cli, ["users", "revoke", "changer", "--all", "-w", root])
    assert revoked.exit_code == 0 and "revoked 1 token(s)" in revoked.output
    assert_error(client.get("/api/sites", headers=bearer(token)), 401)


def test_cli_cuts_credentials_off(tmp_path: Path, cli: typer.Typer) -> None:
    root = tmp_path / "ws"
    Workspace.init(root, sites=[]).close()
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        """The verb's output; ``code`` is its exit status, library errors mapped as `sitewatch` maps them."""
        result = runner.invoke(cli, ["users", *args, "-w", str(root)])
        error = result.exception
        got = exit_code_for(error) if isinstance(error, SitewatchError) else result.exit_code
        assert got == code, result.output
        return result.output

    run("add", "boss", "--role", "admin", "--password", "long-enough")
    run("add", "ana", "--role", "viewer", "--password", "long-enough")
    assert "ana now has role analyst" in run("role", "ana", "analyst")
    run("role", "ana", "superuser", code=2)
    issued = run("token", "ana", "--label", "laptop", "--expires-days", "30", "--json")
    [listed] = json.loads(run("tokens", "ana", "--json"))
    assert listed["label"] == "laptop" and not listed["expired"]
    assert listed["expires"] == json.loads(issued)["expires"]
    assert "\tlaptop\t" in run("tokens", "ana")
    run("revoke", "ana", code=2)  # neither --token nor --all
    run("revoke", "ana", "--token", "999", code=3)
    assert f"revoked token {listed['id']} of ana" in run("revoke", "ana", "--token", str(listed["id"]))
    run("token", "ana")
    assert "disabled" in run("disable", "ana")
    assert "ana\tanalyst\tdisabled" in run("list")
    assert [(u["name"], u["disabled"]) for u in json.loads(run("list", "--json"))] == [
        ("ana", True),
        ("boss", False),
    ]
    run("token", "ana", code=6)  # no tokens for a disabled user
    run("enable", "ana")
    run("disable", "boss", code=6)  # the only admin stays
    run("delete", "ana", code=1)  # asks first; no answer aborts
    assert "deleted user ana" in run("delete", "ana", "--yes")
    run("delete", "ana", "--yes", code=3)
    with Workspace.open(root) as ws:
        assert [u.name for u in user_store(ws).users()] == ["boss"]


# --- log-in throttle ---------------------------------------------------------------------------------


def test_sixty_wrong_passwords_then_the_right_one_is_refused(
    client: TestClient, sample: SampleWorkspace
) -> None:
    add_user(client, sample, "target", "viewer")
    attacker = TestClient(client.app, client=("203.0.113.66", 40000))
    statuses = [
        attacker.post("/api/auth/login", json={"name": "target", "password": f"guess-{n}"}).status_code
        for n in range(60)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) <= {401, 429} and statuses.count(429) > 40
    refused = attacker.post("/api/auth/login", json={"name": "target", "password": PASSWORD})
    error = assert_error(refused, 429, "too_many_requests")
    assert "try again in" in error["message"] and int(refused.headers["retry-after"]) >= 1
    assert "sitewatch_session" not in refused.cookies
    # the same answer for a name that does not exist: throttling tells nobody which names are real
    ghost = [
        attacker.post("/api/auth/login", json={"name": "no-such-user", "password": f"guess-{n}"}).status_code
        for n in range(6)
    ]
    assert ghost[:5] == statuses[:5] and ghost[5] == 429


def test_the_log_in_form_says_when_to_try_again(client: TestClient, sample: SampleWorkspace) -> None:
    add_user(client, sample, "formuser", "viewer")
    browser = TestClient(client.app, client=("203.0.113.77", 40000))
    for _ in range(6):
        page = browser.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        answer = browser.post(
            "/login",
            data={"name": "formuser", "password": "wrong-password", "csrf_token": token},
            follow_redirects=False,
        )
    assert answer.status_code == 303 and "wait=" in answer.headers["location"]
    assert "Too many failed log-ins" in browser.get(answer.headers["location"]).text


# --- Secure cookies ----------------------------------------------------------------------------------


def _session_cookie(client: TestClient, headers: dict[str, str] | None = None) -> str:
    answer = client.post(
        "/api/auth/login", json={"name": "viewer", "password": PASSWORD}, headers=headers or {}
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["set-cookie"]


def test_cookies_are_secure_over_https(sample: SampleWorkspace) -> None:
    with TestClient(create_app(sample.root), base_url="https://sitewatch.example") as direct:
        assert "secure" in _session_cookie(direct).lower()
        assert "secure" in direct.get("/login").headers["set-cookie"].lower()


def test_forwarded_https_is_believed_only_from_a_trusted_proxy(
    sample: SampleWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"}
    with TestClient(create_app(sample.root), client=("127.0.0.1", 1234)) as untrusted:
        assert "secure" not in _session_cookie(untrusted, forwarded).lower()
    monkeypatch.setenv("SITEWATCH_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    app = create_app(sample.root)
    with TestClient(app, client=("127.0.0.1", 1234)) as proxied:
        assert "secure" in _session_cookie(proxied, forwarded).lower()
        assert "secure" not in _session_cookie(proxied).lower()  # the proxy said nothing: plain HTTP
    with TestClient(app, client=("192.0.2.9", 1234)) as elsewhere:  # not the proxy: headers ignored
        assert "secure" not in _session_cookie(elsewhere, forwarded).lower()


def test_trusted_proxies_setting_is_checked(sample: SampleWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_TRUSTED_PROXIES", "localhost")
    with pytest.raises(ValueError, match=r"trusted_proxies.*not an IP address"):
        create_app(sample.root)


def test_a_remembered_token_is_refused_once_it_expires(client: TestClient, sample: SampleWorkspace) -> None:
    """The identity cache keeps a caller until the store changes; a token's expiry must end that too."""
    with Workspace.open(sample.root) as ws:
        brief = user_store(ws).issue_token("viewer", "brief", lifetime=timedelta(seconds=2))
    assert client.get("/api/sites", headers=bearer(brief)).status_code == 200
    assert client.get("/api/sites", headers=bearer(brief)).status_code == 200  # now remembered
    time.sleep(2.1)  # no commit in between: only the expiry can end it
    assert_error(client.get("/api/sites", headers=bearer(brief)), 401)
