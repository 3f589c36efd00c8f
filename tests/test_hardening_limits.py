"""Rate limits shared by every server process: two Store objects on one database (SQLite and PostgreSQL), and
Redis when configured, count together; parallel hits never slip past a limit; addresses are never stored."""

from __future__ import annotations

import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from vigie import accounts
from vigie.ratelimit import RedisLimiter, StoreLimiter, address_tag, limiter_for
from vigie.store import Store
from vigie.store.account_models import RateCounter

from test_web_kit import PASSWORD, fast_hashing, make_app, users

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_or_skip() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")


@pytest.fixture
def two_stores(store):
    """The fixture's store and a second Store object on the same database: two server processes."""
    other = Store.open(store.settings)
    yield store, other
    other.close()


def test_parallel_hits_never_pass_the_limit(store):
    lim = StoreLimiter(store)
    ok, refused = [], []
    barrier = threading.Barrier(10)

    def hit():
        barrier.wait()
        for _ in range(4):
            try:
                ok.append(lim.hit("t:parallel", 15, 60, now=1_000_020.0))
            except accounts.RateLimited as exc:
                refused.append(exc.retry_after)

    threads = [threading.Thread(target=hit) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(ok) == list(range(1, 16)) and len(refused) == 25
    assert all(1 <= r <= 61 for r in refused)
    assert lim.hit("t:parallel", 15, 60, now=1_000_080.0) == 1  # the next window starts afresh


def test_two_stores_count_together(two_stores):
    a, b = StoreLimiter(two_stores[0]), StoreLimiter(two_stores[1])
    assert [lim.hit("t:k", 3, 3600, now=7200.0) for lim in (a, b, a)] == [1, 2, 3]
    with pytest.raises(accounts.RateLimited):
        b.hit("t:k", 3, 3600, now=7201.0)


def test_report_limit_is_shared_by_two_apps_and_stores_no_address(two_stores, monkeypatch):
    fast_hashing(monkeypatch)
    for st in two_stores:
        st.settings.report_rate_limit_per_hour = 3
    apps = [TestClient(make_app(st)[0]) for st in two_stores]
    codes = [apps[i % 2].post("/api/v1/reports", json={"urls": [f"http://example.invalid/{i}"]}).status_code
             for i in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    r = apps[0].post("/api/v1/reports", json={"urls": ["http://example.invalid/x"]})
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    with two_stores[0].sessions() as s:
        keys = list(s.scalars(select(RateCounter.key)))
    assert keys and all("testclient" not in k and "127.0.0.1" not in k for k in keys)


def test_login_attempts_per_address_are_shared(two_stores, monkeypatch):
    fast_hashing(monkeypatch)
    users(two_stores[0])
    for st in two_stores:
        st.settings.login_attempts_per_address = 4
    apps = [TestClient(make_app(st)[0]) for st in two_stores]
    body = {"username": "analyst", "password": "not the password"}
    codes = [apps[i % 2].post("/api/v1/login", json=body).status_code for i in range(3)]
    assert codes == [401, 401, 401]
    assert apps[1].post("/api/v1/login", json={"username": "analyst", "password": PASSWORD}).status_code == 200
    r = apps[0].post("/api/v1/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"


def test_address_tags_are_keyed_hourly_and_hide_the_address(settings):
    t = 3600.0 * 500
    a = address_tag(settings, "report", "203.0.113.7", now=t)
    assert a == address_tag(settings, "report", "203.0.113.7", now=t + 3599)
    assert a != address_tag(settings, "report", "203.0.113.7", now=t + 3600)
    assert a != address_tag(settings, "report", "203.0.113.8", now=t)
    assert a != address_tag(settings, "login", "203.0.113.7", now=t)
    assert "203.0.113.7" not in a


def test_redis_limiter_is_shared_by_two_clients():
    _redis_or_skip()
    prefix = f"vigie-test:{uuid.uuid4().hex}:"
    a, b = RedisLimiter(REDIS_URL, prefix), RedisLimiter(REDIS_URL, prefix)
    try:
        assert [lim.hit("k", 3, 60, now=600.0) for lim in (a, b, a)] == [1, 2, 3]
        with pytest.raises(accounts.RateLimited):
            b.hit("k", 3, 60, now=601.0)
        assert a.hit("k", 3, 60, now=660.0) == 1
        assert 0 < a.client.ttl(f"{prefix}k:660") <= 120
    finally:
        for k in a.client.scan_iter(f"{prefix}*"):
            a.client.delete(k)


def test_redis_url_selects_redis(store):
    _redis_or_skip()
    assert isinstance(limiter_for(store), StoreLimiter)
    store.settings.redis_url = REDIS_URL
    assert isinstance(limiter_for(store), RedisLimiter)
