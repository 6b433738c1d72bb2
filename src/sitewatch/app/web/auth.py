"""Who is calling, and may they: bearer API tokens, session cookies, roles and CSRF.

API clients send ``Authorization: Bearer <token>``; browsers carry a session cookie
set at log-in. A cookie is sent by the browser on its own, so every write made with
one must also carry the session's CSRF token (``X-CSRF-Token`` header or a
``csrf_token`` form field); a bearer token is never sent implicitly, so it needs none.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from sitewatch.app.web.errors import CsrfError
from sitewatch.store.users import AuthenticationError, Role, User, UserStore

SESSION_COOKIE = "sitewatch_session"
LOGIN_CSRF_COOKIE = "sitewatch_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the user, and the CSRF token when they came with a session cookie."""

    user: User
    csrf_token: str | None
    """None for bearer-token callers, who are not exposed to cross-site request forgery."""
    expires: datetime | None = None
    """When the session or token expires (a remembered caller is dropped then)."""


def user_store(request: Request) -> UserStore:
    store: UserStore = request.app.state.users
    return store


def client_address(request: Request) -> str | None:
    """The caller's address: the socket's peer, or what a trusted proxy says (see ``create_app``)."""
    return request.client.host if request.client is not None else None


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS, directly or through a trusted proxy that says so.

    Cookies are then marked ``Secure`` so the browser never sends them over plain HTTP.
    """
    return request.url.scheme == "https"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if header:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return None


class IdentityCache:
    """Who a token or session cookie belongs to, remembered until the store next changes.

    Revoking a token, ending a session or changing a role is a commit, which changes the
    store's revision and so empties this cache: nothing stale is ever honoured, and a
    steady stream of API calls costs no database look-up per request.
    """

    def __init__(self, revision: Callable[[], int | None], *, max_entries: int = 4096) -> None:
        self._revision = revision
        self._max = max_entries
        self._lock = threading.Lock()
        self._revision_seen: int | None = None
        self._callers: dict[tuple[str, str], Caller] = {}

    def lookup(self, kind: str, secret: str, load: Callable[[], Caller]) -> Caller:
        key = (kind, hashlib.sha256(secret.encode()).hexdigest())
        revision = self._revision()
        if revision is None:
            return load()
        with self._lock:
            if revision != self._revision_seen:
                self._callers.clear()
                self._revision_seen = revision
            elif key in self._callers:
                known = self._callers[key]
                if known.expires is None or known.expires > datetime.now(UTC):
                    return known
                del self._callers[key]
        caller = load()
        with self._lock:
            if revision == self._revision_seen and len(self._callers) < self._max:
                self._callers[key] = caller
        return caller


def identify(request: Request) -> Caller | None:
    """The caller of ``request``, None when it carries no credentials; bad credentials raise."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    identities: IdentityCache = request.app.state.identities
    token = _bearer(request)
    caller: Caller | None = None
    if token is not None:

        def load_token() -> Caller:
            user, expires = user_store(request).token_holder(token)
            return Caller(user=user, csrf_token=None, expires=expires)

        caller = identities.lookup("token", token, load_token)
    elif cookie := request.cookies.get(SESSION_COOKIE):

        def load() -> Caller:
            session = user_store(request).session(cookie)
            return Caller(user=session.user, csrf_token=session.csrf_token, expires=session.expires)

        caller = identities.lookup("session", cookie, load)
    request.state.caller = caller
    return caller


async def _check_csrf(request: Request, caller: Caller) -> None:
    if caller.csrf_token is None or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent, caller.csrf_token):
        raise CsrfError(
            f"{request.method} {request.url.path} with a session cookie needs the session's CSRF token in "
            f"the {CSRF_HEADER} header or a {CSRF_FIELD} form field; reload the page and try again"
        )


def requires(role: Role, action: str) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency: the caller, if logged in with at least ``role`` (and CSRF-clean for writes)."""

    async def dependency(request: Request) -> Caller:
        caller = identify(request)
        if caller is None:
            raise AuthenticationError(
                f"{action} needs you to log in: send 'Authorization: Bearer <token>' "
                "(`sitewatch users token NAME`) or log in at /login"
            )
        caller.user.require(role, action)
        await _check_csrf(request, caller)
        return caller

    dependency.__name__ = f"requires_{role.value}"
    return dependency


reader = requires(Role.VIEWER, "reading")
analyst = requires(Role.ANALYST, "triage and assessment")
admin = requires(Role.ADMIN, "managing users")
