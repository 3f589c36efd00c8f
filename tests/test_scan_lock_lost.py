"""A scan's lock that goes with its database session: on PostgreSQL, the lock of `Store.exclusive` is a session
advisory lock, which the server releases when the session ends (a restart, a dropped connection, an administrator
ending the backend), telling no one. A run that goes on writing after that may write beside a second run of the
same scan. The scan checks its lock before each batch of rows it writes, and stops (`lock_lost`) without writing
them; the next run takes the scan up where the rows end, each item once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from test_evidence_formats import pic

from vigie.ingest.scan import run_scan, scan_key
from vigie.store.db import LockLost
from vigie.store.models import Scan, ScanFile


def _rows(store) -> list[str]:
    with store.sessions() as s:
        return list(s.scalars(select(ScanFile.location).order_by(ScanFile.seq)))


def _end_lock_session(store, name: str) -> int:
    """End the database session that holds the lock `name` (as `pg_terminate_backend` by an administrator, or a
    dropped connection, would); its pid."""
    with store.engine.connect() as conn:
        key = conn.execute(text("SELECT hashtextextended('vigie:' || current_schema() || ':' || :n, 0)"),
                           {"n": name}).scalar()
        pid = conn.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
            " AND classid::bigint = :c AND objid::bigint = :o AND objsubid = 1"),
            {"c": (key >> 32) & 0xFFFFFFFF, "o": key & 0xFFFFFFFF}).scalar()
        assert pid is not None, "no session holds the lock"
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        conn.commit()
    return pid


def test_a_held_lock_says_so_and_a_lost_one_raises(store):
    with store.exclusive("probe") as mine:
        assert mine
        mine.check()  # held: nothing to say
        if store.dialect == "sqlite":
            return  # an flock lives as long as its process
        _end_lock_session(store, "probe")
        with pytest.raises(LockLost) as err:
            mine.check()
        assert err.value.code == "lock_lost" and "probe" in err.value.message
    with store.exclusive("probe") as again:  # free again: the server released it with the session
        assert again


def test_a_scan_whose_lock_session_ends_stops_before_writing_and_resumes_each_item_once(store, tmp_path):
    if store.dialect == "sqlite":
        pytest.skip("an flock cannot be lost while its process lives: PostgreSQL's session locks can")
    ev = tmp_path / "ev"
    ev.mkdir()
    n = 150  # more than one batch of rows (64)
    for i in range(n):
        (ev / f"p{i:03d}.jpg").write_bytes(pic(900 + i, size=(64 + i % 5, 48)))
    name = f"scan-{scan_key([str(ev)], 'lost')}"
    ended = []

    def on_item(prog):
        if prog.files == 80 and not ended:  # the first batch is written; the second is being gathered
            ended.append(_end_lock_session(store, name))

    with pytest.raises(LockLost):
        run_scan(store, store.settings, [str(ev)], str(tmp_path / "out1"), workers=1, case="lost", on_item=on_item)
    assert ended
    written = _rows(store)
    assert len(written) == 64  # the batch gathered after the lock was lost was not written
    with store.sessions() as s:  # nor was the record: another run may hold the scan now
        assert s.scalar(select(Scan.status)) == "running"

    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out2"), workers=1, case="lost")
    assert summary["counts"]["locations"] == n
    locs = _rows(store)
    assert len(locs) == len(set(locs)) == n and locs[:64] == written  # each item once, in order
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ScanFile).where(ScanFile.location.like("%#dup%"))) == 0


def test_a_notice_round_whose_lock_session_ends_sends_no_further_notice(store):
    """Two senders at once never notice twice (`Store.exclusive("takedown-notices")`): a round that lost its lock
    stops before its next notice, and the next round sends the notices still due, once."""
    from test_takedown import T0, two_due

    from vigie.actions import takedown

    if store.dialect == "sqlite":
        pytest.skip("an flock cannot be lost while its process lives: PostgreSQL's session locks can")
    settings = two_due(store)
    sent = []

    def mailer(msg, _settings):
        sent.append(msg["To"])
        if len(sent) == 1:
            _end_lock_session(store, "takedown-notices")  # while the first notice goes out

    with pytest.raises(LockLost):
        takedown.send_notices(store, settings, T0, by="tester", mailer=mailer)
    assert len(sent) == 1
    res = takedown.send_notices(store, settings, T0, by="tester", mailer=mailer)
    assert res["sent"] == 1 and len(sent) == 2 and len(set(sent)) == 2  # the other provider's, once
