"""IPED's hash-database CSV: the file its `iped-hashdb` tool (`HashDBTool`) imports into a hash database.

What IPED reads (its public `HashDBTool.readFile`): a CSV in Apache Commons' default dialect (comma,
double quotes; another delimiter with its `-d` option, `;` for ICSE lists) with a header row. Columns
named after a hash type it knows (`MD5`, `SHA1`, `SHA256`, `SHA512`, `EDONKEY`, any case) hold hashes
(an empty cell is no hash); every other column is a **property** of the hashes on that row (`set`,
`status`, `vicCategory`, `photoDna`, anything). Every row must have as many cells as the header.
Consecutive rows with the same hashes are combined. IPED's own properties: `set` (the list's name) and
`status` (`known` for a known file, `pedo` for child abuse material; its VICS import gives category 0
`known`, 1 and 2 `pedo`).

Reading: one entry per MD5, SHA-1 and SHA-256 of a row (SHA-512 and eDonkey, which Vigie does not match,
stay with the row), sharing a `media_key`; the whole row stays in `extra["iped"]` as it came (under its own
key, so that no other format's export mistakes IPED's properties for its own fields), and an export gives it
back. A `vicCategory` of 0 to 4 is the VICS US category; `status` is kept, not read as a verdict.

INTERPOL's ICSE CSV export, which IPED reads through the same tool (`;`-separated, header `MD5;SHA1;PhotoDNA;
Image ID;Is distributed;Victim identified;Offender identified;Series name;Number of submissions;File
Available;Media Type;Baseline`), reads here too: its short rows are padded as IPED accepts them, and a true
`Baseline` (`true`, `yes`, `1`) is INTERPOL's baseline verdict where no `vicCategory` gives one.

Writing: the header of the imported file (its columns in their order, none added: a digest it has no
column for is left out and counted), else `MD5,SHA1,SHA256,set,status,vicCategory`; one row per media
with its live hashes, the row's other cells as they came, `set` the bank's name where the row has none,
`status` and `vicCategory` from the verdict (the bank's default where the entry has none) where the row
does not already say the same. PDQ and vPDQ have no IPED column: left out, counted.
"""

from __future__ import annotations

import csv
import io
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from vigie.banks.formats._common import CsvRows, decode_error, open_text, parse_bool
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import Verdict, from_label
from vigie.errors import FormatError, InvalidHash, RowError, UsageError
from vigie.signals import get_signal

#: IPED's hash columns (HashDB.hashTypes), lower case without '-', to Vigie's signals (None: kept, not matched).
HASH_COLUMNS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha512": None, "edonkey": None}
DEFAULT_HEADER = ("MD5", "SHA1", "SHA256", "set", "status", "vicCategory")
#: Columns of INTERPOL's ICSE export (IPED's `icseHeaderColumns`, `;`-separated) that tell one.
ICSE_MARK = frozenset({"image id", "baseline"})
WRITE_WINDOW = 10_000


def hash_column(name: str) -> str | None:
    key = re.sub(r"[-_\s]", "", name).lower()
    return key if key in HASH_COLUMNS else None


def status_of(v: Verdict | None) -> str | None:
    """IPED's `status` for a verdict: `pedo` for child abuse material, `known` for VICS category 0."""
    if v is None:
        return None
    label = v.label("vics_us")
    if label == "0":
        return "known"
    if label in ("1", "2") or v.legality in ("baseline", "national"):
        return "pedo"
    return None


class IpedFormat(BankFormat):
    """Options: `delimiter` (reading and writing; reading sniffs `,`, `;` or a tab from the header),
    `bank_category` (writing; default true)."""

    name = "iped"
    extensions = (".iped.csv",)

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        text = open_text(stream, "IPED CSV")
        try:
            yield from self._read(text)
        finally:
            text.detach()

    def _read(self, text: io.TextIOWrapper) -> Iterator[Row]:
        try:
            first = text.readline()
        except UnicodeDecodeError as exc:
            raise decode_error("IPED CSV", 1, exc) from None
        delim = self.options.get("delimiter") or max(",;\t", key=first.count)
        header = next(csv.reader([first], delimiter=delim), [])
        cols = [hash_column(h) for h in header]
        if not any(cols):
            raise FormatError("this is not an IPED hash-database CSV: the header names no MD5, SHA1, SHA256, "
                              "SHA512 or EDONKEY column")
        self.bank_meta = {"header": header, "delimiter": delim}
        icse = {h.strip().lower() for h in header} >= ICSE_MARK
        if icse:
            self.bank_meta["icse"] = True
        reader = csv.reader(text, delimiter=delim)
        line = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise decode_error("IPED CSV", line + 1, exc) from None
            except csv.Error as exc:
                line = reader.line_num + 1
                yield line, RowError(line, "bad_row", f"unreadable CSV row: {exc}")
                continue
            line = reader.line_num + 1
            if not cells:
                continue
            if icse and len(cells) < len(header):
                cells = cells + [""] * (len(header) - len(cells))  # IPED reads ICSE's short rows too
            if len(cells) != len(header):
                yield line, RowError(line, "bad_row", f"{len(cells)} cells where the header has {len(header)} "
                                     "(IPED refuses such a file)")
                continue
            yield from self._row(line, header, cols, cells)

    def _row(self, line: int, header: list[str], cols: list, cells: list[str]) -> Iterator[Row]:
        extra = dict(zip(header, cells))
        found = []
        for col, name, cell in zip(cols, header, cells):
            sig = HASH_COLUMNS.get(col) if col else None
            if sig is None or not cell.strip():
                continue
            try:
                found.append((sig, get_signal(sig).normalise(cell.strip())))
            except InvalidHash as exc:
                yield line, RowError(line, "invalid_hash", f"{name}: {exc.message}")
        if not found:
            if not any(c.strip() for col, c in zip(cols, cells) if col):
                yield line, RowError(line, "missing_value", "no hash in this row")
            return
        verdict = None
        cat = next((c.strip() for h, c in zip(header, cells) if h.lower() == "viccategory"), "")
        if cat:
            try:
                verdict = from_label("vics_us", cat)
            except ValueError:
                pass  # kept as it came, in extra
        base = next((c.strip() for h, c in zip(header, cells) if h.strip().lower() == "baseline"), "")
        if verdict is None and base:
            try:
                if parse_bool(base):
                    verdict = from_label("interpol", "baseline")
            except ValueError:
                pass
        key = next((v for s, v in found if s == "md5"), found[0][1])
        for sig, value in found:
            yield line, EntryData(signal=sig, value=value, verdict=verdict, media_key=key, extra={"iped": dict(extra)})

    # -- writing -------------------------------------------------------------

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        if self.options.get("shape") or self.options.get("profile") or self.options.get("version"):
            raise UsageError("shape, profile and version are options of the vics and te formats, not of iped")
        self._start_write()
        meta = bank.extra or {}
        header = list(meta.get("header") or DEFAULT_HEADER)
        have = {hash_column(h) for h in header}
        delim = self.options.get("delimiter") or meta.get("delimiter") or ","
        default = bank.default_verdict if self.options.get("bank_category", True) else None
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            w = CsvRows(text, delimiter=delim)
            w.writerow(header)
            groups: OrderedDict = OrderedDict()
            written = 0
            loose = 0
            for e in entries:
                if e.removed:
                    self.leave_out("removed", e.value)
                    continue
                if e.signal not in have:  # PDQ, vPDQ; a digest the imported header has no column for
                    self.leave_out("no_iped_column", f"{e.signal} {e.value[:64]}")
                    continue
                loose += 1
                key = e.media_key or f"\0{loose}"
                groups.setdefault(key, []).append(e)
                if len(groups) > WRITE_WINDOW:
                    written += self._emit(groups.popitem(last=False)[1], header, w, bank.name, default)
            while groups:
                written += self._emit(groups.popitem(last=False)[1], header, w, bank.name, default)
            text.flush()
            return written
        finally:
            text.detach()

    def _emit(self, group: list[EntryData], header: list[str], w, bank_name: str, default) -> int:
        lead = group[0]
        raw: dict = {}
        for e in group:
            for k, v in ((e.extra or {}).get("iped") or {}).items():
                raw.setdefault(k, v)
        live = {}
        for e in group:
            live.setdefault(e.signal, e)
        verdict = lead.verdict or default
        row = []
        for h in header:
            col = hash_column(h)
            cell = raw.get(h, "")
            if col in ("md5", "sha1", "sha256"):
                e = live.get(col)
                if e is None:
                    row.append("" if _valid(col, cell) else cell)  # a hash no longer in the bank is not written
                    continue
                row.append(cell if _valid(col, cell) and get_signal(col).normalise(cell) == e.value
                           else e.value.upper())
            elif h.lower() == "set":
                row.append(cell if h in raw else bank_name)
            elif h.lower() == "status":
                row.append(cell if h in raw and _same_verdict(raw, verdict) else status_of(verdict) or "")
            elif h.lower() == "viccategory":
                label = verdict.label("vics_us") if verdict is not None else None
                row.append(cell if h in raw and _same_verdict(raw, verdict) else label or "")
            else:
                row.append("" if cell is None else str(cell))
        w.writerow(row)
        return len(group)


def _valid(signal: str, cell) -> bool:
    if not isinstance(cell, str) or not cell.strip():
        return False
    try:
        get_signal(signal).normalise(cell)
    except InvalidHash:
        return False
    return True


def _same_verdict(raw: dict, verdict: Verdict | None) -> bool:
    """True when the row's own vicCategory still says the entry's verdict (or neither says anything)."""
    cat = next((str(v).strip() for k, v in raw.items() if k.lower() == "viccategory"), "")
    try:
        was = from_label("vics_us", cat) if cat else None
    except ValueError:
        was = None
    if was is None or verdict is None:
        return was is None and (verdict is None or not status_of(verdict))
    return (was.source_scheme, was.source_label) == (verdict.source_scheme, verdict.source_label)
