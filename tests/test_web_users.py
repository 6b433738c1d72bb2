"""Users, password KDF, API tokens and sessions (sitewatch.store.users) over a real workspace database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sitewatch.core.errors import NotFoundError, StoreError, ValidationError
from sitewatch.store.users import (
    AuthenticationError,
    PermissionDeniedError,
    Role,
    UserStore,
    ensure_user,
    hash_password,
    verify_password,
    workspace_engine,
)
from sitewatch.store.workspace import Workspace


@pytest.fixture
def store(tmp_path: Path) -> Iterator[UserStore]:
    ws = Workspace.init(tmp_path / "ws", sites=[])
    yield UserStore(workspace_engine(ws))
    ws.close()


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first.startswith("scrypt$") and first != second
    assert "s3cret-pass" not in first
    assert verify_password("s3cret-pass", first) and verify_password("s3cret-pass", second)
    assert not verify_password("s3cret-pasS", first)
    assert not verify_password("s3cret-pass", "garbage") and not verify_password("x", "md5$1$2$3$4$5")


def test_add_and_authenticate(store: UserStore) -> None:
    user = store.add_user("ana", "long-enough", "analyst")
    assert user.role is Role.ANALYST
    assert store.authenticate("ana", "long-enough").name == "ana"
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        store.authenticate("ana", "wrong-password")
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        store.authenticate("nobody", "long-enough")
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("ana", "another-password", "viewer")


@pytest.mark.parametrize(
    ("name", "password", "role", "field"),
    [
        ("bad name", "long-enough", "viewer", "name"),
        ("", "long-enough", "viewer", "name"),
        ("ok", "short", "viewer", "password"),
        ("ok", "long-enough", "superuser", "role"),
    ],
)
def test_bad_user_input_names_the_field(
    store: UserStore, name: str, password: str, role: str, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.add_user(name, password, role)
    assert caught.value.field == field


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.ANALYST) and Role.ANALYST.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.ANALYST) and not Role.ANALYST.allows(Role.ADMIN)


def test_require_raises_for_a_viewer(store: UserStore) -> None:
    viewer = store.add_user("vic", "long-enough", Role.VIEWER)
    viewer.require(Role.VIEWER, "reading")
    with pytest.raises(PermissionDeniedError, match="needs role 'analyst'"):
        viewer.require(Role.ANALYST, "triage")


def test_tokens_are_stored_hashed_and_can_be_revoked(store: UserStore, tmp_path: Path) -> None:
    store.add_user("tom", "long-enough", "analyst")
    secret = store.issue_token("tom", "laptop")
    assert store.user_for_token(secret).name == "tom"
    with store._engine.connect() as connection:  # the secret itself is nowhere in the database
        stored = [row[0] for row in connection.execute(sa.text("select token_hash from api_tokens"))]
    assert secret not in stored and len(stored) == 1
    [token] = store.tokens("tom")
    assert token.label == "laptop"
    store.revoke_token(token.id)
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        store.user_for_token(secret)
    with pytest.raises(NotFoundError):
        store.issue_token("ghost")


def test_sessions_start_and_end(store: UserStore) -> None:
    user = store.add_user("sam", "long-enough", "viewer")
    secret, session = store.start_session(user)
    assert store.session(secret).csrf_token == session.csrf_token
    store.end_session(secret)
    with pytest.raises(AuthenticationError, match="log in again"):
        store.session(secret)


def test_ensure_user_is_idempotent_and_resets(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", sites=[]) as ws:
        first = ensure_user(ws, "demo-analyst", "demo-password", "analyst")
        again = ensure_user(ws, "demo-analyst", "demo-password", "analyst")
        assert first == again
        ensure_user(ws, "demo-analyst", "new-password", "viewer")
        users = UserStore(workspace_engine(ws))
        assert users.authenticate("demo-analyst", "new-password").role is Role.VIEWER
        assert [u.name for u in users.users()] == ["demo-analyst"]
