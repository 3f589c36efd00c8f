"""Banks and their entries: create, list, import, export, remove, hygiene.

Every command and (later) every button of the web app calls these functions; they
take the store they work on, and nothing else global.

Import is atomic: rows are written in batches inside one transaction, and a file with
bad rows is rolled back whole (with every bad row's line and reason) unless
`skip_invalid`, which keeps the good rows and reports the bad ones. An entry is keyed
by (bank, signal, value): a duplicate merges into the existing entry instead of
doubling it, and a tombstone (a removed entry) is never revived by an import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from vigie.banks import changes
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import Verdict
from vigie.errors import Conflict, FormatError, InvalidHash, NotFound, RowError, UsageError
from vigie.signals import get_signal
from vigie.store.db import Store
from vigie.store.models import Bank, Entry, utcnow

BATCH = 5000
#: match: what a scan looks for; suppression: known false positives, which cancel other banks' matches;
#: known_good: files known to be harmless (NIST NSRL), which a scan skips by digest without decoding them.
KINDS = ("match", "suppression", "known_good")
MAX_LISTED_ERRORS = 1000


@dataclass
class BankInfo:
    id: int
    name: str
    description: str
    source: str
    enabled: bool
    kind: str
    pdq_threshold: int | None
    default_verdict: Verdict | None
    meta: dict
    created_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    review_target: bool = False

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "source": self.source,
                "enabled": self.enabled, "kind": self.kind, "pdq_threshold": self.pdq_threshold,
                "default_verdict": self.default_verdict.as_dict() if self.default_verdict else None,
                "counts": self.counts, "created_at": self.created_at.isoformat() if self.created_at else None,
                "review_target": self.review_target}

    @classmethod
    def of(cls, b: Bank) -> BankInfo:
        return cls(b.id, b.name, b.description, b.source, b.enabled, b.kind, b.pdq_threshold,
                   Verdict.from_dict(b.default_verdict), dict(b.meta or {}), b.created_at,
                   review_target=bool(b.review_target))


@dataclass
class ImportReport:
    bank: str
    read: int = 0
    added: int = 0
    merged: int = 0
    tombstoned: int = 0
    skipped: list[RowError] = field(default_factory=list)
    skipped_count: int = 0

    def as_dict(self) -> dict:
        return {"bank": self.bank, "read": self.read, "added": self.added, "merged": self.merged,
                "kept_removed": self.tombstoned, "skipped": self.skipped_count,
                "errors": [e.as_dict() for e in self.skipped]}


def _bank(session, name: str) -> Bank:
    b = session.scalar(select(Bank).where(Bank.name == name))
    if b is None:
        raise NotFound(f"no bank named {name!r}", code="bank_not_found")
    return b


def create_bank(store: Store, name: str, *, description: str = "", source: str = "",
                default_verdict: Verdict | None = None, kind: str = "match",
                pdq_threshold: int | None = None, enabled: bool = True, meta: dict | None = None,
                review_target: bool = False) -> BankInfo:
    """A new bank. `review_target`: whether analysts' decisions may go into it (see `set_review_target`)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise UsageError("a bank name is 1 to 200 characters", code="bad_name")
    if kind not in KINDS:
        raise UsageError("kind is match, suppression or known_good", code="bad_kind")
    if pdq_threshold is not None and not 0 <= pdq_threshold <= 128:
        raise UsageError("pdq_threshold is 0 to 128", code="bad_threshold")
    with store.session() as s:
        if s.scalar(select(Bank.id).where(Bank.name == name)) is not None:
            raise Conflict(f"a bank named {name!r} exists already", code="bank_exists")
        b = Bank(name=name, description=description, source=source, kind=kind, enabled=enabled,
                 pdq_threshold=pdq_threshold, meta=meta or {}, review_target=review_target,
                 default_verdict=default_verdict.as_dict() if default_verdict else None)
        s.add(b)
        s.flush()
        return BankInfo.of(b)


def update_bank(store: Store, name: str, **changes) -> BankInfo:
    allowed = {"description", "source", "enabled", "kind", "pdq_threshold", "default_verdict", "meta"}
    bad = set(changes) - allowed
    if bad:
        raise UsageError(f"cannot change {', '.join(sorted(bad))}")
    with store.session() as s:
        b = _bank(s, name)
        for k, v in changes.items():
            if k == "default_verdict":
                v = v.as_dict() if v else None
            setattr(b, k, v)
        if set(changes) & {"enabled", "kind", "pdq_threshold", "default_verdict"}:
            _note(s, "bank_update", name)
        s.flush()
        info = BankInfo.of(b)
    _rematch(store)
    return info


def _note(s, reason: str, bank: str | None) -> None:
    changes.note(s, reason, bank)


def _rematch(store: Store) -> None:
    """Re-match what waits now that a bank changed (vigie.rematch). The change is noted in its transaction, so
    a failure here is repaired by the next pass (worker round, queue listing, `vigie repair`)."""
    import logging

    from vigie import rematch

    try:
        rematch.ensure(store, store.settings)
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).exception("re-match after a bank change failed; it runs again later")


def set_review_target(store: Store, name: str, open_: bool, *, by: str) -> BankInfo:
    """Open a bank to analysts' review decisions, or close it (an admin's act, audited). Imported, partner and
    published banks are closed by default: a decision must never flow into a list someone else owns."""
    from vigie import audit

    with store.session() as s:
        b = _bank(s, name)
        before = bool(b.review_target)
        b.review_target = bool(open_)
        audit.record(store, by, "bank.review_target", "bank", name, {"from": before, "to": bool(open_)}, session=s)
        s.flush()
        return BankInfo.of(b)


def get_bank(store: Store, name: str) -> BankInfo:
    with store.sessions() as s:
        return BankInfo.of(_bank(s, name))


def list_banks(store: Store) -> list[BankInfo]:
    with store.sessions() as s:
        banks = [BankInfo.of(b) for b in s.scalars(select(Bank).order_by(Bank.name))]
        rows = s.execute(select(Entry.bank_id, Entry.signal, Entry.removed_at.is_(None), func.count())
                         .group_by(Entry.bank_id, Entry.signal, Entry.removed_at.is_(None))).all()
    by_id = {b.id: b for b in banks}
    for bank_id, signal, live, n in rows:
        c = by_id[bank_id].counts
        key = signal if live else "removed"
        c[key] = c.get(key, 0) + n
    return banks


def delete_bank(store: Store, name: str) -> None:
    with store.session() as s:
        s.delete(_bank(s, name))


def validate_entry(e: EntryData) -> EntryData:
    """Normalise signal and value; InvalidHash when they are wrong."""
    sig = get_signal(e.signal)
    e.signal = sig.name
    e.value = sig.normalise(e.value)
    return e


def valid_rows(rows, report):
    """The (line, entry) rows of an import that are entries with a valid signal and value, normalised; every
    other row is counted in `report` (the first MAX_LISTED_ERRORS listed with their code) and the import goes
    on without it. Shared by `import_entries` and the known-good bulk path (`vigie.banks.known_good`)."""
    for line, item in rows:
        if isinstance(item, EntryData):
            try:
                validate_entry(item)
            except InvalidHash as exc:
                item = RowError(line, exc.code, exc.message)
        if isinstance(item, RowError):
            report.skipped_count += 1
            if len(report.skipped) < MAX_LISTED_ERRORS:
                report.skipped.append(item)
            continue
        report.read += 1
        yield line, item


def _row(bank_id: int, e: EntryData, by: str | None, now=None) -> dict:
    now = now or utcnow()
    key = get_signal(e.signal).key(e.value)
    return {"bank_id": bank_id, "signal": e.signal, "value": key, "payload": e.value if key != e.value else None,
            "verdict": (e.verdict.as_dict() or None) if e.verdict else None, "tags": list(e.tags or []),
            "external_id": e.external_id, "note": e.note, "media_key": e.media_key,
            "extra": e.extra or None, "added_by": e.added_by or by, "added_at": e.added_at or now,
            "updated_at": now, "disabled": False,
            "removed_at": now if e.removed else None,
            "removed_by": (e.added_by or by) if e.removed else None,
            "removed_reason": None, "quarantined_at": None, "quarantine_reason": None}


def _upsert(session, rows: list[dict]) -> tuple[int, int, int]:
    """Insert new entries, merge into live ones, leave tombstones alone. Returns (added, merged, tombstoned).

    Insert first (ON CONFLICT DO NOTHING ... RETURNING tells which rows went in), then look up
    only the rows that collided: on a fresh list that is none, so a large import costs one
    multi-row INSERT per thousand rows and no lookups.
    """
    if not rows:
        return 0, 0, 0
    bank_id = rows[0]["bank_id"]
    ins = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(Entry.__table__)
    stmt = ins.on_conflict_do_nothing().returning(Entry.__table__.c.signal, Entry.__table__.c.value)
    inserted = {(sg, v) for sg, v in session.connection().execute(stmt, rows)}
    rest = [r for r in rows if (r["signal"], r["value"]) not in inserted]
    if not rest:
        return len(inserted), 0, 0
    existing: dict[tuple[str, str], Entry] = {}
    values = sorted({r["value"] for r in rest})
    for i in range(0, len(values), 900):
        for e in session.scalars(select(Entry).where(Entry.bank_id == bank_id, Entry.value.in_(values[i:i + 900]))):
            existing[(e.signal, e.value)] = e
    merged = tomb = 0
    for r in rest:
        cur = existing[(r["signal"], r["value"])]
        if cur.removed_at is not None:
            tomb += 1
            continue
        # A duplicate merges: a verdict, note or id it brings fills in or replaces; tags add up.
        merged += 1
        if r["verdict"] is not None:
            cur.verdict = r["verdict"]
        for k in ("note", "external_id", "media_key"):
            if r[k]:
                setattr(cur, k, r[k])
        if r["tags"]:
            cur.tags = sorted(set(cur.tags or []) | set(r["tags"]))
        if r["extra"]:
            cur.extra = {**(cur.extra or {}), **r["extra"]}
    return len(inserted), merged, tomb


def import_entries(store: Store, bank: str, rows: Iterable[tuple[int, EntryData | RowError]], *,
                   skip_invalid: bool = False, added_by: str | None = None,
                   progress=None) -> ImportReport:
    """Import rows (from a format reader) into `bank`, atomically; see the module docstring. A known-good bank
    (NIST NSRL: hundreds of millions of bare digests) takes the bulk path of `vigie.banks.known_good`."""
    with store.sessions() as s:
        kind = _bank(s, bank).kind
    if kind == "known_good":
        from vigie.banks import known_good

        return known_good.bulk_import(store, bank, rows, skip_invalid=skip_invalid, added_by=added_by,
                                      progress=progress)
    report = ImportReport(bank=bank)
    with store.session() as s:
        bank_id = _bank(s, bank).id
        pending: dict[tuple[str, str], dict] = {}
        now = utcnow()

        def flush():
            a, m, t = _upsert(s, list(pending.values()))
            report.added += a
            report.merged += m
            report.tombstoned += t
            pending.clear()

        for line, item in valid_rows(rows, report):
            key = (item.signal, item.value)
            row = _row(bank_id, item, added_by, now)
            if key in pending:  # duplicate inside the file: merge
                prev = pending[key]
                row["tags"] = sorted(set(prev["tags"]) | set(row["tags"]))
                row["verdict"] = row["verdict"] or prev["verdict"]
                report.merged += 1
            pending[key] = row
            if len(pending) >= BATCH:
                flush()
            if progress:
                progress(line)
        flush()
        if report.added or report.merged:
            _note(s, "import", bank)
        if report.skipped_count and not skip_invalid:
            raise FormatError(
                f"{report.skipped_count} bad row(s): nothing was imported (use --skip-invalid to import "
                f"the {report.read} good rows)", rows=report.skipped)
    if report.added or report.merged:
        _rematch(store)
    return report


def import_file(store: Store, bank: str, stream: BinaryIO, fmt: str, *, skip_invalid: bool = False,
                signal: str | None = None, added_by: str | None = None, progress=None) -> ImportReport:
    from vigie.banks.formats import get_format

    reader = get_format(fmt)(signal=signal)
    report = import_entries(store, bank, reader.read(stream), skip_invalid=skip_invalid, added_by=added_by,
                            progress=progress)
    if reader.bank_meta:
        with store.session() as s:
            b = _bank(s, bank)
            b.meta = {**(b.meta or {}), fmt: reader.bank_meta}
    return report


def add_entry(store: Store, bank: str, signal: str, value: str, *, verdict: Verdict | None = None,
              tags: list[str] | None = None, note: str | None = None, external_id: str | None = None,
              added_by: str | None = None) -> int:
    """Add one entry (or merge into the live one); returns its id. A tombstoned value stays removed."""
    e = validate_entry(EntryData(signal, value, verdict=verdict, tags=tags or [], note=note,
                                 external_id=external_id))
    with store.session() as s:
        bank_id = _bank(s, bank).id
        _, _, tomb = _upsert(s, [_row(bank_id, e, added_by)])
        if tomb:
            raise Conflict(f"{e.signal} {e.value} was removed from {bank!r}; restore it to add it again",
                           code="entry_removed")
        _note(s, "add", bank)
        eid = s.scalar(select(Entry.id).where(Entry.bank_id == bank_id, Entry.signal == e.signal,
                                              Entry.value == get_signal(e.signal).key(e.value)))
    _rematch(store)
    return eid


def _find(s, bank: str, value: str, signal: str | None) -> list[Entry]:
    b = _bank(s, bank)
    v = value.strip().lower().removeprefix("0x")
    if signal:
        sig = get_signal(signal)
        try:
            v = sig.key(sig.normalise(value))
        except InvalidHash:
            pass
    q = select(Entry).where(Entry.bank_id == b.id, Entry.value == v)
    if signal:
        q = q.where(Entry.signal == get_signal(signal).name)
    found = list(s.scalars(q))
    if not found:
        raise NotFound(f"no entry {value!r} in bank {bank!r}", code="entry_not_found")
    return found


def remove_entry(store: Store, bank: str, value: str, *, signal: str | None = None, by: str | None = None,
                 reason: str | None = None) -> int:
    """Tombstone the entry: it never matches again and no import brings it back. Returns how many."""
    with store.session() as s:
        n = 0
        for e in _find(s, bank, value, signal):
            if e.removed_at is None:
                e.removed_at, e.removed_by, e.removed_reason = utcnow(), by, reason
                n += 1
        return n


def restore_entry(store: Store, bank: str, value: str, *, signal: str | None = None) -> int:
    with store.session() as s:
        n = 0
        for e in _find(s, bank, value, signal):
            if e.removed_at is not None:
                e.removed_at = e.removed_by = e.removed_reason = None
                n += 1
        if n:
            _note(s, "restore", bank)
    if n:
        _rematch(store)
    return n


def set_disabled(store: Store, bank: str, value: str, disabled: bool, *, signal: str | None = None) -> int:
    with store.session() as s:
        found = _find(s, bank, value, signal)
        for e in found:
            e.disabled = disabled
        if not disabled:
            _note(s, "enable_entry", bank)
    if not disabled:
        _rematch(store)
    return len(found)


def release_quarantine(store: Store, entry_id: int) -> None:
    with store.session() as s:
        s.execute(update(Entry).where(Entry.id == entry_id).values(quarantined_at=None, quarantine_reason=None))
        _note(s, "quarantine_release", None)
    _rematch(store)


def entry_data(e: Entry) -> EntryData:
    return EntryData(signal=e.signal, value=e.payload or e.value, verdict=Verdict.from_dict(e.verdict),
                     tags=list(e.tags or []),
                     external_id=e.external_id, note=e.note, media_key=e.media_key, extra=dict(e.extra or {}),
                     added_by=e.added_by, added_at=e.added_at, removed=e.removed_at is not None)


def iter_entries(store: Store, bank: str, *, include_removed: bool = False, batch: int = 10_000
                 ) -> Iterator[EntryData]:
    """Stream a bank's entries in id order (no full list in memory)."""
    with store.sessions() as s:
        bank_id = _bank(s, bank).id
        last = 0
        while True:
            q = select(Entry).where(Entry.bank_id == bank_id, Entry.id > last).order_by(Entry.id).limit(batch)
            if not include_removed:
                q = q.where(Entry.removed_at.is_(None))
            chunk = list(s.scalars(q))
            if not chunk:
                return
            for e in chunk:
                yield entry_data(e)
            last = chunk[-1].id
            s.expunge_all()


def export_file(store: Store, bank: str, stream: BinaryIO, fmt: str, *, include_removed: bool = False,
                report: dict | None = None, **options) -> int:
    """Write a bank in format `fmt` (options: the format's, e.g. VICS version, profile, shape).
    `report`, when given, is filled with what the format could not carry (see BankFormat.report)."""
    from vigie.banks.formats import get_format

    info = get_bank(store, bank)
    writer = get_format(fmt)(**options)
    meta = BankMeta(info.name, info.description, info.source, info.default_verdict,
                    extra=dict(info.meta.get(fmt, {})))
    n = writer.write(iter_entries(store, bank, include_removed=include_removed), stream, bank=meta)
    if report is not None:
        report.update(writer.report())
    return n


@dataclass
class MediaAdded:
    """What `add_media` put in a bank for one file."""

    path: str
    entries: dict[str, int] = field(default_factory=dict)
    variants: list[str] = field(default_factory=list)
    error: RowError | None = None

    def as_dict(self) -> dict:
        d = {"path": self.path, "entries": self.entries, "variants": self.variants}
        if self.error:
            d["error"] = {"code": self.error.code, "message": self.error.message}
        return d


def add_media(store: Store, bank: str, data: bytes, settings, *, path: str = "<bytes>",
              verdict: Verdict | None = None, tags: list[str] | None = None, note: str | None = None,
              added_by: str | None = None) -> MediaAdded:
    """Add a picture or video Vigie holds (its own decision, a scan) to a bank: every hash of the file, and
    for a picture the entry variants (de-bordered, central crops) that let cropped and framed copies match.

    Entries that arrive as hashes only (partner lists) have no media, so they keep their one hash.
    """
    from vigie.hashing import DIGESTS, hash_bytes
    from vigie.media.decode import decode_image
    from vigie.signals.variants import entry_variants
    from vigie.store.models import EntryVariant

    result = MediaAdded(path)
    rec = hash_bytes(data, settings, path=path)
    entries = [EntryData(n, getattr(rec, n), verdict=verdict, tags=list(tags or []), note=note, media_key=rec.md5)
               for n in DIGESTS]
    variants: list[dict] = []
    if rec.pdq:
        entries.append(EntryData("pdq", rec.pdq, verdict=verdict, tags=list(tags or []), note=note,
                                 media_key=rec.md5))
        rgb = decode_image(data, max_pixels=settings.max_pixels, alpha=settings.alpha,
                           background=settings.alpha_background)
        variants = entry_variants(rgb, settings, plain=rec.pdq)
    elif rec.media_type and rec.media_type.startswith("video/"):
        from vigie.errors import MediaError
        from vigie.signals.vpdq import hash_video

        try:
            vh = hash_video(data, max_seconds=settings.video_max_seconds, engine=settings.pdq_engine)
            entries.append(EntryData("vpdq", vh.value, verdict=verdict, tags=list(tags or []), note=note,
                                     media_key=rec.md5))
        except MediaError as exc:
            result.error = RowError(0, exc.code, exc.message)
    if rec.error is not None and not rec.pdq:
        result.error = RowError(0, rec.error.code, rec.error.message)
    with store.session() as s:
        bank_id = _bank(s, bank).id
        now = utcnow()
        _upsert(s, [_row(bank_id, validate_entry(e), added_by, now) for e in entries])
        for e in entries:
            eid = s.scalar(select(Entry.id).where(Entry.bank_id == bank_id, Entry.signal == e.signal,
                                                  Entry.value == get_signal(e.signal).key(e.value)))
            result.entries[e.signal] = eid
        pdq_id = result.entries.get("pdq")
        if pdq_id is not None:
            have = set(s.scalars(select(EntryVariant.kind).where(EntryVariant.entry_id == pdq_id)))
            for v in variants:
                if v["kind"] not in have:
                    s.add(EntryVariant(entry_id=pdq_id, kind=v["kind"], value=v["pdq"]))
                result.variants.append(v["kind"])
        _note(s, "add_media", bank)
    return result


def add_hashes(s, bank: str, entries: list[EntryData], *, added_by: str | None = None) -> tuple[int, int, int]:
    """Put these entries in `bank` inside the caller's transaction (a review decision banks its cluster in the
    transaction that decides it). Invalid ones are left out. Returns (added, merged, kept removed)."""
    bank_id = _bank(s, bank).id
    now = utcnow()
    rows = {}
    for e in entries:
        try:
            validate_entry(e)
        except InvalidHash:
            continue
        rows[(e.signal, get_signal(e.signal).key(e.value))] = _row(bank_id, e, added_by, now)
    out = _upsert(s, list(rows.values()))
    _note(s, "decision", bank)
    return out
