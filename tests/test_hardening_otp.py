"""One-time passwords only let their holder choose a password, and expire after 24 hours; chosen passwords
are 12 characters or more and not common. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from vigie import accounts
from vigie.web.access import walk_routes

from test_web_kit import PASSWORD, make_kit, session_client

NEW = "Lantern-Orchard-Basalt-42"


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def otp_client(app, store, clock, name="newbie", role="analyst"):
    """An admin creates `name`; the person logs in with the one-time password: (client, csrf, otp)."""
    admin, acsrf = session_client(app, store, "admin", clock)
    r = admin.post("/api/v1/users", json={"username": name, "role": role}, headers={"X-CSRF-Token": acsrf})
    otp = r.json()["one_time_password"]
    c = TestClient(app)
    r = c.post("/api/v1/login", json={"username": name, "password": otp})
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    return c, r.json()["csrf_token"], otp


def test_a_one_time_password_opens_only_the_password_change(kit):
    app, clock, store = kit
    c, csrf, otp = otp_client(app, store, clock, role="admin")
    h = {"X-CSRF-Token": csrf}
    for r in (c.get("/api/v1/dashboard"), c.get("/api/v1/users"), c.get("/api/v1/banks"),
              c.post("/api/v1/match", json={"hashes": [{"value": "0" * 64}]}, headers=h),
              c.post("/api/v1/users", json={"username": "evil", "role": "admin"}, headers=h)):
        assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required", r.text
    r = c.get("/banks")  # a page: the error page with the code, linking to My account
    assert r.status_code == 403 and 'data-code="password_change_required"' in r.text
    assert c.get("/account").status_code == 200 and c.get("/api/v1/me").status_code == 200
    r = c.post("/api/v1/me/password", json={"current": otp, "new": "Password2024!"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"
    assert c.post("/api/v1/me/password", json={"current": otp, "new": NEW}, headers=h).status_code == 204
    assert c.get("/api/v1/dashboard").status_code == 200 and c.get("/banks").status_code == 200
    assert accounts.get_user(store, "newbie").otp_expires_at is None


def test_every_other_route_answers_password_change_required(kit):
    """Walk every route that a person may call: with a one-time password, only the declared few answer."""
    app, clock, store = kit
    c, csrf, _otp = otp_client(app, store, clock, role="admin")
    allowed = {"/account", "/account/password", "/api/v1/me", "/api/v1/me/password", "/logout", "/api/v1/logout"}
    seen = 0
    for info in walk_routes(app):
        if not info.is_api_route or info.access is None or info.access.public or info.path in allowed:
            continue
        path = info.path
        for part in path.split("/"):
            if part.startswith("{"):
                path = path.replace(part, "1")
        for method in sorted(info.methods - {"HEAD", "OPTIONS"}):
            r = c.request(method, path, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 403 and 'password_change_required' in r.text, (method, info.path, r.text[:200])
            seen += 1
    assert seen > 30


def test_a_one_time_password_expires_after_24_hours(kit):
    app, clock, store = kit
    admin, acsrf = session_client(app, store, "admin", clock)
    r = admin.post("/api/v1/users", json={"username": "late", "role": "analyst"}, headers={"X-CSRF-Token": acsrf})
    otp = r.json()["one_time_password"]
    clock.advance(hours=23, minutes=59)
    assert TestClient(app).post("/api/v1/login", json={"username": "late", "password": otp}).status_code == 200
    clock.advance(minutes=2)  # 24 h and a minute after the password was made
    r = TestClient(app).post("/api/v1/login", json={"username": "late", "password": otp})
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
    assert accounts.get_user(store, "late").failed_logins == 1


def test_a_session_opened_with_a_one_time_password_ends_when_it_expires(store, monkeypatch):
    from test_web_kit import fast_hashing

    fast_hashing(monkeypatch)
    u, otp = accounts.create_user(store, "ann", "analyst")
    t0 = accounts.aware(u.otp_expires_at) - timedelta(hours=24)
    user = accounts.authenticate(store, "ann", otp, now=t0 + timedelta(hours=20))
    token, _ = accounts.new_session(store, user, now=t0 + timedelta(hours=20))
    assert accounts.session_user(store, token, t0 + timedelta(hours=20, minutes=10)) is not None
    assert accounts.session_user(store, token, t0 + timedelta(hours=24, seconds=1)) is None


def test_an_admin_reset_is_a_one_time_password_too(kit):
    app, clock, store = kit
    admin, acsrf = session_client(app, store, "admin", clock)
    r = admin.post("/users/analyst/reset-password", data={"csrf_token": acsrf})
    import re

    otp = re.search(r'id="one-time-password">([^<]+)<', r.text).group(1)
    c = TestClient(app)
    me = c.post("/api/v1/login", json={"username": "analyst", "password": otp}).json()
    assert me["must_change_password"] is True
    r = c.get("/api/v1/review/queue") if any(i.path == "/api/v1/review/queue" for i in walk_routes(app)) \
        else c.get("/api/v1/dashboard")
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"


@pytest.mark.parametrize("pw", ["short", "aaaaaaaaaaaaaaaa", "password1234", "Password2024!", "P@ssw0rd!!2026",
                                "qwertyuiop123", "123456789012", "abcdefghijklm", "zaq12wsx!!!!!", "!!Welcome123"])
def test_weak_passwords_are_refused(pw):
    with pytest.raises(accounts.WeakPassword):
        accounts.check_password_policy(pw, username="ann")


@pytest.mark.parametrize("pw", [PASSWORD, NEW, "blue kettle on a slow train", "t7#Qm2!vLp9@"])
def test_good_passwords_pass(pw):
    accounts.check_password_policy(pw, username="ann")


def test_the_common_list_ships_with_the_package():
    common = accounts.common_passwords()
    assert len(common) > 200 and "password" in common and "qwerty" in common
