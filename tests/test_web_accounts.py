"""The accounts library on SQLite and PostgreSQL: passwords, lockout, sessions, API keys, all audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from vigie import accounts, audit
from vigie.store.account_models import ApiKey, User, WebSession
from vigie.store.audit_models import AuditRecord

from test_web_kit import PASSWORD, fast_hashing

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_hashing(monkeypatch)


def actions(store) -> list[str]:
    with store.sessions() as s:
        return list(s.scalars(select(AuditRecord.action).order_by(AuditRecord.seq)))


def test_create_user_one_time_password_and_policy(store):
    u, otp = accounts.create_user(store, "Ann", "analyst")
    assert u.username == "ann" and u.role == "analyst" and u.must_change_password
    assert otp and len(otp) >= 20
    assert accounts.authenticate(store, "ann", otp, now=T0).id == u.id
    with store.sessions() as s:
        h = s.scalar(select(User.password_hash).where(User.username == "ann"))
    assert h.startswith("$argon2id$") and otp not in h
    with pytest.raises(accounts.WeakPassword):
        accounts.create_user(store, "bob", "analyst", "short")
    with pytest.raises(accounts.BadRole):
        accounts.create_user(store, "bob", "root", PASSWORD)
    with pytest.raises(accounts.BadUsername):
        accounts.create_user(store, "bad name", "analyst", PASSWORD)
    with pytest.raises(accounts.UserExists):
        accounts.create_user(store, "ANN", "analyst", PASSWORD)
    u2, none = accounts.create_user(store, "bob", "supervisor", PASSWORD)
    assert none is None and not u2.must_change_password


def test_authenticate_lockout_after_five_failures_then_released(store):
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    for _ in range(4):
        with pytest.raises(accounts.BadCredentials):
            accounts.authenticate(store, "ann", "wrong password!", now=T0)
    with pytest.raises(accounts.BadCredentials):
        accounts.authenticate(store, "ann", "wrong password!", now=T0)  # the fifth: locks
    with pytest.raises(accounts.BadCredentials) as exc:  # the right password, locked: the same answer
        accounts.authenticate(store, "ann", PASSWORD, now=T0 + timedelta(minutes=14))
    assert exc.value.code == "bad_credentials" and exc.value.http_status == 401
    assert accounts.authenticate(store, "ann", PASSWORD, now=T0 + timedelta(minutes=15, seconds=1)).username == "ann"
    with pytest.raises(accounts.BadCredentials):
        accounts.authenticate(store, "nobody", PASSWORD, now=T0)
    acts = actions(store)
    assert acts.count("login.failed") == 7 and acts.count("login.ok") == 1
    assert audit.verify(store).ok


def test_inactive_user_cannot_log_in_and_last_admin_is_kept(store):
    accounts.create_user(store, "root", "admin", PASSWORD)
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    accounts.deactivate(store, "ann", actor="root")
    with pytest.raises(accounts.BadCredentials):
        accounts.authenticate(store, "ann", PASSWORD, now=T0)
    with pytest.raises(accounts.LastAdmin):
        accounts.deactivate(store, "root", actor="root")
    with pytest.raises(accounts.LastAdmin):
        accounts.set_role(store, "root", "analyst", actor="root")
    accounts.reactivate(store, "ann", actor="root")
    accounts.set_role(store, "ann", "admin", actor="root")
    accounts.set_role(store, "root", "supervisor", actor="ann")
    assert accounts.get_user(store, "root").role == "supervisor"


def test_sessions_idle_and_absolute_expiry_and_logout_everywhere(store):
    u, _ = accounts.create_user(store, "ann", "analyst", PASSWORD)
    tok, ws = accounts.new_session(store, u, now=T0)
    with store.sessions() as s:
        assert s.get(WebSession, ws.id) is not None
        assert s.scalar(select(WebSession.id).where(WebSession.id == tok)) is None  # only the hash is kept
    assert accounts.session_user(store, tok, T0 + timedelta(minutes=29))[0].username == "ann"
    assert accounts.session_user(store, tok, T0 + timedelta(minutes=58)) is not None  # last_seen moved on
    assert accounts.session_user(store, tok, T0 + timedelta(minutes=89)) is None  # idle 31 minutes
    tok2, _ = accounts.new_session(store, u, now=T0)
    t = T0
    for _ in range(25):  # active all the time, but the absolute limit (12 h) ends it
        t += timedelta(minutes=29)
        if accounts.session_user(store, tok2, t) is None:
            break
    assert t - T0 >= timedelta(hours=12) and t - T0 < timedelta(hours=12, minutes=30)
    a, _ = accounts.new_session(store, u, now=T0)
    b, _ = accounts.new_session(store, u, now=T0)
    assert accounts.logout_everywhere(store, "ann", actor="admin") == 2
    assert accounts.session_user(store, a, T0) is None and accounts.session_user(store, b, T0) is None


def test_api_key_secret_shown_once_and_stored_hashed(store):
    k, secret = accounts.create_api_key(store, "partner", ["match", "banks:demo"], "admin", now=T0)
    assert secret.startswith(f"vigie_{k.prefix}_") and len(secret) > 40
    with store.sessions() as s:
        dump = "\n".join(str(row) for t in ("api_keys", "audit_log") for row in s.execute(text(f"SELECT * FROM {t}")))
    assert secret not in dump and secret.split("_", 2)[2] not in dump
    assert accounts.check_api_key(store, secret, "match", now=T0).id == k.id
    assert accounts.key_banks(k) == ["demo"]
    with pytest.raises(accounts.ScopeMissing):
        accounts.check_api_key(store, secret, "banks:other", now=T0)
    with pytest.raises(accounts.BadApiKey):
        accounts.check_api_key(store, secret[:-2] + "xx", "match", now=T0)
    with pytest.raises(accounts.BadApiKey):
        accounts.check_api_key(store, "not a key", "match", now=T0)
    with pytest.raises(accounts.BadScope):
        accounts.create_api_key(store, "x", ["admin"], "admin")
    accounts.revoke_api_key(store, k.id, actor="admin", now=T0)
    with pytest.raises(accounts.BadApiKey):
        accounts.check_api_key(store, secret, "match", now=T0)
    with store.sessions() as s:
        assert s.scalar(select(ApiKey.revoked_at)) is not None
    assert actions(store) == ["api_key.create", "api_key.revoke"] and audit.verify(store).ok


def test_ensure_admin_once(store):
    otp = accounts.ensure_admin(store)
    assert otp and accounts.authenticate(store, "admin", otp, now=T0).role == "admin"
    assert accounts.ensure_admin(store) is None


def test_set_password_ends_other_sessions(store):
    u, otp = accounts.create_user(store, "ann", "analyst")
    keep, _ = accounts.new_session(store, u, now=T0)
    other, _ = accounts.new_session(store, u, now=T0)
    with pytest.raises(accounts.BadCredentials):
        accounts.set_password(store, "ann", PASSWORD, actor="ann", current="wrong one", keep_session=keep)
    accounts.set_password(store, "ann", PASSWORD, actor="ann", current=otp, keep_session=keep)
    assert accounts.session_user(store, keep, T0) is not None and accounts.session_user(store, other, T0) is None
    assert not accounts.get_user(store, "ann").must_change_password
