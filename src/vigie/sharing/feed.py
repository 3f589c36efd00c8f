"""The publisher's side: which banks are published, and their change feed.

The feed is a sequence of changes numbered by this instance (`seq`, per published bank): each
refresh compares the entries of the bank changed since the last refresh (a margin earlier, see
`RESCAN_SECONDS`) to what was last announced (`shared_changes`), and gives every entry whose
shared state differs the next number. The cursor a partner keeps is the last number it applied,
so it is strictly monotonic, has no ties, and a change written by any code path (import, merge,
a category change, `remove_entry`) reaches the feed as long as it bumps `Entry.updated_at`
(the model's onupdate does so for every ORM or Core update).

An entry's shared state: its signal, value, verdict (category), tags and external id; a tombstone
is announced as op "remove". A disabled or quarantined entry is withheld (not announced) until it
is live again; an entry removed before it was ever announced is never announced.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from vigie import audit
from vigie.banks.service import _bank, entry_data
from vigie.errors import NotFound
from vigie.sharing import keys
from vigie.store.db import Store
from vigie.store.models import Entry, utcnow
from vigie.store.sharing_models import PublishedBank, SharedChange

#: How far before the last refresh the next one looks again: covers writers whose transaction began
#: (and stamped `updated_at`) before a refresh and committed after it. An import longer than this
#: is caught by `refresh(..., full=True)`.
RESCAN_SECONDS = 3600
MAX_LIMIT = 5000
CHUNK = 2000


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def publisher_name(settings) -> str:
    """The name this instance signs batches with: the setting `sharing_name`, else `vigie-<key id>`."""
    name = getattr(settings, "sharing_name", None)
    return name or f"vigie-{keys.key_id(keys.public_key_b64(settings))}"


def _published(s, bank: str) -> PublishedBank | None:
    b = _bank(s, bank)
    return s.scalar(select(PublishedBank).where(PublishedBank.bank_id == b.id))


def publish(store: Store, bank: str, *, by: str | None = None) -> dict:
    """Offer `bank` to partners (idempotent). Partners need an API key with the scope `banks:<bank>`."""
    with store.session() as s:
        b = _bank(s, bank)
        pb = s.scalar(select(PublishedBank).where(PublishedBank.bank_id == b.id))
        if pb is None:
            pb = PublishedBank(bank_id=b.id, published_by=by, last_seq=0)
            s.add(pb)
            s.flush()
            audit.record(store, by or "-", "sharing.publish", "bank", bank, {}, session=s)
        return {"bank": bank, "published_at": _iso(pb.published_at), "last_seq": pb.last_seq}


def unpublish(store: Store, bank: str, *, by: str | None = None) -> bool:
    """Stop offering `bank` (its feed is dropped; publishing again starts a new feed from 0)."""
    with store.session() as s:
        pb = _published(s, bank)
        if pb is None:
            return False
        s.delete(pb)
        audit.record(store, by or "-", "sharing.unpublish", "bank", bank, {}, session=s)
        return True


def published_banks(store: Store) -> list[str]:
    from vigie.store.models import Bank

    with store.sessions() as s:
        return list(s.scalars(select(Bank.name).join(PublishedBank, PublishedBank.bank_id == Bank.id)
                              .order_by(Bank.name)))


def _state(e: Entry) -> tuple[str, dict] | None:
    """(op, shared fields) of an entry, or None while it is withheld."""
    d = entry_data(e)
    if e.removed_at is not None:
        return "remove", {"signal": d.signal, "value": d.value}
    if e.disabled or e.quarantined_at is not None:
        return None
    return "add", {"signal": d.signal, "value": d.value, "verdict": d.verdict.as_dict() if d.verdict else None,
                   "tags": sorted(d.tags), "external_id": d.external_id}


def _fingerprint(op: str, fields: dict) -> str:
    return hashlib.sha256(keys.canonical({"op": op, **fields})).hexdigest()


def refresh(store: Store, bank: str, *, full: bool = False, now: datetime | None = None) -> int:
    """Number the changes of `bank` since the last refresh; returns how many got a new number."""
    now = now or utcnow()
    with store.session() as s:
        pb = _published(s, bank)
        if pb is None:
            raise NotFound(f"bank {bank!r} is not published")
        # Take the write lock first (a row lock on PostgreSQL, the database lock on SQLite): refreshes run
        # one at a time, so numbers are never given twice.
        s.execute(update(PublishedBank).where(PublishedBank.id == pb.id).values(last_seq=PublishedBank.last_seq))
        s.refresh(pb)
        since = None if full or pb.scanned_through is None else pb.scanned_through - timedelta(seconds=RESCAN_SECONDS)
        seq, numbered, last_id = pb.last_seq, 0, 0
        while True:
            q = select(Entry).where(Entry.bank_id == pb.bank_id, Entry.id > last_id).order_by(Entry.id).limit(CHUNK)
            if since is not None:
                q = q.where(Entry.updated_at >= since)
            chunk = list(s.scalars(q))
            if not chunk:
                break
            last_id = chunk[-1].id
            known = {c.entry_id: c for c in s.scalars(select(SharedChange).where(
                SharedChange.published_bank_id == pb.id, SharedChange.entry_id.in_([e.id for e in chunk])))}
            for e in chunk:
                st = _state(e)
                if st is None:
                    continue
                op, fields = st
                cur = known.get(e.id)
                if cur is None and op == "remove":
                    continue
                fp = _fingerprint(op, fields)
                if cur is not None and cur.fingerprint == fp:
                    continue
                seq += 1
                numbered += 1
                if cur is None:
                    s.add(SharedChange(published_bank_id=pb.id, entry_id=e.id, seq=seq, op=op, signal=e.signal,
                                       value=e.value, fingerprint=fp))
                else:
                    cur.seq, cur.op, cur.fingerprint = seq, op, fp
            s.flush()
            s.expunge_all()
            pb = s.get(PublishedBank, pb.id)
        pb.last_seq = seq
        pb.scanned_through = now
    return numbered


def changes(store: Store, bank: str, cursor: int = 0, limit: int = 1000, *, settings=None) -> dict:
    """The unsigned batch of the changes of `bank` after `cursor`, at most `limit` (see docs/sharing.md)."""
    settings = settings or store.settings
    limit = max(1, min(int(limit), MAX_LIMIT))
    cursor = max(0, int(cursor))
    refresh(store, bank)
    with store.sessions() as s:
        pb = _published(s, bank)
        if pb is None:
            raise NotFound(f"bank {bank!r} is not published")
        rows = s.execute(select(SharedChange, Entry).outerjoin(Entry, Entry.id == SharedChange.entry_id)
                         .where(SharedChange.published_bank_id == pb.id, SharedChange.seq > cursor)
                         .order_by(SharedChange.seq).limit(limit + 1)).all()
        more = len(rows) > limit
        items = []
        for ch, e in rows[:limit]:
            st = _state(e) if e is not None else ("remove", {"signal": ch.signal, "value": ch.value})
            if st is None or st[0] != ch.op:  # changed since the refresh: the next refresh numbers it again
                continue
            op, fields = st
            at = None if e is None else e.removed_at if op == "remove" else e.updated_at
            item = {"seq": ch.seq, "op": op, "id": ch.entry_id, "key": ch.value, "at": _iso(at), **fields}
            items.append(item)
        cursor_to = rows[:limit][-1][0].seq if rows else cursor
        pub = keys.public_key_b64(settings)
    return {"v": 1, "publisher": publisher_name(settings), "key_id": keys.key_id(pub), "bank": bank,
            "cursor_from": cursor, "cursor_to": cursor_to, "more": more,
            "entries": items, "signed_at": _iso(utcnow())}


def signed_changes(store: Store, bank: str, cursor: int = 0, limit: int = 1000, *, settings=None) -> dict:
    """`changes`, signed with this instance's key: what `GET /api/v1/sharing/changes` answers."""
    settings = settings or store.settings
    return keys.sign(settings, changes(store, bank, cursor, limit, settings=settings))
