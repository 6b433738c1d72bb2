"""Users, password KDF, API tokens and sessions (sitewatch.store.users) over a real workspace database."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from sitewatch.core.errors import NotFoundError, StoreError, ValidationError
from sitewatch.store.migrate import alembic_config, upgrade_to_head
from sitewatch.store.settings import Settings
from sitewatch.store.users import (
    CONCURRENT_HASHES,
    SCRYPT_LOG2_N,
    SCRYPT_P,
    SCRYPT_R,
    AuthenticationError,
    CredentialPolicy,
    LoginThrottledError,
    PermissionDeniedError,
    Role,
    UserStore,
    ensure_user,
    hash_is_weaker,
    hash_password,
    user_store,
    verify_password,
)
from sitewatch.store.workspace import Workspace


@pytest.fixture
def store(tmp_path: Path) -> Iterator[UserStore]:
    ws = Workspace.init(tmp_path / "ws", sites=[])
    yield user_store(ws)
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
        users = user_store(ws)
        assert users.authenticate("demo-analyst", "new-password").role is Role.VIEWER
        assert [u.name for u in users.users()] == ["demo-analyst"]


# --- credentials that can be cut off (issue 17, item 2) ----------------------------------------------


class Clock:
    """A clock the test moves forward by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(store: UserStore, clock: Clock) -> UserStore:
    """The store's database, seen through a store whose clock the test moves."""
    return UserStore(store._engine, store.policy, clock=clock)


def test_tokens_expire_after_the_policy_lifetime_or_their_own(timed: UserStore, clock: Clock) -> None:
    timed.add_user("tom", "long-enough", "analyst")
    default = timed.issue_token("tom", "default")
    short = timed.issue_token("tom", "short", lifetime=timedelta(days=2))
    assert [t.expires - t.created for t in timed.tokens("tom")] == [timedelta(days=90), timedelta(days=2)]
    clock.advance(days=3)
    assert timed.user_for_token(default).name == "tom"
    with pytest.raises(AuthenticationError, match="expired on 2026-12-07; issue a new one"):
        timed.user_for_token(short)
    clock.advance(days=87)
    with pytest.raises(AuthenticationError, match="expired"):
        timed.user_for_token(default)
    with pytest.raises(ValidationError):
        timed.issue_token("tom", lifetime=timedelta(0))


def test_token_lifetime_is_a_workspace_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_TOKEN_LIFETIME_DAYS", "7")
    with Workspace.init(tmp_path / "ws", sites=[]) as ws:
        users = user_store(ws)
        assert users.policy.token_lifetime == timedelta(days=7)
        users.add_user("tom", "long-enough", "viewer")
        users.issue_token("tom")
        [token] = users.tokens("tom")
        assert token.expires - token.created == timedelta(days=7)
    monkeypatch.setenv("SITEWATCH_TOKEN_LIFETIME_DAYS", "0")
    with pytest.raises(ValidationError, match="token_lifetime_days"):
        Workspace.open(tmp_path / "ws")


def test_password_change_ends_sessions_but_not_tokens(store: UserStore) -> None:
    user = store.add_user("sam", "long-enough", "analyst")
    cookie, _ = store.start_session(user)
    token = store.issue_token("sam")
    store.set_password("sam", "another-password")
    with pytest.raises(AuthenticationError, match="log in again"):
        store.session(cookie)
    assert store.user_for_token(token).name == "sam"
    assert store.revoke_tokens("sam") == 1
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        store.user_for_token(token)


def test_role_change_ends_sessions_and_applies_to_tokens_at_once(store: UserStore) -> None:
    user = store.add_user("sam", "long-enough", "analyst")
    cookie, _ = store.start_session(user)
    token = store.issue_token("sam")
    assert store.set_role("sam", "viewer").role is Role.VIEWER
    with pytest.raises(AuthenticationError, match="log in again"):
        store.session(cookie)
    assert store.user_for_token(token).role is Role.VIEWER


def test_disable_ends_sessions_revokes_tokens_and_refuses_log_in(store: UserStore) -> None:
    user = store.add_user("dan", "long-enough", "analyst")
    cookie, _ = store.start_session(user)
    token = store.issue_token("dan")
    assert store.disable_user("dan").disabled
    with pytest.raises(AuthenticationError, match="log in again"):
        store.session(cookie)
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        store.user_for_token(token)
    assert store.tokens("dan") == []
    with pytest.raises(AuthenticationError, match="disabled; ask an admin"):
        store.authenticate("dan", "long-enough")
    with pytest.raises(StoreError, match="disabled"):
        store.issue_token("dan")
    assert not store.enable_user("dan").disabled
    assert store.authenticate("dan", "long-enough").name == "dan"
    with pytest.raises(AuthenticationError):  # enabling does not bring a revoked token back
        store.user_for_token(token)


def test_delete_removes_the_user_with_sessions_and_tokens(store: UserStore) -> None:
    user = store.add_user("del", "long-enough", "viewer")
    cookie, _ = store.start_session(user)
    token = store.issue_token("del")
    store.delete_user("del")
    with pytest.raises(AuthenticationError):
        store.session(cookie)
    with pytest.raises(AuthenticationError):
        store.user_for_token(token)
    with store._engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from api_tokens")).scalar() == 0
        assert connection.execute(sa.text("select count(*) from web_sessions")).scalar() == 0
    with pytest.raises(NotFoundError, match="no user 'del'"):
        store.delete_user("del")


def test_the_last_enabled_admin_cannot_be_removed(store: UserStore) -> None:
    store.add_user("root", "long-enough", "admin")
    for action in (store.delete_user, store.disable_user, lambda name: store.set_role(name, "viewer")):
        with pytest.raises(StoreError, match="only enabled admin"):
            action("root")
    store.add_user("root2", "long-enough", "admin")
    store.set_role("root", "analyst")
    with pytest.raises(StoreError, match="only enabled admin"):
        store.disable_user("root2")


def test_tokens_are_revoked_only_for_their_owner(store: UserStore) -> None:
    store.add_user("ann", "long-enough", "viewer")
    store.add_user("bob", "long-enough", "viewer")
    store.issue_token("ann")
    [token] = store.tokens("ann")
    with pytest.raises(NotFoundError, match="of user 'bob'"):
        store.revoke_token(token.id, user_name="bob")
    store.revoke_token(token.id, user_name="ann")
    assert store.tokens("ann") == []


# --- password hashing (issue 17, item 11) ------------------------------------------------------------


def test_shipped_scrypt_cost_follows_owasp() -> None:
    assert (SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P) == (17, 8, 1)
    assert Settings().password_hash_cost == 17 and CredentialPolicy().password_hash_cost == 17
    encoded = hash_password("s3cret-pass")  # 128 MiB: more than hashlib's default memory limit
    assert encoded.split("$")[1:4] == ["131072", "8", "1"]
    assert verify_password("s3cret-pass", encoded)
    assert not hash_is_weaker(encoded) and hash_is_weaker(hash_password("x", log2_n=14))


def test_weaker_hashes_are_upgraded_at_the_next_log_in(store: UserStore) -> None:
    store.add_user("old", "long-enough", "viewer")  # made at the test cost, 2^10
    stronger = UserStore(store._engine, replace(store.policy, password_hash_cost=12))

    def stored() -> str:
        with store._engine.connect() as connection:
            return str(connection.execute(sa.text("select password_hash from users")).scalar())

    before = stored()
    assert before.split("$")[1] == "1024"
    with pytest.raises(AuthenticationError):
        stronger.authenticate("old", "wrong-password")
    assert stored() == before  # a wrong password changes nothing
    stronger.authenticate("old", "long-enough")
    assert stored().split("$")[1] == "4096"
    assert stronger.authenticate("old", "long-enough").name == "old"
    store.authenticate("old", "long-enough")  # a cheaper policy never downgrades
    assert stored().split("$")[1] == "4096"


# --- log-in throttle (issue 17, item 6) --------------------------------------------------------------


def test_sixty_wrong_passwords_lock_the_account_and_the_right_one_is_refused(
    timed: UserStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    timed.add_user("eve", "long-enough", "viewer")
    refused = 0
    for _ in range(60):
        try:
            timed.authenticate("eve", "wrong-password", client="203.0.113.9")
        except LoginThrottledError:
            refused += 1
        except AuthenticationError:
            pass
        clock.advance(seconds=2)  # 30 tries a minute: slower than the backoff at first
    assert refused > 40
    with pytest.raises(LoginThrottledError, match="try again in") as caught:
        timed.authenticate("eve", "long-enough", client="203.0.113.9")
    assert 0 < caught.value.retry_after <= 15 * 60
    assert "locked out" in caplog.text and "failed log-in as 'eve' from 203.0.113.9" in caplog.text
    clock.advance(minutes=15)
    assert timed.authenticate("eve", "long-enough", client="203.0.113.9").name == "eve"


def test_throttle_backs_off_then_locks_out(timed: UserStore, clock: Clock) -> None:
    timed.add_user("eve", "long-enough", "viewer")
    for _ in range(5):
        with pytest.raises(AuthenticationError) as caught:
            timed.authenticate("eve", "wrong-password")
        assert not isinstance(caught.value, LoginThrottledError)
    waits = []
    for _ in range(5):
        with pytest.raises(LoginThrottledError) as throttled:
            timed.authenticate("eve", "long-enough")
        waits.append(throttled.value.retry_after)
        clock.advance(seconds=throttled.value.retry_after)
        with pytest.raises(AuthenticationError):
            timed.authenticate("eve", "wrong-password")
    assert waits == [1, 2, 4, 8, 16]
    with pytest.raises(LoginThrottledError) as locked:
        timed.authenticate("eve", "long-enough")
    assert locked.value.retry_after == 15 * 60


def test_unknown_names_are_throttled_like_real_ones(timed: UserStore) -> None:
    timed.add_user("eve", "long-enough", "viewer")
    answers = []
    for name in ("eve", "nobody"):
        for _ in range(7):
            try:
                timed.authenticate(name, "wrong-password")
            except AuthenticationError as error:
                answers.append((name, type(error).__name__, str(error)))
    assert [a[1:] for a in answers if a[0] == "eve"] == [a[1:] for a in answers if a[0] == "nobody"]


def test_one_address_trying_many_names_is_throttled(timed: UserStore, clock: Clock) -> None:
    for attempt in range(20):
        with pytest.raises(AuthenticationError):
            timed.authenticate(f"guess{attempt}", "wrong-password", client="198.51.100.7")
    with pytest.raises(LoginThrottledError):
        timed.authenticate("guess-new", "wrong-password", client="198.51.100.7")
    timed.add_user("other", "long-enough", "viewer")  # another address is not held back
    assert timed.authenticate("other", "long-enough", client="198.51.100.8").name == "other"


def test_success_clears_the_account_failures(timed: UserStore) -> None:
    timed.add_user("eve", "long-enough", "viewer")
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            timed.authenticate("eve", "wrong-password")
    timed.authenticate("eve", "long-enough")
    for _ in range(4):  # counting starts again: no delay yet
        with pytest.raises(AuthenticationError) as caught:
            timed.authenticate("eve", "wrong-password")
        assert not isinstance(caught.value, LoginThrottledError)


def test_enable_clears_a_lockout(timed: UserStore, clock: Clock) -> None:
    timed.add_user("eve", "long-enough", "viewer")
    for _ in range(10):
        with pytest.raises(AuthenticationError):
            timed.authenticate("eve", "wrong-password")
        clock.advance(seconds=20)
    with pytest.raises(LoginThrottledError):
        timed.authenticate("eve", "long-enough")
    timed.enable_user("eve")
    assert timed.authenticate("eve", "long-enough").name == "eve"


def test_migration_gives_old_tokens_an_expiry(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0100_users")
            connection.execute(
                sa.text(
                    "insert into users values ('old', :hash, 'viewer', '2026-01-01 00:00:00');"
                ),
                {"hash": hash_password("long-enough", log2_n=10)},
            )
            connection.execute(
                sa.text("insert into api_tokens values (1, :digest, 'old', 'cli', '2026-01-01 00:00:00')"),
                {"digest": hashlib.sha256(b"swt_legacy").hexdigest()},
            )
        upgrade_to_head(engine)
        users = UserStore(engine, CredentialPolicy(password_hash_cost=10))
        assert users.user_for_token("swt_legacy").name == "old" and not users.user("old").disabled
        [token] = users.tokens("old")
        assert timedelta(days=89) < token.expires - datetime.now(UTC) <= timedelta(days=90)
    finally:
        engine.dispose()


def test_at_most_a_few_hashes_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each N=2^17 hash takes 128 MiB: a burst of log-ins must not take gigabytes."""
    real = hashlib.scrypt
    running, most = 0, 0
    lock = threading.Lock()

    def counted(*args: Any, **kwargs: Any) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)  # long enough for the other threads to pile up
            return real(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(hashlib, "scrypt", counted)
    with ThreadPoolExecutor(max_workers=16) as pool:
        hashes = list(pool.map(lambda n: hash_password(f"password-{n}", log2_n=10), range(32)))
    assert len(set(hashes)) == 32
    assert most == CONCURRENT_HASHES
