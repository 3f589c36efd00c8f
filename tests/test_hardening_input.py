"""Bounded input and answers that always carry their headers: ids past their type's range give 422 (never
500) on every route and both stores; the security headers are on every answer, 404, 405, 413, 422 and 500."""

from __future__ import annotations

import inspect

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from vigie.web import create_app
from vigie.web.access import Public

from test_web_kit import fast_hashing, make_kit, session_client, users

HUGE = str(2**70)
router = APIRouter()


@router.get("/api/v1/test-crash")
def _crash(me: Public):
    raise RuntimeError("boom")


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def _routes(app):
    from fastapi.routing import APIRoute

    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        def iter_route_contexts(routes):
            return routes
    return [rc for rc in iter_route_contexts(app.routes) if isinstance(getattr(rc, "original_route", rc), APIRoute)
            and getattr(rc, "dependant", None) is not None]


def int_params(route) -> list[str]:
    dep = getattr(route, "dependant", None)
    out = []
    ids = [q for q in dep.query_params if q.name in ("before", "after", "id") or q.name.endswith("_id")] if dep else []
    for p in (dep.path_params + ids) if dep else []:
        ann = getattr(p.field_info, "annotation", None)
        if ann is int or (inspect.isclass(ann) and issubclass(ann, int)) or "int" in repr(ann).split("|")[0]:
            out.append(p.name)
    return out


def test_ids_past_64_bits_are_422_on_every_route(kit):
    app, clock, store = kit
    admin, csrf = session_client(app, store, "admin", clock)
    tried = []
    for route in _routes(app):
        names = int_params(route)
        if not names:
            continue
        dep = route.dependant
        path = route.path
        query = {}
        for n in names:
            if "{" + n + "}" in path:
                path = path.replace("{" + n + "}", HUGE)
            elif any(q.name == n for q in dep.query_params):
                query[n] = HUGE
        for p in dep.path_params:  # the other path parameters: a plausible value
            path = path.replace("{" + p.name + "}", "x")
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            r = admin.request(method, path, params=query, headers={"X-CSRF-Token": csrf}, follow_redirects=False)
            tried.append((method, route.path, r.status_code))
            assert r.status_code != 500, (method, route.path, r.text[:300])
            assert r.status_code == 422, (method, route.path, r.status_code, r.text[:300])
            assert r.headers.get("x-frame-options") == "DENY"
    assert len(tried) >= 8, tried


@pytest.mark.parametrize("method,path,status", [("GET", "/api/v1/nowhere", 404), ("GET", "/nowhere", 404),
                                                 ("DELETE", "/api/v1/me", 405), ("GET", "/api/v1/test-crash", 500),
                                                 ("POST", "/api/v1/login", 422), ("GET", "/login", 200)])
def test_security_headers_on_every_answer(store, monkeypatch, method, path, status):
    fast_hashing(monkeypatch)
    users(store)
    app = create_app(store, store.settings, routers=["test_hardening_input"])
    r = TestClient(app, raise_server_exceptions=False).request(method, path)
    assert r.status_code == status
    h = r.headers
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in h["content-security-policy"] and h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-store"
    if status == 500:
        assert r.json() == {"error": {"code": "internal_error", "message": "an internal error: it was logged"}}
