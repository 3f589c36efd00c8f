"""X-Ways Forensics hash sets: a text file whose first line names the hash type, then one hash per line.

X-Ways Forensics (and WinHex with a forensic licence) imports a hash set from a plain text file whose
first line is the name of the hash type as X-Ways spells it (`MD5`, `SHA-1`, `SHA-256`, ...) and whose
other lines hold one hash value each, in hex; the hash set takes the file's name. Its own export writes
the same shape: the type line, then the values in upper-case hex, one per line, with Windows line ends
(CR LF). One file holds one hash type, so a bank with MD5 and SHA-1 entries is written one type per file
(option `signal`; without it, the first digest type met), the others counted as left out.

Read: the type line is matched without regard to case, `-`, `_` or spaces (`SHA1`, `sha-1`, `SHA 256`);
types Vigie does not match on (CRC32, RIPEMD-160, Tiger, ED2K, PhotoDNA) are refused as a whole file
(FormatError `unsupported_hash_type`) rather than read as something else. A line may carry text after
the hash (a tab or spaces, then a file name, as some tools append): it becomes the entry's note. Blank
lines are skipped; a line that is not a hash of the file's type is a row error (`invalid_hash`).

What came in goes back out the same: the spelling of the type line, the hex case and the line ends
of the file are kept in the bank's metadata (`bank.meta["xways"]`) and used by the writer.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from vigie.banks.formats._common import decode_error, open_text
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import FormatError, InvalidHash, RowError, UsageError
from vigie.signals import get_signal

#: X-Ways' names of the hash types Vigie matches on (how X-Ways writes them in the first line).
XWAYS_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256"}
#: Hash types X-Ways knows that Vigie does not match on: named in the refusal.
OTHER_TYPES = {"CRC32", "CRC16", "CHECKSUM8", "CHECKSUM16", "CHECKSUM32", "CHECKSUM64", "RIPEMD128", "RIPEMD160",
               "TIGER", "TIGER128", "TIGER160", "TIGER192", "ED2K", "PHOTODNA", "SHA512", "SHA384", "SHA224",
               "MD4", "ADLER32", "BLAKE3", "PSCHF"}


def _key(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalnum())


_BY_KEY = {_key(v): k for k, v in XWAYS_NAMES.items()}


def hash_type(first_line: str) -> str | None:
    """Vigie's signal for an X-Ways type line (`SHA-1` -> sha1), None when the line names no type."""
    return _BY_KEY.get(_key(first_line.strip().lstrip("\ufeff")))


def looks_like_xways(first_line: str) -> bool:
    """True when `first_line` is a hash type name as X-Ways writes one (for format detection)."""
    k = _key(first_line.strip().lstrip("\ufeff"))
    return bool(k) and len(first_line.strip()) <= 16 and (k in _BY_KEY or k in OTHER_TYPES)


class XwaysFormat(BankFormat):
    """Options for writing: `signal` (which digest type to write; default the first met), `case`
    (`upper`, X-Ways' own, or `lower`), `newline` (`crlf`, X-Ways' own, or `lf`)."""

    name = "xways"
    extensions = (".hash", ".hsh")

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        text = open_text(stream, "X-Ways hash set")
        try:
            yield from self._read(text)
        finally:
            text.detach()

    def _read(self, text: io.TextIOWrapper) -> Iterator[Row]:
        line = 0
        signal = None
        case = None
        crlf = None
        while True:
            try:
                raw = text.readline()
            except UnicodeDecodeError as exc:
                raise decode_error("X-Ways hash set", line + 1, exc) from None
            if not raw:
                break
            line += 1
            if crlf is None and raw.endswith("\n"):
                crlf = raw.endswith("\r\n")
            s = raw.strip()
            if signal is None:
                if not s:
                    continue
                signal = hash_type(s)
                if signal is None:
                    if _key(s) in OTHER_TYPES:
                        raise FormatError(f"this X-Ways hash set holds {s} values, which Vigie does not match on "
                                          f"(it reads {', '.join(XWAYS_NAMES.values())})",
                                          code="unsupported_hash_type")
                    raise FormatError("this is not an X-Ways hash set: its first line does not name a hash type "
                                      f"(got {s[:40]!r}; expected one of {', '.join(XWAYS_NAMES.values())})")
                self.bank_meta = {"hash_type": s, "signal": signal}
                continue
            if not s:
                continue
            value, *tail = s.split(None, 1)
            if case is None and any(c.isalpha() for c in value):
                case = "upper" if value.isupper() else "lower" if value.islower() else None
            try:
                v = get_signal(signal).normalise(value)
            except InvalidHash as exc:
                yield line, RowError(line, "invalid_hash", f"{XWAYS_NAMES[signal]}: {exc.message}")
                continue
            yield line, EntryData(signal=signal, value=v, note=(tail[0].strip() or None) if tail else None)
        if signal is None:
            raise FormatError("the X-Ways hash set is empty (no hash type line)")
        self.bank_meta.update({"case": case or "upper", "newline": "lf" if crlf is False else "crlf"})

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """The type line, then the live entries of one digest type, one per line (see the module docstring)."""
        self._start_write()
        meta = bank.extra or {}
        only = get_signal(self.signal).name if self.signal else None
        if only is not None and only not in XWAYS_NAMES:
            raise UsageError(f"an X-Ways hash set holds MD5, SHA-1 or SHA-256, not {only}")
        case = (self.options.get("case") or meta.get("case") or "upper").lower()
        newline = (self.options.get("newline") or meta.get("newline") or "crlf").lower()
        if case not in ("upper", "lower") or newline not in ("crlf", "lf"):
            raise UsageError("xways options: case is upper or lower, newline is crlf or lf")
        eol = "\r\n" if newline == "crlf" else "\n"
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        n = 0
        try:
            current = only
            header_done = False
            for e in entries:
                if e.removed:
                    self.leave_out("removed", e.value)
                    continue
                if e.signal not in XWAYS_NAMES:
                    self.leave_out("no_xways_type", f"{e.signal} {e.value[:64]}")
                    continue
                if current is None:
                    current = e.signal
                if e.signal != current:
                    self.leave_out("other_signal", f"{e.signal} {e.value}")
                    continue
                if not header_done:
                    text.write(_type_line(current, meta) + eol)
                    header_done = True
                text.write((e.value.upper() if case == "upper" else e.value.lower()) + eol)
                n += 1
            if not header_done:
                text.write(_type_line(current or meta.get("signal") or "md5", meta) + eol)
            text.flush()
            return n
        finally:
            text.detach()


def _type_line(signal: str, meta: dict) -> str:
    """The type line as the imported file spelt it (when it named this type), else as X-Ways writes it."""
    given = meta.get("hash_type")
    if isinstance(given, str) and hash_type(given) == signal:
        return given
    return XWAYS_NAMES[signal]
