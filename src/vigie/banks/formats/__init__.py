"""Bank exchange formats, registered by name: csv, text, te (ThreatExchange / HMA), vics, iped
(IPED's hash-database CSV), nsrl (NIST's RDS, for known-good banks) and xways (X-Ways Forensics hash sets).

Add a format by subclassing :class:`vigie.banks.formats.base.BankFormat` and calling
:func:`register`; importers find it by `name`. :func:`detect_format` tells which format a
file is from its first bytes (content first, the file name only as a fallback).
"""

from __future__ import annotations

import csv as _csv
import re

from vigie.banks.formats._common import BOM, looks_binary
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.formats.csv import CsvFormat
from vigie.banks.formats.iped import IpedFormat, hash_column
from vigie.banks.formats.nsrl import NsrlFormat, is_rds_v3
from vigie.banks.formats.te import TeFormat, is_te_signal_name
from vigie.banks.formats.text import TextFormat
from vigie.banks.formats.vics import VicsFormat
from vigie.banks.formats.xways import XwaysFormat, looks_like_xways
from vigie.errors import FormatError, UsageError

FORMATS: dict[str, type[BankFormat]] = {}


def register(fmt: type[BankFormat]) -> type[BankFormat]:
    if fmt.name in FORMATS and FORMATS[fmt.name] is not fmt:
        raise ValueError(f"bank format {fmt.name!r} registered twice")
    FORMATS[fmt.name] = fmt
    return fmt


for _f in (CsvFormat, TextFormat, TeFormat, VicsFormat, IpedFormat, NsrlFormat, XwaysFormat):
    register(_f)


def get_format(name: str) -> type[BankFormat]:
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise UsageError(f"unknown bank format {name!r} (known: {', '.join(sorted(FORMATS))})") from None


_HEX = re.compile(r"^(0x)?[0-9a-fA-F]{16,}$")
_VICS_HINT = re.compile(rb"projectvic|vicsdatamodel|odata\.metadata|@odata\.context", re.IGNORECASE)


def _sniff_text(text: str) -> str | None:
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line may be cut by the sniff size
    lines = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")][:50]
    if not lines:
        return None
    if looks_like_xways(lines[0]) and len(lines[0].split()) <= 2:
        return "xways"  # X-Ways' first line names the hash type (MD5, SHA-1, SHA-256, ...)
    delim = max(",;\t", key=lines[0].count)
    header = [c.strip().lower() for c in next(_csv.reader([lines[0]], delimiter=delim))]
    if len(header) > 1:
        if "signal_type" in header and "signal_str" in header:
            return "te"
        if "value" in header:
            return "csv"
        if any(hash_column(h) for h in header):
            return "iped"
    votes = {"text": 0, "te": 0}
    for ln in lines:
        tokens = ln.split()
        if ln[0] in "'\"" or (len(tokens) >= 2 and is_te_signal_name(tokens[0]) and _HEX.match(tokens[1])):
            votes["te"] += 1
        elif _HEX.match(tokens[0]):
            votes["text"] += 1
    # A few bad lines do not change the format: the reader reports them as row errors.
    if votes["te"] + votes["text"] < max(1, len(lines) // 2):
        return None
    return "te" if votes["te"] else "text"


def detect_format(first_bytes: bytes, filename: str = "") -> str:
    """The name of the format of a file that starts with `first_bytes` (a few KB).

    The content decides: a JSON object is VICS, a CSV header with `value` is csv, one with
    `signal_type,signal_str` or lines of `<signal_type> <hash>` are te, lines of bare hashes
    (most of them: a few bad lines are the reader's to report) are text. The file name's
    extension is used only where the content does not say (an empty file, a text file of
    mostly unreadable lines). Binary content and content of no known format raise FormatError.
    """
    data = first_bytes.removeprefix(BOM)
    if is_rds_v3(data):
        return "nsrl"  # the one SQLite format Vigie reads: NIST's RDS v3
    if looks_binary(data):
        raise FormatError("the file is binary, not a hash list or a VICS JSON document")
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        if _VICS_HINT.search(data) or b'"value"' in data:
            return "vics"
        raise FormatError("the file is JSON but not a VICS document (no Project VIC metadata, no 'value')")
    if stripped.startswith(b"["):
        raise FormatError("the file is a JSON list, not a VICS document (whose root is an object)")
    found = _sniff_text(data.decode("utf-8", errors="replace"))
    if found:
        return found
    if filename:
        lower = filename.lower()
        for name, fmt in FORMATS.items():
            if lower.endswith(fmt.extensions):
                return name
    raise FormatError(f"cannot tell the format of {filename or 'the file'}: not VICS JSON, a CSV with a "
                      "'value' column, ThreatExchange lines or one hash per line")


__all__ = ["FORMATS", "BankFormat", "Row", "CsvFormat", "TextFormat", "TeFormat", "VicsFormat", "IpedFormat",
           "NsrlFormat", "XwaysFormat", "detect_format", "get_format", "register"]
