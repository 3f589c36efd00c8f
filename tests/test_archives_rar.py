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
import sys
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


# -- multi-volume -----------------------------------------------------------------------------------


def rar4_volumes(pieces: list[list[tuple[str, bytes, bytes, int]]]) -> list[bytes]:
    """The volumes of a RAR 4 set (new naming): `pieces[v]` lists (name, this volume's part, whole data, flags)
    with 0x01 (continued from the previous volume) and 0x02 (continued in the next)."""

    def block(kind: int, flags: int, body: bytes) -> bytes:
        head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head

    out = []
    for v, members in enumerate(pieces):
        main = 0x0001 | 0x0010 | (0x0100 if v == 0 else 0)  # volume, new naming, first volume
        vol = b"Rar!\x1a\x07\x00" + block(0x73, main, bytes(6))
        for name, part, whole, flags in members:
            raw = name.encode()
            body = struct.pack("<IIBIIBBHI", len(part), len(whole), 2, zlib.crc32(whole), DOS_2024, 20, 0x30,
                               len(raw), 0x20) + raw
            vol += block(0x74, 0x8000 | flags, body) + part
        out.append(vol + block(0x7B, 0x4000 | (0x0001 if v < len(pieces) - 1 else 0), b""))
    return out


def rar5_volumes(pieces: list[list[tuple[str, bytes, bytes, int]]]) -> list[bytes]:
    """The volumes of a RAR 5 set: `pieces[v]` lists (name, this volume's part, whole data, header flags) with
    0x0008 (continued from the previous volume) and 0x0010 (continued in the next)."""

    def block(kind: int, flags: int, body: bytes, data_size: int | None = None) -> bytes:
        fields = vint(kind) + vint(flags) + (vint(data_size) if data_size is not None else b"") + body
        rest = vint(len(fields)) + fields
        return struct.pack("<I", zlib.crc32(rest)) + rest

    out = []
    for v, members in enumerate(pieces):
        vol = b"Rar!\x1a\x07\x01\x00" + block(1, 0, vint(0x0001) if v == 0 else vint(0x0001 | 0x0002) + vint(v))
        for name, part, whole, flags in members:
            raw = name.encode()
            body = (vint(0x0002 | 0x0004) + vint(len(whole)) + vint(0o100644)
                    + struct.pack("<II", 1715941800, zlib.crc32(whole)) + vint(0) + vint(1) + vint(len(raw)) + raw)
            vol += block(2, 0x0002 | flags, body, len(part)) + part
        out.append(vol + block(5, 0, vint(0x0001 if v < len(pieces) - 1 else 0)))
    return out


def split3(data: bytes) -> tuple[bytes, bytes]:
    return data[:len(data) // 3], data[len(data) // 3:]


def test_a_multi_volume_rar_is_read_whole_from_its_first_volume(tmp_path):
    a, b, c = pic(101, size=(160, 120)), pic(102, "PNG"), pic(103, size=(140, 100))
    a1, a2 = split3(a)
    c1, c2 = split3(c)
    vols = rar4_volumes([[("a.jpg", a1, a, 0x02)], [("a.jpg", a2, a, 0x01), ("b.png", b, b, 0), ("c.jpg", c1, c, 0x02)],
                         [("c.jpg", c2, c, 0x01)]])
    ev = tmp_path / "ev"
    ev.mkdir()
    for i, v in enumerate(vols, 1):
        (ev / f"set.part{i}.rar").write_bytes(v)
    old = rar4_volumes([[("d.jpg", a1, a, 0x02)], [("d.jpg", a2, a, 0x01)]])
    (ev / "old.rar").write_bytes(old[0])
    (ev / "old.r00").write_bytes(old[1])
    new = rar5_volumes([[("e.jpg", c1, c, 0x0010)], [("e.jpg", c2, c, 0x0008), ("f.png", b, b, 0)]])
    (ev / "five.part01.rar").write_bytes(new[0])
    (ev / "five.part02.rar").write_bytes(new[1])
    items = by_loc(scan([ev]))
    five = str(ev / "five.part01.rar")
    assert items[f"{five}!e.jpg"].data == c and items[f"{five}!f.png"].data == b and items[five].meta["volumes"] == 2
    assert items[str(ev / "five.part02.rar")].meta["segment_of"] == "five.part01.rar"
    first = str(ev / "set.part1.rar")
    assert items[first].meta["volumes"] == 3 and code(items[first]) is None
    assert items[f"{first}!a.jpg"].data == a and items[f"{first}!b.png"].data == b and items[f"{first}!c.jpg"].data == c
    for i in (2, 3):
        rec = items[str(ev / f"set.part{i}.rar")]  # a record of the set, never opened alone
        assert rec.container and rec.meta["segment_of"] == "set.part1.rar" and code(rec) is None
        assert not [loc for loc in items if loc.startswith(str(ev / f"set.part{i}.rar") + "!")]
    assert items[f"{ev / 'old.rar'}!d.jpg"].data == a and items[str(ev / "old.r00")].meta["segment_of"] == "old.rar"
    assert read_location(f"{first}!c.jpg", Settings()) == c  # re-opened with its volumes, for review
    # a later volume whose first volume was not seized: read alone, as far as it goes
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "set.part2.rar").write_bytes(vols[1])
    alone = by_loc(scan([lone]))
    part2 = str(lone / "set.part2.rar")
    assert code(alone[f"{part2}!a.jpg"]) == "corrupt_container"  # its start is in the missing first volume
    assert alone[f"{part2}!b.png"].data == b  # whole in this volume
    assert code(alone[f"{part2}!c.jpg"]) == "corrupt_container"  # its end is in the third, not beside it


def test_without_libarchive_a_rar_is_unsupported_and_the_scan_goes_on(tmp_path, monkeypatch):
    a = pic(111)
    (tmp_path / "x.rar").write_bytes(rar5([("a.jpg", a)]))
    (tmp_path / "y.jpg").write_bytes(a)
    monkeypatch.setitem(sys.modules, "libarchive", None)  # as where neither libarchive-c nor libarchive13 is
    items = by_loc(scan([tmp_path]))
    rec = items[str(tmp_path / "x.rar")]
    assert code(rec) == "unsupported" and "libarchive" in rec.error.message
    assert items[str(tmp_path / "y.jpg")].error is None


def test_a_read_that_fails_inside_a_rar_is_its_error_not_the_scans():
    """A bad sector under a RAR on the evidence (an OSError from the read): the members before it are listed, the
    archive says where it stopped, nothing is raised to the scan."""
    from vigie.ingest import rar
    from vigie.ingest.containers import new_context
    from vigie.ingest.members import Item

    a, b = pic(121), pic(122, size=(300, 200))
    data = rar4([("a.jpg", a), ("b.jpg", b)])

    class BadSector(io.BytesIO):
        def readinto(self, buf):
            if self.tell() > len(data) - len(b) // 2:
                raise OSError(5, "Input/output error")
            return super().readinto(memoryview(buf)[:4096])  # small reads: the failure lands inside b.jpg

    got = list(rar.members(Item("ev/x.rar"), BadSector(data), len(data), "rar", 1, new_context(Settings())))
    assert got[0].location == "ev/x.rar" and got[1].location == "ev/x.rar!a.jpg" and got[1].data == a
    assert not [i for i in got if i.location == "ev/x.rar!b.jpg" and i.error is None]  # never taken for whole
    last = got[-1]  # libarchive saw the stream end; the failed read is said, not lost
    assert last.location == "ev/x.rar!<damaged>" and code(last) == "corrupt_container"
    assert "Input/output error" in last.error.message
