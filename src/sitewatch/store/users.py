"""Users, roles, API tokens and browser sessions of a workspace.

Passwords are kept only as scrypt hashes (a memory-hard password KDF from the
standard library); API tokens and session ids are random 256-bit secrets kept
only as SHA-256 digests, so a copied database does not give anyone a way in.
Roles are ordered: ``admin`` may do anything, ``analyst`` may triage alerts and
write assessments, ``viewer`` may only read.

A credential can always be cut off: tokens expire (90 days unless chosen otherwise)
and can be revoked; a password change, a role change or disabling a user ends their
browser sessions, and disabling or deleting a user also revokes their tokens. Log-in
attempts are throttled per account name and per client address (see :class:`ThrottleRule`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sitewatch.core.errors import NotFoundError, SitewatchError, StoreError, ValidationError
from sitewatch.core.timeutil import ensure_utc
from sitewatch.store import schema

if TYPE_CHECKING:
    from sitewatch.store.settings import Settings
    from sitewatch.store.workspace import Workspace

log = logging.getLogger(__name__)


class AuthenticationError(SitewatchError, PermissionError):
    """Credentials are missing, wrong, expired or revoked."""


class LoginThrottledError(AuthenticationError):
    """Too many failed log-ins for this account name or client address: refused unchecked for a while."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Whole seconds until a log-in may be tried again."""


class PermissionDeniedError(SitewatchError, PermissionError):
    """The user is known but their role does not allow the action."""


class Role(StrEnum):
    """What a user may do; each role includes the ones below it."""

    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return {Role.VIEWER: 0, Role.ANALYST: 1, Role.ADMIN: 2}[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ValidationError("User", "role", f"{value!r} is not one of: {choices}") from None


@dataclass(frozen=True, slots=True)
class User:
    """A person who logs in to the dashboard or calls the API."""

    name: str
    role: Role
    created: datetime
    disabled: bool = False
    """A disabled user cannot log in and has no tokens or sessions; `sitewatch users enable` undoes it."""

    def require(self, needed: Role, action: str) -> None:
        """Raise :class:`PermissionDeniedError` unless this user's role allows ``action``."""
        if not self.role.allows(needed):
            raise PermissionDeniedError(
                f"user {self.name!r} has role {self.role.value!r}; {action} needs role {needed.value!r} "
                "or higher (ask an admin: `sitewatch users add NAME --role analyst`)"
            )


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as stored: never the secret itself, only when and for whom it was issued."""

    id: int
    user_name: str
    label: str
    created: datetime
    expires: datetime
    """After this the token is refused; issue a new one."""


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser session, with the CSRF token its forms must echo."""

    user: User
    csrf_token: str
    expires: datetime


# --- schema (migrations 0100_users, 0110_credentials, 0410_user_visits; see migrations/versions) ---
# Registered on the store's own MetaData so the migration environment and schema checks see them.

users_table = sa.Table(
    "users",
    schema.metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created", schema.UTCDateTime, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_visit", schema.UTCDateTime, nullable=True),
)

api_tokens_table = sa.Table(
    "api_tokens",
    schema.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created", schema.UTCDateTime, nullable=False),
    sa.Column("expires", schema.UTCDateTime, nullable=False),
)

web_sessions_table = sa.Table(
    "web_sessions",
    schema.metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created", schema.UTCDateTime, nullable=False),
    sa.Column("expires", schema.UTCDateTime, nullable=False, index=True),
)

login_failures_table = sa.Table(
    "login_failures",
    schema.metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure", schema.UTCDateTime, nullable=False),
    sa.Column("locked_until", schema.UTCDateTime, nullable=True),
)

# --- password KDF -----------------------------------------------------------------------------

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 17, 8, 1
"""OWASP's password storage guidance for scrypt (N=2^17, r=8, p=1): 128 MiB and a fraction of a second."""
TOKEN_PREFIX = "swt_"
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_LIFETIME = timedelta(days=90)


def hash_password(password: str, *, log2_n: int = SCRYPT_LOG2_N) -> str:
    """Encode ``password`` as ``scrypt$N$r$p$salt$digest`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    n = 2**log2_n
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P, 32)
    return "$".join(("scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)))


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; compares in constant time."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(_unb64(expected)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def hash_is_weaker(encoded: str, *, log2_n: int = SCRYPT_LOG2_N) -> bool:
    """True when ``encoded`` was made with less work than the current parameters ask: rehash it."""
    try:
        scheme, n, r, p, *_ = encoded.split("$")
        return scheme != "scrypt" or int(n) < 2**log2_n or int(r) < SCRYPT_R or int(p) < SCRYPT_P
    except ValueError:
        return True


CONCURRENT_HASHES = 4
"""Password hashes computed at once per process: each takes 128 MiB, so a burst of log-ins from many
addresses waits its turn instead of taking gigabytes."""
_hash_slots = threading.BoundedSemaphore(CONCURRENT_HASHES)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # scrypt needs 128 * r * N bytes; the standard library refuses more than 32 MiB unless told.
    with _hash_slots:
        return hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=129 * r * n + 2**20
        )


@cache
def _dummy_hash(log2_n: int) -> str:
    """A hash to check unknown names against, so their answer takes as long as a real user's."""
    return hash_password(secrets.token_urlsafe(16), log2_n=log2_n)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(secret: str) -> str:
    # Tokens are 256-bit random secrets, so a fast hash is enough to make a stolen table useless.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValidationError(
            "User",
            "name",
            f"{name!r} is not a valid user name; use 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit",
        )


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "User", "password", f"must be at least {MIN_PASSWORD_LENGTH} characters; choose a longer one"
        )


def _user(row: Any) -> User:
    return User(
        name=row.name, role=Role(row.role), created=ensure_utc(row.created), disabled=bool(row.disabled)
    )


# --- log-in throttle --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """How failed log-ins of one account name or one client address slow further tries.

    The first ``free_failures`` cost nothing; each later one makes the next try wait
    ``base_delay`` doubled per failure; at ``lockout_after`` failures tries are refused for
    ``lockout``. Failures are forgotten ``lockout`` after the last one.
    """

    free_failures: int
    lockout_after: int
    base_delay: timedelta
    lockout: timedelta

    def delay(self, failures: int) -> timedelta:
        """How long tries are refused after the ``failures``-th failure in a row."""
        if failures < self.free_failures:
            return timedelta(0)
        if failures >= self.lockout_after:
            return self.lockout
        return min(self.base_delay * 2 ** (failures - self.free_failures), self.lockout)


ACCOUNT_THROTTLE = ThrottleRule(
    free_failures=5, lockout_after=10, base_delay=timedelta(seconds=1), lockout=timedelta(minutes=15)
)
"""Per account name, known or not (so the answer never tells which names exist)."""
ADDRESS_THROTTLE = ThrottleRule(
    free_failures=20, lockout_after=50, base_delay=timedelta(seconds=1), lockout=timedelta(minutes=15)
)
"""Per client address: looser, as several people may share one address."""


@dataclass(frozen=True, slots=True)
class CredentialPolicy:
    """The workspace's choices about credentials (see ``Settings``)."""

    password_hash_cost: int = SCRYPT_LOG2_N
    """log2 of scrypt's N for new and upgraded hashes."""
    token_lifetime: timedelta = TOKEN_LIFETIME
    """Validity of a token whose issuer does not choose one."""
    account_throttle: ThrottleRule = ACCOUNT_THROTTLE
    address_throttle: ThrottleRule = ADDRESS_THROTTLE

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialPolicy:
        return cls(
            password_hash_cost=settings.password_hash_cost,
            token_lifetime=timedelta(days=settings.token_lifetime_days),
        )


class UserStore:
    """Users, tokens, sessions and log-in failures in a workspace database (see the schema above).

    ``clock`` gives the current time (aware UTC); tests pass one they can move forward.
    """

    def __init__(
        self,
        engine: Engine,
        policy: CredentialPolicy | None = None,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._engine = engine
        self.policy = policy or CredentialPolicy()
        self._clock = clock

    def _hash(self, password: str) -> str:
        return hash_password(password, log2_n=self.policy.password_hash_cost)

    # users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, role: Role | str) -> User:
        """Create a user; a user of that name already existing is a :class:`StoreError`."""
        _check_name(name)
        _check_password(password)
        parsed = role if isinstance(role, Role) else Role.parse(role)
        created = self._clock()
        with self._engine.begin() as connection:
            if connection.execute(sa.select(users_table.c.name).where(users_table.c.name == name)).first():
                raise StoreError(
                    f"user {name!r} already exists; pick another name or use `sitewatch users passwd`"
                )
            connection.execute(
                users_table.insert().values(
                    name=name, password_hash=self._hash(password), role=parsed.value, created=created
                )
            )
        return User(name=name, role=parsed, created=created)

    def ensure_user(self, name: str, password: str, role: Role | str) -> User:
        """Create the user, or reset an existing one's password and role: safe to re-run."""
        _check_name(name)
        _check_password(password)
        parsed = role if isinstance(role, Role) else Role.parse(role)
        with self._engine.begin() as connection:
            row = connection.execute(sa.select(users_table).where(users_table.c.name == name)).first()
            if row is None:
                connection.execute(
                    users_table.insert().values(
                        name=name,
                        password_hash=self._hash(password),
                        role=parsed.value,
                        created=self._clock(),
                    )
                )
            elif row.role != parsed.value or not verify_password(password, row.password_hash):
                connection.execute(
                    users_table.update()
                    .where(users_table.c.name == name)
                    .values(password_hash=self._hash(password), role=parsed.value)
                )
                _end_sessions(connection, name)
        return self.user(name)

    def user(self, name: str) -> User:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users_table).where(users_table.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no user {name!r}; list users with `sitewatch users list`")
        return _user(row)

    def users(self) -> list[User]:
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(users_table).order_by(users_table.c.name)).all()
        return [_user(row) for row in rows]

    def set_password(self, name: str, password: str) -> None:
        """Change ``name``'s password and end their sessions (their API tokens stay; see revoke_tokens)."""
        _check_password(password)
        with self._engine.begin() as connection:
            done = connection.execute(
                users_table.update()
                .where(users_table.c.name == name)
                .values(password_hash=self._hash(password))
            )
            if done.rowcount == 0:
                raise NotFoundError(f"no user {name!r}; create it with `sitewatch users add {name}`")
            _end_sessions(connection, name)
            _forget_failures(connection, name)

    def set_role(self, name: str, role: Role | str) -> User:
        """Give ``name`` another role and end their sessions; the last enabled admin keeps theirs."""
        parsed = role if isinstance(role, Role) else Role.parse(role)
        with self._engine.begin() as connection:
            row = _require_user(connection, name)
            if row.role != parsed.value:
                _keep_an_admin(connection, row, f"give {name!r} role {parsed.value!r}")
                connection.execute(
                    users_table.update().where(users_table.c.name == name).values(role=parsed.value)
                )
                _end_sessions(connection, name)
        log.warning("user %r now has role %r; their sessions were ended", name, parsed.value)
        return self.user(name)

    def disable_user(self, name: str) -> User:
        """Refuse ``name``'s log-ins from now on, end their sessions and revoke their tokens."""
        with self._engine.begin() as connection:
            row = _require_user(connection, name)
            _keep_an_admin(connection, row, f"disable {name!r}")
            connection.execute(users_table.update().where(users_table.c.name == name).values(disabled=True))
            _cut_off(connection, name)
        log.warning("user %r disabled; their sessions were ended and their API tokens revoked", name)
        return self.user(name)

    def enable_user(self, name: str) -> User:
        """Let a disabled user log in again (their revoked tokens stay revoked); clears their lockout."""
        with self._engine.begin() as connection:
            _require_user(connection, name)
            connection.execute(users_table.update().where(users_table.c.name == name).values(disabled=False))
            _forget_failures(connection, name)
        log.warning("user %r enabled", name)
        return self.user(name)

    def delete_user(self, name: str) -> None:
        """Remove ``name`` with their tokens and sessions; the assessments they wrote keep their name."""
        with self._engine.begin() as connection:
            row = _require_user(connection, name)
            _keep_an_admin(connection, row, f"delete {name!r}")
            _cut_off(connection, name)
            connection.execute(users_table.delete().where(users_table.c.name == name))
            _forget_failures(connection, name)
        log.warning("user %r deleted with their sessions and API tokens", name)

    # log-in -------------------------------------------------------------------------------

    def authenticate(self, name: str, password: str, *, client: str | None = None) -> User:
        """The user when ``password`` is right, else :class:`AuthenticationError` (same text either way).

        ``client`` is the caller's address. Tries are throttled per account name and per
        address (:class:`ThrottleRule`): a throttled try is refused with
        :class:`LoginThrottledError` before the password is looked at, whether the name
        exists or not. A right password made with weaker scrypt parameters than the
        policy's is rehashed.
        """
        keys = [(_account_key(name), self.policy.account_throttle)]
        if client:
            keys.append((_address_key(client), self.policy.address_throttle))
        # The try counts as a failure before the (slow) hash, so parallel tries cannot slip
        # past the throttle; success takes it back.
        self._count_try(name, client, keys)
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users_table).where(users_table.c.name == name)).first()
        # Hash even for unknown names so timing does not reveal which names exist.
        encoded = row.password_hash if row is not None else _dummy_hash(self.policy.password_hash_cost)
        if not verify_password(password, encoded) or row is None:
            log.warning("failed log-in as %r from %s", name[:64], client or "an unknown address")
            raise AuthenticationError("wrong user name or password")
        if row.disabled:
            log.warning("log-in as disabled user %r from %s refused", name, client or "an unknown address")
            raise AuthenticationError(
                f"user {name!r} is disabled; ask an admin (`sitewatch users enable {name}`)"
            )
        with self._engine.begin() as connection:
            _forget_failures(connection, name)
            if client:
                _take_back_failure(connection, _address_key(client))
            if hash_is_weaker(row.password_hash, log2_n=self.policy.password_hash_cost):
                connection.execute(
                    users_table.update()
                    .where(users_table.c.name == name, users_table.c.password_hash == row.password_hash)
                    .values(password_hash=self._hash(password))
                )
                log.info(
                    "password hash of %r upgraded to scrypt N=2^%d", name, self.policy.password_hash_cost
                )
        return _user(row)

    def _count_try(self, name: str, client: str | None, keys: list[tuple[str, ThrottleRule]]) -> None:
        now = self._clock()
        with self._engine.begin() as connection:
            rows = {
                row.key: row
                for row in connection.execute(
                    sa.select(login_failures_table).where(
                        login_failures_table.c.key.in_([key for key, _ in keys])
                    )
                )
            }
            waits = [
                ensure_utc(row.locked_until) - now
                for row in rows.values()
                if row.locked_until is not None and ensure_utc(row.locked_until) > now
            ]
            if waits:
                retry_after = math.ceil(max(waits).total_seconds())
                log.warning(
                    "log-in as %r from %s refused unchecked: too many failures (retry in %d s)",
                    name[:64], client or "an unknown address", retry_after,
                )
                raise LoginThrottledError(
                    f"too many failed log-ins for this account or address; try again in {retry_after} s",
                    retry_after,
                )
            for key, rule in keys:
                row = rows.get(key)
                recent = row is not None and ensure_utc(row.last_failure) + rule.lockout > now
                failures = row.failures + 1 if row is not None and recent else 1
                delay = rule.delay(failures)
                values = {
                    "failures": failures,
                    "last_failure": now,
                    "locked_until": now + delay if delay > timedelta(0) else None,
                }
                if row is None:
                    connection.execute(login_failures_table.insert().values(key=key, **values))
                else:
                    connection.execute(
                        login_failures_table.update()
                        .where(login_failures_table.c.key == key)
                        .values(**values)
                    )
                if delay >= rule.lockout:
                    log.warning(
                        "%s locked out for %s after %d failed log-ins", key[:80], rule.lockout, failures
                    )

    # API tokens ----------------------------------------------------------------------------

    def issue_token(self, name: str, label: str = "", *, lifetime: timedelta | None = None) -> str:
        """A new API token for ``name``; the secret is returned once and stored only hashed.

        It expires after ``lifetime`` (the policy's token lifetime when None).
        """
        user = self.user(name)
        if user.disabled:
            raise StoreError(
                f"user {name!r} is disabled; enable them first (`sitewatch users enable {name}`)"
            )
        lifetime = self.policy.token_lifetime if lifetime is None else lifetime
        if lifetime <= timedelta(0):
            raise ValidationError("ApiToken", "lifetime", f"{lifetime} must be positive, e.g. 30 days")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        with self._engine.begin() as connection:
            connection.execute(
                api_tokens_table.insert().values(
                    token_hash=_digest(secret),
                    user_name=name,
                    label=label[:200],
                    created=now,
                    expires=now + lifetime,
                )
            )
        return secret

    def tokens(self, name: str) -> list[ApiToken]:
        """``name``'s tokens, expired ones included (until revoked)."""
        self.user(name)
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(api_tokens_table)
                .where(api_tokens_table.c.user_name == name)
                .order_by(api_tokens_table.c.id)
            ).all()
        return [
            ApiToken(
                id=r.id,
                user_name=r.user_name,
                label=r.label,
                created=ensure_utc(r.created),
                expires=ensure_utc(r.expires),
            )
            for r in rows
        ]

    def revoke_token(self, token_id: int, *, user_name: str | None = None) -> None:
        """Delete token ``token_id`` (which must be ``user_name``'s when given)."""
        query = api_tokens_table.delete().where(api_tokens_table.c.id == token_id)
        if user_name is not None:
            query = query.where(api_tokens_table.c.user_name == user_name)
        with self._engine.begin() as connection:
            done = connection.execute(query)
        if done.rowcount == 0:
            owner = f" of user {user_name!r}" if user_name is not None else ""
            raise NotFoundError(
                f"no API token{owner} with id {token_id}; list them with `sitewatch users tokens NAME`"
            )

    def revoke_tokens(self, name: str) -> int:
        """Delete all of ``name``'s tokens; returns how many there were."""
        with self._engine.begin() as connection:
            _require_user(connection, name)
            done = connection.execute(api_tokens_table.delete().where(api_tokens_table.c.user_name == name))
        return int(done.rowcount)

    def user_for_token(self, secret: str) -> User:
        """The owner of API token ``secret``, else :class:`AuthenticationError`."""
        return self.token_holder(secret)[0]

    def token_holder(self, secret: str) -> tuple[User, datetime]:
        """The owner of API token ``secret`` and when the token expires; else :class:`AuthenticationError`."""
        query = (
            sa.select(users_table, api_tokens_table.c.expires)
            .join(api_tokens_table, api_tokens_table.c.user_name == users_table.c.name)
            .where(api_tokens_table.c.token_hash == _digest(secret))
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.disabled:
            raise AuthenticationError(
                "the API token is unknown or revoked; issue one with `sitewatch users token NAME`"
            )
        expires = ensure_utc(row.expires)
        if expires <= self._clock():
            raise AuthenticationError(
                f"the API token expired on {expires:%Y-%m-%d}; "
                f"issue a new one with `sitewatch users token {row.name}`"
            )
        return _user(row), expires

    # browser sessions ----------------------------------------------------------------------

    def start_session(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: (the cookie secret, the session with its CSRF token)."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + SESSION_LIFETIME
        with self._engine.begin() as connection:
            connection.execute(web_sessions_table.delete().where(web_sessions_table.c.expires < now))
            connection.execute(
                web_sessions_table.insert().values(
                    token_hash=_digest(secret),
                    user_name=user.name,
                    csrf_token=csrf,
                    created=now,
                    expires=expires,
                )
            )
        return secret, Session(user=user, csrf_token=csrf, expires=expires)

    def session(self, secret: str) -> Session:
        """The live session of cookie ``secret``, else :class:`AuthenticationError`."""
        query = (
            sa.select(users_table, web_sessions_table.c.csrf_token, web_sessions_table.c.expires)
            .join(web_sessions_table, web_sessions_table.c.user_name == users_table.c.name)
            .where(web_sessions_table.c.token_hash == _digest(secret))
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.disabled or ensure_utc(row.expires) <= self._clock():
            raise AuthenticationError("the session has expired or was ended; log in again")
        return Session(user=_user(row), csrf_token=row.csrf_token, expires=ensure_utc(row.expires))

    def end_session(self, secret: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                web_sessions_table.delete().where(web_sessions_table.c.token_hash == _digest(secret))
            )

    # visits of the dashboard's home page -----------------------------------------------------

    def record_visit(self, name: str) -> datetime | None:
        """Note that ``name`` looks at the morning queue now; returns their previous visit's time
        (None on the first), which is what "new since your last visit" is measured from."""
        now = self._clock()
        with self._engine.begin() as connection:
            row = _require_user(connection, name)
            connection.execute(users_table.update().where(users_table.c.name == name).values(last_visit=now))
        return ensure_utc(row.last_visit) if row.last_visit is not None else None

    def last_visit(self, name: str) -> datetime | None:
        """When ``name`` last looked at the morning queue (None if never); records nothing."""
        with self._engine.connect() as connection:
            row = _require_user(connection, name)
        return ensure_utc(row.last_visit) if row.last_visit is not None else None

    def end_sessions(self, name: str) -> int:
        """End every browser session of ``name``; returns how many there were."""
        with self._engine.begin() as connection:
            _require_user(connection, name)
            return _end_sessions(connection, name)


def _require_user(connection: sa.Connection, name: str) -> Any:
    row = connection.execute(sa.select(users_table).where(users_table.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no user {name!r}; list users with `sitewatch users list`")
    return row


def _cut_off(connection: sa.Connection, name: str) -> None:
    """End ``name``'s sessions and revoke their API tokens."""
    _end_sessions(connection, name)
    connection.execute(api_tokens_table.delete().where(api_tokens_table.c.user_name == name))


def _keep_an_admin(connection: sa.Connection, row: sa.Row[Any], action: str) -> None:
    """Refuse an action on the user of ``row`` that would leave the workspace without an enabled
    admin (nothing to check when they are not an enabled admin)."""
    name = row.name
    if row.role != Role.ADMIN.value or row.disabled:
        return
    others = connection.execute(
        sa.select(sa.func.count())
        .select_from(users_table)
        .where(
            users_table.c.role == Role.ADMIN.value,
            users_table.c.name != name,
            users_table.c.disabled.is_(False),
        )
    ).scalar_one()
    if others == 0:
        raise StoreError(
            f"cannot {action}: {name!r} is the only enabled admin; make another admin first "
            "(`sitewatch users role OTHER admin`)"
        )


def _end_sessions(connection: sa.Connection, name: str) -> int:
    done = connection.execute(web_sessions_table.delete().where(web_sessions_table.c.user_name == name))
    return int(done.rowcount)


def _account_key(name: str) -> str:
    return "account:" + name[:64]


def _address_key(client: str) -> str:
    return "address:" + client[:64]


def _forget_failures(connection: sa.Connection, name: str) -> None:
    connection.execute(login_failures_table.delete().where(login_failures_table.c.key == _account_key(name)))


def _take_back_failure(connection: sa.Connection, key: str) -> None:
    """A successful try from an address was counted as a failure up front: uncount it."""
    connection.execute(
        login_failures_table.update()
        .where(login_failures_table.c.key == key, login_failures_table.c.failures > 0)
        .values(failures=login_failures_table.c.failures - 1)
    )


def user_store(workspace: Workspace) -> UserStore:
    """The :class:`UserStore` over ``workspace``'s database, with the workspace's credential settings."""
    return UserStore(workspace_engine(workspace), CredentialPolicy.from_settings(workspace.settings))


def workspace_engine(workspace: Workspace) -> Engine:
    """The SQLAlchemy engine of ``workspace``'s database."""
    engine = getattr(workspace, "engine", None)
    if not isinstance(engine, Engine):
        raise StoreError(f"workspace {workspace.root} exposes no SQLAlchemy engine")
    return engine


def ensure_user(workspace: Workspace, name: str, password: str, role: Role | str) -> User:
    """Create ``name`` with ``password`` and ``role`` in ``workspace``, or reset them; idempotent.

    ``make demo`` calls this to create the demo analyst whose credentials it prints.
    """
    return user_store(workspace).ensure_user(name, password, role)
