"""One error shape for the whole API: `{"error": {"code", "message"}}`, whatever went wrong."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from vigie import accounts

from test_web_kit import make_kit, session_client


def assert_shape(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def test_error_shape_across_endpoints(kit):
    app, clock, store = kit
    anon = TestClient(app)
    assert_shape(anon.get("/api/v1/me"), 401, "unauthenticated")
    assert_shape(anon.get("/api/v1/me", headers={"Authorization": "Bearer nope"}), 401, "bad_api_key")
    assert_shape(anon.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "bad_api_key")
    assert_shape(anon.get("/api/v1/nowhere"), 404, "not_found")
    assert_shape(anon.post("/api/v1/login", json={"username": "analyst", "password": "nope"}), 401,
                 "bad_credentials")
    assert_shape(anon.post("/api/v1/login", content=b"{not json", headers={"content-type": "application/json"}),
                 422, "invalid_input")
    an, csrf = session_client(app, store, "analyst", clock)
    assert_shape(an.get("/api/v1/users"), 403, "forbidden")
    assert_shape(an.get("/api/v1/audit"), 403, "forbidden")
    assert_shape(an.post("/api/v1/match", json={"hashes": []}, headers={"X-CSRF-Token": csrf}), 422, "invalid_input")
    assert_shape(an.post("/api/v1/match", json={"hashes": []}), 403, "csrf")
    assert_shape(an.delete("/api/v1/me"), 405, "method_not_allowed")
    assert_shape(an.get("/api/v1/audit?limit=0"), 403, "forbidden")
    ad, acsrf = session_client(app, store, "admin", clock)
    h = {"X-CSRF-Token": acsrf}
    assert_shape(ad.get("/api/v1/audit?limit=0"), 422, "invalid_input")
    assert_shape(ad.post("/api/v1/users", json={"username": "analyst"}, headers=h), 409, "user_exists")
    assert_shape(ad.post("/api/v1/users", json={"username": "zed", "password": "short"}, headers=h), 422,
                 "weak_password")
    assert_shape(ad.post("/api/v1/users/ghost/role", json={"role": "admin"}, headers=h), 404, "user_not_found")
    assert_shape(ad.post("/api/v1/users/admin/deactivate", headers=h), 409, "last_admin")
    assert_shape(ad.post("/api/v1/api-keys/999/revoke", headers=h), 404, "api_key_not_found")
    assert_shape(ad.post("/api/v1/api-keys", json={"name": "x", "scopes": ["everything"]}, headers=h), 422,
                 "bad_scope")
    _k, limited = accounts.create_api_key(store, "one", ["match"], "admin", rate_limit_per_minute=1)
    anon.get("/api/v1/me", headers={"Authorization": f"Bearer {limited}"})
    assert_shape(anon.get("/api/v1/me", headers={"Authorization": f"Bearer {limited}"}), 429, "rate_limited")


def test_pages_show_errors_as_pages(kit):
    app, clock, store = kit
    an, _ = session_client(app, store, "analyst", clock)
    r = an.get("/users")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html") and "Not allowed" in r.text
    r = an.get("/no-such-page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def test_openapi_documents_the_error_shape(kit):
    app, _clock, _store = kit
    spec = TestClient(app).get("/openapi.json").json()
    assert "ErrorOut" in spec["components"]["schemas"]
    match = spec["paths"]["/api/v1/match"]["post"]
    assert "403" in match["responses"] and "MatchOut" in str(match["responses"]["200"])


def test_security_headers(kit):
    app, _clock, _store = kit
    r = TestClient(app).get("/login")
    assert r.headers["x-frame-options"] == "DENY" and "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
