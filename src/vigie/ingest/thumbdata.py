"""Android's thumbnail data caches (``DCIM/.thumbnails/.thumbdata3--1967290299``, ``.thumbdata4--…``,
``.thumbdata5--…``): the Gallery's thumbnail of every picture it has shown, packed one after another in one
file, and kept there after the picture is deleted, so a thumbnail that matches a known picture is evidence
the picture was on the phone.

The entries are found by carving (`vigie.ingest.carving`): a picture's signature followed by its structure to
its end, whatever the slot layout of the Android version (in the versions described by forensic write-ups, a
marker byte, a magic number and the JPEG's length precede each JPEG in slots of a fixed size; the carving
does not depend on that). Where a thumbnail does sit at the start of such a slot (Android's `MiniThumbFile`:
slot `n` at `n * 10000`, for the picture whose MediaStore id is `n`), its member gets `meta["slot_id"]` and
`meta["slot_magic"]`, which the report joins with MediaStore (`vigie.ingest.mediastore`) to name the picture.
Members are named by their offset in the file, ``.thumbdata3--1967290299!0x00002710.jpg``,
with ``meta["offset"]``, ``meta["carved_type"]`` and the flag ``embedded``; each is re-read from that offset
alone for review. The file is known by its name (``.thumbdata`` at the start), as forensic tools find it:
its bytes have no magic of their own. The test writes such a file with a helper (no real phone's cache is in
the test data).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from vigie.ingest import carving
from vigie.ingest.members import SEP, Context, Item, too_many

_EXT = {"jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "bmp": "bmp"}


def is_thumbdata(location: str) -> bool:
    """Whether the file (or member) at `location` is named as an Android thumbnail data cache."""
    name = location.rsplit(SEP, 1)[-1].rsplit("/", 1)[-1]
    return os.path.basename(name).lower().startswith(".thumbdata")


def members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    item.meta["format"] = "thumbdata"
    yield item

    def read(off: int, n: int) -> bytes:
        fobj.seek(off)
        return fobj.read(max(0, min(n, size - off)))

    limit = min(carving.CARVE_MAX, ctx.settings.max_file_bytes)
    prefix = f"{item.location}{SEP}"
    t = ctx.target
    if t is not None:  # re-opening one entry: measured from its offset alone
        try:
            off = int(t[len(prefix):].split(".", 1)[0], 16) if t.startswith(prefix + "0x") else -1
        except ValueError:
            return
        got = carving.measure(read, off, min(limit, size - off)) if 0 <= off < size else None
        if got is not None and t == f"{prefix}0x{off:08x}.{_EXT.get(got[0], 'bin')}":
            yield _entry(item, prefix, off, got, read, depth, ctx)
        return
    count = 0
    for off, ptype, n in carving.carve(read, [(0, size)], limit, video_limit=limit):
        if ptype not in _EXT:
            continue  # a video signature inside a thumbnail cache: not a thumbnail
        count += 1
        if count > ctx.settings.archive_max_entries:
            yield too_many(f"{prefix}0x{off:08x}.{_EXT[ptype]}", ctx)
            return
        yield from ctx.expand(_entry(item, prefix, off, (ptype, n), read, depth, ctx), depth + 1)


#: Android's slot of one thumbnail (`android.media.MiniThumbFile`): at `image id * SLOT_BYTES`, a byte 1, the
#: thumbnail's magic (a long, big-endian: the `mini_thumb_magic` of the picture's MediaStore row), the JPEG's
#: length (an int), then the JPEG.
SLOT_BYTES = 10_000
SLOT_HEAD = 1 + 8 + 4


def slot(head: bytes, off: int) -> dict:
    """`slot_id` and `slot_magic` of a thumbnail at `off` whose 13 bytes before are `head`, when they are an
    Android slot's header at the start of a slot: what links it to its picture through MediaStore
    (`vigie.ingest.mediastore`). Empty otherwise (the carving does not depend on it)."""
    if off < SLOT_HEAD or (off - SLOT_HEAD) % SLOT_BYTES or len(head) != SLOT_HEAD or head[0] != 1:
        return {}
    magic, length = struct.unpack(">qi", head[1:])
    if not 0 < length <= SLOT_BYTES - SLOT_HEAD:
        return {}
    return {"slot_id": (off - SLOT_HEAD) // SLOT_BYTES, "slot_magic": magic}


def _entry(item: Item, prefix: str, off: int, got: tuple[str, int], read, depth: int, ctx: Context) -> Item:
    ptype, n = got
    meta = {"offset": off, "carved_type": ptype, "embedded": True,
            **(slot(read(off - SLOT_HEAD, SLOT_HEAD), off) if off >= SLOT_HEAD else {})}
    return Item(f"{prefix}0x{off:08x}.{_EXT.get(ptype, 'bin')}", size=n, data=read(off, n), deleted=item.deleted,
                meta=meta)
