"""Who may call a route: every route declares it with one `Access` dependency, and nothing else decides.

`Access(role, scope=...)` is both the check and the declaration: the dependency object
stays on the route (`route.dependant`), so `route_access(route)` tells what a route
demands and a test walks every route of the app against it. A route without a declared
`Access` is a bug the role-walk test catches.

* ``role``: the lowest role of a person (cookie session) that may call it; ``None``: public.
* ``scope``: the API key scope a machine client (``Authorization: Bearer``) needs; ``None``:
  no API client may call it; ``"*"``: any valid key.

A person is recognised by the session cookie, a client by its key. An unsafe request
(POST, ...) from a session must carry the session's CSRF token: the ``X-CSRF-Token``
header, or for a page form the ``csrf_token`` field. A key carries no ambient authority
(a browser never sends it by itself), so key requests need no CSRF token.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from vigie import accounts
from vigie.accounts import AuthError, CsrfError, Forbidden, PasswordChangeRequired
from vigie.store.account_models import ApiKey, User, WebSession

COOKIE = "vigie_session"
LOGIN_CSRF_COOKIE = "vigie_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANY_KEY = "*"


class NotLoggedIn(AuthError):
    """No valid session: a page answers with a redirect to /login, the API with 401."""

    code = "unauthenticated"


@dataclass
class Principal:
    """Who is calling: a person (user and session) or a machine client (API key), or nobody on a public route."""

    user: User | None = None
    session: WebSession | None = None
    token: str | None = None
    api_key: ApiKey | None = None
    extra: dict = field(default_factory=dict)

    @property
    def actor(self) -> str:
        if self.user is not None:
            return self.user.username
        if self.api_key is not None:
            return f"api_key:{self.api_key.prefix}"
        return "-"

    @property
    def role(self) -> str | None:
        return self.user.role if self.user is not None else None

    @property
    def csrf_token(self) -> str | None:
        return self.session.csrf_token if self.session is not None else None

    def at_least(self, role: str) -> bool:
        return self.user is not None and accounts.role_at_least(self.user.role, role)


class Access:
    """The dependency that authenticates, checks the role or scope, CSRF and the rate limit; see the module.

    A person holding a one-time password gets 403 `password_change_required` everywhere but on the routes
    declared `one_time_ok` (My account, its password change, /api/v1/me, logout).

    Idle logout counts a person's actions: every request of theirs restarts the session's idle timer
    (`session_idle_minutes`) except on the routes declared `passive`, which the page calls by itself
    (the review heartbeat, the exposure poll): a review page left open does not keep its session alive."""

    def __init__(self, role: str | None, *, scope: str | None = None, one_time_ok: bool = False,
                 passive: bool = False):
        if role is not None:
            accounts.check_role(role)
        self.role = role
        self.scope = scope
        #: Open to a person holding a one-time password (to change it, see who they are, log out).
        self.one_time_ok = one_time_ok
        #: Called by the page on its own (timers): answers, but does not restart the idle timer.
        self.passive = passive

    @property
    def public(self) -> bool:
        return self.role is None

    def __repr__(self) -> str:
        return f"Access(role={self.role!r}, scope={self.scope!r})"

    async def __call__(self, request: Request) -> Principal:
        state = request.app.state
        store, now = state.store, state.clock()
        token = request.cookies.get(COOKIE)
        if self.public:
            found = await run_in_threadpool(accounts.session_user, store, token, now) if token else None
            return Principal(*found, token) if found else Principal()
        auth = request.headers.get("authorization")
        if auth:
            return await self._client(request, auth, now)
        found = await run_in_threadpool(accounts.session_user, store, token, now, touch=not self.passive)
        if found is None:
            raise NotLoggedIn("log in first")
        user, ws = found
        if user.must_change_password and not self.one_time_ok:
            raise PasswordChangeRequired("you logged in with a one-time password: choose your own on My account "
                                         "(/account) first")
        if not accounts.role_at_least(user.role, self.role):
            raise Forbidden(f"this needs the role {self.role} or higher")
        if request.method not in SAFE_METHODS:
            await check_csrf(request, ws.csrf_token)
        return Principal(user, ws, token)

    async def _client(self, request: Request, auth: str, now) -> Principal:
        state = request.app.state
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise accounts.BadApiKey("send the API key as Authorization: Bearer <key>")
        needed = None if self.scope in (None, ANY_KEY) else self.scope
        key = await run_in_threadpool(accounts.check_api_key, state.store, secret, needed, now=now)
        if self.scope is None:
            raise Forbidden("this endpoint is for people; API keys cannot call it")
        limit = key.rate_limit_per_minute or int(getattr(state.settings, "api_rate_limit_per_minute", 600))
        ts = now.timestamp() if hasattr(now, "timestamp") else time.time()
        await run_in_threadpool(state.rate_limiter.hit, f"api:{key.id}", limit, 60, now=ts,
                                message=f"more than {limit} requests a minute with this API key")
        return Principal(api_key=key)


async def check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get("x-csrf-token")
    if sent is None and not request.url.path.startswith("/api/"):
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfError("missing or wrong CSRF token: reload the page and try again")


def route_access(route) -> Access | None:
    """The Access a route declared (searched through its dependencies, router-level ones included), or None."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    stack = list(dependant.dependencies)
    while stack:
        d = stack.pop()
        if isinstance(d.call, Access):
            return d.call
        stack.extend(d.dependencies)
    return None


@dataclass
class RouteInfo:
    path: str
    methods: frozenset[str]
    access: Access | None
    is_api_route: bool


def walk_routes(app) -> list[RouteInfo]:
    """Every route of the app as served (included routers flattened), with its declared Access.

    Mounts (static files) and Starlette routes (the OpenAPI schema) come with `is_api_route` False."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before routers were included lazily: app.routes is already flat
        def iter_route_contexts(routes):
            return routes
    out = []
    for rc in iter_route_contexts(app.routes):
        original = getattr(rc, "original_route", rc)
        access = route_access(rc) or route_access(original)
        out.append(RouteInfo(rc.path, frozenset(getattr(rc, "methods", None) or ()), access,
                             isinstance(original, APIRoute)))
    return out


# Annotated aliases: a route names who may call it in its signature.
Public = Annotated[Principal, Depends(Access(None))]
Analyst = Annotated[Principal, Depends(Access("analyst"))]
Supervisor = Annotated[Principal, Depends(Access("supervisor"))]
Admin = Annotated[Principal, Depends(Access("admin"))]
#: People (analyst+) and API clients with the scope `match`.
MatchClient = Annotated[Principal, Depends(Access("analyst", scope="match"))]
#: People (analyst+) and any API client.
AnyClient = Annotated[Principal, Depends(Access("analyst", scope=ANY_KEY))]
#: The few routes open to a person who logged in with a one-time password: change it, who am I, log out.
OneTime = Annotated[Principal, Depends(Access("analyst", one_time_ok=True))]
OneTimeOrClient = Annotated[Principal, Depends(Access("analyst", scope=ANY_KEY, one_time_ok=True))]
#: An analyst's page calling on its own (heartbeat, polls): no action of theirs, so the idle timer runs on.
Passive = Annotated[Principal, Depends(Access("analyst", passive=True))]

#: A row id in a path: 1 to 2**63-1 (a 64-bit column), else 422 before the store is asked.
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
