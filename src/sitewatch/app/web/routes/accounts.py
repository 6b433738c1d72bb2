"""Log-in, log-out, who am I, and user administration (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from sitewatch.app.web import schemas
from sitewatch.app.web.auth import (
    SESSION_COOKIE,
    Caller,
    admin,
    client_address,
    is_https,
    reader,
    user_store,
)
from sitewatch.app.web.serialize import iso
from sitewatch.store.users import SESSION_LIFETIME, ApiToken, Role, Session, User

router = APIRouter(prefix="/api", tags=["accounts"])
ReaderDep = Annotated[Caller, Depends(reader)]
AdminDep = Annotated[Caller, Depends(admin)]


def set_session_cookie(request: Request, response: Response, secret: str, session: Session) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        path="/",
        secure=is_https(request),
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )


def _user(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role.value,
        "created": iso(user.created),
        "disabled": user.disabled,
    }


def _token(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "label": token.label,
        "created": iso(token.created),
        "expires": iso(token.expires),
        "expired": token.expires <= datetime.now(UTC),
    }


@router.post(
    "/auth/login",
    response_model=schemas.LoginOut,
    summary="Log in with a password; sets the session cookie and returns the CSRF token",
)
def login(body: schemas.LoginIn, request: Request, response: Response) -> dict[str, Any]:
    users = user_store(request)
    user = users.authenticate(body.name, body.password, client=client_address(request))
    secret, session = users.start_session(user)
    set_session_cookie(request, response, secret, session)
    return {"name": user.name, "role": user.role.value, "csrf_token": session.csrf_token}


@router.post("/auth/logout", status_code=204, summary="End the browser session")
def logout(request: Request, response: Response, _: ReaderDep) -> Response:
    if cookie := request.cookies.get(SESSION_COOKIE):
        user_store(request).end_session(cookie)
    answer = Response(status_code=204)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


@router.get("/auth/me", response_model=schemas.UserOut, summary="The caller")
def me(caller: ReaderDep) -> dict[str, Any]:
    return _user(caller.user)


@router.get("/users", response_model=list[schemas.UserOut], summary="All users (admin)")
def list_users(request: Request, _: AdminDep) -> list[dict[str, Any]]:
    return [_user(u) for u in user_store(request).users()]


@router.post("/users", response_model=schemas.UserOut, status_code=201, summary="Create a user (admin)")
def add_user(body: schemas.UserIn, request: Request, _: AdminDep) -> dict[str, Any]:
    return _user(user_store(request).add_user(body.name, body.password, Role.parse(body.role)))


@router.patch(
    "/users/{name}", response_model=schemas.UserOut, summary="Change a user's role or disable them (admin)"
)
def change_user(name: str, body: schemas.UserChange, request: Request, _: AdminDep) -> dict[str, Any]:
    users = user_store(request)
    user = users.user(name)
    if body.role is not None:
        user = users.set_role(name, Role.parse(body.role))
    if body.disabled is True:
        user = users.disable_user(name)
    elif body.disabled is False:
        user = users.enable_user(name)
    return _user(user)


@router.delete(
    "/users/{name}", status_code=204, summary="Delete a user with their tokens and sessions (admin)"
)
def delete_user(name: str, request: Request, _: AdminDep) -> Response:
    user_store(request).delete_user(name)
    return Response(status_code=204)


@router.get(
    "/users/{name}/tokens", response_model=list[schemas.TokenInfo], summary="A user's API tokens (admin)"
)
def list_tokens(name: str, request: Request, _: AdminDep) -> list[dict[str, Any]]:
    return [_token(t) for t in user_store(request).tokens(name)]


@router.post(
    "/users/{name}/tokens",
    response_model=schemas.TokenOut,
    status_code=201,
    summary="Issue an API token for a user (admin); the token is shown once",
)
def issue_token(name: str, body: schemas.TokenIn, request: Request, _: AdminDep) -> dict[str, Any]:
    users = user_store(request)
    lifetime = None if body.expires_days is None else timedelta(days=body.expires_days)
    secret = users.issue_token(name, body.label, lifetime=lifetime)
    _owner, expires = users.token_holder(secret)
    return {"name": name, "token": secret, "expires": iso(expires)}


@router.delete("/users/{name}/tokens/{token_id}", status_code=204, summary="Revoke an API token (admin)")
def revoke_token(name: str, token_id: int, request: Request, _: AdminDep) -> Response:
    user_store(request).revoke_token(token_id, user_name=name)
    return Response(status_code=204)
