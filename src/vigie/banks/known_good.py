"""The digests of a store's known-good banks (NIST NSRL and the like), loaded once per scan for a fast check.

A scan computes every file's MD5, SHA-1 and SHA-256 anyway; a file whose digest is in an enabled bank of
kind `known_good` is an operating-system or application file, so the scan records it as skipped (flag
`known_good`) and never decodes it (docs/scanning.md). The check costs one binary search per digest and
no store round trip. Per digest the set holds the digest plus 16 bytes (`vigie.index.exact`), not a Python
object: a million SHA-1s take about 36 MB.

The set is kept on disk between scans (`load`): reading an NSRL-sized bank from the store takes seconds per
million digests, and pickling it to every worker process copied it once per worker. It is saved under the
store's index folder, named by a fingerprint of the banks' state (`fingerprint`: per enabled bank, a revision
that the database's own triggers raise on any change to its entries, and the bank's last change), so any
import, removal, restore, quarantine or disabled bank gives a new name and the set is read again; the workers
map the same files (`KnownGood.__reduce__`), so the page cache holds one copy for all. A scan holds a shared lock on its
set's folder for as long as it runs, and a newer set removes only the folders no scan holds.

`bulk_import` is how a known-good bank is filled (`service.import_entries` hands such banks to it): the
full NSRL is hundreds of millions of rows, too many for one ORM object or RETURNING row each.

Only live entries count: a removed, disabled or quarantined entry, or a disabled bank, skips nothing.
A known-good entry is never a match (`vigie.matching`), so a digest that is both known-good and in a
match bank still matches: the scan's matcher sees the file's digests whatever this check says.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import select

from vigie.index import ExactIndex
from vigie.index.base import META as META  # the file that closes a saved set (tests damage it)
from vigie.index.base import read_meta, write_meta
from vigie.signals import get_signal
from vigie.store.db import Store
from vigie.store.models import Bank, Entry

SIGNALS = ("sha1", "md5", "sha256")
BATCH = 200_000


class KnownGood:
    """Known-good digests per signal; `hit(digests)` says which signal (if any) of a file's digests is one."""

    def __init__(self) -> None:
        self._idx: dict[str, ExactIndex] = {}
        self.path: Path | None = None  # the folder it was saved to or mapped from (`save`, `open`)
        self._lock: int | None = None  # a shared lock on that folder while a scan uses it (`load`)

    def __reduce__(self):
        # A saved set reaches the worker processes as its folder's name, and each maps the same files.
        if self.path is not None:
            return (KnownGood.open, (str(self.path),))
        return (_unpickle, (self._idx,))

    def save(self, directory: Path) -> None:
        """Write every signal's sorted digests to `directory` (one `vigie.index.exact` folder each)."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sig, idx in self._idx.items():
            idx.save(directory / sig)
        write_meta(directory, {"signals": sorted(self._idx), "n": len(self)})

    @classmethod
    def open(cls, directory: str | os.PathLike) -> KnownGood:
        """A saved set, its arrays mapped read-only (no copy: processes that map the same files share them)."""
        directory = Path(directory)
        meta = read_meta(directory)
        kg = cls()
        for sig in meta["signals"]:
            if sig not in SIGNALS:
                raise ValueError(f"{directory}: unknown signal {sig!r}")
            idx = kg._idx[sig] = ExactIndex.load(directory / sig, mmap=True)
            idx.verify()
        if len(kg) != meta["n"]:
            raise ValueError(f"{directory}: {len(kg)} digests where {meta['n']} were saved")
        kg.path = directory
        return kg

    def release(self) -> None:
        """Let a newer set remove this one's folder (the lock taken by `load`)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - at interpreter exit; the kernel drops the lock with the process
            pass

    def __len__(self) -> int:
        return sum(len(i) for i in self._idx.values())

    @property
    def nbytes(self) -> int:
        return sum(i.nbytes for i in self._idx.values())

    def __bool__(self) -> bool:
        return bool(self._idx)

    def add(self, signal: str, values: list[str]) -> None:
        if not values:
            return
        idx = self._idx.get(signal)
        if idx is None:
            # No merge while loading (one sort at `seal`), rather than one insertion pass per 65,536 digests.
            idx = self._idx[signal] = ExactIndex(get_signal(signal).hex_length // 2, delta_max=sys.maxsize)
        idx.add(np.zeros(len(values), np.int64), [bytes.fromhex(v) for v in values])

    def seal(self) -> KnownGood:
        """Merge what was added into sorted arrays (done once, before the set goes to the workers)."""
        for idx in self._idx.values():
            idx.merge()
        return self

    def hit(self, digests: dict[str, str | None]) -> str | None:
        for sig in SIGNALS:
            idx, value = self._idx.get(sig), digests.get(sig)
            if idx is None or not value:
                continue
            try:
                if idx.lookup([bytes.fromhex(value)])[0]:
                    return sig
            except ValueError:
                continue
        return None


def _unpickle(idx: dict[str, ExactIndex]) -> KnownGood:
    kg = KnownGood()
    kg._idx = idx
    return kg


#: The saved sets' folder under the store's index folder.
FOLDER = "known_good"


def fingerprint(store: Store) -> str:
    """A name for the live state of the store's known-good banks: per enabled known-good bank, its id, the
    revision the database raises on any change to its entries (an entry added, removed, restored, disabled,
    quarantined or deleted, by whatever code: triggers of migration 0019) and the bank's own last change (switched
    on or off, its kind changed). One row per bank: no entry is read."""
    with store.sessions() as s:
        return _fingerprint(s)


def _fingerprint(s) -> str:
    rows = s.execute(select(Bank.id, Bank.entries_revision, Bank.updated_at)
                     .where(Bank.kind == "known_good", Bank.enabled.is_(True)).order_by(Bank.id)).all()
    state = [[b, rev, str(at)] for b, rev, at in rows]
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:32]


@contextmanager
def _snapshot(store: Store):
    """A read session that sees one state of the store from its first query to its last (SQLite's read
    transaction already does; PostgreSQL needs REPEATABLE READ), so a set is saved under the name of the state
    it was read from even while an import commits."""
    with store.sessions() as s:
        if store.engine.dialect.name == "postgresql":
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield s


def load(store: Store, *, keep: bool = True) -> KnownGood:
    """The live digests of the store's enabled known-good banks: the saved set when its fingerprint is
    current, else read from the store (`read`) and saved for the next scan. The set returned holds a shared
    lock on its folder until `release()` (or until it is collected); `keep=False` reads without saving.
    An empty set is never saved. A saved set that cannot be mapped is read again, never trusted; without the
    revision triggers (a store restored without them) the set is read every time (`vigie doctor` says so)."""
    if not keep:
        return read(store)
    from vigie.store import revisions

    root = store.index_dir / FOLDER
    with _snapshot(store) as s:
        if not revisions.present(s.connection()):  # the revisions would stand still: never trust a saved set
            return _read(s)
        name = _fingerprint(s)
        path = root / name
        fd = _lock(path)  # locked before it is mapped: a newer set's prune cannot remove it in between
        if fd is not None:
            try:
                kg = KnownGood.open(path)
                kg._lock = fd
                return kg
            except (OSError, ValueError, KeyError):
                os.close(fd)
                shutil.rmtree(path, ignore_errors=True)  # damaged: read again, never trusted
        kg = _read(s)  # the state the name was taken from
    if not kg:
        return kg
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = root / f".{name}.{os.getpid()}.tmp"
    fd = None
    try:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a killed process that had this one's pid
        tmp.mkdir(mode=0o700)
        fd = _lock(tmp)  # the lock follows the folder through its rename
        kg.save(tmp)
        os.rename(tmp, path)  # atomic: a set is complete or absent
    except OSError:  # another scan saved the same set first, or the save failed: use what is here
        if fd is not None:
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        fd = _lock(path)
        if fd is None:
            return kg
    try:
        mapped = KnownGood.open(path)
    except (OSError, ValueError, KeyError):
        os.close(fd)
        return kg  # the set read from the store, in this process's memory
    mapped._lock = fd
    _prune(root, keep=name)
    return mapped


def _lock(path: Path) -> int | None:
    """A shared lock on a saved set's folder (None: the folder is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _prune(root: Path, keep: str) -> None:
    """Remove the saved sets other than `keep` that no process holds (older sets, and crashed saves)."""
    for p in root.iterdir():
        if p.name == keep or not p.is_dir():
            continue
        try:
            fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a running scan maps it, or a scan is saving it
        try:
            shutil.rmtree(p, ignore_errors=True)
        finally:
            os.close(fd)


def read(store: Store) -> KnownGood:
    """The live digests of the store's enabled known-good banks, read from the store in batches.

    Each (bank, signal) is walked in value order along the unique index (bank_id, signal, value), a batch
    after the last value seen: no sort of the whole bank per batch (ordering by id made the database sort
    every remaining row of a multi-million-digest bank for each batch)."""
    with _snapshot(store) as s:
        return _read(s)


def _read(s) -> KnownGood:
    kg = KnownGood()
    bank_ids = list(s.scalars(select(Bank.id).where(Bank.kind == "known_good", Bank.enabled.is_(True))))
    for bank_id in bank_ids:
        for sig in SIGNALS:
            last = ""
            while True:
                values = list(s.scalars(
                    select(Entry.value)
                    .where(Entry.bank_id == bank_id, Entry.signal == sig, Entry.value > last,
                           Entry.removed_at.is_(None), Entry.disabled.is_(False),
                           Entry.quarantined_at.is_(None))
                    .order_by(Entry.value).limit(BATCH)))
                if not values:
                    break
                kg.add(sig, values)
                last = values[-1]
    return kg.seal()


# -- bulk import ---------------------------------------------------------------------------------------------

#: Rows per INSERT batch of a known-good import. Each batch is sorted by (signal, value) so that its inserts
#: walk the unique index in order (neighbouring leaf pages) rather than at random over the whole B-tree.
BULK_BATCH = 50_000
#: SQLite page cache for the import's connection (KiB, negative as SQLite spells it): the index pages of a
#: bank of tens of millions of digests stay in memory while it is filled.
BULK_CACHE_KIB = 1 << 20
#: The PostgreSQL staging table of a bulk import (temporary, dropped at commit) and its column types.
STAGE = "vigie_known_good_stage"
_PG_STAGE = {"bank_id": "integer", "signal": "text", "value": "text", "payload": "text", "verdict": "text",
             "tags": "text", "external_id": "text", "note": "text", "media_key": "text", "extra": "text",
             "added_by": "text", "added_at": "timestamptz", "updated_at": "timestamptz", "disabled": "boolean",
             "removed_at": "timestamptz", "removed_by": "text"}


def bulk_import(store: Store, bank: str, rows, *, skip_invalid: bool = False, added_by: str | None = None,
                progress=None):
    """Import a known-good list (NIST NSRL and the like: tens or hundreds of millions of bare digests) into
    `bank`, atomically, without one ORM object or one RETURNING row per entry.

    Same contract as `service.import_entries` (one transaction; bad rows refuse the file unless
    `skip_invalid`; a digest already in the bank is left as it is, so a tombstone is never revived and the
    import can be run again; a new entry keeps all the file gives), with one difference that suits known-good
    lists: a digest already in the bank is left as it is, not merged with what the file says this time.
    Rows go in with `INSERT ... ON CONFLICT DO NOTHING` a sorted batch at a time (SQLite: the driver's
    executemany; PostgreSQL: COPY into a temporary staging table, then one INSERT ... SELECT); the count of
    rows the database really inserted is the `added` figure, the rest (repeats included) is `merged`.
    """
    from vigie.banks import changes
    from vigie.banks.service import ImportReport, _bank, _rematch, valid_rows
    from vigie.errors import FormatError
    from vigie.store.models import utcnow

    report = ImportReport(bank=bank)
    table = Entry.__table__
    with store.session() as s:
        b = _bank(s, bank)
        bank_id = b.id
        conn = s.connection()
        dialect = conn.dialect
        dt_proc = table.c.added_at.type.bind_processor(dialect)
        now = js_dt = dt_proc(utcnow()) if dt_proc else utcnow()
        json_proc = table.c.tags.type.bind_processor(dialect)
        empty_tags = json_proc([]) if json_proc else "[]"
        extra_proc = table.c.extra.type.bind_processor(dialect)
        verdict_proc = table.c.verdict.type.bind_processor(dialect)
        cols = ("bank_id", "signal", "value", "payload", "verdict", "tags", "external_id", "note", "media_key", "extra",
                "added_by", "added_at", "updated_at", "disabled", "removed_at", "removed_by")

        def js(proc, v):
            if v is None:
                return None
            return proc(v) if proc else (v if isinstance(v, str) else json.dumps(v))

        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        verb = "INSERT OR IGNORE INTO" if dialect.name == "sqlite" else "INSERT INTO"
        tail = "" if dialect.name == "sqlite" else " ON CONFLICT DO NOTHING"
        sql = f"{verb} entries ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}){tail}"
        if dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        false = False if dialect.name != "sqlite" else 0
        by = added_by
        pending: list[tuple] = []

        copy = dialect.name == "postgresql" and hasattr(conn.connection.dbapi_connection, "cursor")
        if copy:  # PostgreSQL: COPY into a staging table, then one INSERT ... SELECT per batch
            conn.exec_driver_sql(f"CREATE TEMP TABLE {STAGE} ({', '.join(f'{c} {_PG_STAGE[c]}' for c in cols)}) "
                                 "ON COMMIT DROP")
            json_cols = {"verdict", "tags", "extra"}
            select_ = ", ".join(f"CAST({c} AS json)" if c in json_cols else c for c in cols)
            move = (f"INSERT INTO entries ({', '.join(cols)}) SELECT {select_} FROM {STAGE} ORDER BY signal, value "
                    "ON CONFLICT DO NOTHING")

        def flush() -> None:
            if not pending:
                return
            pending.sort(key=lambda r: (r[1], r[2]))
            if copy:
                with conn.connection.dbapi_connection.cursor() as cur, \
                        cur.copy(f"COPY {STAGE} ({', '.join(cols)}) FROM STDIN") as cp:
                    for r in pending:
                        cp.write_row(r)
                res = conn.exec_driver_sql(move)
                conn.exec_driver_sql(f"TRUNCATE {STAGE}")
            else:
                res = conn.exec_driver_sql(sql, pending)
            report.added += max(res.rowcount, 0)
            pending.clear()

        from vigie.store import revisions

        # SQLite: no row trigger per digest; the bank's revision is raised once (vigie.store.revisions)
        with revisions.bulk_insert(conn, bank_id):
            try:
                for line, item in valid_rows(rows, report):
                    sig = get_signal(item.signal)
                    key = sig.key(item.value)
                    extra = item.extra or None
                    verdict = (item.verdict.as_dict() or None) if item.verdict else None
                    who = item.added_by or by
                    tags = js(json_proc, list(item.tags)) if item.tags else empty_tags
                    at = (dt_proc(item.added_at) if dt_proc else item.added_at) if item.added_at else js_dt
                    pending.append((bank_id, item.signal, key, item.value if key != item.value else None,
                                    js(verdict_proc, verdict), tags, item.external_id, item.note, item.media_key,
                                    js(extra_proc, extra), who, at, now, false, now if item.removed else None,
                                    who if item.removed else None))
                    if len(pending) >= BULK_BATCH:
                        flush()
                    if progress:
                        progress(line)
                flush()
                # Whatever the file held that the bank had already (or held twice) was left as it was.
                report.merged = report.read - report.added
                if report.added:
                    changes.note(s, "import", bank)
                if report.skipped_count and not skip_invalid:
                    raise FormatError(
                        f"{report.skipped_count} bad row(s): nothing was imported (use --skip-invalid to import "
                        f"the {report.read} good rows)", rows=report.skipped)
            finally:
                if dialect.name == "sqlite":  # the store's own cache size again
                    conn.exec_driver_sql("PRAGMA cache_size=-262144")
    if report.added:
        _rematch(store)
    return report
