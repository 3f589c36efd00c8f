"""Deleted files on exFAT and HFS+: what The Sleuth Kit lists, and what only carving finds.

- exFAT: the volume is made by ``mkfs.exfat`` (exfatprogs) and written through exfat-fuse (``mount.exfat-fuse``
  on a loop device, as root): files written, some deleted, the volume unmounted; and again with the files'
  entries and clusters written by hand, as exFAT lays them out, so that the test runs where nothing may be
  mounted. The Sleuth Kit lists the
  deleted entries (exFAT keeps a deleted entry's first cluster and size, and its data is contiguous when
  written that way): each comes with ``deleted=True`` and its content, re-read by location for review.
  Where loop devices or FUSE are not allowed (not root, a container without /dev/fuse), the test is skipped
  with the error that stopped it.
- HFS+: Debian has no ``mkfs.hfsplus`` any more (hfsprogs left Debian after bullseye; ``apt-cache policy
  hfsprogs``: no candidate) and no kernel HFS+ module is loaded here, so the volume is made by ``xorriso
  -hfsplus`` (a hybrid ISO whose Apple partition holds a real HFS+ volume) and cut out of the ISO. Deleting a
  file from it is done by hand as HFS+ itself does it: its file and thread records are removed from the
  catalog B-tree leaf and its blocks cleared in the allocation file. The Sleuth Kit lists no deleted HFS+ file
  at all (the catalog record is gone): the picture is found by carving the freed blocks, at its offset.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from vigie.demo import encode, photo_like
from vigie.ingest import carving
from vigie.ingest.containers import iter_items
from vigie.ingest.reopen import read_location
from vigie.settings import Settings


def _tool(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)


MKEXFAT, EXFAT_FUSE, LOSETUP, XORRISO = _tool("mkfs.exfat"), _tool("mount.exfat-fuse"), _tool("losetup"), \
    _tool("xorriso")


def pic(seed: int, fmt: str = "JPEG", size=(160, 120)) -> bytes:
    return encode(photo_like(seed, *size), fmt)


def scan(path: Path) -> dict:
    return {i.location: i for i in iter_items([str(path)], Settings())}


# -- exFAT -----------------------------------------------------------------------------------------

def _run(args: list[str]) -> None:
    got = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if got.returncode:
        raise OSError(f"{' '.join(args)}: exit {got.returncode}: {(got.stderr or got.stdout).strip()[:300]}")


def exfat_with_deleted(tmp: Path) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A 16 MiB exFAT volume: two live pictures, two deleted ones (one in a subfolder). Skips the test when the
    volume cannot be mounted here. Returns the image, {path: bytes} live, {path: bytes} deleted."""
    if not (MKEXFAT and EXFAT_FUSE and LOSETUP):
        pytest.skip("exfatprogs (mkfs.exfat), exfat-fuse (mount.exfat-fuse) or losetup not installed")
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("writing an exFAT volume needs a loop device and FUSE: not root or no /dev/fuse here")
    img, mnt = tmp / "exfat.img", tmp / "mnt"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    mnt.mkdir()
    _run([MKEXFAT, "-L", "EVIDENCE", str(img)])
    live = {"/keep.jpg": pic(1), "/dir/keep.png": pic(2, "PNG", (60, 40))}
    gone = {"/gone.jpg": pic(3, size=(200, 150)), "/dir/gone.png": pic(4, "PNG", (50, 40))}
    try:
        dev = subprocess.run([LOSETUP, "-f", "--show", str(img)], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"losetup: {exc}")
    if dev.returncode:
        pytest.skip(f"losetup -f --show: {dev.stderr.strip()[:200]}")
    loop = dev.stdout.strip()
    try:
        try:
            _run([EXFAT_FUSE, loop, str(mnt)])
        except OSError as exc:
            pytest.skip(str(exc))
        try:
            (mnt / "dir").mkdir()
            for path, data in {**live, **gone}.items():
                (mnt / path.lstrip("/")).write_bytes(data)
            os.sync()
            for path in gone:
                (mnt / path.lstrip("/")).unlink()
        finally:
            _run(["umount", str(mnt)])
    finally:
        subprocess.run([LOSETUP, "-d", loop], capture_output=True, timeout=30)
    return img, live, gone


def _exfat_checksum(data: bytes, skip: tuple[int, ...] = ()) -> int:
    c = 0
    for i, b in enumerate(data):
        if i not in skip:
            c = (((c & 1) << 15) | (c >> 1)) + b & 0xFFFF
    return c


def exfat_by_hand(tmp: Path) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A 16 MiB exFAT volume from ``mkfs.exfat`` with files written into it by hand, no mount needed (for where
    loop devices or FUSE are not allowed): each file's entry set (File, Stream Extension, File Name entries,
    with their checksum and name hash) in the root folder, its data in contiguous clusters marked in the
    allocation bitmap. A deleted file is what exFAT leaves of one: the in-use bit of each entry cleared and its
    clusters freed in the bitmap, its data where it was."""
    if not MKEXFAT:
        pytest.skip("exfatprogs (mkfs.exfat) not installed")
    img = tmp / "exfat.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    _run([MKEXFAT, "-L", "EVIDENCE", str(img)])
    vol = bytearray(img.read_bytes())
    sector = 1 << vol[108]
    cluster = sector << vol[109]
    heap = struct.unpack("<I", vol[88:92])[0] * sector
    root_cluster = struct.unpack("<I", vol[96:100])[0]

    def at(c: int) -> int:
        return heap + (c - 2) * cluster

    root = at(root_cluster)
    entries = [bytes(vol[root + 32 * i:root + 32 * i + 32]) for i in range(cluster // 32)]
    bitmap = next(e for e in entries if e[0] == 0x81)
    bm_at = at(struct.unpack("<I", bitmap[20:24])[0])
    bm_len = struct.unpack("<Q", bitmap[24:32])[0]
    used = [bool(vol[bm_at + c // 8] >> (c % 8) & 1) for c in range(bm_len * 8)]
    slot = next(i for i, e in enumerate(entries) if e[0] == 0x00)
    upcase = next(e for e in entries if e[0] == 0x82)
    assert upcase  # the up-case table: names below are ASCII, up-cased by str.upper

    def add(name: str, data: bytes, deleted: bool) -> None:
        nonlocal slot
        n = -(-len(data) // cluster)
        first = next(c for c in range(len(used) - n) if not any(used[c:c + n]))
        for c in range(first, first + n):
            used[c] = True  # taken while the volume is written, freed in the bitmap if deleted
            if not deleted:
                vol[bm_at + c // 8] |= 1 << (c % 8)
        vol[at(first + 2):at(first + 2) + len(data)] = data
        units = name.encode("utf-16-le")
        names = [units[i:i + 30].ljust(30, b"\0") for i in range(0, len(units), 30)]
        fe = bytearray(32)
        fe[0], fe[1] = 0x85, 1 + len(names)
        struct.pack_into("<H", fe, 4, 0x20)
        # created, modified, accessed 2026-12-06 11:01:43 UTC (The Sleuth Kit skips an entry whose times are no date)
        fe[8:25] = bytes.fromhex("3558865d" * 3 + "6464808080")
        se = bytearray(32)
        se[0], se[1], se[3] = 0xC0, 0x03, len(name)
        struct.pack_into("<H", se, 4, _exfat_checksum(name.upper().encode("utf-16-le")))
        struct.pack_into("<QxxxxIQ", se, 8, len(data), first + 2, len(data))
        nes = [bytes([0xC1, 0]) + part for part in names]
        entry_set = bytearray(bytes(fe) + bytes(se) + b"".join(nes))
        struct.pack_into("<H", entry_set, 2, _exfat_checksum(bytes(entry_set), (2, 3)))
        if deleted:
            for k in range(0, len(entry_set), 32):
                entry_set[k] &= 0x7F
        vol[root + 32 * slot:root + 32 * slot + len(entry_set)] = entry_set
        slot += len(entry_set) // 32

    live = {"/keep.jpg": pic(1), "/keep.png": pic(2, "PNG", (60, 40))}
    gone = {"/gone.jpg": pic(3, size=(200, 150)), "/gone.png": pic(4, "PNG", (50, 40))}
    for path, data in live.items():
        add(path[1:], data, False)
    for path, data in gone.items():
        add(path[1:], data, True)
    img.write_bytes(bytes(vol))
    return img, live, gone


@pytest.mark.parametrize("how", ["fuse", "by_hand"])
def test_exfat_deleted_files_are_listed_with_content(tmp_path, how):
    img, live, gone = (exfat_with_deleted if how == "fuse" else exfat_by_hand)(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.move(img, ev / "exfat.img")
    d = str(ev / "exfat.img")
    items = scan(ev)
    for path, data in live.items():
        it = items[f"{d}!{path}"]
        assert it.data == data and not it.deleted and it.meta["fs"] == "exfat" and it.error is None, path
    for path, data in gone.items():
        it = items[f"{d}!{path}"]
        assert it.deleted and it.error is None and it.data == data, path
    # the file system's own structures are records, not files read; the label is no error
    system = {loc: it for loc, it in items.items() if it.meta.get("fs_metadata")}
    assert {loc.rsplit("/", 1)[1] for loc in system} >= {"$ALLOC_BITMAP", "$UPCASE_TABLE"}
    assert all(it.error.code == "fs_metadata" for it in system.values())
    assert not [loc for loc, it in items.items() if it.error is not None and it.error.code != "fs_metadata"]
    # the deleted files are not carved a second time from the clusters they still hold
    assert not [loc for loc in items if carving.MARK in loc]
    s = Settings()
    for path, data in gone.items():
        assert read_location(f"{d}!{path}", s) == data


# -- HFS+ ------------------------------------------------------------------------------------------

def _fork_extents(fork: bytes) -> list[tuple[int, int]]:
    """(start block, block count) of an HFSPlusForkData's eight extents (the ones in use)."""
    ext = [struct.unpack(">II", fork[16 + 8 * i:24 + 8 * i]) for i in range(8)]
    return [(s, n) for s, n in ext if n]


def hfs_delete(vol: bytearray, name: str) -> tuple[int, int]:
    """Delete the file `name` from the root of the HFS+ volume `vol` the way HFS+ does: its file record and its
    thread record leave the catalog leaf, its blocks are marked free. Returns its first block and length."""
    hdr = 1024
    block = struct.unpack(">I", vol[hdr + 0x28:hdr + 0x2C])[0]

    def fork_bytes(fork_at: int) -> bytes:
        out = b""
        for s, n in _fork_extents(bytes(vol[hdr + fork_at:hdr + fork_at + 80])):
            out += bytes(vol[s * block:(s + n) * block])
        return out

    cat_extents = _fork_extents(bytes(vol[hdr + 0x110:hdr + 0x160]))
    cat_start = cat_extents[0][0] * block  # the catalog is contiguous in these small volumes
    assert len(cat_extents) == 1
    head = bytes(vol[cat_start + 14:cat_start + 14 + 106])
    first_leaf = struct.unpack(">I", head[10:14])[0]
    node_size = struct.unpack(">H", head[18:20])[0]
    target = name.encode("utf-16-be")
    cnid = fork = None
    for pass_ in ("file", "thread"):
        node = first_leaf
        while node:
            at = cat_start + node * node_size
            nd = bytearray(vol[at:at + node_size])
            flink, count = struct.unpack(">I", nd[0:4])[0], struct.unpack(">H", nd[10:12])[0]
            offs = [struct.unpack(">H", nd[node_size - 2 * (i + 1):node_size - 2 * i])[0] for i in range(count + 1)]
            for i in range(count):
                rec = nd[offs[i]:offs[i + 1]]
                klen = struct.unpack(">H", rec[0:2])[0]
                parent = struct.unpack(">I", rec[2:6])[0]
                nlen = struct.unpack(">H", rec[6:8])[0]
                rname = bytes(rec[8:8 + 2 * nlen])
                data = rec[2 + klen:]
                rtype = struct.unpack(">H", data[0:2])[0]
                hit = (pass_ == "file" and rtype == 2 and parent == 2 and rname == target) or (
                    pass_ == "thread" and rtype == 4 and parent == cnid)
                if not hit:
                    continue
                if pass_ == "file":
                    cnid = struct.unpack(">I", data[8:12])[0]
                    fork = bytes(data[88:168])
                # remove record i: the records after it move up, the offsets follow
                size = offs[i + 1] - offs[i]
                body = nd[offs[i + 1]:offs[count]]
                nd[offs[i]:offs[i] + len(body)] = body
                nd[offs[i] + len(body):offs[count]] = bytes(size)
                new_offs = offs[:i] + [o - size for o in offs[i + 1:]]
                for k, o in enumerate(new_offs):
                    struct.pack_into(">H", nd, node_size - 2 * (k + 1), o)
                struct.pack_into(">H", nd, node_size - 2 * (count + 1), 0)
                struct.pack_into(">H", nd, 10, count - 1)
                vol[at:at + node_size] = nd
                leaf_records = struct.unpack(">I", head[6:10])[0]
                head = head[:6] + struct.pack(">I", leaf_records - 1) + head[10:]
                vol[cat_start + 14:cat_start + 14 + 106] = head
                break
            else:
                node = flink
                continue
            break
        assert pass_ == "thread" or cnid is not None, f"{name} not in the catalog"
    ((start, count),) = _fork_extents(fork)
    alloc = bytearray(fork_bytes(0x70))
    for b in range(start, start + count):
        alloc[b // 8] &= ~(0x80 >> (b % 8)) & 0xFF
    (s0, _), = _fork_extents(bytes(vol[hdr + 0x70:hdr + 0xC0]))
    vol[s0 * block:s0 * block + len(alloc)] = alloc
    files, free = struct.unpack(">I", vol[hdr + 0x20:hdr + 0x24])[0], struct.unpack(">I", vol[hdr + 0x30:hdr + 0x34])[0]
    struct.pack_into(">I", vol, hdr + 0x20, files - 1)
    struct.pack_into(">I", vol, hdr + 0x30, free + count)
    return start * block, count * block


def hfsplus_volume(tmp: Path, files: dict[str, bytes]) -> bytearray:
    """An HFS+ volume holding `files` (root names), cut out of the hybrid ISO ``xorriso -hfsplus`` writes."""
    if not XORRISO:
        pytest.skip("xorriso not installed (it makes the HFS+ volume: Debian has no mkfs.hfsplus)")
    src = tmp / "src"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    iso = tmp / "hybrid.iso"
    subprocess.run([XORRISO, "-as", "mkisofs", "-quiet", "-hfsplus", "-o", str(iso), str(src)], check=True,
                   capture_output=True)
    data = iso.read_bytes()
    block = struct.unpack(">H", data[2:4])[0] if data[:2] == b"ER" else 512
    for i in range(1, 64):  # the Apple partition map: the Apple_HFS partition
        e = data[i * block:(i + 1) * block]
        if e[:2] != b"PM":
            break
        if e[48:57] == b"Apple_HFS":
            start, count = struct.unpack(">II", e[8:16])
            vol = bytearray(data[start * block:(start + count) * block])
            assert vol[1024:1026] == b"H+"
            return vol
    raise AssertionError("no Apple_HFS partition in xorriso's image")


def test_hfsplus_lists_live_files_and_a_deleted_picture_is_found_by_carving(tmp_path):
    live, gone, other = pic(5, size=(120, 90)), pic(6, size=(200, 150)), pic(7, "PNG", (50, 40))
    vol = hfsplus_volume(tmp_path, {"keep.jpg": live, "gone.jpg": gone, "other.png": other})
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "mac.img").write_bytes(bytes(vol))
    d = str(ev / "mac.img")
    before = scan(ev)
    assert before[f"{d}!/gone.jpg"].data == gone and before[f"{d}!/keep.jpg"].data == live
    assert before[f"{d}!/keep.jpg"].meta["fs"] == "hfs"
    system = sorted(loc.rsplit("/", 1)[1] for loc, it in before.items() if it.meta.get("fs_metadata"))
    assert system == ["$AllocationFile", "$BadBlockFile", "$CatalogFile", "$ExtentsFile"]
    assert not [loc for loc in before if carving.MARK in loc]  # every block allocated: nothing to carve

    off, length = hfs_delete(vol, "gone.jpg")
    assert bytes(vol[off:off + len(gone)]) == gone  # HFS+ leaves the bytes where they were
    (ev / "mac.img").write_bytes(bytes(vol))
    after = scan(ev)
    # The Sleuth Kit lists no deleted HFS+ file: the name is gone with its catalog record
    assert f"{d}!/gone.jpg" not in after and not [it for it in after.values() if it.deleted and not
                                                 it.meta.get("carved")]
    assert after[f"{d}!/keep.jpg"].data == live and after[f"{d}!/other.png"].data == other
    carved = {loc: it for loc, it in after.items() if carving.MARK in loc}
    assert list(carved) == [f"{d}!/{carving.MARK}0x{off:x}"]
    it = carved[f"{d}!/{carving.MARK}0x{off:x}"]
    assert it.data == gone and it.deleted and it.meta["fs"] == "hfs" and it.meta["carved_type"] == "jpeg"
    assert hashlib.sha256(it.data).hexdigest() == hashlib.sha256(gone).hexdigest()
    assert read_location(f"{d}!/{carving.MARK}0x{off:x}", Settings()) == gone
