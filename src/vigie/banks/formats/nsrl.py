"""NIST's National Software Reference Library (NSRL) Reference Data Set (RDS): lists of known software files.

The RDS names files that ship with operating systems and applications; a hotline loads it into a bank of
kind `known_good` so that a scan skips those files by digest without decoding them (docs/scanning.md). It
is never a list of abusive material and its entries carry no verdict.

Two shapes, told apart by their first bytes:

* **RDS v3** (NIST's current release): a SQLite database. NIST documents its `FILE` table as
  `sha256, sha1, md5, crc32, file_name, file_size, package_id` (upper-case hex; one row per file per
  package, so a digest repeats); `PKG`, `OS`, `MFG` and `VERSION` describe packages and the release.
  Rows are read with one cursor, a batch at a time: the full RDS holds hundreds of millions of rows and
  never sits in memory. A database that is given as a stream rather than a file on disk is first copied,
  in chunks, to a temporary file (SQLite needs a path).
* **RDS 2.x** `NSRLFile.txt`: a quoted CSV with the header `"SHA-1","MD5","CRC32","FileName","FileSize",
  "ProductCode","OpSystemCode","SpecialCode"` (newer 2.x files add `SHA-256` columns on some builds);
  read by column name. (The `iped` format reads this file too, keeping every column as a property; this
  reader keeps only the digests, which is what a known-good bank needs.)

Each row gives one entry per digest it has (SHA-1, MD5, SHA-256; CRC32 is too weak to match on and is not
kept), sharing the SHA-1 as `media_key`. Nothing else is stored by default, to keep the bank lean; the
option `details=True` keeps `file_name`, `file_size` and `package_id` in `extra["nsrl"]`. The option
`signals` (a comma-separated list or a tuple) keeps only some digests, e.g. `sha256` alone for a smaller
store. Writing gives an RDS v3-shaped database with only the `FILE` table (empty cells where a file lacks
a digest), for tools that read the RDS.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import FormatError, InvalidHash, RowError, UsageError
from vigie.signals import get_signal

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Vigie's signals in the order they are read, and the RDS v3 FILE column of each.
V3_COLUMNS = {"sha1": "sha1", "md5": "md5", "sha256": "sha256"}
#: Legacy NSRLFile.txt column names (upper case, without '-' or '_') to Vigie's signals.
LEGACY_COLUMNS = {"SHA1": "sha1", "MD5": "md5", "SHA256": "sha256"}
#: NIST's FILE table of RDS v3, as its documentation gives it (what the writer creates).
V3_FILE_TABLE = ("CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, "
                 "crc32 VARCHAR NOT NULL, file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, "
                 "package_id INTEGER NOT NULL)")
FETCH = 10_000
COPY_CHUNK = 1 << 20


def is_rds_v3(first_bytes: bytes) -> bool:
    return first_bytes.startswith(SQLITE_MAGIC)


class NsrlFormat(BankFormat):
    """Options: `signals` (which digests to keep; default all three), `details` (keep name, size, package)."""

    name = "nsrl"
    extensions = (".db", ".sqlite", "nsrlfile.txt")

    def _signals(self) -> tuple[str, ...]:
        want = self.options.get("signals") or ("sha1", "md5", "sha256")
        if isinstance(want, str):
            want = [s.strip().lower() for s in want.split(",") if s.strip()]
        bad = [s for s in want if s not in V3_COLUMNS]
        if bad or not want:
            raise UsageError(f"nsrl signals are sha1, md5 and sha256 (got {', '.join(bad) or 'none'})")
        return tuple(want)

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        signals = self._signals()
        head = _peek(stream, len(SQLITE_MAGIC))
        if is_rds_v3(head):
            yield from self._read_v3(stream, signals)
        else:
            yield from self._read_legacy(stream, signals)

    # -- RDS v3 (SQLite) -------------------------------------------------------

    def _read_v3(self, stream: BinaryIO, signals: tuple[str, ...]) -> Iterator[Row]:
        path = _disk_path(stream)
        tmp = None
        if path is None:
            fd, tmp = tempfile.mkstemp(prefix="vigie-nsrl-", suffix=".db")
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, COPY_CHUNK)
            path = tmp
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        except sqlite3.Error as exc:
            raise FormatError(f"cannot open the NSRL RDS database: {exc}") from None
        try:
            try:
                cols = {r[1].lower() for r in conn.execute("PRAGMA table_info(FILE)")}
            except sqlite3.DatabaseError as exc:
                raise FormatError(f"this is not a readable NSRL RDS database: {exc}") from None
            need = {V3_COLUMNS[s] for s in signals}
            if not cols or not need <= cols:
                raise FormatError("this SQLite database is not an NSRL RDS v3 release: it has no FILE table with "
                                  f"the columns {', '.join(sorted(need))}")
            self.bank_meta = {"rds": 3, **_version(conn)}
            details = bool(self.options.get("details"))
            extra_cols = [c for c in ("file_name", "file_size", "package_id") if c in cols] if details else []
            select = ", ".join([V3_COLUMNS[s] for s in signals] + extra_cols)
            cur = conn.execute(f"SELECT {select} FROM FILE")  # noqa: S608 - names from the fixed table above
            line = 0
            while True:
                batch = cur.fetchmany(FETCH)
                if not batch:
                    return
                for row in batch:
                    line += 1
                    extra = {"nsrl": dict(zip(extra_cols, row[len(signals):]))} if extra_cols else None
                    yield from _entries(line, zip(signals, row), extra)
        finally:
            conn.close()
            if tmp is not None:
                os.unlink(tmp)

    # -- legacy NSRLFile.txt -----------------------------------------------------

    def _read_legacy(self, stream: BinaryIO, signals: tuple[str, ...]) -> Iterator[Row]:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
        try:
            reader = csv.reader(text)
            header = next(reader, None)
            if not header:
                raise FormatError("the NSRL file is empty")
            names = [h.strip().lstrip("\ufeff").upper().replace("-", "").replace("_", "") for h in header]
            pos = {LEGACY_COLUMNS[n]: i for i, n in enumerate(names) if n in LEGACY_COLUMNS}
            if not pos:
                raise FormatError("this is neither an NSRL RDS v3 database nor an NSRLFile.txt (no SHA-1, MD5 "
                                  "or SHA-256 column in the header)")
            self.bank_meta = {"rds": 2}
            details = bool(self.options.get("details"))
            keep = {k: names.index(k.upper()) for k in ("FileName", "FileSize", "ProductCode")
                    if k.upper() in names} if details else {}
            wanted = [s for s in signals if s in pos]
            for cells in reader:
                line = reader.line_num
                if not cells:
                    continue
                extra = {"nsrl": {k: cells[i] for k, i in keep.items() if i < len(cells)}} if keep else None
                yield from _entries(line, ((s, cells[pos[s]] if pos[s] < len(cells) else "") for s in wanted),
                                    extra)
        finally:
            text.detach()

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """An RDS v3-shaped SQLite database (a `FILE` table as NIST's; empty cells for digests a file lacks), so
        that a known-good bank goes back to tools that read the RDS. PDQ, vPDQ and tombstones are left out,
        counted. Rows are grouped by media key over a bounded window."""
        self._start_write()
        fd, tmp = tempfile.mkstemp(prefix="vigie-nsrl-", suffix=".db")
        os.close(fd)
        written = 0
        try:
            conn = sqlite3.connect(tmp)
            conn.execute(V3_FILE_TABLE)
            groups: dict[str, dict] = {}
            loose = 0

            def emit(g: dict) -> None:
                d = g.get("nsrl") or {}
                conn.execute("INSERT INTO FILE VALUES (?, ?, ?, '', ?, ?, ?)",
                             (g.get("sha256", "").upper(), g.get("sha1", "").upper(), g.get("md5", "").upper(),
                              str(d.get("file_name", "")), int(d.get("file_size") or 0),
                              int(d.get("package_id") or 0)))

            for e in entries:
                if e.removed:
                    self.leave_out("removed", e.value)
                    continue
                if e.signal not in V3_COLUMNS:
                    self.leave_out("no_rds_column", f"{e.signal} {e.value[:64]}")
                    continue
                loose += 1
                g = groups.setdefault(e.media_key or f"\0{loose}", {})
                if e.signal in g:  # a second digest of one kind under one key: a row of its own
                    emit(groups.pop(e.media_key))
                    g = groups.setdefault(e.media_key, {})
                g[e.signal] = e.value
                g.setdefault("nsrl", (e.extra or {}).get("nsrl"))
                written += 1
                if len(groups) > 10_000:
                    emit(groups.pop(next(iter(groups))))
            for g in groups.values():
                emit(g)
            conn.commit()
            conn.close()
            with open(tmp, "rb") as f:
                shutil.copyfileobj(f, stream, COPY_CHUNK)
        finally:
            os.unlink(tmp)
        return written


def _entries(line: int, pairs: Iterable[tuple[str, str | None]], extra: dict | None) -> Iterator[Row]:
    found = []
    for sig, cell in pairs:
        if not cell or not str(cell).strip():
            continue
        try:
            found.append((sig, get_signal(sig).normalise(str(cell).strip())))
        except InvalidHash as exc:
            yield line, RowError(line, "invalid_hash", f"{sig}: {exc.message}")
    if not found:
        yield line, RowError(line, "missing_value", "no hash in this row")
        return
    key = next((v for s, v in found if s == "sha1"), found[0][1])
    for sig, value in found:
        yield line, EntryData(signal=sig, value=value, media_key=key, extra=dict(extra) if extra else {})


def _peek(stream: BinaryIO, n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return peek(n)[:n]
    if stream.seekable():
        pos = stream.tell()
        head = stream.read(n)
        stream.seek(pos)
        return head
    raise UsageError("the NSRL reader needs a file or a seekable stream")


def _disk_path(stream: BinaryIO) -> str | None:
    """The path of the file behind `stream` when it is a whole regular file read from its start."""
    name = getattr(stream, "name", None)
    if not isinstance(name, str) or not os.path.isfile(name):
        return None
    try:
        if stream.tell() != 0:
            return None
    except (OSError, ValueError):
        return None
    return name


def _version(conn: sqlite3.Connection) -> dict:
    """What the VERSION table says about the release (version, build set, dates), where it has one."""
    try:
        cur = conn.execute("SELECT * FROM VERSION LIMIT 1")
    except sqlite3.Error:
        return {}
    row = cur.fetchone()
    if row is None:
        return {}
    return {d[0].lower(): v for d, v in zip(cur.description, row) if isinstance(v, (str, int, float))}
