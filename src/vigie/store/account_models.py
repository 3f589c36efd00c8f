"""Accounts of the web app: people (`users`), their browser sessions, and API keys of machine clients.

Secrets never reach the database: a password is stored as its argon2id hash, a session
cookie as the SHA-256 of its token (the session's id), an API key as the SHA-256 of the
secret plus a short prefix that lets people tell keys apart. A stolen copy of the
database therefore opens no session and calls no API.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vigie.store.models import Base, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    #: admin, supervisor or analyst (a hierarchy: each role can do what the ones below it can).
    role: Mapped[str] = mapped_column(String(20), default="analyst")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Locks in a row since the last good login: each lock lasts twice the one before (capped).
    lock_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Set for a one-time password: the person is asked to choose their own.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the one-time password stops opening the account (24 hours after it was made).
    otp_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Per-person changes to the wellbeing defaults of the review pages (exposure limits, breaks).
    wellbeing: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class WebSession(Base):
    """A browser session. `id` is the SHA-256 (hex) of the token the cookie holds."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    csrf_token: Mapped[str] = mapped_column(String(64))


class ApiKey(Base):
    """A machine client's key. The secret (`vigie_<prefix>_<random>`) is shown once; `key_hash` is its SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: e.g. ["match"], ["match", "banks:partner-list"] (see docs/web.md).
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: None: the server default (setting api_rate_limit_per_minute).
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RateCounter(Base):
    """One fixed window of a rate limit, shared by every server process through the store.

    `key` names what is counted (`login-addr:<keyed hash>`, `report:<keyed hash>`, `api:<key id>`); the
    addresses themselves are never stored (see `vigie.web.limits`)."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: The window's start, in seconds since the epoch (a multiple of the window's length).
    window_start: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer)
