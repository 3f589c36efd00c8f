"""Every route of the app, asked by nobody, each role and an API client: the outcome its declaration promises.

A route without a declared `Access` fails here, so no page or endpoint can be added
without saying who may call it.
"""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from vigie import accounts
from vigie.web import create_app
from vigie.web.access import ANY_KEY, Analyst, walk_routes

from test_web_kit import fast_hashing, make_app, session_client, users

#: Routes that are not API routes and are public by design: the OpenAPI schema and the static files.
PUBLIC_NON_API = {"/openapi.json", "/static"}
WHO = ("nobody", "analyst", "supervisor", "admin", "client")


def undeclared(app) -> list[str]:
    bad = []
    for r in walk_routes(app):
        if r.is_api_route:
            if r.access is None:
                bad.append(f"{sorted(r.methods)} {r.path}")
        elif r.path not in PUBLIC_NON_API:
            bad.append(r.path)
    return bad


def fill(path: str, params: dict) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(params[m.group(1)]), path)


@pytest.fixture(params=["sqlite"])
def walked(request, tmp_path):
    from vigie.settings import Settings
    from vigie.store import Store

    store = Store.open(Settings(data_dir=tmp_path / "data", workers=1))
    yield store
    store.close()


def test_every_route_declares_who_may_call_it(walked):
    app, _ = make_app(walked)
    assert undeclared(app) == []


def test_a_new_route_without_a_declaration_is_caught(walked):
    extra = APIRouter()

    @extra.get("/sneaky")
    def sneaky():
        return {}

    @extra.get("/declared")
    def declared(me: Analyst):
        return {}

    import sys
    import types

    mod = types.ModuleType("vigie_test_extra_router")
    mod.router = extra
    sys.modules[mod.__name__] = mod
    try:
        app = create_app(walked, routers=[mod.__name__])
    finally:
        del sys.modules[mod.__name__]
    assert undeclared(app) == ["['GET'] /sneaky"]


def test_role_walk(walked, monkeypatch):
    fast_hashing(monkeypatch)
    store = walked
    app, clock = make_app(store)
    users(store)
    accounts.create_user(store, "victim", "analyst", "victim password 1")
    victim_key, _ = accounts.create_api_key(store, "victim", ["match"], "admin")
    _k, secret = accounts.create_api_key(store, "client", ["match"], "admin", rate_limit_per_minute=10_000)
    params = {"username": "victim", "key_id": victim_key.id, "cluster_id": 999999, "item_id": 999999,
              "reference": "VR-NOPE"}
    rank = {r: i for i, r in enumerate(accounts.ROLES)}
    checked = 0
    for route in walk_routes(app):
        if not route.is_api_route:
            continue
        acc = route.access
        assert acc is not None, f"{route.path} declares no Access"
        is_api = route.path.startswith("/api/")
        for method in sorted(route.methods - {"HEAD"}):
            path = fill(route.path, params)
            unsafe = method not in ("GET", "OPTIONS")
            for who in WHO:
                headers = {}
                if who == "nobody":
                    c = TestClient(app)
                elif who == "client":
                    c = TestClient(app)
                    headers["Authorization"] = f"Bearer {secret}"
                else:
                    c, csrf = session_client(app, store, who, clock)
                    if unsafe:
                        headers["X-CSRF-Token"] = csrf
                kw = {"json": {}} if is_api and unsafe else {}
                r = c.request(method, path, headers=headers, follow_redirects=False, **kw)
                where = f"{method} {route.path} as {who}: {r.status_code} {r.text[:200]}"
                to_login = r.status_code == 303 and r.headers.get("location", "").startswith("/login?next=")
                if acc.public:
                    assert r.status_code not in (401, 403) and not to_login, where
                elif who == "nobody":
                    if is_api:
                        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated", where
                    else:
                        assert to_login, where
                elif who == "client":
                    allowed = acc.scope is not None and (acc.scope == ANY_KEY or acc.scope == "match")
                    if allowed:
                        assert r.status_code not in (401, 403), where
                    else:
                        assert r.status_code == 403, where
                elif rank[who] < rank[acc.role]:
                    assert r.status_code == 403, where
                    if is_api:
                        assert r.json()["error"]["code"] == "forbidden", where
                else:
                    assert r.status_code not in (401, 403) and not to_login, where
                    assert r.status_code < 500, where
                checked += 1
    assert checked >= 5 * 30
