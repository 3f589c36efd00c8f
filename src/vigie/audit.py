"""The audit trail: who did what to which object, when; append-only, tamper-evident, fit for court.

Each record carries the SHA-256 of the record before it (a hash chain), computed over a
canonical JSON of *every* column (version 2: id, seq, time, actor, action, object, detail,
note, previous hash), so changing, removing, inserting or reordering a record anywhere breaks
the chain at that place, and `verify()` says where and what.

How a record is appended (one place, `_append_all`):

* In the caller's transaction (`session=`): the record is held in the session and written when
  the transaction commits (a `before_commit` hook), so it commits or rolls back with what it
  describes, and the lock on the chain's tail is taken at the very end of the transaction, after
  every other lock the caller took: no lock-order deadlock, and no failed action because two
  writers raced for the same sequence number.
* The tail is serialised by the database: a transaction-scoped advisory lock on PostgreSQL; on
  SQLite the write transaction itself (`BEGIN IMMEDIATE`, see vigie.store.db). The sequence
  number is read from the database under that lock, so it is never taken twice; a unique index
  on `seq` stays as the last guard, and a standalone append retries on conflict.

A chain that is internally sound can still have been truncated, emptied, or rewritten whole
with recomputed hashes by someone with write access to the database. Signed **checkpoints**
catch that: `checkpoint()` signs the chain's head (seq, hash, count) with the instance's
Ed25519 key (the one of vigie.sharing.keys), stores it, and appends it to a witness file outside
the database (`audit_witness`, default `data_dir/audit/witness.jsonl`); copy that file off the
machine or give it to a partner. `verify()` then checks that the chain still reaches every
checkpoint it knows (the database's and the witness's) with the same hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigie.store.audit_models import AuditCheckpoint, AuditRecord
from vigie.store.db import Store

GENESIS = "0" * 64
VERSION = 2
PENDING = "vigie_audit_pending"
CHECKPOINT_KIND = "vigie.audit.checkpoint/1"


def _ts(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(seq: int, at: datetime, actor: str, action: str, object_type: str | None, object_id: str | None,
               detail: dict | None, prev_hash: str, *, version: int = 1, note: str | None = None,
               rid: int | None = None) -> bytes:
    body = {"seq": seq, "at": _ts(at), "actor": actor, "action": action, "object_type": object_type,
            "object_id": object_id, "detail": detail or {}, "prev": prev_hash}
    if version >= 2:
        body.update({"v": version, "id": rid, "note": note})
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def _hash_of(r: AuditRecord) -> str:
    return hashlib.sha256(_canonical(r.seq, r.at, r.actor, r.action, r.object_type, r.object_id, r.detail,
                                     r.prev_hash, version=r.version or 1, note=r.note, rid=r.id)).hexdigest()


@dataclass
class Pending:
    """A record waiting for its transaction to commit; `seq` and `hash` are set once it is written."""

    actor: str
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict | None
    at: datetime
    note: str | None = None
    seq: int | None = None
    hash: str | None = None


def record(store: Store, actor: str, action: str, object_type: str | None = None, object_id: str | int | None = None,
           detail: dict | None = None, *, at: datetime | None = None, session=None, note: str | None = None
           ) -> Pending:
    """Append one record. With `session`, it is written when that transaction commits (and vanishes if it
    rolls back); without, in a transaction of its own, now. Never fails because of another writer."""
    p = Pending(actor, action, object_type, None if object_id is None else str(object_id), _plain(detail),
                at or datetime.now(UTC), note)
    if session is not None:
        session.info.setdefault(PENDING, []).append(p)
        return p
    for _attempt in range(50):
        try:
            with store.session() as s:
                _append_all(s, [p])
            return p
        except IntegrityError:  # only where something bypassed the lock: read the new tail and try again
            continue
    raise RuntimeError("audit log: could not append after 50 tries")


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:
        _append_all(session, pending)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


def _plain(detail: dict | None) -> dict | None:
    """The detail as it will read back from the database (JSON types only; datetimes as ISO 8601), so the
    hash computed now is the hash verify() recomputes later."""
    if detail is None:
        return None

    def default(o):
        return o.isoformat() if isinstance(o, datetime) else str(o)

    return json.loads(json.dumps(detail, default=default))


def _lock_tail(s) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('vigie:audit:' || current_schema(), 0))"))


def _append_all(s, pending: list[Pending]) -> None:
    _lock_tail(s)
    last = s.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    rid = s.scalar(select(func.max(AuditRecord.id))) or 0
    for p in pending:
        seq += 1
        rid += 1
        h = hashlib.sha256(_canonical(seq, p.at, p.actor, p.action, p.object_type, p.object_id, p.detail, prev,
                                      version=VERSION, note=p.note, rid=rid)).hexdigest()
        s.add(AuditRecord(id=rid, seq=seq, at=p.at, actor=p.actor, action=p.action, object_type=p.object_type,
                          object_id=p.object_id, detail=p.detail, prev_hash=prev, hash=h, note=p.note,
                          version=VERSION))
        p.seq, p.hash, prev = seq, h, h
    s.flush()


# ---------------------------------------------------------------------------------------------- reading


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


def count(store: Store) -> int:
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditRecord)) or 0


def head(store: Store) -> tuple[int, str, int]:
    """(last seq, its hash, number of records); (0, GENESIS, 0) for an empty trail."""
    with store.sessions() as s:
        last = s.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
        n = s.scalar(select(func.count()).select_from(AuditRecord)) or 0
    return (last[0], last[1], n) if last else (0, GENESIS, 0)


def export(store: Store, stream) -> int:
    """JSON lines, one record each, with its hashes: what a court or an auditor receives."""
    n = 0
    for r in iter_records(store):
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)
        stream.write(json.dumps({"id": r.id, "seq": r.seq, "at": at.isoformat(), "actor": r.actor,
                                 "action": r.action, "object_type": r.object_type, "object_id": r.object_id,
                                 "detail": r.detail, "note": r.note, "version": r.version or 1,
                                 "prev_hash": r.prev_hash, "hash": r.hash}, sort_keys=True) + "\n")
        n += 1
    return n


# ---------------------------------------------------------------------------------------------- checkpoints


def witness_path(settings) -> Path:
    p = getattr(settings, "audit_witness", None)
    return Path(p) if p else Path(settings.data_dir) / "audit" / "witness.jsonl"


def _checkpoint_body(seq: int, hash_: str, records: int, at: datetime, key_id: str) -> dict:
    return {"kind": CHECKPOINT_KIND, "seq": seq, "hash": hash_, "records": records, "at": _ts(at), "key_id": key_id}


def _signing(settings):
    from vigie.sharing import keys

    key = keys.signing_key(settings)
    pub = base64.b64encode(keys.raw_public(key.public_key())).decode()
    return key, pub, keys.key_id(pub)


def checkpoint(store: Store, settings, *, witness: Path | None = None, now: datetime | None = None) -> dict:
    """Sign the chain's head now, store the checkpoint and append it to the witness file (0600). Returns it."""
    from vigie.sharing.keys import canonical

    key, pub, kid = _signing(settings)
    seq, h, n = head(store)
    at = now or datetime.now(UTC)
    body = _checkpoint_body(seq, h, n, at, kid)
    sig = base64.b64encode(key.sign(canonical(body))).decode()
    with store.session() as s:
        s.add(AuditCheckpoint(seq=seq, hash=h, records=n, at=at, key_id=kid, signature=sig))
    doc = {**body, "signature": sig, "public_key": pub}
    path = Path(witness) if witness else witness_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(doc, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return doc


def checkpoint_if_due(store: Store, settings, *, now: datetime | None = None) -> dict | None:
    """A checkpoint when the head moved and the last one is older than `audit_checkpoint_minutes`."""
    minutes = float(getattr(settings, "audit_checkpoint_minutes", 60) or 0)
    if minutes <= 0:
        return None
    now = now or datetime.now(UTC)
    with store.sessions() as s:
        last = s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).first()
    seq, _h, _n = head(store)
    if last is not None:
        at = last.at if last.at.tzinfo else last.at.replace(tzinfo=UTC)
        if last.seq == seq or (now - at).total_seconds() < minutes * 60:
            return None
    elif seq == 0:
        return None
    return checkpoint(store, settings, now=now)


def read_witness(path: Path) -> list[dict]:
    """Checkpoints from a witness file (JSON lines); unreadable lines are reported by verify as such."""
    out = []
    if not Path(path).exists():
        return out
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            d["_line"] = i
            out.append(d)
        except ValueError:
            out.append({"_line": i, "_bad": True})
    return out


def _signature_ok(cp: dict, public_keys: dict[str, str]) -> bool:
    from vigie.sharing.keys import canonical, load_public_key

    pub = public_keys.get(cp.get("key_id", ""))
    if pub is None:
        return False
    try:
        body = _checkpoint_body(int(cp["seq"]), str(cp["hash"]), int(cp["records"]),
                                datetime.strptime(cp["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
                                str(cp["key_id"]))
        load_public_key(pub).verify(base64.b64decode(cp["signature"]), canonical(body))
        return True
    except Exception:  # noqa: BLE001 - any failure is a bad signature
        return False


# ---------------------------------------------------------------------------------------------- verifying


@dataclass
class Problem:
    #: edited | deleted | inserted | reordered | broken_link | truncated | rewritten | emptied | bad_checkpoint
    code: str
    seq: int | None
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "seq": self.seq, "message": self.message}


@dataclass
class Verification:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None
    last_hash: str | None = None
    code: str | None = None
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "code": self.code, "last_hash": self.last_hash, "checkpoints": self.checkpoints,
                "problems": [p.as_dict() for p in self.problems]}


MAX_PROBLEMS = 100


def _seq_of_hash(store: Store, h: str) -> int | None:
    with store.sessions() as s:
        return s.scalar(select(AuditRecord.seq).where(AuditRecord.hash == h).limit(1))


def verify(store: Store, settings=None, *, witness: Path | None = None, public_key: str | None = None
           ) -> Verification:
    """Walk the chain (every record's hash recomputed, every link checked, no gap in seq), then check it
    against every checkpoint known: the database's and, with `settings` or `witness`, the witness file's.

    Says what was done where: `edited` (a record's content changed), `deleted` (records missing), `inserted`
    (a record that the next one does not link past), `reordered`, `broken_link`, `truncated` (the tail a
    checkpoint saw is gone), `emptied`, `rewritten` (the chain was recomputed: a checkpoint's hash differs),
    `bad_checkpoint` (a checkpoint whose signature does not verify)."""
    problems: list[Problem] = []
    hashes_at: dict[int, str] = {}
    prev, n, expected, prev_prev = GENESIS, 0, 1, None
    v2_seen = False
    for r in iter_records(store):
        n += 1
        if len(problems) >= MAX_PROBLEMS:
            break
        if r.seq != expected:
            problems.append(Problem("deleted", r.seq, f"record(s) {expected} to {r.seq - 1} are missing"))
        elif r.prev_hash != prev:
            if prev_prev is not None and r.prev_hash == prev_prev:
                problems.append(Problem("inserted", r.seq - 1, f"record {r.seq - 1} was inserted: record {r.seq} "
                                        "links to the one before it"))
            else:
                at = _seq_of_hash(store, r.prev_hash)
                if at is not None and at != r.seq - 1:
                    problems.append(Problem("reordered", r.seq, f"record {r.seq} links to record {at}, not to "
                                            f"record {r.seq - 1}: records were reordered"))
                else:
                    problems.append(Problem("broken_link", r.seq, "does not link to the record before it"))
        version = r.version or 1
        if version >= 2:
            v2_seen = True
        elif v2_seen:
            problems.append(Problem("edited", r.seq, "its hash version was lowered after newer records"))
        if _hash_of(r) != r.hash:
            problems.append(Problem("edited", r.seq, "its content was changed after it was written"))
        hashes_at[r.seq] = r.hash
        prev_prev, prev, expected = prev, r.hash, r.seq + 1
    last_seq = expected - 1
    # Checkpoints: the database's, and the witness's (which the database cannot rewrite).
    cps: list[dict] = []
    with store.sessions() as s:
        for c in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
            cps.append({"seq": c.seq, "hash": c.hash, "records": c.records,
                        "at": _ts(c.at), "key_id": c.key_id, "signature": c.signature, "_from": "database"})
    wpath = Path(witness) if witness else (witness_path(settings) if settings is not None else None)
    public_keys: dict[str, str] = {}
    if public_key:
        from vigie.sharing.keys import key_id

        public_keys[key_id(public_key)] = public_key
    if settings is not None:
        try:
            _k, pub, kid = _signing(settings)
            public_keys.setdefault(kid, pub)
        except Exception:  # noqa: BLE001 - no key: checkpoints are checked against the ones given
            pass
    if wpath is not None:
        for d in read_witness(wpath):
            if d.get("_bad"):
                problems.append(Problem("bad_checkpoint", None, f"witness line {d['_line']} is not JSON"))
                continue
            if not public_key and d.get("public_key") and d.get("key_id") not in public_keys and not settings:
                public_keys[d["key_id"]] = d["public_key"]
            cps.append({**d, "_from": f"witness line {d['_line']}"})
    for cp in cps:
        if public_keys and not _signature_ok(cp, public_keys):
            problems.append(Problem("bad_checkpoint", cp.get("seq"), f"checkpoint ({cp['_from']}) has a signature "
                                    "that does not verify with this instance's key"))
            continue
        seq, h = int(cp["seq"]), cp["hash"]
        if seq == 0:
            continue
        if n == 0:
            problems.append(Problem("emptied", seq, f"the trail is empty but a checkpoint ({cp['_from']}) saw "
                                    f"{cp['records']} record(s) up to {seq}"))
        elif seq > last_seq:
            problems.append(Problem("truncated", last_seq + 1, f"records {last_seq + 1} to {seq} are gone: a "
                                    f"checkpoint ({cp['_from']}) saw the trail reach {seq}"))
        elif seq in hashes_at and hashes_at[seq] != h:
            problems.append(Problem("rewritten", seq, f"record {seq} has another hash than the checkpoint "
                                    f"({cp['_from']}) signed: the chain was rewritten"))
    # One problem may be seen twice (from the database and the witness): keep the first of each.
    seen, uniq = set(), []
    for p in problems:
        k = (p.code, p.seq)
        if k not in seen:
            seen.add(k)
            uniq.append(p)
    uniq.sort(key=lambda p: (p.seq is None, p.seq or 0))
    if uniq:
        first = uniq[0]
        return Verification(False, n, first.seq, first.message, prev, first.code, len(cps), uniq)
    return Verification(True, n, last_hash=prev, checkpoints=len(cps))
