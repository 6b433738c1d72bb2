"""Log-in, log-out, who am I, and user administration (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from sitewatch.app.web import schemas
from sitewatch.app.web.auth import SESSION_COOKIE, Caller, admin, reader, user_store
from sitewatch.app.web.serialize import iso
from sitewatch.store.users import SESSION_LIFETIME, Role, Session, User

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
        secure=request.url.scheme == "https",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )


def _user(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "created": iso(user.created)}


@router.post(
    "/auth/login",
    response_model=schemas.LoginOut,
    summary="Log in with a password; sets the session cookie and returns the CSRF token",
)
def login(body: schemas.LoginIn, request: Request, response: Response) -> dict[str, Any]:
    users = user_store(request)
    user = users.authenticate(body.name, body.password)
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


@router.post(
    "/users/{name}/tokens",
    response_model=schemas.TokenOut,
    status_code=201,
    summary="Issue an API token for a user (admin); the token is shown once",
)
def issue_token(name: str, body: schemas.TokenIn, request: Request, _: AdminDep) -> dict[str, Any]:
    return {"name": name, "token": user_store(request).issue_token(name, body.label)}
