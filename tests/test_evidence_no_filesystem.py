"""Carving where no file system is: a partition The Sleuth Kit cannot open, the space between partitions, and
media with neither a file system nor a partition table (a wiped or reformatted card).

The disk is built here: an MBR with a FAT partition made by ``mkfs.vfat`` and ``mcopy``, a second partition of
noise (a file system Vigie cannot read: encrypted, APFS, LVM...) with pictures in it, pictures between and after
the partitions (where a deleted partition lay); the same disk as a VHD (``qemu-img``) reads through the one pass
of evidence images. Each location's expected answer is written here.
"""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest
from test_containers import by_loc, code, scan
from test_evidence_formats import MKFS, MTOOLS, QEMU_IMG, mtools, pic, sha

from vigie.ingest.reopen import read_location
from vigie.settings import Settings

MiB = 1 << 20
need_fat = pytest.mark.skipif(not (MKFS and MTOOLS), reason="dosfstools (mkfs.vfat) and mtools not installed")
need_qemu = pytest.mark.skipif(not QEMU_IMG, reason="qemu-utils (qemu-img) not installed")


def noise(n: int, seed: int) -> bytearray:
    return bytearray(random.Random(seed).randbytes(n))  # the same bytes on every run


def two_partitions(tmp: Path) -> tuple[bytes, bytes, dict, dict, dict]:
    """A 16 MiB disk: p1 FAT (1-5 MiB) with LIVE.JPG, a gap (5-7 MiB), p2 of noise (7-13 MiB), 3 MiB after it.

    Returns the disk, the live picture, and what carving must find: {offset in p2: bytes} and {disk offset: bytes}
    for the space outside the partitions."""
    vol = tmp / "p1.img"
    subprocess.run([MKFS, "-C", "-n", "LIVE", str(vol), str(4 * 1024)], check=True, capture_output=True)
    live = pic(31, size=(120, 90))
    (tmp / "LIVE.JPG").write_bytes(live)
    mtools("mcopy", "-i", str(vol), str(tmp / "LIVE.JPG"), "::/LIVE.JPG")
    disk = bytearray(16 * MiB)
    disk[1 * MiB:5 * MiB] = vol.read_bytes()
    disk[7 * MiB:13 * MiB] = noise(6 * MiB, 7)
    in_p2 = {64 * 1024: pic(32, size=(160, 120)), 2 * MiB + 4096: pic(33, "PNG"), 5 * MiB: pic(34, "GIF")}
    for off, b in in_p2.items():
        disk[7 * MiB + off:7 * MiB + off + len(b)] = b
    outside = {5 * MiB + 8192: pic(35, size=(100, 80)), 6 * MiB: pic(36, "WEBP"), 14 * MiB + 512: pic(37, "PNG")}
    for off, b in outside.items():
        disk[off:off + len(b)] = b
    mbr = bytearray(512)
    for n, (start, count, kind) in enumerate(((2048, 8192, 0x0E), (14336, 12288, 0x83))):
        struct.pack_into("<B3sB3sII", mbr, 446 + 16 * n, 0x00, b"\x00\x02\x00", kind, b"\xfe\xff\xff", start, count)
    mbr[510:512] = b"\x55\xaa"
    disk[:512] = mbr
    return bytes(disk), live, in_p2, outside


def expected(d: str, in_p2: dict, outside: dict) -> dict[str, bytes]:
    return {f"{d}!p2/@unallocated:0x{off:x}": b for off, b in in_p2.items()} | {
        f"{d}!unpartitioned/@unallocated:0x{off:x}": b for off, b in outside.items()}


@need_fat
def test_a_partition_without_file_system_and_the_space_between_partitions_are_carved(tmp_path):
    disk, live, in_p2, outside = two_partitions(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "disk.img").write_bytes(disk)
    d = str(ev / "disk.img")
    items = by_loc(scan([ev]))
    want = expected(d, in_p2, outside)
    carved = {loc: it for loc, it in items.items() if "@unallocated:" in loc}
    assert sorted(carved) == sorted(want)
    for loc, data in want.items():
        it = carved[loc]
        assert it.data == data and it.deleted and it.meta["carved"] is True and it.meta["fs"] == "none", loc
    assert carved[f"{d}!p2/@unallocated:0x10000"].meta["partition"] == 2
    assert carved[f"{d}!unpartitioned/@unallocated:0x{6 * MiB:x}"].meta["unpartitioned"] is True
    assert items[f"{d}!p1/LIVE.JPG"].data == live
    p2 = items[f"{d}!p2"]
    assert code(p2) == "no_filesystem" and "all of it is carved" in p2.error.message
    # in disk order: the first partition's files, the gap, the second partition, the space after it
    order = [loc for loc in items if loc.startswith(d + "!")]
    assert order.index(f"{d}!p1/LIVE.JPG") < order.index(f"{d}!unpartitioned/@unallocated:0x{5 * MiB + 8192:x}") \
        < order.index(f"{d}!p2") < order.index(f"{d}!p2/@unallocated:0x10000") \
        < order.index(f"{d}!unpartitioned/@unallocated:0x{14 * MiB + 512:x}")
    # each re-read from its location alone, as review does; offsets that carve nothing give nothing
    s = Settings()
    for loc, data in want.items():
        assert read_location(loc, s) == data, loc
    assert read_location(f"{d}!p2/@unallocated:0x10001", s) is None
    assert read_location(f"{d}!unpartitioned/@unallocated:0x{8 * MiB:x}", s) is None  # inside p2, not a gap
    # carving off: the partition is reported, nothing is carved
    off = by_loc(scan([ev], Settings(carve_unallocated=False)))
    assert not [loc for loc in off if "@unallocated:" in loc]
    assert code(off[f"{d}!p2"]) == "no_filesystem" and "carved" not in off[f"{d}!p2"].error.message


@need_fat
@need_qemu
def test_the_same_disk_as_a_vhd_is_carved_in_its_one_pass(tmp_path):
    disk, live, in_p2, outside = two_partitions(tmp_path)
    (tmp_path / "disk.raw").write_bytes(disk)
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "vpc", str(tmp_path / "disk.raw"), str(ev / "d.vhd")],
                   check=True, capture_output=True)
    d = str(ev / "d.vhd")
    items = by_loc(scan([ev]))
    want = expected(d, in_p2, outside)
    assert sorted(loc for loc in items if "@unallocated:" in loc) == sorted(want)
    for loc, data in want.items():
        assert items[loc].data == data, loc
    img = items[d]
    assert img.error is None and img.meta["media_sha256"] == sha(disk + bytes(img.meta["media_size"] - len(disk)))
    assert img.meta["media_bytes_reread"] == 0  # partitions and gaps carved in disk order, in the one read
    assert items[f"{d}!p1/LIVE.JPG"].data == live and code(items[f"{d}!p2"]) == "no_filesystem"
    for loc in (f"{d}!p2/@unallocated:0x{2 * MiB + 4096:x}", f"{d}!unpartitioned/@unallocated:0x{14 * MiB + 512:x}"):
        assert read_location(loc, Settings()) == want[loc]


@need_qemu
def test_media_with_neither_file_system_nor_partition_table_is_carved_whole(tmp_path):
    card = noise(8 * MiB, 11)  # a card wiped with noise, its first sectors too, then pictures written again
    card[:1 * MiB] = bytes(MiB)
    found = {1 * MiB: pic(41, size=(150, 100)), 3 * MiB + 1234: pic(42, "PNG"), 7 * MiB: pic(43, "BMP")}
    for off, b in found.items():
        card[off:off + len(b)] = b
    (tmp_path / "card.raw").write_bytes(bytes(card))
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", str(tmp_path / "card.raw"),
                    str(ev / "card.qcow2")], check=True, capture_output=True)
    d = str(ev / "card.qcow2")
    items = by_loc(scan([ev]))
    img = items[d]
    assert code(img) == "no_filesystem" and "all of it is carved" in img.error.message
    assert img.meta["media_sha256"] == sha(bytes(card))  # still hashed in full
    want = {f"{d}!/@unallocated:0x{off:x}": b for off, b in found.items()}
    assert sorted(loc for loc in items if "@unallocated:" in loc) == sorted(want)
    for loc, data in want.items():
        assert items[loc].data == data and items[loc].meta["fs"] == "none", loc
        assert read_location(loc, Settings()) == data, loc
    assert list(items)[-1] == d  # the image's own row after its members, once its hash is known


@need_fat
def test_the_scan_queues_every_picture_carved_outside_file_systems_with_its_media(store, tmp_path, media_key):
    from sqlalchemy import select

    from vigie.ingest.scan import run_scan, scan_key
    from vigie.review import media as rmedia
    from vigie.review.queue import enqueue_scan
    from vigie.store.models import Scan, ScanFile

    disk, live, in_p2, outside = two_partitions(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "disk.img").write_bytes(disk)
    settings = store.settings
    run_scan(store, settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {r.location: r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id))}
    want = expected(str(ev / "disk.img"), in_p2, outside)
    for loc, data in want.items():
        assert rows[loc].klass == "unknown" and rows[loc].sha256 == sha(data), loc
        assert {"carved", "deleted"} <= set(rows[loc].flags), loc
    assert rows[f"{ev / 'disk.img'}!p2"].error_code == "no_filesystem"
    rep = enqueue_scan(store, settings, scan_id, media_reader=lambda loc: read_location(loc, settings))
    assert rep["media_missing"] == 0
    for data in want.values():
        assert rmedia.has_media(store, sha(data), "original")


def test_partitions_over_the_same_bytes_are_carved_once(tmp_path):
    """A hostile table: four partitions over the same noise (and one past the image's end). Each is reported; the
    picture in them is carved once, under the first, and nothing is read past the end."""
    disk = bytearray(4 * MiB)
    disk[1 * MiB:] = noise(3 * MiB, 3)
    jpg = pic(51, size=(90, 60))
    disk[2 * MiB:2 * MiB + len(jpg)] = jpg
    mbr = bytearray(512)
    for n, (start, count) in enumerate(((2048, 6144), (2048, 6144), (2048, 4096), (6000, 1 << 24))):
        struct.pack_into("<B3sB3sII", mbr, 446 + 16 * n, 0x00, b"\x00\x02\x00", 0x83, b"\xfe\xff\xff", start, count)
    mbr[510:512] = b"\x55\xaa"
    disk[:512] = mbr
    img = tmp_path / "hostile.img"
    img.write_bytes(bytes(disk))
    items = by_loc(scan([img]))  # every location once (by_loc checks)
    d = str(img)
    assert [loc for loc in items if "@unallocated:" in loc] == [f"{d}!p1/@unallocated:0x{1 * MiB:x}"]
    assert items[f"{d}!p1/@unallocated:0x{1 * MiB:x}"].data == jpg
    assert [code(items[f"{d}!p{i}"]) for i in (1, 2, 3, 4)] == ["no_filesystem"] * 4
    assert read_location(f"{d}!p1/@unallocated:0x{1 * MiB:x}", Settings()) == jpg
