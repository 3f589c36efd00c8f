"""Vigie's own CSV: one row per hash with its verdict as a scheme label and as facets.

Written with every column; read with any subset of them as long as `value` is there,
so a spreadsheet with only `md5` values under a `value` header imports. See
docs/formats.md for the columns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import BinaryIO

from vigie.banks.formats._common import CsvRows, decode_error, open_text, parse_bool, parse_date, resolve_signal
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import SCHEMES, Verdict, from_label
from vigie.errors import FormatError, InvalidHash, RowError, UsageError

COLUMNS = ("signal", "value", "category_scheme", "category", "tags", "external_id", "note", "media_key",
           "added_by", "added_at", "legality", "age_band", "severity", "synthetic", "flags",
           "jurisdictions", "removed", "extra")
FACETS = ("legality", "age_band", "severity", "synthetic", "flags", "jurisdictions")


def _split(text: str, seps: str) -> list[str]:
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    return [p.strip() for p in text.split(seps[0]) if p.strip()]


def parse_category(scheme: str, label: str) -> Verdict:
    """A scheme label as a verdict. Schemes named `vics_<profile>` other than vics_us are kept as
    labels without facets (their meaning depends on a profile Vigie does not know)."""
    scheme = scheme.strip().lower()
    if scheme in SCHEMES:
        return from_label(scheme, label)
    if scheme.startswith("vics_") and scheme[5:].isalnum():
        return Verdict(source_scheme=scheme, source_label=label.strip())
    raise ValueError(f"unknown category scheme {scheme!r} (known: {', '.join(SCHEMES)}, vics_<profile>)")


class CsvFormat(BankFormat):
    name = "csv"
    extensions = (".csv",)

    # -- reading -------------------------------------------------------------

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        text = open_text(stream, "CSV")
        try:
            yield from self._read(text)
        finally:
            text.detach()

    def _read(self, text: io.TextIOWrapper) -> Iterator[Row]:
        reader = csv.reader(text)
        try:
            header = next(reader, None)
        except UnicodeDecodeError as exc:
            raise decode_error("CSV", 1, exc) from None
        except csv.Error as exc:
            raise FormatError(f"this is not a CSV file: {exc}") from None
        if header is None:
            return
        cols = [h.strip().lower() for h in header]
        if "value" not in cols:
            raise FormatError("CSV header has no 'value' column (found: " + ", ".join(cols[:20]) + ")")
        last = reader.line_num
        while True:
            start = last + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise decode_error("CSV", start, exc) from None
            except csv.Error as exc:
                last = reader.line_num
                yield start, RowError(start, "bad_row", f"unreadable CSV row: {exc}")
                continue
            last = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            row = {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(cols)}
            yield start, self._entry(start, row)

    def _entry(self, line: int, row: dict[str, str]) -> EntryData | RowError:
        value = row.get("value", "")
        if not value:
            return RowError(line, "missing_value", "the 'value' cell is empty")
        try:
            signal, value = resolve_signal(row.get("signal"), value, self.signal)
        except InvalidHash as exc:
            return RowError(line, exc.code, exc.message)
        try:
            verdict = self._verdict(row)
        except ValueError as exc:
            return RowError(line, "bad_category", str(exc))
        added_at = None
        if row.get("added_at"):
            try:
                added_at = parse_date(row["added_at"])
            except ValueError as exc:
                return RowError(line, "bad_date", str(exc))
        try:
            removed = parse_bool(row.get("removed", ""))
        except ValueError as exc:
            return RowError(line, "bad_value", f"removed: {exc}")
        extra: dict = {}
        if row.get("extra"):
            try:
                extra = json.loads(row["extra"])
            except ValueError as exc:
                return RowError(line, "bad_value", f"extra is not JSON: {exc}")
            if not isinstance(extra, dict):
                return RowError(line, "bad_value", "extra must be a JSON object")
        return EntryData(signal=signal, value=value, verdict=verdict,
                         tags=_split(row.get("tags", ""), ";|"),
                         external_id=row.get("external_id") or None, note=row.get("note") or None,
                         media_key=row.get("media_key") or None, extra=extra,
                         added_by=row.get("added_by") or None, added_at=added_at, removed=removed)

    @staticmethod
    def _verdict(row: dict[str, str]) -> Verdict | None:
        verdict = None
        label, scheme = row.get("category", ""), row.get("category_scheme", "")
        if label:
            if not scheme and ":" in label:
                scheme, label = label.split(":", 1)
            if not scheme:
                raise ValueError(f"category {label!r} needs a category_scheme (e.g. vics_us, uk)")
            verdict = parse_category(scheme, label)
        elif scheme:
            raise ValueError(f"category_scheme {scheme!r} is given without a category")
        facets: dict = {}
        for f in FACETS:
            cell = row.get(f, "")
            if cell:
                facets[f] = tuple(_split(cell, "+;|")) if f in ("flags", "jurisdictions") else cell.lower()
        if facets:
            verdict = replace(verdict, **facets) if verdict else Verdict(**facets)
        return verdict

    # -- writing -------------------------------------------------------------

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """Every entry with every column, tombstones as `removed=true`. An entry without a verdict of
        its own gets the bank's default category (option `bank_category=False` leaves it empty), so
        the partner who reads the file knows what the bank says of it."""
        self._start_write()
        if self.options.get("shape") or self.options.get("profile") or self.options.get("version"):
            raise UsageError("shape, profile and version are options of the vics and te formats, not of csv")
        default = bank.default_verdict if self.options.get("bank_category", True) else None
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            w = CsvRows(text)
            w.writerow(COLUMNS)
            n = 0
            for e in entries:
                w.writerow(self._row(e if e.verdict is not None or default is None else replace(e, verdict=default)))
                n += 1
            text.flush()
            return n
        finally:
            text.detach()

    @staticmethod
    def _row(e: EntryData) -> list[str]:
        v = e.verdict
        scheme = label = ""
        facets = [""] * len(FACETS)
        if v is not None:
            if v.source_scheme and v.source_label is not None:
                scheme, label = v.source_scheme, v.source_label
            facets = [v.legality, v.age_band, v.severity, v.synthetic, "+".join(v.flags),
                      "+".join(v.jurisdictions)]
        return [e.signal, e.value, scheme, label, ";".join(e.tags), e.external_id or "", e.note or "",
                e.media_key or "", e.added_by or "", e.added_at.isoformat() if e.added_at else "",
                *facets, "true" if e.removed else "false",
                json.dumps(e.extra, ensure_ascii=False, default=str) if e.extra else ""]
