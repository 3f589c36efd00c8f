"""Administration (admins only): accounts and API keys. Each action is a library call in `vigie.accounts`,
which writes the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from vigie import accounts
from vigie.web import views
from vigie.web.access import Admin, Id
from vigie.web.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    ApiKeysOut,
    CountOut,
    RoleIn,
    UserCreatedOut,
    UserIn,
    UserOut,
    UsersOut,
)

router = APIRouter()
NAV = [("Users", "/users", "admin"), ("API keys", "/api-keys", "admin")]


def _no_store(resp):
    resp.headers["Cache-Control"] = "no-store"  # a page with a secret on it is never cached
    return resp


# ---- users ----------------------------------------------------------------------------------------


@router.get("/users", include_in_schema=False)
def users_page(request: Request, me: Admin):
    return views.render(request, "users.html", me, data=views.user_list(request.app.state.store), roles=accounts.ROLES)


@router.post("/users", include_in_schema=False)
def users_create(request: Request, me: Admin, username: Annotated[str, Form(max_length=64)],
                 role: Annotated[str, Form(max_length=20)]):
    u, otp = accounts.create_user(request.app.state.store, username, role, actor=me.actor,
                                  now=request.app.state.clock())
    return _no_store(views.render(request, "user_created.html", me, created=views.user_out(u), password=otp))


@router.post("/users/{username}/role", include_in_schema=False)
def users_role(request: Request, me: Admin, username: str, role: Annotated[str, Form(max_length=20)]):
    accounts.set_role(request.app.state.store, username, role, actor=me.actor)
    return RedirectResponse("/users", 303)


@router.post("/users/{username}/deactivate", include_in_schema=False)
def users_deactivate(request: Request, me: Admin, username: str):
    accounts.deactivate(request.app.state.store, username, actor=me.actor)
    return RedirectResponse("/users", 303)


@router.post("/users/{username}/reactivate", include_in_schema=False)
def users_reactivate(request: Request, me: Admin, username: str):
    accounts.reactivate(request.app.state.store, username, actor=me.actor)
    return RedirectResponse("/users", 303)


@router.post("/users/{username}/logout-everywhere", include_in_schema=False)
def users_logout_everywhere(request: Request, me: Admin, username: str):
    accounts.logout_everywhere(request.app.state.store, username, actor=me.actor)
    return RedirectResponse("/users", 303)


@router.post("/users/{username}/reset-password", include_in_schema=False)
def users_reset_password(request: Request, me: Admin, username: str):
    """A new one-time password for someone who forgot theirs; their sessions end."""
    otp = accounts.generate_password()
    accounts.set_password(request.app.state.store, username, otp, actor=me.actor, now=request.app.state.clock())
    u = accounts.get_user(request.app.state.store, username)
    return _no_store(views.render(request, "user_created.html", me, created=views.user_out(u), password=otp,
                                  reset=True))


@router.get("/api/v1/users", response_model=UsersOut, tags=["users"])
def api_users(request: Request, me: Admin) -> UsersOut:
    return views.user_list(request.app.state.store)


@router.post("/api/v1/users", response_model=UserCreatedOut, status_code=201, tags=["users"])
def api_users_create(request: Request, body: UserIn, me: Admin) -> UserCreatedOut:
    """Create an account; without a password, the answer holds a one-time password (its only appearance)."""
    u, otp = accounts.create_user(request.app.state.store, body.username, body.role, body.password, actor=me.actor,
                                  now=request.app.state.clock())
    return UserCreatedOut(user=views.user_out(u), one_time_password=otp)


@router.post("/api/v1/users/{username}/role", response_model=UserOut, tags=["users"])
def api_users_role(request: Request, username: str, body: RoleIn, me: Admin) -> UserOut:
    return views.user_out(accounts.set_role(request.app.state.store, username, body.role, actor=me.actor))


@router.post("/api/v1/users/{username}/deactivate", response_model=UserOut, tags=["users"])
def api_users_deactivate(request: Request, username: str, me: Admin) -> UserOut:
    return views.user_out(accounts.deactivate(request.app.state.store, username, actor=me.actor))


@router.post("/api/v1/users/{username}/reactivate", response_model=UserOut, tags=["users"])
def api_users_reactivate(request: Request, username: str, me: Admin) -> UserOut:
    return views.user_out(accounts.reactivate(request.app.state.store, username, actor=me.actor))


@router.post("/api/v1/users/{username}/logout-everywhere", response_model=CountOut, tags=["users"])
def api_users_logout_everywhere(request: Request, username: str, me: Admin) -> CountOut:
    return CountOut(sessions_ended=accounts.logout_everywhere(request.app.state.store, username, actor=me.actor))


# ---- API keys -------------------------------------------------------------------------------------


@router.get("/api-keys", include_in_schema=False)
def keys_page(request: Request, me: Admin):
    return views.render(request, "api_keys.html", me, data=views.key_list(request.app.state.store))


@router.post("/api-keys", include_in_schema=False)
def keys_create(request: Request, me: Admin, name: Annotated[str, Form(max_length=200)],
                scopes: Annotated[str, Form(max_length=2000)] = "match",
                rate_limit_per_minute: Annotated[str, Form(max_length=10)] = ""):
    limit = int(rate_limit_per_minute) if rate_limit_per_minute.strip().isdigit() else None
    k, secret = accounts.create_api_key(request.app.state.store, name, scopes.replace(",", " ").split(), me.actor,
                                        rate_limit_per_minute=limit, now=request.app.state.clock())
    return _no_store(views.render(request, "api_key_created.html", me, key=views.key_out(k), secret=secret))


@router.post("/api-keys/{key_id}/revoke", include_in_schema=False)
def keys_revoke(request: Request, me: Admin, key_id: Id):
    accounts.revoke_api_key(request.app.state.store, key_id, actor=me.actor, now=request.app.state.clock())
    return RedirectResponse("/api-keys", 303)


@router.get("/api/v1/api-keys", response_model=ApiKeysOut, tags=["api keys"])
def api_keys(request: Request, me: Admin) -> ApiKeysOut:
    """Keys by prefix and name; the secrets are not kept and cannot be shown again."""
    return views.key_list(request.app.state.store)


@router.post("/api/v1/api-keys", response_model=ApiKeyCreatedOut, status_code=201, tags=["api keys"])
def api_keys_create(request: Request, body: ApiKeyIn, me: Admin) -> ApiKeyCreatedOut:
    k, secret = accounts.create_api_key(request.app.state.store, body.name, body.scopes, me.actor,
                                        rate_limit_per_minute=body.rate_limit_per_minute,
                                        now=request.app.state.clock())
    return ApiKeyCreatedOut(api_key=views.key_out(k), secret=secret)


@router.post("/api/v1/api-keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["api keys"])
def api_keys_revoke(request: Request, key_id: Id, me: Admin) -> ApiKeyOut:
    return views.key_out(accounts.revoke_api_key(request.app.state.store, key_id, actor=me.actor,
                                                 now=request.app.state.clock()))
