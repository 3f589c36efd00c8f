"""Android's thumbnail data caches (``DCIM/.thumbnails/.thumbdata3--1967290299``): the Gallery's thumbnails
packed in one file, kept after the pictures are deleted. The file is written here with a helper in the layout
forensic write-ups describe (a marker byte, the image id, the JPEG's length, the JPEG, in fixed-size slots); the
reading carves the pictures out and does not depend on that layout."""

from __future__ import annotations

import struct
import zipfile

from test_containers import by_loc, scan
from test_evidence_formats import pic

from vigie.ingest.reopen import read_location
from vigie.settings import Settings

SLOT = 10_000


def thumbdata(thumbs: dict[int, bytes | None]) -> tuple[bytes, dict[int, bytes]]:
    """The cache and {offset of each JPEG: its bytes}; a slot whose value is None is left blank (a deleted entry)."""
    out, where = bytearray(), {}
    for image_id, jpeg in thumbs.items():
        slot = bytearray(SLOT)
        if jpeg is not None:
            head = b"\x01" + struct.pack("<QI", image_id, len(jpeg))
            slot[:len(head) + len(jpeg)] = head + jpeg
            where[len(out) + len(head)] = jpeg
        out += slot
    return bytes(out), where


def test_the_thumbnails_of_an_android_thumbdata_cache_are_members(tmp_path):
    a, b, c = pic(131, size=(96, 72)), pic(132, size=(96, 72)), pic(133, size=(80, 60))
    cache, where = thumbdata({1001: a, 1002: None, 1003: b, 1004: c})
    phone = tmp_path / "sdcard" / "DCIM" / ".thumbnails"
    phone.mkdir(parents=True)
    (phone / ".thumbdata3--1967290299").write_bytes(cache)
    (phone / "other.bin").write_bytes(cache)  # the same bytes under another name: not a thumbnail cache
    with zipfile.ZipFile(tmp_path / "backup.zip", "w") as z:
        z.writestr("DCIM/.thumbnails/.thumbdata4--1967290299", cache)
    items = by_loc(scan([tmp_path]))
    zipped = f"{tmp_path / 'backup.zip'}!DCIM/.thumbnails/.thumbdata4--1967290299"
    for top in (str(phone / ".thumbdata3--1967290299"), zipped):
        assert items[top].container and items[top].meta["format"] == "thumbdata"
        got = {loc: it for loc, it in items.items() if loc.startswith(top + "!")}
        assert sorted(got) == sorted(f"{top}!0x{off:08x}.jpg" for off in where)
        for off, data in where.items():
            it = got[f"{top}!0x{off:08x}.jpg"]
            assert it.data == data and it.meta["offset"] == off and it.meta["embedded"] is True
            assert read_location(f"{top}!0x{off:08x}.jpg", Settings()) == data  # re-read for review
        assert read_location(f"{top}!0x{min(where) + 1:08x}.jpg", Settings()) is None
    assert not [loc for loc in items if loc.startswith(str(phone / "other.bin") + "!")]
