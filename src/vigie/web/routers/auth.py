"""Logging in and out, one's own account, and `/api/v1/me`."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from vigie import accounts
from vigie.accounts import AuthError, CsrfError
from vigie.errors import VigieError
from vigie.web.access import COOKIE, LOGIN_CSRF_COOKIE, OneTime, OneTimeOrClient, Principal, Public
from vigie.web.schemas import LoginIn, MeOut, PasswordIn
from vigie.web.views import render

router = APIRouter()
NAV: list = []  # "My account" is the user name in the header


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or bool(getattr(request.app.state.settings, "cookie_secure", False))


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure on https."""
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/")


def safe_next(target: str | None) -> str:
    """Only a path on this site: no open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def me_out(me: Principal) -> MeOut:
    if me.api_key is not None:
        return MeOut(kind="api_key", name=me.api_key.name, scopes=list(me.api_key.scopes or []))
    return MeOut(kind="user", name=me.user.username, role=me.user.role,
                 must_change_password=me.user.must_change_password, csrf_token=me.csrf_token)


def _login_page(request: Request, *, error: str | None = None, status_code: int = 200, next_: str = "/"):
    token = secrets.token_urlsafe(32)  # double-submit token against login CSRF
    resp = render(request, "login.html", None, status_code=status_code, error=error, login_csrf=token,
                  next=safe_next(next_))
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                    path="/login")
    resp.headers["Cache-Control"] = "no-store"
    return resp


LOGIN_WINDOW_S = 15 * 60


def _start_session(request: Request, username: str, password: str):
    """Authenticate, after counting the attempt against the caller's address (all accounts together, shared by
    every server process): a guesser trying many names from one place is stopped (429) without locking them."""
    from vigie.ratelimit import address_tag

    st = request.app.state
    now = st.clock()
    address = request.client.host if request.client else "-"
    limit = int(getattr(st.settings, "login_attempts_per_address", 30))
    st.rate_limiter.hit(address_tag(st.settings, "login", address, now=now.timestamp()), limit, LOGIN_WINDOW_S,
                        now=now.timestamp(), message="too many login attempts from your address: try again later")
    user = accounts.authenticate(st.store, username, password, now=now)
    token, _ws = accounts.new_session(st.store, user, now=now)
    return user, token


@router.get("/login", include_in_schema=False)
def login_page(request: Request, me: Public, next: str = "/"):  # noqa: A002
    if me.user is not None:
        return RedirectResponse(safe_next(next), 303)
    return _login_page(request, next_=next)


@router.post("/login", include_in_schema=False)
def login_submit(request: Request, me: Public, username: Annotated[str, Form(max_length=200)],
                 password: Annotated[str, Form(max_length=1000)], csrf_token: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/"):  # noqa: A002
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        raise CsrfError("the login form expired: reload the page and try again")
    try:
        user, token = _start_session(request, username, password)
    except AuthError as exc:
        return _login_page(request, error=exc.message, status_code=exc.http_status, next_=next)
    resp = RedirectResponse("/account" if user.must_change_password else safe_next(next), 303)
    set_session_cookie(request, resp, token)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return resp


@router.get("/logout", include_in_schema=False)
def logout_page(request: Request, me: OneTime):
    return render(request, "logout.html", me)


@router.post("/logout", include_in_schema=False)
def logout_submit(request: Request, me: OneTime):
    accounts.end_session(request.app.state.store, me.token)
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/account", include_in_schema=False)
def account_page(request: Request, me: OneTime, changed: int = 0):
    return render(request, "account.html", me, data=me_out(me), changed=bool(changed))


@router.post("/account/password", include_in_schema=False)
def account_password(request: Request, me: OneTime, current: Annotated[str, Form(max_length=1000)],
                     new: Annotated[str, Form(max_length=1000)], confirm: Annotated[str, Form(max_length=1000)]):
    try:
        if new != confirm:
            raise accounts.WeakPassword("the two new passwords differ")
        accounts.set_password(request.app.state.store, me.user.username, new, actor=me.actor, current=current,
                              keep_session=me.token)
    except VigieError as exc:
        return render(request, "account.html", me, status_code=exc.http_status, data=me_out(me), error=exc.message)
    return RedirectResponse("/account?changed=1", 303)


@router.get("/healthz", include_in_schema=False)
def healthz(me: Public) -> dict:
    return {"ok": True}


# ---- JSON twins -----------------------------------------------------------------------------------


@router.post("/api/v1/login", response_model=MeOut, tags=["session"])
def api_login(request: Request, body: LoginIn, me: Public, response: Response) -> MeOut:
    """Open a cookie session (for scripts and single-page clients); answers with the CSRF token to send."""
    user, token = _start_session(request, body.username, body.password)
    set_session_cookie(request, response, token)
    found = accounts.session_user(request.app.state.store, token, request.app.state.clock())
    return me_out(Principal(found[0], found[1], token))


@router.post("/api/v1/logout", status_code=204, tags=["session"])
def api_logout(request: Request, me: OneTime) -> Response:
    accounts.end_session(request.app.state.store, me.token)
    resp = Response(status_code=204)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/api/v1/me", response_model=MeOut, tags=["session"])
def api_me(me: OneTimeOrClient) -> MeOut:
    """Who is calling: a person (with the CSRF token of the session) or an API key (with its scopes)."""
    return me_out(me)


@router.post("/api/v1/me/password", status_code=204, tags=["session"])
def api_password(request: Request, body: PasswordIn, me: OneTime) -> Response:
    """Change one's own password; one's other sessions end."""
    accounts.set_password(request.app.state.store, me.user.username, body.new, actor=me.actor, current=body.current,
                          keep_session=me.token)
    return Response(status_code=204)
