"""Rate limits shared by every server process: counted in the store, or in Redis when `redis_url` is set.

A limit is a fixed window (`window_s` seconds) holding at most `limit` hits of one key. Each hit
is one atomic statement, never a read then a write in Python, so parallel requests on several
processes (and machines, on PostgreSQL or Redis) cannot slip past the limit together:

* store: a conditional upsert into `rate_counters` that increments only while under the limit
  (or starts a new window) and returns the new count; no row back means the limit is reached;
* Redis: INCR and EXPIRE of a key per window in one MULTI transaction.

Addresses are never stored: they are counted under `address_tag`, an HMAC of the address under a
key that changes every hour, derived from `rate_limit_secret` or, by default, a random secret made
at the server's start and inherited by its worker processes through the environment (never written
to disk or the database). Once the hour is over, nobody can tell which address a count was for.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from typing import Protocol

from sqlalchemy import case, delete, or_

from vigie.accounts import RateLimited
from vigie.store.account_models import RateCounter
from vigie.store.db import Store

SECRET_ENV = "VIGIE_RATE_LIMIT_SECRET"
_secret_lock = threading.Lock()


class Limiter(Protocol):
    def hit(self, key: str, limit: int, window_s: int, *, now: float | None = None, message: str = "") -> int:
        """Count one hit of `key`; the count so far in this window. Raises RateLimited beyond `limit`."""


def _window(now: float | None, window_s: int) -> tuple[int, float]:
    t = time.time() if now is None else now
    return int(t // window_s) * window_s, t


def _refuse(limit: int, window_s: int, start: int, t: float, message: str) -> RateLimited:
    wait = max(1, int(start + window_s - t) + 1)
    return RateLimited(message or f"more than {limit} requests in {window_s} s: try again later", retry_after=wait)


class StoreLimiter:
    """Counts in the table `rate_counters` of the store (SQLite or PostgreSQL)."""

    PURGE_EVERY_S = 600.0
    KEEP_S = 2 * 86400  # no window is longer than a day: older rows are dead

    def __init__(self, store: Store):
        self.store = store
        self._last_purge = 0.0

    def hit(self, key: str, limit: int, window_s: int, *, now: float | None = None, message: str = "") -> int:
        start, t = _window(now, window_s)
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        ins = insert(RateCounter).values(key=key[:128], window_start=start, hits=1)
        same = RateCounter.window_start == ins.excluded.window_start
        stmt = ins.on_conflict_do_update(
            index_elements=[RateCounter.key],
            set_={"hits": case((same, RateCounter.hits + 1), else_=1), "window_start": ins.excluded.window_start},
            where=or_(RateCounter.window_start != ins.excluded.window_start, RateCounter.hits < limit),
        ).returning(RateCounter.hits)
        with self.store.session() as s:
            n = s.execute(stmt).scalar()
        if t - self._last_purge >= self.PURGE_EVERY_S:
            self._last_purge = t
            with self.store.session() as s:
                s.execute(delete(RateCounter).where(RateCounter.window_start < int(t) - self.KEEP_S))
        if n is None:  # the update's condition refused: the window is full
            raise _refuse(limit, window_s, start, t, message)
        return int(n)


class RedisLimiter:
    """Counts in Redis: one key per window, expiring with it."""

    def __init__(self, url: str, prefix: str = "vigie:rl:"):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = prefix

    def hit(self, key: str, limit: int, window_s: int, *, now: float | None = None, message: str = "") -> int:
        start, t = _window(now, window_s)
        k = f"{self.prefix}{key}:{start}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(k)
        pipe.expire(k, window_s + 60)
        n, _ = pipe.execute()
        if int(n) > limit:
            raise _refuse(limit, window_s, start, t, message)
        return int(n)


def limiter_for(store: Store, settings=None) -> Limiter:
    """Redis when `redis_url` is set, else the store."""
    settings = settings or store.settings
    url = getattr(settings, "redis_url", None)
    return RedisLimiter(url) if url else StoreLimiter(store)


def shared_secret(settings) -> bytes:
    """The key under which addresses are hashed: `rate_limit_secret`, or one made at this start and put in the
    environment so that worker processes started after this call share it."""
    given = getattr(settings, "rate_limit_secret", None)
    if given is not None:
        return given.get_secret_value().encode()
    with _secret_lock:
        boot = os.environ.get(SECRET_ENV)
        if not boot:  # made once per server start; worker processes inherit it from the environment
            boot = secrets.token_urlsafe(32)
            os.environ[SECRET_ENV] = boot
    return boot.encode()


def address_tag(settings, scope: str, address: str, *, now: float | None = None) -> str:
    """`scope:<HMAC(hourly key, address)>`: the same for one address within an hour, on every process."""
    hour = int((time.time() if now is None else now) // 3600)
    key = hmac.new(shared_secret(settings), f"{scope}:{hour}".encode(), hashlib.sha256).digest()
    return f"{scope}:{hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:40]}"
