"""Windows ``Thumbs.db`` (XP to Windows 2003, and on network shares since): each cached thumbnail a member.

Explorer stored a thumbnail of every picture of a folder in that folder's ``Thumbs.db``, an OLE
compound file (read with olefile, from the read-only file object): one stream per thumbnail,
named by its index (``1``, ``2``…), holding a small header (its own length first, then the index
and the data size) and a JPEG; a ``Catalog`` stream maps each index to the picture's file name and
time. The thumbnail outlives the picture, so it is evidence the picture was in the folder.

Members are named by stream, ``Thumbs.db!1.jpg`` (streams in the order olefile lists them, sorted
by name), with ``meta["catalog_name"]`` (the picture's name from the Catalog, escaped when it is not
valid UTF-16) and the flag ``embedded``. A stream holding no picture is not listed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.members import SEP, Context, Item, NameBook
from vigie.media.sniff import sniff

MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/bmp": "bmp"}


def is_ole(head: bytes) -> bool:
    return head[:8] == MAGIC


def _catalog(data: bytes) -> dict[int, str]:
    """Index -> file name from the Catalog stream (header: its length, version, count, width, height)."""
    out: dict[int, str] = {}
    try:
        hlen, _version, count = struct.unpack("<HHI", data[:8])
        pos = hlen
        for _ in range(min(count, 1_000_000)):
            elen, idx = struct.unpack("<II", data[pos:pos + 8])
            if elen < 16:
                break
            raw = data[pos + 16:pos + elen]
            end = next((i for i in range(0, len(raw) - 1, 2) if raw[i:i + 2] == b"\x00\x00"), len(raw))
            out[idx] = raw[:end].decode("utf-16-le", "backslashreplace")
            pos += elen
    except struct.error:
        pass
    return out


def _picture(stream: bytes) -> bytes | None:
    if len(stream) >= 12:
        (hlen,) = struct.unpack("<I", stream[:4])
        if 8 <= hlen <= 64 and sniff(stream[hlen:hlen + 64]):
            return stream[hlen:]
    i = stream.find(b"\xff\xd8\xff")
    return stream[i:] if i >= 0 else None


def members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    import olefile

    item.meta["format"] = "ole"
    try:
        ole = olefile.OleFileIO(fobj)
        names = sorted(("/".join(p) for p in ole.listdir(streams=True, storages=False)), key=lambda n: (len(n), n))
        catalog = _catalog(ole.openstream("Catalog").read()) if ole.exists("Catalog") else {}
    except (OSError, ValueError, struct.error, IndexError) as exc:
        item.error = ErrorRecord("corrupt_container", f"OLE compound file unreadable: {str(exc)[:300]}")
        yield item
        return
    thumbs = [n for n in names if n != "Catalog" and "/" not in n]
    if not catalog and not all(n.isdigit() for n in thumbs):
        yield item  # another OLE file (an old Office document…): hashed, not opened here
        return
    item.meta["format"] = "thumbs.db"
    yield item
    book = NameBook()
    for n, name in enumerate(thumbs, 1):
        if n > ctx.settings.archive_max_entries:
            break
        try:
            if ole.get_size(name) > ctx.settings.max_file_bytes:
                continue
            data = _picture(ole.openstream(name).read())
        except (OSError, ValueError, struct.error) as exc:
            yield Item(f"{item.location}{SEP}{name}", meta={"embedded": True},
                       error=ErrorRecord("corrupt", f"stream unreadable: {str(exc)[:200]}"))
            continue
        if data is None:
            continue
        meta: dict = {"embedded": True, "stream": name}
        ident = int(name[::-1]) if name.isdigit() else None  # XP writes the index's digits reversed
        for key in (ident, int(name) if name.isdigit() else None):
            if key in catalog:
                meta["catalog_name"] = catalog[key]
                break
        ext = _EXT.get(sniff(data[:64]) or "", "bin")
        loc = f"{item.location}{SEP}{book.unique(f'{name}.{ext}', meta)}"
        if ctx.wants(loc):
            yield from ctx.expand(Item(loc, size=len(data), data=data, deleted=item.deleted, meta=meta), depth + 1)
