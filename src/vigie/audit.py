"""The audit trail: who did what to which object, when; append-only and tamper-evident.

Each record carries the SHA-256 of the record before it (a hash chain), computed over a
canonical JSON of its own fields, so changing, removing or inserting a record anywhere
breaks every hash after it: `verify()` (and `vigie audit verify`) finds the first break.
Records are appended under a lock row-order (`seq` is unique), so two writers cannot
both extend the same tail. For court, export the log with `export()` and keep the last
hash somewhere else (a printout, a notary, a partner): the chain proves nothing was
changed before that hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from vigie.store.audit_models import AuditRecord
from vigie.store.db import Store

GENESIS = "0" * 64


def _canonical(seq: int, at: datetime, actor: str, action: str, object_type: str | None, object_id: str | None,
               detail: dict | None, prev_hash: str) -> bytes:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    body = {"seq": seq, "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": actor,
            "action": action, "object_type": object_type, "object_id": object_id, "detail": detail or {},
            "prev": prev_hash}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def record(store: Store, actor: str, action: str, object_type: str | None = None, object_id: str | int | None = None,
           detail: dict | None = None, *, at: datetime | None = None, session=None) -> AuditRecord:
    """Append one record. Pass `session` to write in the caller's transaction (the record then commits or
    rolls back with what it describes)."""
    at = at or datetime.now(UTC)
    oid = None if object_id is None else str(object_id)
    detail = _plain(detail)
    for _attempt in range(20):
        try:
            if session is not None:
                return _append(session, actor, action, object_type, oid, detail, at)
            with store.session() as s:
                return _append(s, actor, action, object_type, oid, detail, at)
        except IntegrityError:  # another writer took this seq: read the new tail and try again
            if session is not None:
                raise
            continue
    raise RuntimeError("audit log: could not append after 20 tries")


def _plain(detail: dict | None) -> dict | None:
    """The detail as it will read back from the database (JSON types only; datetimes as ISO 8601), so the
    hash computed now is the hash verify() recomputes later."""
    if detail is None:
        return None

    def default(o):
        return o.isoformat() if isinstance(o, datetime) else str(o)

    return json.loads(json.dumps(detail, default=default))


def _append(s, actor, action, object_type, object_id, detail, at) -> AuditRecord:
    last = s.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    h = hashlib.sha256(_canonical(seq, at, actor, action, object_type, object_id, detail, prev)).hexdigest()
    rec = AuditRecord(seq=seq, at=at, actor=actor, action=action, object_type=object_type, object_id=object_id,
                      detail=detail, prev_hash=prev, hash=h)
    s.add(rec)
    s.flush()
    return rec


@dataclass
class Verification:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None
    last_hash: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "last_hash": self.last_hash}


def iter_records(store: Store, batch: int = 5000) -> Iterator[AuditRecord]:
    with store.sessions() as s:
        last = 0
        while True:
            chunk = list(s.scalars(select(AuditRecord).where(AuditRecord.seq > last).order_by(AuditRecord.seq)
                                   .limit(batch)))
            if not chunk:
                return
            yield from chunk
            last = chunk[-1].seq
            s.expunge_all()


def verify(store: Store) -> Verification:
    """Walk the chain: every record's hash recomputed, every link to the one before checked, no gap in seq."""
    prev, n, expected = GENESIS, 0, 1
    for r in iter_records(store):
        n += 1
        if r.seq != expected:
            return Verification(False, n, r.seq, f"record {expected} is missing", prev)
        if r.prev_hash != prev:
            return Verification(False, n, r.seq, "does not link to the record before it", prev)
        h = hashlib.sha256(_canonical(r.seq, r.at, r.actor, r.action, r.object_type, r.object_id, r.detail,
                                      r.prev_hash)).hexdigest()
        if h != r.hash:
            return Verification(False, n, r.seq, "its content was changed after it was written", prev)
        prev, expected = r.hash, expected + 1
    return Verification(True, n, last_hash=prev)


def count(store: Store) -> int:
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditRecord)) or 0


def export(store: Store, stream) -> int:
    """JSON lines, one record each, with its hashes: what a court or an auditor receives."""
    n = 0
    for r in iter_records(store):
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)
        stream.write(json.dumps({"seq": r.seq, "at": at.isoformat(), "actor": r.actor, "action": r.action,
                                 "object_type": r.object_type, "object_id": r.object_id, "detail": r.detail,
                                 "prev_hash": r.prev_hash, "hash": r.hash}, sort_keys=True) + "\n")
        n += 1
    return n
