"""RAR archives (RAR 4 and RAR 5) through libarchive.

No free tool writes RAR, so the archives are written here, byte by byte, from the format's documentation
(RAR 4: technote.txt of RAR 3.x; RAR 5: rarlab's "RAR 5.0 archive format"), with stored members: what is
tested is Vigie's reading (names, folders, nesting, encryption, damage, limits, re-opening), not libarchive's
decompression. Each location's expected answer is written here.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import pytest
from test_containers import by_loc, code, scan
from test_evidence_formats import pic

from vigie.ingest.containers import sniff_container
from vigie.ingest.reopen import read_location
from vigie.settings import Settings

pytest.importorskip("libarchive")

DOS_2024 = (2024 - 1980) << 25 | 5 << 21 | 17 << 16 | 10 << 11 | 30 << 5  # 2024-05-17 10:30:00


def rar4(members: list[tuple[str, bytes]], *, encrypted: frozenset = frozenset(), end: bool = True) -> bytes:
    """A RAR 4 archive of stored members (`name`, data); names with ``\\`` as a Windows RAR writes them."""

    def block(kind: int, flags: int, body: bytes) -> bytes:
        head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head

    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, bytes(6))
    for name, data in members:
        raw = name.encode()
        flags = 0x8000 | (0x04 if name in encrypted else 0)
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), DOS_2024, 20, 0x30, len(raw),
                           0x20) + raw
        out += block(0x74, flags, body) + data
    return out + (block(0x7B, 0x4000, b"") if end else b"")


def vint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def rar5(members: list[tuple]) -> bytes:
    """A RAR 5 archive of stored members (`name`, data[, mode]) from a Unix host (the attributes are the mode,
    0o100644 unless given); data None: a folder."""

    def block(kind: int, flags: int, body: bytes, data_size: int | None = None) -> bytes:
        fields = vint(kind) + vint(flags) + (vint(data_size) if data_size is not None else b"") + body
        rest = vint(len(fields)) + fields
        return struct.pack("<I", zlib.crc32(rest)) + rest

    out = b"Rar!\x1a\x07\x01\x00" + block(1, 0, vint(0))
    for name, data, *mode in members:
        raw = name.encode()
        if data is None:
            body = vint(0x0001 | 0x0002) + vint(0) + vint(0o40755) + struct.pack("<I", 1715941800) + vint(0) + vint(1)
            out += block(2, 0x0002, body + vint(len(raw)) + raw, 0)  # WinRAR, and libarchive, want a data size
            continue
        attributes = vint(mode[0] if mode else 0o100644)
        body = (vint(0x0002 | 0x0004) + vint(len(data)) + attributes + struct.pack("<II", 1715941800, zlib.crc32(data))
                + vint(0) + vint(1) + vint(len(raw)) + raw)
        out += block(2, 0x0002, body, len(data)) + data
    return out + block(5, 0, vint(0))


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_rar4_and_rar5_members_are_read_with_their_folders_and_nesting(tmp_path):
    a, b, c, d = pic(71, size=(90, 60)), pic(72, "PNG"), pic(73), pic(74, "GIF")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("in/zip.gif", d)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "old.rar").write_bytes(rar4([("photos\\a.jpg", a), ("b.png", b), ("..\\..\\etc\\c.jpg", c)]))
    packed = inner.getvalue()
    (ev / "new.rar").write_bytes(rar5([("fotos", None), ("fotos/été.jpg", a), ("pack.zip", packed, 0o644)]))  # 0o644:
    # no file-type bits, as some writers leave it
    with zipfile.ZipFile(ev / "outer.zip", "w") as z:
        z.writestr("x/old.rar", (ev / "old.rar").read_bytes())
    assert sniff_container((ev / "old.rar").read_bytes()[:4096]) == "rar"
    assert sniff_container((ev / "new.rar").read_bytes()[:4096]) == "rar"
    items = by_loc(scan([ev]))
    o, n = str(ev / "old.rar"), str(ev / "new.rar")
    assert items[o].container and items[o].meta["format"] == "rar" and code(items[o]) is None
    assert items[f"{o}!photos/a.jpg"].data == a and items[f"{o}!b.png"].data == b
    assert items[f"{o}!photos/a.jpg"].meta["mtime"] == "2024-05-17T10:30:00+00:00"
    bad = items[f"{o}!__/__/etc/c.jpg"]  # a traversal name stays inside its archive, flagged
    assert bad.data == c and bad.meta["unsafe_name"] is True
    assert bad.meta["original_name"] == "../../etc/c.jpg"  # libarchive turns a Windows \\ into /
    assert items[f"{n}!fotos/été.jpg"].data == a
    assert items[f"{n}!pack.zip!in/zip.gif"].data == d  # a zip inside a RAR
    assert f"{n}!fotos" not in items  # folders are not rows
    nested = f"{ev / 'outer.zip'}!x/old.rar"  # a RAR inside a zip
    assert items[nested].meta["format"] == "rar" and items[f"{nested}!b.png"].data == b
    for loc, data in ((f"{o}!b.png", b), (f"{n}!pack.zip!in/zip.gif", d), (f"{nested}!photos/a.jpg", a)):
        assert read_location(loc, Settings()) == data, loc  # re-opened for review from the location alone


def test_encrypted_damaged_and_oversized_rar_members_are_reported_and_the_rest_read(tmp_path):
    a, b, c = pic(81), pic(82, "PNG"), pic(83, size=(200, 150))
    whole = rar4([("a.jpg", a), ("secret.jpg", b), ("c.jpg", c)], encrypted=frozenset({"secret.jpg"}))
    (tmp_path / "enc.rar").write_bytes(whole)
    cut = rar4([("a.jpg", a), ("c.jpg", c)], end=False)
    (tmp_path / "cut.rar").write_bytes(cut[:-len(c) // 2])  # the last member cut in its middle
    (tmp_path / "junk.rar").write_bytes(b"Rar!\x1a\x07\x00" + bytes(range(256)) * 4)
    items = by_loc(scan([tmp_path / "enc.rar", tmp_path / "cut.rar", tmp_path / "junk.rar"]))
    e, k, j = (str(tmp_path / x) for x in ("enc.rar", "cut.rar", "junk.rar"))
    secret = items[f"{e}!secret.jpg"]
    assert code(secret) == "encrypted" and secret.meta["encrypted"] is True and secret.size == len(b)
    assert items[f"{e}!a.jpg"].data == a and items[f"{e}!c.jpg"].data == c  # the member after it too
    assert items[f"{k}!a.jpg"].data == a and code(items[f"{k}!c.jpg"]) == "corrupt_container"
    assert code(items[j]) == "corrupt_container" and [loc for loc in items if loc.startswith(j + "!")] == []
    # over max_file_bytes: the digests computed while it streamed past, not the bytes
    big = by_loc(scan([tmp_path / "enc.rar"], Settings(max_file_bytes=len(a) + 1)))
    over = big[f"{e}!c.jpg"]
    assert code(over) == "too_large" and over.data is None and over.digests["sha256"] == sha(c)
    assert big[f"{e}!a.jpg"].data == a


def test_a_scan_queues_rar_members_with_their_media(store, tmp_path, media_key):
    from sqlalchemy import select

    from vigie.ingest.scan import run_scan, scan_key
    from vigie.review import media as rmedia
    from vigie.review.queue import enqueue_scan
    from vigie.store.models import Scan, ScanFile

    a, b = pic(91, size=(100, 70)), pic(92, "PNG")
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "x.rar").write_bytes(rar5([("a.jpg", a), ("sub/b.png", b)]))
    settings = store.settings
    run_scan(store, settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {r.location: r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id))}
    for loc, data in ((f"{ev / 'x.rar'}!a.jpg", a), (f"{ev / 'x.rar'}!sub/b.png", b)):
        assert rows[loc].klass == "unknown" and rows[loc].sha256 == sha(data), loc
    rep = enqueue_scan(store, settings, scan_id, media_reader=lambda loc: read_location(loc, settings))
    assert rep["media_missing"] == 0 and rmedia.has_media(store, sha(a), "original")
