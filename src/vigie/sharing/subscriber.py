"""The subscriber's side: subscriptions to partners' published banks, and `sync`.

`sync` pulls signed batches until the partner has nothing more, and for each batch: checks the
signature against the publisher key the subscription was configured with (`bad_signature`
otherwise), checks the batch itself (`bad_batch`: another key id, another bank, a cursor that
does not continue from ours or goes backwards, a malformed or stale entry), then applies it in
one transaction with the new cursor. A refused batch changes nothing; the refusal is written to
the subscription's `last_error` and to the audit log.

Applied changes: "add" creates the entry in the local bank (or updates its category, tags and
external id), with `added_by = "sharing:<publisher>"` and `extra.provenance` = publisher, key id,
original id at the publisher, time of the change there and time received; "remove" tombstones
the local copy (never matches again). A local tombstone made by a person stays: only a tombstone
made by this publisher is revived by its later "add".

A partner's answer is data from outside: an answer that is not JSON, too large (`MAX_ANSWER`),
nested past any reason (deep nesting would exhaust the parser's recursion), or that breaks anything
later, is refused as `bad_answer`, written to that subscription's `last_error` and the audit log,
and `sync_all` goes on with the next partner. Nothing a partner sends can stop the others' syncs.

The API key this instance holds at the partner is sealed with the media key (`vigie.sealed`): the
database never holds it in clear, and `subscribe` refuses (`no_media_key`) without a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from vigie import audit
from vigie.banks.records import EntryData
from vigie.banks.service import _bank, _row, create_bank, validate_entry
from vigie.banks.verdict import Verdict
from vigie.errors import Conflict, InvalidHash, NotFound, UsageError, VigieError
from vigie.sharing import SharingError, keys
from vigie.store.db import Store
from vigie.store.models import Entry, utcnow
from vigie.store.sharing_models import Subscription

PATH = "/api/v1/sharing/changes"
#: A batch signed longer ago than this (or this far in the future) is refused: a replayed old
#: (empty) batch cannot hide newer withdrawals.
MAX_AGE = timedelta(minutes=15)
MAX_BATCHES = 100_000
#: The largest answer read from a partner (a batch of `feed.MAX_LIMIT` entries is far smaller).
MAX_ANSWER = 32 * 2**20
#: Deepest nesting accepted in a partner's answer: a batch is 4 levels deep; verdicts add a few.
MAX_DEPTH = 32
SEALED_AT = "subscriptions.api_key"


@dataclass
class SyncResult:
    name: str
    ok: bool = True
    batches: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    cursor: int = 0
    error: dict | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "batches": self.batches, "added": self.added,
                "updated": self.updated, "removed": self.removed, "cursor": self.cursor, "error": self.error}


@dataclass
class _Applied:
    added: int = 0
    updated: int = 0
    removed: int = 0
    seen: list = field(default_factory=list)


def subscribe(store: Store, name: str, url: str, remote_bank: str, local_bank: str, api_key: str,
              publisher_key_b64: str, *, by: str | None = None) -> dict:
    """Record a subscription (the local bank is made when missing). The API key is stored sealed with the
    media key (`vigie.sealed`; `no_media_key` without one): see docs/sharing.md."""
    from vigie import sealed
    name = name.strip()
    if not name or len(name) > 200:
        raise UsageError("a subscription name is 1 to 200 characters", code="bad_name")
    if not url.startswith(("http://", "https://")):
        raise UsageError("the partner's URL starts with https:// (or http:// on loopback)")
    kid = keys.key_id(publisher_key_b64)  # checks it is a key
    sealed_key = sealed.seal(store.settings, api_key.strip(), SEALED_AT, required=True)
    with store.session() as s:
        if s.scalar(select(Subscription.id).where(Subscription.name == name)) is not None:
            raise Conflict(f"a subscription named {name!r} exists already")
    try:
        create_bank(store, local_bank, description=f"received from {url} ({remote_bank})", source=url)
    except Conflict:
        pass
    with store.session() as s:
        sub = Subscription(name=name, url=url.rstrip("/"), remote_bank=remote_bank, local_bank=local_bank,
                           api_key=sealed_key, publisher_key=publisher_key_b64.strip(), cursor=0, created_by=by)
        s.add(sub)
        s.flush()
        audit.record(store, by or "-", "sharing.subscribe", "subscription", name,
                     {"url": url, "remote_bank": remote_bank, "local_bank": local_bank, "key_id": kid}, session=s)
        return _info(sub)


def _info(sub: Subscription) -> dict:
    return {"name": sub.name, "url": sub.url, "remote_bank": sub.remote_bank, "local_bank": sub.local_bank,
            "key_id": keys.key_id(sub.publisher_key), "publisher": sub.publisher, "cursor": sub.cursor,
            "last_sync_at": sub.last_sync_at.isoformat() if sub.last_sync_at else None, "last_error": sub.last_error}


def list_subscriptions(store: Store) -> list[dict]:
    with store.sessions() as s:
        return [_info(x) for x in s.scalars(select(Subscription).order_by(Subscription.name))]


def unsubscribe(store: Store, name: str, *, by: str | None = None) -> None:
    """Forget a subscription (the entries received stay in the local bank)."""
    with store.session() as s:
        sub = _sub(s, name)
        s.delete(sub)
        audit.record(store, by or "-", "sharing.unsubscribe", "subscription", name, {}, session=s)


def _sub(s, name: str) -> Subscription:
    sub = s.scalar(select(Subscription).where(Subscription.name == name))
    if sub is None:
        raise NotFound(f"no subscription named {name!r}")
    return sub


def _parse_time(v) -> datetime:
    if not isinstance(v, str):
        raise ValueError("not a time")
    dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def check_batch(batch: dict, sub_key_id: str, remote_bank: str, cursor: int, *, now: datetime | None = None) -> None:
    """SharingError `bad_batch` unless `batch` is the continuation of our cursor on the bank we asked for."""
    def bad(why: str):
        raise SharingError(f"batch refused: {why}", code="bad_batch")

    now = now or datetime.now(UTC)
    if batch.get("v") != 1:
        bad("unknown version")
    if batch.get("key_id") != sub_key_id:
        bad("it names another publisher key")
    if not isinstance(batch.get("publisher"), str) or not batch["publisher"]:
        bad("no publisher")
    if batch.get("bank") != remote_bank:
        bad(f"it is for bank {batch.get('bank')!r}, not {remote_bank!r}")
    cf, ct = batch.get("cursor_from"), batch.get("cursor_to")
    if type(cf) is not int or type(ct) is not int or cf != cursor or ct < cf:
        bad(f"cursor {cf!r}..{ct!r} does not continue from {cursor}")
    try:
        signed = _parse_time(batch.get("signed_at"))
    except ValueError:
        bad("no signing time")
    if abs(now - signed) > MAX_AGE:
        bad(f"signed at {batch.get('signed_at')}: too old or in the future (a replay?)")
    entries = batch.get("entries")
    if not isinstance(entries, list) or not isinstance(batch.get("more"), bool):
        bad("no entries list")
    prev = cf
    for it in entries:
        if not isinstance(it, dict) or it.get("op") not in ("add", "remove"):
            bad("an entry with no valid op")
        seq = it.get("seq")
        if type(seq) is not int or not prev < seq <= ct:
            bad(f"entry seq {seq!r} out of order")
        prev = seq
        if not isinstance(it.get("signal"), str) or not isinstance(it.get("value"), str):
            bad("an entry with no signal or value")
        if not isinstance(it.get("tags", []), list) or not isinstance(it.get("verdict") or {}, dict):
            bad("an entry with malformed tags or verdict")


def _apply(s, sub: Subscription, batch: dict, received_at: datetime) -> _Applied:
    publisher = batch["publisher"]
    by = f"sharing:{publisher}"
    bank_id = _bank(s, sub.local_bank).id
    out = _Applied()
    for it in batch["entries"]:
        try:
            verdict = Verdict.from_dict(it.get("verdict")) if it["op"] == "add" else None
            ed = validate_entry(EntryData(it["signal"], it["value"], verdict=verdict,
                                          tags=[str(t) for t in it.get("tags") or []],
                                          external_id=it.get("external_id")))
        except (InvalidHash, VigieError, TypeError, ValueError) as exc:
            raise SharingError(f"batch refused: entry seq {it.get('seq')}: {exc}", code="bad_batch") from None
        row = _row(bank_id, ed, by, received_at)
        cur = s.scalar(select(Entry).where(Entry.bank_id == bank_id, Entry.signal == row["signal"],
                                           Entry.value == row["value"]))
        if it["op"] == "remove":
            if cur is not None and cur.removed_at is None:
                cur.removed_at, cur.removed_by = received_at, by
                cur.removed_reason = f"withdrawn by {publisher} (their entry {it.get('id')})"
                out.removed += 1
            continue
        prov = {"publisher": publisher, "key_id": batch["key_id"], "original_id": it.get("id"),
                "changed_at": it.get("at"), "received_at": received_at.isoformat()}
        if cur is None:
            row["extra"] = {"provenance": prov}
            row["added_at"] = received_at
            s.add(Entry(**row))
            out.added += 1
            continue
        if cur.removed_at is not None:
            if cur.removed_by != by:  # removed here by a person: stays removed
                continue
            cur.removed_at = cur.removed_by = cur.removed_reason = None
        cur.verdict, cur.tags, cur.external_id = row["verdict"], row["tags"], row["external_id"]
        cur.extra = {**(cur.extra or {}), "provenance": prov}
        out.updated += 1
    if out.added or out.updated:  # in the sync's transaction: the re-match of what waits cannot be lost
        from vigie.banks import changes

        changes.note(s, "sync", sub.local_bank)
    return out


def _depth_ok(obj, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests at most `limit` deep (walked with a stack, never recursing).
    The parser itself stops far deeper (RecursionError, refused as `bad_answer`); this keeps what is
    applied to the store well inside what the store's JSON writer accepts."""
    stack = [(obj, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            if d > limit:
                return False
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return True


def _fetch(client: httpx.Client, sub: Subscription, cursor: int, limit: int, api_key: str) -> dict:
    import json

    try:
        with client.stream("GET", f"{sub.url}{PATH}",
                           params={"bank": sub.remote_bank, "cursor": cursor, "limit": limit},
                           headers={"Authorization": f"Bearer {api_key}"}) as r:
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER:
                    raise SharingError(f"{sub.url} answered more than {MAX_ANSWER // 2**20} MiB", code="bad_answer")
    except httpx.HTTPError as exc:
        raise SharingError(f"could not reach {sub.url}: {exc}", code="sync_failed") from None
    body = bytes(body)
    if r.status_code != 200:
        try:
            err = json.loads(body[:4096])["error"]
            detail = f"{str(err['code'])[:100]}: {str(err['message'])[:200]}"
        except Exception:  # noqa: BLE001 - any non-Vigie answer
            detail = body[:200].decode("utf-8", "replace")
        raise SharingError(f"{sub.url} answered {r.status_code} ({detail})", code="sync_failed")
    try:
        doc = json.loads(body)
    except RecursionError:
        raise SharingError(f"{sub.url} answered JSON nested too deep to read", code="bad_answer") from None
    except ValueError:
        raise SharingError(f"{sub.url} did not answer JSON", code="bad_answer") from None
    if not isinstance(doc, dict):
        raise SharingError(f"{sub.url} did not answer a JSON object", code="bad_answer")
    if not _depth_ok(doc):
        raise SharingError(f"{sub.url} answered JSON nested deeper than {MAX_DEPTH}", code="bad_answer")
    return doc


def sync(store: Store, settings, name: str, *, client: httpx.Client | None = None, limit: int = 1000,
         now=None) -> SyncResult:
    """Pull and apply every new batch of subscription `name`; see the module. Never raises for the
    partner's answers: the result (and `last_error`) says what went wrong."""
    with store.sessions() as s:
        sub = _sub(s, name)
        s.expunge(sub)
    res = SyncResult(name=name, cursor=sub.cursor)
    own = client is None
    client = client or httpx.Client(timeout=60, follow_redirects=False)
    try:
        from vigie import sealed

        kid = keys.key_id(sub.publisher_key)
        api_key = sealed.unseal(settings or store.settings, sub.api_key, SEALED_AT)
        for _ in range(MAX_BATCHES):
            doc = _fetch(client, sub, res.cursor, limit, api_key)
            try:
                batch = keys.verify(doc, sub.publisher_key)
            except RecursionError:
                raise SharingError("the signed batch is nested too deep to read", code="bad_answer") from None
            if not _depth_ok(batch):
                raise SharingError(f"the signed batch nests deeper than {MAX_DEPTH}", code="bad_answer")
            check_batch(batch, kid, sub.remote_bank, res.cursor, now=now() if callable(now) else None)
            received = utcnow()
            with store.session() as s:
                row = _sub(s, name)
                if row.cursor != res.cursor:
                    raise SharingError("another sync of this subscription ran meanwhile", code="sync_failed")
                applied = _apply(s, row, batch, received)
                row.cursor, row.publisher, row.last_sync_at, row.last_error = (batch["cursor_to"], batch["publisher"],
                                                                                received, None)
                if batch["entries"]:
                    audit.record(store, f"sharing:{batch['publisher']}", "sharing.sync", "subscription", name,
                                 {"cursor_from": batch["cursor_from"], "cursor_to": batch["cursor_to"],
                                  "added": applied.added, "updated": applied.updated, "removed": applied.removed},
                                 session=s)
            res.batches += 1
            res.added += applied.added
            res.updated += applied.updated
            res.removed += applied.removed
            res.cursor = batch["cursor_to"]
            if not batch["more"] or batch["cursor_to"] == batch["cursor_from"]:
                break
    except Exception as exc:  # noqa: BLE001 - whatever a partner sends, it is recorded here and the others go on
        if not isinstance(exc, VigieError):
            exc = SharingError(f"the answer of {sub.url} could not be used ({type(exc).__name__}: "
                               f"{str(exc)[:200]})", code="bad_answer")
        res.ok, res.error = False, exc.as_dict()
        with store.session() as s:
            row = _sub(s, name)
            row.last_error = {**exc.as_dict(), "at": utcnow().isoformat()}
            audit.record(store, "-", "sharing.refused" if exc.code in ("bad_signature", "bad_batch")
                         else "sharing.sync_failed", "subscription", name, exc.as_dict(), session=s)
    finally:
        if own:
            client.close()
    from vigie.banks.service import _rematch

    _rematch(store)  # what the partner's entries now make known leaves the queue (vigie.rematch)
    return res


def sync_all(store: Store, settings, *, client: httpx.Client | None = None) -> list[SyncResult]:
    """`sync` every subscription, in name order; one failing does not stop the others."""
    with store.sessions() as s:
        names = list(s.scalars(select(Subscription.name).order_by(Subscription.name)))
    out = []
    for n in names:
        try:
            out.append(sync(store, settings, n, client=client))
        except Exception as exc:  # noqa: BLE001 - the store failing under one partner never skips the next
            out.append(SyncResult(name=n, ok=False, error={"code": "sync_failed",
                                                           "message": f"{type(exc).__name__}: {str(exc)[:200]}"}))
    return out

