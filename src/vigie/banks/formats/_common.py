"""Helpers shared by the format readers and writers: opening a byte stream as text,
telling a hash list from binary garbage, and the lenient scalar parsers (dates, booleans)
that files written by other tools need.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO

from vigie.errors import FormatError, InvalidHash
from vigie.signals import get_signal, infer_signal

BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 8192


class PrefixedStream(io.RawIOBase):
    """A read-only raw stream that gives `prefix` and then the rest of `stream`.

    Lets a reader look at the first bytes of a stream that cannot seek (a pipe, an upload)
    and still hand the whole content to a parser.
    """

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(b))
        if not data:
            return 0
        b[: len(data)] = data
        return len(data)


def peek(stream: BinaryIO, size: int = SNIFF_BYTES) -> tuple[bytes, BinaryIO]:
    """The first `size` bytes of `stream` (BOM removed), and a stream that gives everything after the BOM."""
    head = stream.read(size) or b""
    body = head[len(BOM):] if head.startswith(BOM) else head
    return body, io.BufferedReader(PrefixedStream(body, stream), buffer_size=1 << 16)


def looks_binary(head: bytes) -> bool:
    """True for content that is not UTF-8 text: NUL bytes, or many undecodable bytes."""
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", errors="replace")
    # A multi-byte character cut at the end of `head` gives one or two replacements.
    return text.count("\ufffd") > max(2, len(text) // 100)


def open_text(stream: BinaryIO, fmt: str) -> io.TextIOWrapper:
    """The stream as UTF-8 text without its BOM; FormatError for binary content."""
    head, body = peek(stream)
    if looks_binary(head):
        raise FormatError(f"this is not a {fmt} file: the content is binary, not UTF-8 text")
    return io.TextIOWrapper(body, encoding="utf-8", newline="")


def decode_error(fmt: str, line: int, exc: UnicodeDecodeError) -> FormatError:
    return FormatError(f"{fmt} file is not valid UTF-8 near line {line}: {exc.reason}")


def resolve_signal(name: str | None, value: str, default: str | None) -> tuple[str, str]:
    """(signal, normalised value) from an explicit name, the reader's default, or the value's length.

    Raises InvalidHash with code unknown_signal, ambiguous_signal or invalid_hash.
    """
    if name:
        sig = get_signal(name)
    elif default:
        sig = get_signal(default)
    else:
        sig = infer_signal(value)
    try:
        return sig.name, sig.normalise(value)
    except InvalidHash as exc:
        raise InvalidHash(exc.message, code="invalid_hash") from None


_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_NET_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value) -> datetime:
    """ISO-8601 (any number of fractional digits, Z or an offset, or a bare date) or .NET
    `/Date(ms)/`, as an aware datetime; a value without a zone is taken as UTC.

    Raises ValueError for anything else.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        dt = datetime.fromtimestamp(value / 1000, UTC)
    else:
        s = str(value).strip()
        m = _NET_DATE.match(s)
        if m:
            dt = datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
            if m.group(2):
                off = m.group(2)
                sign = 1 if off[0] == "+" else -1
                tz = timedelta(hours=int(off[1:3]), minutes=int(off[3:5])) * sign
                dt = dt.astimezone(timezone(tz))
        else:
            if not s:
                raise ValueError("empty date")
            # Python keeps microseconds: cut longer fractions (.NET writes 7 digits).
            s = _FRACTION.sub(r"\1", s, count=1)
            try:
                dt = datetime.fromisoformat(s)
            except ValueError:
                raise ValueError(f"not an ISO-8601 or /Date(ms)/ date: {str(value)[:60]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def format_date(dt: datetime) -> str:
    """ISO-8601 in UTC with 7 fractional digits and Z, as VICS writers emit it."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    # Not strftime: 40 us a call here (it consults the C library's time zone), and a case export holds
    # millions of dates. The year is four digits however small (strftime's %Y would write "1" for year 1).
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}."
            f"{dt.microsecond:06d}0Z")


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def parse_bool(value) -> bool:
    """A boolean written as a JSON boolean, a number or a string ("true", "False", "1", "yes")."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"not a boolean: {str(value)[:40]!r}")


class CsvRows:
    """A CSV writer that keeps a lone carriage return inside its cell.

    Python's csv module quotes a cell only for the characters of its line terminator, so with "\n"
    a cell holding "\r" is written bare and splits the row when read back. Such rows (rare: a note
    pasted from Windows) are written with every cell quoted; all others as usual.
    """

    def __init__(self, text, **fmt):
        self._plain = csv.writer(text, lineterminator="\n", **fmt)
        self._quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL, **fmt)

    def writerow(self, row) -> None:
        cr = any(isinstance(c, str) and "\r" in c for c in row)
        (self._quoted if cr else self._plain).writerow(row)
