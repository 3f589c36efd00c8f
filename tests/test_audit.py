"""The audit chain on SQLite and PostgreSQL: appends link up, any tampering is found."""

from __future__ import annotations

import io
import json

from sqlalchemy import update

from vigie import audit
from vigie.store.audit_models import AuditRecord


def test_chain_verifies_and_detects_tampering(store):
    for i in range(5):
        audit.record(store, "alice", "view", "cluster", i, {"n": i})
    v = audit.verify(store)
    assert v.ok and v.records == 5 and len(v.last_hash) == 64
    buf = io.StringIO()
    assert audit.export(store, buf) == 5
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4, 5] and lines[1]["prev_hash"] == lines[0]["hash"]
    with store.session() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor="mallory"))
    v = audit.verify(store)
    assert not v.ok and v.first_bad_seq == 3 and "changed" in v.reason


def test_deleted_record_is_detected(store):
    for i in range(3):
        audit.record(store, "bob", "decide", "cluster", i)
    from sqlalchemy import delete

    with store.session() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
    v = audit.verify(store)
    assert not v.ok and v.first_bad_seq == 3


def test_record_in_callers_transaction_rolls_back_with_it(store):
    try:
        with store.session() as s:
            audit.record(store, "carol", "decide", session=s)
            raise RuntimeError("the decision failed")
    except RuntimeError:
        pass
    assert audit.count(store) == 0 and audit.verify(store).ok


def test_details_with_dates_and_other_objects_verify_after_reading_back(store):
    from datetime import UTC, datetime
    from decimal import Decimal
    from pathlib import Path

    audit.record(store, "ana", "x.test", "thing", 1, {"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                                                      "path": Path("/a/b"), "n": Decimal("1.5"), "t": (1, 2)})
    assert audit.verify(store).ok
    (rec,) = list(audit.iter_records(store))
    assert rec.detail == {"when": "2026-01-02T03:04:05+00:00", "path": "/a/b", "n": "1.5", "t": [1, 2]}
