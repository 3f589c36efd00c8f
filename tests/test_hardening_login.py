"""Logins under attack, on SQLite and PostgreSQL: failures counted atomically (parallel wrong passwords lock
the account), locks that grow, answers that never tell whether a name exists or is locked, every failure
audited, and attempts limited per address across processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from vigie import accounts
from vigie.store.account_models import User
from vigie.store.audit_models import AuditRecord

from test_web_kit import PASSWORD, fast_hashing

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_hashing(monkeypatch)


def failures(store, name: str) -> list[dict]:
    with store.sessions() as s:
        return [r.detail or {} for r in s.scalars(select(AuditRecord).where(AuditRecord.action == "login.failed",
                                                                           AuditRecord.object_id == name))]


def user(store, name: str) -> User:
    with store.sessions() as s:
        return s.scalar(select(User).where(User.username == name))


def test_parallel_wrong_passwords_lock_the_account(store):
    """60 wrong passwords at once from 12 threads: every one is counted, the account ends locked, and each
    failure has its audit record (a read-increment-write in Python lost most of them on PostgreSQL)."""
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    errors: list[str] = []
    barrier = threading.Barrier(12)

    def attack():
        barrier.wait()
        for _ in range(5):
            try:
                accounts.authenticate(store, "ann", "not the password", now=T0)
                errors.append("logged in")
            except accounts.BadCredentials as exc:
                errors.append(exc.code)

    threads = [threading.Thread(target=attack) for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == ["bad_credentials"] * 60
    u = user(store, "ann")
    assert accounts.aware(u.locked_until) > T0 and u.lock_count >= 1
    recs = failures(store, "ann")
    assert len(recs) == 60
    counted = [r for r in recs if r.get("reason") == "bad_password"]
    # every counted failure got its own number: none was lost to a race
    assert len({(r["failures"], r.get("locked_until")) for r in counted}) == len(counted)
    with pytest.raises(accounts.BadCredentials):  # the right password does not open it now
        accounts.authenticate(store, "ann", PASSWORD, now=T0 + timedelta(minutes=1))


def test_each_lock_in_a_row_lasts_twice_as_long_until_a_good_login(store):
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    t = T0
    for minutes in (15, 30, 60):
        for _ in range(5):
            with pytest.raises(accounts.BadCredentials):
                accounts.authenticate(store, "ann", "wrong password!", now=t)
        assert accounts.aware(user(store, "ann").locked_until) == t + timedelta(minutes=minutes)
        with pytest.raises(accounts.BadCredentials):
            accounts.authenticate(store, "ann", PASSWORD, now=t + timedelta(minutes=minutes - 1))
        t += timedelta(minutes=minutes, seconds=1)
    assert accounts.authenticate(store, "ann", PASSWORD, now=t).username == "ann"
    u = user(store, "ann")
    assert (u.lock_count, u.failed_logins, u.locked_until) == (0, 0, None)
    for _ in range(5):  # after a good login, the next lock is the short one again
        with pytest.raises(accounts.BadCredentials):
            accounts.authenticate(store, "ann", "wrong password!", now=t)
    assert accounts.aware(user(store, "ann").locked_until) == t + timedelta(minutes=15)


def test_locks_are_capped(store):
    store.settings.login_lockout_max_minutes = 40
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    t = T0
    got = []
    for _ in range(4):
        for _ in range(5):
            with pytest.raises(accounts.BadCredentials):
                accounts.authenticate(store, "ann", "wrong password!", now=t)
        until = accounts.aware(user(store, "ann").locked_until)
        got.append(until - t)
        t = until + timedelta(seconds=1)
    assert got == [timedelta(minutes=m) for m in (15, 30, 40, 40)]


def test_unknown_locked_and_wrong_answer_alike_and_are_audited(store, monkeypatch):
    """Unknown name, locked account (even with the right password), wrong password: one code, one message,
    and one argon2 verification each."""
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    accounts.create_user(store, "bob", "analyst", PASSWORD)
    for _ in range(5):
        with pytest.raises(accounts.BadCredentials):
            accounts.authenticate(store, "bob", "wrong password!", now=T0)
    verified = []
    real = accounts._verify
    monkeypatch.setattr(accounts, "_verify", lambda h, p: verified.append(h) or real(h, p))
    answers = []
    for name, pw in (("nobody", PASSWORD), ("bob", PASSWORD), ("ann", "wrong password!")):
        with pytest.raises(accounts.BadCredentials) as exc:
            accounts.authenticate(store, name, pw, now=T0 + timedelta(minutes=1))
        answers.append((exc.value.code, exc.value.message, exc.value.http_status))
    assert len(set(answers)) == 1 and answers[0][0] == "bad_credentials"
    assert len(verified) == 3  # the same work for each
    assert [r["reason"] for r in failures(store, "nobody")] == ["unknown_user"]
    assert failures(store, "bob")[-1]["reason"] == "locked"


def test_inactive_account_counts_and_answers_alike(store):
    accounts.create_user(store, "root", "admin", PASSWORD)
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    accounts.deactivate(store, "ann", actor="root")
    with pytest.raises(accounts.BadCredentials) as exc:
        accounts.authenticate(store, "ann", PASSWORD, now=T0)
    assert exc.value.message == accounts.FAILED
    assert failures(store, "ann")[-1] == {"reason": "inactive", "failures": 1}
