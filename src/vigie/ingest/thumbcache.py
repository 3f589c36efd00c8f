"""Windows thumbnail caches (``thumbcache_*.db``, Vista to Windows 11): each cached thumbnail a member.

Explorer keeps a thumbnail of every picture it has shown, in ``thumbcache_32.db``,
``thumbcache_256.db``…; the thumbnail stays after the picture is deleted, so it is evidence the
picture was on the device. The file: a header (``CMMM``, a format version, a cache type, then the
offset of the first entry), then entries one after another, each ``CMMM``, its total size, a
64-bit hash (the thumbnail's cache id), the sizes of its identifier, padding and data, and ends
with its data (a JPEG, PNG or BMP). Vigie walks the entries by their sizes and takes each entry's
last `data size` bytes; when the data size field is not where this version is known to keep it,
the entry's bytes are searched for a picture's signature instead.

Members are named by their cache id, as Windows names them: ``thumbcache_256.db!0123456789abcdef.jpg``
(``#2``… for a repeated id); ``meta["cache_id"]``, ``meta["entry_offset"]``, the flag ``embedded``.
Empty entries (no data) are not listed. Walking stops at the end of the file, at bytes that are not
an entry, or after `archive_max_entries` entries.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.members import SEP, Context, Item, NameBook
from vigie.media.sniff import sniff

MAGIC = b"CMMM"
#: Format versions: Vista 20, Windows 7 21, 8 26, 8.1 28, 10 30/31, 11 32.
VERSIONS = {20, 21, 26, 28, 30, 31, 32}
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/bmp": "bmp"}


def is_thumbcache(head: bytes) -> bool:
    return head[:4] == MAGIC and len(head) >= 24 and struct.unpack("<I", head[4:8])[0] in VERSIONS


def _first_entry(head: bytes, version: int) -> int:
    # Vista and 7 keep the first entry's offset at 12; Windows 8 and later at 16 (12 holds flags)
    return struct.unpack("<I", head[12:16] if version in (20, 21) else head[16:20])[0]


def _data(entry: bytes, version: int) -> bytes | None:
    at = 32 if version == 20 else 24  # Vista has an 8-byte extension before the sizes
    if len(entry) >= at + 4:
        (size,) = struct.unpack("<I", entry[at:at + 4])
        if 0 < size <= len(entry) - at and sniff(entry[len(entry) - size:][:64]):
            return entry[len(entry) - size:]
    for sig in (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM"):
        i = entry.find(sig, 24)
        if i >= 0 and sniff(entry[i:i + 64]):
            return entry[i:]
    return None


def members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    item.meta["format"] = "thumbcache"
    head = fobj.read(24)
    version = struct.unpack("<I", head[4:8])[0]
    item.meta["thumbcache_version"] = version
    pos = _first_entry(head, version)
    if not 24 <= pos <= size:
        item.error = ErrorRecord("corrupt_container", f"thumbcache: first entry offset {pos} outside the file")
        yield item
        return
    yield item
    book = NameBook()
    count = 0
    while pos + 16 <= size:
        fobj.seek(pos)
        top = fobj.read(16)
        if top[:4] != MAGIC:
            break  # the end of the entries (or damage): what was listed stays
        esize, cache_id = struct.unpack("<IQ", top[4:16])
        if esize < 16 or pos + esize > size or esize > ctx.settings.max_file_bytes:
            yield Item(f"{item.location}{SEP}<damaged>", meta={"entry_offset": pos},
                       error=ErrorRecord("corrupt_container", f"thumbcache entry at {pos} declares {esize} bytes"))
            break
        count += 1
        if count > ctx.settings.archive_max_entries:
            yield Item(f"{item.location}{SEP}<too many>", error=ErrorRecord(
                "too_many_entries", f"over archive_max_entries ({ctx.settings.archive_max_entries}) entries"))
            break
        entry = top + fobj.read(esize - 16)
        data = _data(entry, version)
        if data is not None:
            meta = {"cache_id": f"{cache_id:016x}", "entry_offset": pos, "embedded": True}
            name = book.unique(f"{cache_id:016x}.{_EXT.get(sniff(data[:64]) or '', 'bin')}", meta)
            loc = f"{item.location}{SEP}{name}"
            if ctx.wants(loc):
                yield from ctx.expand(Item(loc, size=len(data), data=data, deleted=item.deleted, meta=meta),
                                      depth + 1)
        pos += esize
