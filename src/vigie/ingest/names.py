"""Names that are not valid UTF-8, made into location text that the store, the CSV and the HTML can hold.

Seized drives are full of file names written in Latin-1, CP1252 or plain garbage. Python
hands them over as text with lone surrogates (``caf\\udce9.jpg``), which no UTF-8 database
column accepts: one such name used to end a scan for good. Here every byte that is not
part of valid UTF-8 is shown as ``\\xNN`` (``caf\\xe9.jpg``), the way the shell and Python
print it, and the caller flags the location `name_not_utf8` and keeps the raw bytes.

The escaping is reversible (`unescape` gives the exact bytes back, which is how
`vigie.ingest.reopen` finds the file again) and unambiguous: a name that really holds the
four characters ``\\xe9`` has its backslash written ``\\x5c`` (``\\x5cxe9``), so two different
names never share a location. Names without either are unchanged.
"""

from __future__ import annotations

import os
import re

#: Put after a location that another item of the same scan holds already (`vigie.ingest.scan._insert_rows`):
#: ``a!b.jpg#dup2``. Names may hold ``!``, so two different items can be walked to the same location.
DUP = "#dup"
DUP_SUFFIX = re.compile(r"#dup[0-9]+$")

_LITERAL = re.compile(r"\\(?=x[0-9a-fA-F]{2})")
_ESCAPED = re.compile(rb"\\x([0-9a-fA-F]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _byte_escape(m: re.Match) -> str:
    o = ord(m.group())
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8, carried by surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    # a lone UTF-16 surrogate (a broken Windows or 7z name): its bytes as Python would write them
    return "".join(f"\\x{b:02x}" for b in m.group().encode("utf-8", "surrogatepass"))


def escape(text: str) -> tuple[str, bool]:
    """`text` as location text, and whether it held bytes that are not UTF-8 (lone surrogates)."""
    bad = _SURROGATE.search(text) is not None
    if not bad and "\\x" not in text:
        return text, False
    text = _LITERAL.sub(r"\\x5c", text)
    if bad:
        text = _SURROGATE.sub(_byte_escape, text)
    return text, bad


def escape_bytes(raw: bytes) -> tuple[str, bool]:
    """A name read as bytes (The Sleuth Kit, a zip's local header) as location text, and whether it was not UTF-8."""
    return escape(raw.decode("utf-8", "surrogateescape"))


def unescape(text: str) -> bytes:
    """The exact bytes behind location text made by `escape`."""
    return _ESCAPED.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8", "surrogateescape"))


def os_path(text: str) -> str:
    """A path on this machine from location text: what `open` needs to find a file with a non-UTF-8 name."""
    return os.fsdecode(unescape(text))


def raw_hex(text: str) -> str:
    """The bytes of a name given as Python text (surrogateescape), in hex: kept with flagged locations."""
    return unescape(escape(text)[0]).hex()


def clean(value):
    """`value` (str, list, dict of them) with every string escaped: what goes into a JSON column."""
    if isinstance(value, str):
        return escape(value)[0] if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value
