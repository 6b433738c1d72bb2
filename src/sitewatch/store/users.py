"""Users, roles, API tokens and browser sessions of a workspace.

Passwords are kept only as scrypt hashes (a memory-hard password KDF from the
standard library); API tokens and session ids are random 256-bit secrets kept
only as SHA-256 digests, so a copied database does not give anyone a way in.
Roles are ordered: ``admin`` may do anything, ``analyst`` may triage alerts and
write assessments, ``viewer`` may only read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sitewatch.core.errors import NotFoundError, SitewatchError, StoreError, ValidationError
from sitewatch.core.timeutil import ensure_utc
from sitewatch.store import schema

if TYPE_CHECKING:
    from sitewatch.store.workspace import Workspace


class AuthenticationError(SitewatchError, PermissionError):
    """Credentials are missing, wrong, expired or revoked."""


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


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser session, with the CSRF token its forms must echo."""

    user: User
    csrf_token: str
    expires: datetime


# --- schema (created by migration 0100_users; see migrations/versions) ------------------------
# Registered on the store's own MetaData so the migration environment and schema checks see them.

users_table = sa.Table(
    "users",
    schema.metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created", schema.UTCDateTime, nullable=False),
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

# --- password KDF -----------------------------------------------------------------------------

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "swt_"
SESSION_LIFETIME = timedelta(hours=12)


def hash_password(password: str) -> str:
    """Encode ``password`` as ``scrypt$N$r$p$salt$digest`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "$".join(("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)))


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; compares in constant time."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(_unb64(expected)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


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
    return User(name=row.name, role=Role(row.role), created=ensure_utc(row.created))


class UserStore:
    """Users, tokens and sessions in a workspace database (the tables of migration 0100_users)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, role: Role | str) -> User:
        """Create a user; a user of that name already existing is a :class:`StoreError`."""
        _check_name(name)
        _check_password(password)
        parsed = role if isinstance(role, Role) else Role.parse(role)
        created = _now()
        with self._engine.begin() as connection:
            if connection.execute(sa.select(users_table.c.name).where(users_table.c.name == name)).first():
                raise StoreError(
                    f"user {name!r} already exists; pick another name or use `sitewatch users passwd`"
                )
            connection.execute(
                users_table.insert().values(
                    name=name, password_hash=hash_password(password), role=parsed.value, created=created
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
                        name=name, password_hash=hash_password(password), role=parsed.value, created=_now()
                    )
                )
            elif row.role != parsed.value or not verify_password(password, row.password_hash):
                connection.execute(
                    users_table.update()
                    .where(users_table.c.name == name)
                    .values(password_hash=hash_password(password), role=parsed.value)
                )
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
        _check_password(password)
        with self._engine.begin() as connection:
            done = connection.execute(
                users_table.update()
                .where(users_table.c.name == name)
                .values(password_hash=hash_password(password))
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no user {name!r}; create it with `sitewatch users add {name}`")

    def authenticate(self, name: str, password: str) -> User:
        """The user when ``password`` is right, else :class:`AuthenticationError` (same text either way)."""
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(users_table).where(users_table.c.name == name)).first()
        # Hash even for unknown names so timing does not reveal which names exist.
        encoded = row.password_hash if row is not None else _DUMMY_HASH
        if not verify_password(password, encoded) or row is None:
            raise AuthenticationError("wrong user name or password")
        return _user(row)

    # API tokens ----------------------------------------------------------------------------

    def issue_token(self, name: str, label: str = "") -> str:
        """A new API token for ``name``; the secret is returned once and stored only hashed."""
        self.user(name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._engine.begin() as connection:
            connection.execute(
                api_tokens_table.insert().values(
                    token_hash=_digest(secret), user_name=name, label=label[:200], created=_now()
                )
            )
        return secret

    def tokens(self, name: str) -> list[ApiToken]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(api_tokens_table)
                .where(api_tokens_table.c.user_name == name)
                .order_by(api_tokens_table.c.id)
            ).all()
        return [
            ApiToken(id=r.id, user_name=r.user_name, label=r.label, created=ensure_utc(r.created))
            for r in rows
        ]

    def revoke_token(self, token_id: int) -> None:
        with self._engine.begin() as connection:
            done = connection.execute(api_tokens_table.delete().where(api_tokens_table.c.id == token_id))
        if done.rowcount == 0:
            raise NotFoundError(f"no API token with id {token_id}; list them with `sitewatch users tokens`")

    def user_for_token(self, secret: str) -> User:
        """The owner of API token ``secret``, else :class:`AuthenticationError`."""
        query = (
            sa.select(users_table)
            .join(api_tokens_table, api_tokens_table.c.user_name == users_table.c.name)
            .where(api_tokens_table.c.token_hash == _digest(secret))
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            raise AuthenticationError(
                "the API token is unknown or revoked; issue one with `sitewatch users token NAME`"
            )
        return _user(row)

    # browser sessions ----------------------------------------------------------------------

    def start_session(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: (the cookie secret, the session with its CSRF token)."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = _now()
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
        if row is None or ensure_utc(row.expires) <= _now():
            raise AuthenticationError("the session has expired or was ended; log in again")
        return Session(user=_user(row), csrf_token=row.csrf_token, expires=ensure_utc(row.expires))

    def end_session(self, secret: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                web_sessions_table.delete().where(web_sessions_table.c.token_hash == _digest(secret))
            )


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def user_store(workspace: Workspace) -> UserStore:
    """The :class:`UserStore` over ``workspace``'s database."""
    return UserStore(workspace_engine(workspace))


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
