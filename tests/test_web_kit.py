"""Shared helpers of the web tests (an injected clock, logged-in clients, benign bank data) and their own check."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from vigie import accounts
from vigie.web import create_app
from vigie.web.access import COOKIE

PASSWORD = "correct horse battery"


class Clock:
    """A clock the test moves: lockouts and expiries without sleeping."""

    def __init__(self, start: datetime | None = None):
        self.t = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += timedelta(**kw)


def fast_hashing(monkeypatch) -> None:
    """Cheap argon2id parameters: the web tests hash dozens of passwords (the defaults take 0.15 s each)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def make_kit(store, monkeypatch):
    """(app, clock, store) with one account per role."""
    fast_hashing(monkeypatch)
    app, clock = make_app(store)
    users(store)
    return app, clock, store


def make_app(store):
    clock = Clock()
    return create_app(store, store.settings, clock=clock), clock


def users(store) -> dict[str, str]:
    """One account per role, all with PASSWORD."""
    for role in accounts.ROLES:
        accounts.create_user(store, role, role, PASSWORD)
    return {r: r for r in accounts.ROLES}


def login_form(client: TestClient, username: str, password: str = PASSWORD):
    page = client.get("/login")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": tok},
                       follow_redirects=False)


def session_client(app, store, username: str, clock=None) -> tuple[TestClient, str]:
    """A client with a fresh session of `username` (no password check: fast), and the session's CSRF token."""
    user = accounts.get_user(store, username)
    token, ws = accounts.new_session(store, user, now=clock() if clock else None)
    c = TestClient(app)
    c.cookies.set(COOKIE, token)
    return c, ws.csrf_token


def benign_pdq(seed: int, settings) -> str:
    """The PDQ hash of a generated, benign picture (vigie.demo.photo_like)."""
    from vigie.demo import encode, photo_like
    from vigie.hashing import hash_bytes

    return hash_bytes(encode(photo_like(seed), "PNG"), settings).pdq


def test_clock_moves_only_when_told():
    c = Clock()
    t0 = c()
    assert c() == t0
    c.advance(minutes=5)
    assert c() - t0 == timedelta(minutes=5)


def test_default_password_hasher_is_argon2id_with_strong_parameters():
    h = accounts.PASSWORD_HASHER
    assert h.type.name == "ID" and h.memory_cost >= 65536 and h.time_cost >= 3
    assert accounts.hash_password(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3")
