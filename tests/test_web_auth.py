"""Logging in and out through the app, cookie flags, CSRF, API keys: on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from vigie import accounts, audit
from vigie.banks import service as banks
from vigie.store.audit_models import AuditRecord
from vigie.web.access import COOKIE

from test_web_kit import PASSWORD, benign_pdq, login_form, make_kit, session_client


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def test_login_ok_sets_a_strict_httponly_cookie_and_audits(kit):
    app, clock, store = kit
    c = TestClient(app)
    r = login_form(c, "analyst")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags and "path=/" in flags
    assert c.get("/api/v1/me").json()["role"] == "analyst"
    with store.sessions() as s:
        assert s.scalar(select(AuditRecord.action).order_by(AuditRecord.seq.desc())) == "login.ok"


def test_cookie_is_secure_on_https(kit):
    app, _clock, _store = kit
    c = TestClient(app, base_url="https://testserver")
    r = login_form(c, "analyst")
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
    assert "secure" in cookie.lower()


def test_wrong_password_and_lockout_after_five(kit):
    app, clock, store = kit
    c = TestClient(app)
    for _ in range(5):
        r = login_form(c, "analyst", "not the password")
        assert r.status_code == 401 and "wrong user name or password" in r.text
    r = login_form(c, "analyst")  # the right password, but locked: the same answer as a wrong one
    assert r.status_code == 401 and "wrong user name or password" in r.text
    assert c.post("/api/v1/login", json={"username": "analyst", "password": PASSWORD}).json()["error"]["code"] \
        == "bad_credentials"
    clock.advance(minutes=15, seconds=1)
    assert login_form(c, "analyst").status_code == 303
    with store.sessions() as s:
        acts = list(s.scalars(select(AuditRecord.action)))
    assert acts.count("login.failed") == 7 and acts.count("login.ok") == 1 and audit.verify(store).ok


def test_login_form_needs_its_csrf_cookie(kit):
    app, _clock, _store = kit
    r = TestClient(app).post("/login", data={"username": "analyst", "password": PASSWORD, "csrf_token": "x"})
    assert r.status_code == 403 and 'data-code="csrf"' in r.text


def test_logout_and_logout_everywhere(kit):
    app, clock, store = kit
    a, a_csrf = session_client(app, store, "analyst", clock)
    b, _ = session_client(app, store, "analyst", clock)
    assert a.get("/api/v1/me").status_code == 200 and b.get("/api/v1/me").status_code == 200
    admin, csrf = session_client(app, store, "admin", clock)
    r = admin.post("/users/analyst/logout-everywhere", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert a.get("/api/v1/me").status_code == 401 and b.get("/api/v1/me").status_code == 401
    c, c_csrf = session_client(app, store, "analyst", clock)
    r = c.post("/logout", data={"csrf_token": c_csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/", follow_redirects=False).status_code == 303
    with store.sessions() as s:
        acts = list(s.scalars(select(AuditRecord.action)))
    assert "user.logout_everywhere" in acts and "logout" in acts


def test_session_idle_expiry_through_the_app(kit):
    app, clock, store = kit
    c, _ = session_client(app, store, "analyst", clock)
    clock.advance(minutes=31)
    r = c.get("/banks", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fbanks")


def test_csrf_missing_or_wrong_is_403(kit):
    app, clock, store = kit
    admin, csrf = session_client(app, store, "admin", clock)
    body = {"name": "p", "scopes": ["match"]}
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        r = admin.post("/api/v1/api-keys", json=body, headers=headers)
        assert r.status_code == 403 and r.json() == {"error": {"code": "csrf", "message": r.json()["error"]["message"]}}
    r = admin.post("/users", data={"username": "eve", "role": "admin"})  # a page form without its hidden field
    assert r.status_code == 403 and 'data-code="csrf"' in r.text
    assert admin.post("/api/v1/api-keys", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_api_key_shown_once_stored_hashed_revoked_and_scoped(kit):
    app, clock, store = kit
    admin, csrf = session_client(app, store, "admin", clock)
    r = admin.post("/api-keys", data={"name": "partner", "scopes": "match", "csrf_token": csrf})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    import re

    secret = re.search(r'id="api-secret">([^<]+)<', r.text).group(1)
    listing = admin.get("/api-keys").text + admin.get("/api/v1/api-keys").text
    assert secret not in listing and secret.split("_")[1] in listing  # listed by prefix only
    with store.sessions() as s:
        dump = "\n".join(str(row) for t in ("api_keys", "audit_log") for row in s.execute(text(f"SELECT * FROM {t}")))
    assert secret not in dump and secret.split("_", 2)[2] not in dump  # the random part (it may hold "_")
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=auth).json()["kind"] == "api_key"
    assert client.get("/api/v1/users", headers=auth).status_code == 403  # people only
    key_id = admin.get("/api/v1/api-keys").json()["api_keys"][0]["id"]
    # a key without the scope `match`
    k2, s2 = accounts.create_api_key(store, "banks only", ["banks:x"], "admin")
    r = client.post("/api/v1/match", json={"hashes": [{"signal": "md5", "value": "0" * 32}]},
                    headers={"Authorization": f"Bearer {s2}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "scope_missing"
    r = admin.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    r = client.get("/api/v1/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_api_key"
    with store.sessions() as s:
        acts = list(s.scalars(select(AuditRecord.action)))
    assert acts.count("api_key.create") == 2 and "api_key.revoke" in acts and audit.verify(store).ok


def test_match_api_answers_bank_category_distance_and_audits(kit):
    app, clock, store = kit
    settings = store.settings
    banks.create_bank(store, "demo")
    banks.create_bank(store, "other")
    known = benign_pdq(1, settings)
    banks.add_entry(store, "demo", "pdq", known)
    banks.add_entry(store, "other", "md5", "a" * 32)
    _k, secret = accounts.create_api_key(store, "partner", ["match"], "admin")
    c = TestClient(app)
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"hashes": [{"signal": "pdq", "value": known}, {"signal": "pdq", "value": benign_pdq(2, settings)},
                       {"signal": "md5", "value": "A" * 32}, {"signal": "sha1", "value": "nope"}]}
    r = c.post("/api/v1/match", json=body, headers=auth)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["matches"] == [{"bank": "demo", "category": None, "distance": 0}]
    assert res[1]["matches"] == [] and res[1]["error"] is None
    assert res[2]["matches"][0]["bank"] == "other"
    assert res[3]["error"]["code"] == "invalid_hash"
    # a key narrowed to one bank sees and matches only that bank
    _k2, narrow = accounts.create_api_key(store, "narrow", ["match", "banks:other"], "admin")
    r = c.post("/api/v1/match", json=body, headers={"Authorization": f"Bearer {narrow}"})
    assert r.json()["results"][0]["matches"] == [] and r.json()["results"][2]["matches"]
    assert [b["name"] for b in c.get("/api/v1/banks", headers={"Authorization": f"Bearer {narrow}"})
            .json()["banks"]] == ["other"]
    too_many = {"hashes": [{"signal": "md5", "value": "a" * 32}] * 1001}
    r = c.post("/api/v1/match", json=too_many, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    with store.sessions() as s:
        recs = list(s.scalars(select(AuditRecord).where(AuditRecord.action == "api.match")))
    assert len(recs) == 2 and recs[0].detail["matched"] == 2 and recs[0].actor.startswith("api_key:")


def test_rate_limit_answers_429(kit):
    app, clock, store = kit
    _k, secret = accounts.create_api_key(store, "slow", ["match"], "admin", rate_limit_per_minute=2)
    c = TestClient(app)
    auth = {"Authorization": f"Bearer {secret}"}
    assert [c.get("/api/v1/me", headers=auth).status_code for _ in range(3)] == [200, 200, 429]
    r = c.get("/api/v1/me", headers=auth)
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    clock.advance(seconds=61)
    assert c.get("/api/v1/me", headers=auth).status_code == 200


def test_users_admin_pages_create_shows_password_once(kit):
    app, clock, store = kit
    admin, csrf = session_client(app, store, "admin", clock)
    r = admin.post("/users", data={"username": "newbie", "role": "analyst", "csrf_token": csrf})
    import re

    otp = re.search(r'id="one-time-password">([^<]+)<', r.text).group(1)
    assert otp not in admin.get("/users").text and otp not in admin.get("/api/v1/users").text
    assert admin.post("/users/newbie/role", data={"role": "supervisor", "csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    assert accounts.get_user(store, "newbie").role == "supervisor"
    c = TestClient(app)
    r = login_form(c, "newbie", otp)
    assert r.status_code == 303 and r.headers["location"] == "/account"  # asked to choose a password
    assert admin.post("/users/newbie/deactivate", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert c.get("/api/v1/me").status_code == 401
    r = admin.post("/users", data={"username": "x y", "role": "analyst", "csrf_token": csrf})
    assert r.status_code == 422 and 'data-code="bad_username"' in r.text


def test_audit_page_verify_and_export(kit):
    app, clock, store = kit
    login_form(TestClient(app), "analyst")
    sup, _ = session_client(app, store, "supervisor", clock)
    r = sup.get("/audit?verify=1")
    assert r.status_code == 200 and "The chain is intact" in r.text and "login.ok" in r.text
    assert sup.get("/api/v1/audit/verify").json()["ok"] is True
    r = sup.get("/audit/export")
    assert r.headers["content-type"].startswith("application/x-ndjson") and "attachment" in \
        r.headers["content-disposition"]
    import json

    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines[0]["seq"] == 1 and all(len(x["hash"]) == 64 for x in lines)
    assert sup.get("/api/v1/audit?limit=1").json()["records"][0]["action"] == "audit.export"


def test_every_form_on_every_page_carries_the_session_csrf_token(kit):
    """A form whose hidden field is empty would fail only in a real browser: check each form's own field."""
    import re

    from vigie.banks import service as banks_service

    app, clock, store = kit
    banks_service.create_bank(store, "demo")
    accounts.create_api_key(store, "k", ["match"], "admin")
    admin, csrf = session_client(app, store, "admin", clock)
    pages = ["/", "/banks", "/users", "/api-keys", "/audit", "/account", "/logout"]
    forms_seen = 0
    for p in pages:
        html = admin.get(p).text
        for form in re.findall(r'<form method="post".*?</form>', html, flags=re.S):
            forms_seen += 1
            assert f'name="csrf_token" value="{csrf}"' in form, (p, form[:200])
    assert forms_seen >= 10


def test_serve_prints_the_first_admin_password_once(settings, monkeypatch):
    import io

    import uvicorn

    from vigie.web import serve

    ran = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append((app, kw)))
    first, second = io.StringIO(), io.StringIO()
    serve(settings, "127.0.0.1", 8123, stream=first)
    serve(settings, "127.0.0.1", 8123, stream=second)
    assert "one-time password" in first.getvalue() and second.getvalue() == ""
    assert ran[0][1]["host"] == "127.0.0.1" and ran[0][1]["port"] == 8123
    from vigie.store import Store

    store = Store.open(settings)
    otp = first.getvalue().split("password:")[1].split()[0]
    assert accounts.authenticate(store, "admin", otp).role == "admin"
    store.close()


def test_match_image_upload_is_hashed_in_memory_and_never_stored(kit, tmp_path):
    from PIL import ImageOps

    from vigie.demo import encode, photo_like

    app, clock, store = kit
    banks.create_bank(store, "demo")
    original = photo_like(31)
    banks.add_entry(store, "demo", "pdq", benign_pdq(31, store.settings))
    _k, secret = accounts.create_api_key(store, "partner", ["match"], "admin")
    c = TestClient(app)
    auth = {"Authorization": f"Bearer {secret}"}
    mirrored = encode(ImageOps.mirror(original), "JPEG")
    r = c.post("/api/v1/match/image", files={"file": ("x.jpg", mirrored, "image/jpeg")}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["matches"][0]["bank"] == "demo" and r.json()["media_type"] == "image/jpeg"
    r = c.post("/api/v1/match/image", files={"file": ("t.jpg", b"not a picture", "image/jpeg")}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_media"
    assert c.post("/api/v1/match/image", files={"file": ("x.jpg", mirrored, "image/jpeg")}).status_code == 401
    media = [p for p in store.settings.data_dir.rglob("*") if p.is_file() and p.suffix in (".jpg", ".bin")]
    assert media == []  # nothing of the upload was written anywhere
