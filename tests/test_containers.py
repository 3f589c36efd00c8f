"""Archives and disk images: every member listed at a stable location, limits enforced, nothing written.

All sources are built here on the fly from benign generated pictures and random bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from vigie.demo import encode, photo_like
from vigie.ingest.containers import Item, iter_items, sniff_container
from vigie.settings import Settings


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 48, 32), "JPEG")


def zip_bytes(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (2020, 1, 2, 3, 4, 6))
            info.compress_type = method
            z.writestr(info, data)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def scan(paths, settings: Settings | None = None) -> list[Item]:
    return list(iter_items([str(p) for p in paths], settings or Settings()))


def by_loc(items: list[Item]) -> dict[str, Item]:
    locs = [i.location for i in items]
    assert len(locs) == len(set(locs)), f"duplicate locations: {locs}"
    return {i.location: i for i in items}


def code(item: Item) -> str | None:
    return item.error.code if item.error else None


# -- folders and nesting -------------------------------------------------------------------------

def test_nested_zip_in_tar_gz_in_7z(tmp_path):
    ev = tmp_path / "ev"
    (ev / "sub").mkdir(parents=True)
    a, b, c, d = jpeg(1), jpeg(2), jpeg(3), jpeg(4)
    inner = zip_bytes({"photos/b.jpg": b, "notes.txt": b"benign text"})
    bundle = tar_bytes({"inner.zip": inner, "dir/c.jpg": c})
    with py7zr.SevenZipFile(ev / "sub" / "outer.7z", "w") as z:
        z.writestr(bundle, "bundle.tgz")
        z.writestr(d, "d.jpg")
    (ev / "a.jpg").write_bytes(a)
    (ev / "zip-named.jpg").write_bytes(zip_bytes({"x.jpg": a}))  # the name is no hint: the bytes say zip
    before = snapshot(tmp_path)

    items = scan([ev])
    o = str(ev / "sub" / "outer.7z")
    assert [(i.location, i.container) for i in items] == [
        (str(ev / "a.jpg"), False),
        (str(ev / "sub" / "outer.7z"), True),
        (f"{o}!bundle.tgz", True),
        (f"{o}!bundle.tgz!inner.zip", True),
        (f"{o}!bundle.tgz!inner.zip!notes.txt", False),
        (f"{o}!bundle.tgz!inner.zip!photos/b.jpg", False),
        (f"{o}!bundle.tgz!dir/c.jpg", False),
        (f"{o}!d.jpg", False),
        (str(ev / "zip-named.jpg"), True),
        (f"{ev / 'zip-named.jpg'}!x.jpg", False),
    ]
    m = by_loc(items)
    assert all(i.error is None for i in items)
    assert m[str(ev / "a.jpg")].path == str(ev / "a.jpg") and m[str(ev / "a.jpg")].data is None
    assert m[o].path == o and m[o].meta["format"] == "7z"
    assert m[f"{o}!bundle.tgz"].data == bundle and m[f"{o}!bundle.tgz"].meta["format"] == "tar.gz"
    assert m[f"{o}!bundle.tgz!inner.zip"].data == inner
    assert m[f"{o}!bundle.tgz!inner.zip!photos/b.jpg"].data == b
    assert m[f"{o}!bundle.tgz!dir/c.jpg"].data == c
    assert m[f"{o}!d.jpg"].data == d and m[f"{o}!d.jpg"].size == len(d)
    assert m[f"{o}!bundle.tgz!inner.zip!photos/b.jpg"].meta["mtime"] == "2020-01-02T03:04:06"
    assert snapshot(tmp_path) == before  # nothing extracted, nothing written next to the evidence
    assert [i.location for i in scan([ev])] == [i.location for i in items]  # stable across runs


def test_sniffing_uses_bytes_not_names(tmp_path):
    pic = bytearray(jpeg(5))
    pic += bytes(max(0, 1100 - len(pic)))
    pic[510:512] = b"\x55\xaa"
    pic[1080:1082] = b"\x53\xef"  # an ext superblock magic by chance: still a picture
    (tmp_path / "disk.dd").write_bytes(os.urandom(8192))
    (tmp_path / "pic.img").write_bytes(bytes(pic))
    items = scan([tmp_path])
    assert [(i.location, i.container, i.error) for i in items] == [
        (str(tmp_path / "disk.dd"), False, None), (str(tmp_path / "pic.img"), False, None)]
    assert sniff_container(tar_bytes({"a": b"x"}, "w:bz2")) == "tar.bz2"
    assert sniff_container(tar_bytes({"a": b"x"}, "w:xz")) == "tar.xz"
    assert sniff_container(tar_bytes({"a": b"x"}, "w")) == "tar"
    assert sniff_container(zlib.compress(b"x") + bytes(600)) is None
    import gzip
    assert sniff_container(gzip.compress(b"not a tar" * 100)) == "gz"  # one compressed file: opened too
    assert sniff_container(b"\x1f\x8b\x07" + bytes(600)) is None  # not deflate: not gzip


def test_single_compressed_files(tmp_path):
    import bz2
    import gzip
    import lzma

    pic = jpeg(30)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(pic) + c.flush()
    named = (b"\x1f\x8b\x08\x08" + bytes(4) + b"\x00\x03" + b"holiday\xe9.jpg\x00" + body  # FNAME, in Latin-1
             + struct.pack("<II", zlib.crc32(pic), len(pic)))
    (tmp_path / "a.gz").write_bytes(named)
    (tmp_path / "b.jpg.bz2").write_bytes(bz2.compress(pic))
    (tmp_path / "c.jpg.xz").write_bytes(lzma.compress(pic))
    (tmp_path / "d.gz").write_bytes(gzip.compress(pic)[:300])  # truncated
    big = tar_bytes({f"f{i}.bin": os.urandom(3000) for i in range(4)} | {"z.jpg": pic}, "w:bz2")
    (tmp_path / "e.tbz").write_bytes(big)  # a tar.bz2 whose first block lies past the sniffed head
    items = by_loc(scan([tmp_path]))
    t = str(tmp_path)
    assert items[f"{t}/a.gz!holiday\\xe9.jpg"].data == pic
    assert items[f"{t}/a.gz!holiday\\xe9.jpg"].meta["name_not_utf8"] is True
    assert items[f"{t}/b.jpg.bz2!b.jpg"].data == pic and items[f"{t}/b.jpg.bz2"].meta["format"] == "bz2"
    assert items[f"{t}/c.jpg.xz!c.jpg"].data == pic
    assert code(items[f"{t}/d.gz!d"]) == "corrupt_container" and code(items[f"{t}/d.gz"]) is None
    assert items[f"{t}/e.tbz"].meta["format"] == "tar.bz2" and items[f"{t}/e.tbz!z.jpg"].data == pic
    # a gzip bomb is stopped like a tar.gz one
    (tmp_path / "bomb").mkdir()
    (tmp_path / "bomb" / "z.gz").write_bytes(gzip.compress(bytes(30 * 1024 * 1024)))
    got = scan([tmp_path / "bomb"], Settings(archive_max_ratio=50))
    assert [code(i) for i in got] == [None, "zip_bomb"]


# -- limits --------------------------------------------------------------------------------------

def test_zip_bomb_ratio_stops_early_and_the_scan_goes_on(tmp_path):
    ok = jpeg(6)
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bytes({"a-zeros.bin": bytes(50 * 1024 * 1024), "b-ok.jpg": ok}))
    assert bomb.stat().st_size < 200_000
    (tmp_path / "z-after.jpg").write_bytes(ok)
    items = by_loc(scan([tmp_path], Settings(archive_max_ratio=20)))
    assert list(items) == [str(bomb), f"{bomb}!a-zeros.bin", f"{bomb}!b-ok.jpg", str(tmp_path / "z-after.jpg")]
    z = items[f"{bomb}!a-zeros.bin"]
    assert code(z) == "zip_bomb" and z.data is None and "ratio" in z.error.message
    assert items[f"{bomb}!b-ok.jpg"].data == ok  # one bad member does not stop the archive


def test_total_unpacked_budget_stops_the_source(tmp_path):
    data = tar_bytes({"a.bin": bytes(8 * 1024 * 1024), "b.jpg": jpeg(7)}, "w:gz")
    src = tmp_path / "big.tgz"
    src.write_bytes(data)
    items = scan([src], Settings(archive_max_total_bytes=2 * 1024 * 1024, archive_max_ratio=10_000))
    assert [(i.location, code(i)) for i in items] == [(str(src), None), (f"{src}!a.bin", "zip_bomb")]
    assert "archive_max_total_bytes" in items[1].error.message


def test_tar_gz_stream_ratio(tmp_path):
    src = tmp_path / "bomb.tar.gz"
    src.write_bytes(tar_bytes({"zeros": bytes(20 * 1024 * 1024), "after.jpg": jpeg(8)}, "w:gz"))
    items = scan([src], Settings(archive_max_ratio=50))
    assert [(i.location, code(i)) for i in items] == [(str(src), None), (f"{src}!zeros", "zip_bomb")]


def test_too_deep_quine_like_nesting(tmp_path):
    pic = jpeg(9)
    blob = zip_bytes({"pic.jpg": pic})
    for _ in range(4):
        blob = zip_bytes({"again.zip": blob})
    src = tmp_path / "q.zip"
    src.write_bytes(blob)
    items = scan([src], Settings(archive_max_depth=3))
    z = str(src)
    assert [(i.location, i.container, code(i)) for i in items] == [
        (z, True, None),
        (f"{z}!again.zip", True, None),
        (f"{z}!again.zip!again.zip", True, None),
        (f"{z}!again.zip!again.zip!again.zip", True, "too_deep"),
    ]
    assert items[-1].data is not None  # still hashable
    assert [i.location for i in scan([src], Settings(archive_max_depth=0))] == [z]
    assert code(scan([src], Settings(archive_max_depth=0))[0]) == "too_deep"


def test_too_large_member_gets_digests_and_entry_limit(tmp_path):
    big = os.urandom(5000)
    src = tmp_path / "a.zip"
    src.write_bytes(zip_bytes({"1.bin": big, "2.bin": b"small", "3.bin": b"x", "4.bin": b"y"}, zipfile.ZIP_STORED))
    items = by_loc(scan([src], Settings(max_file_bytes=1000, archive_max_entries=2)))
    assert list(items) == [str(src), f"{src}!1.bin", f"{src}!2.bin", f"{src}!3.bin"]
    one = items[f"{src}!1.bin"]
    assert code(one) == "too_large" and one.data is None
    assert items[f"{src}!2.bin"].data == b"small"
    assert code(items[f"{src}!3.bin"]) == "too_many_entries"
    # the plain file itself is over max_file_bytes too: it is still yielded, the hasher handles it
    assert items[str(src)].path == str(src)
    tgz = tmp_path / "b.tgz"
    tgz.write_bytes(tar_bytes({"big.bin": big}))
    it = scan([tgz], Settings(max_file_bytes=1000))[1]
    assert code(it) == "too_large" and it.meta["digests"]["sha256"] == hashlib.sha256(big).hexdigest()


# -- names, encryption, damage, links --------------------------------------------------------------

def test_traversal_and_absolute_names_are_kept_but_made_safe(tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    src = ev / "t.zip"
    p1, p2, p3 = jpeg(10), jpeg(11), jpeg(12)
    src.write_bytes(zip_bytes({"../../escape.jpg": p1, "/abs/x.jpg": p2, "ok.jpg": p3, "ok.jpg#": b"z"}))
    tar = ev / "t.tar"
    tar.write_bytes(tar_bytes({"../up.jpg": p1, "/etc/y.jpg": p2, "dup.jpg": p3}, "w")
                    + b"")
    before, cwd_before = snapshot(tmp_path), sorted(os.listdir(os.getcwd()))
    items = by_loc(scan([ev]))
    assert list(items) == [str(tar), f"{tar}!__/up.jpg", f"{tar}!etc/y.jpg", f"{tar}!dup.jpg",
                           str(src), f"{src}!__/__/escape.jpg", f"{src}!abs/x.jpg", f"{src}!ok.jpg",
                           f"{src}!ok.jpg#"]
    esc = items[f"{src}!__/__/escape.jpg"]
    assert esc.data == p1 and esc.meta["unsafe_name"] is True and esc.meta["original_name"] == "../../escape.jpg"
    assert items[f"{src}!abs/x.jpg"].meta["unsafe_name"] and items[f"{src}!abs/x.jpg"].data == p2
    assert "unsafe_name" not in items[f"{src}!ok.jpg"].meta
    assert items[f"{tar}!__/up.jpg"].data == p1 and items[f"{tar}!etc/y.jpg"].meta["unsafe_name"]
    assert snapshot(tmp_path) == before and sorted(os.listdir(os.getcwd())) == cwd_before
    assert not (tmp_path / "escape.jpg").exists()


def test_duplicate_member_names_get_unique_locations(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning):
        z.writestr("same.jpg", b"first")
        z.writestr("same.jpg", b"second")
    src = tmp_path / "d.zip"
    src.write_bytes(buf.getvalue())
    items = scan([src])
    assert [(i.location, i.data) for i in items[1:]] == [(f"{src}!same.jpg", b"first"),
                                                         (f"{src}!same.jpg#2", b"second")]
    assert items[2].meta["duplicate_name"] is True


def _set_encrypted_flag(zdata: bytes, name: bytes) -> bytes:
    """Set general-purpose bit 0 of `name` in its local header and its central-directory entry."""
    out = bytearray(zdata)
    for sig, flag_off, name_off in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        pos = out.find(sig)
        while pos >= 0:
            if out[pos + name_off: pos + name_off + len(name)] == name:
                flags = struct.unpack_from("<H", out, pos + flag_off)[0]
                struct.pack_into("<H", out, pos + flag_off, flags | 1)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def test_encrypted_members_are_listed(tmp_path):
    pic, other = jpeg(13), jpeg(14)
    src = tmp_path / "enc.zip"
    src.write_bytes(_set_encrypted_flag(zip_bytes({"secret.jpg": pic, "open.jpg": other}), b"secret.jpg"))
    items = by_loc(scan([src]))
    assert code(items[f"{src}!secret.jpg"]) == "encrypted" and items[f"{src}!secret.jpg"].data is None
    assert items[f"{src}!secret.jpg"].meta["encrypted"] is True
    assert items[f"{src}!open.jpg"].data == other

    s7 = tmp_path / "enc.7z"
    with py7zr.SevenZipFile(s7, "w", password="benign") as z:
        z.writestr(pic, "a.jpg")
        z.writestr(other, "b/c.jpg")
    got = scan([s7])
    assert [(i.location, code(i)) for i in got] == [(str(s7), None), (f"{s7}!a.jpg", "encrypted"),
                                                    (f"{s7}!b/c.jpg", "encrypted")]
    hidden = tmp_path / "hidden.7z"
    with py7zr.SevenZipFile(hidden, "w", password="benign", header_encryption=True) as z:
        z.writestr(pic, "a.jpg")
    got = scan([hidden])
    assert [(i.location, i.container, code(i)) for i in got] == [(str(hidden), True, "encrypted")]


def test_corrupt_zip_keeps_what_was_readable(tmp_path):
    p1, p2, p3 = jpeg(15), jpeg(16), os.urandom(4000)
    data = zip_bytes({"1.jpg": p1, "2.jpg": p2, "3.bin": p3})
    cut = data.find(b"PK\x03\x04", data.find(b"3.bin") - 40) + 30 + 5 + 1000  # inside 3.bin's data
    src = tmp_path / "broken.zip"
    src.write_bytes(data[:cut])
    items = scan([src])
    assert [(i.location, code(i)) for i in items] == [
        (str(src), "corrupt_container"), (f"{src}!1.jpg", None), (f"{src}!2.jpg", None),
        (f"{src}!3.bin", "corrupt_container")]
    assert items[1].data == p1 and items[2].data == p2 and items[1].meta["recovered"] is True
    assert "central directory" in items[0].error.message and items[0].path == str(src)
    # only the central directory missing: every member recovered
    src2 = tmp_path / "nodir.zip"
    src2.write_bytes(data[:data.find(b"PK\x01\x02")])
    assert [(i.location, code(i)) for i in scan([src2])][1:] == [
        (f"{src2}!1.jpg", None), (f"{src2}!2.jpg", None), (f"{src2}!3.bin", None)]


def test_truncated_tar_gz(tmp_path):
    data = tar_bytes({"a.jpg": jpeg(17), "b.bin": os.urandom(60_000)}, "w:gz")
    src = tmp_path / "t.tgz"
    src.write_bytes(data[: len(data) // 2])
    items = scan([src])
    assert [(i.location, code(i)) for i in items] == [(str(src), None), (f"{src}!a.jpg", None),
                                                      (f"{src}!b.bin", "corrupt_container")]


def test_tar_links_and_special_members(tmp_path):
    buf = io.BytesIO()
    pic = jpeg(18)
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.jpg")
        info.size = len(pic)
        t.addfile(info, io.BytesIO(pic))
        for name, kind, target in (("ln", tarfile.SYMTYPE, "../../etc/passwd"), ("hard", tarfile.LNKTYPE, "a.jpg"),
                                   ("fifo", tarfile.FIFOTYPE, ""), ("dev", tarfile.CHRTYPE, "")):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            t.addfile(info)
    src = tmp_path / "l.tar"
    src.write_bytes(buf.getvalue())
    items = by_loc(scan([src]))
    assert [(loc, code(i)) for loc, i in items.items()] == [
        (str(src), None), (f"{src}!a.jpg", None), (f"{src}!ln", "link"), (f"{src}!hard", "link"),
        (f"{src}!fifo", "special_file"), (f"{src}!dev", "special_file")]
    assert items[f"{src}!ln"].meta["link_target"] == "../../etc/passwd"
    assert items[f"{src}!hard"].meta["hard_link"] is True
    assert items[f"{src}!a.jpg"].data == pic


# -- disk images -----------------------------------------------------------------------------------

MKE2FS = shutil.which("mke2fs") or ("/usr/sbin/mke2fs" if os.path.exists("/usr/sbin/mke2fs") else None)
DEBUGFS = shutil.which("debugfs") or ("/usr/sbin/debugfs" if os.path.exists("/usr/sbin/debugfs") else None)


@pytest.mark.skipif(not (MKE2FS and DEBUGFS), reason="e2fsprogs (mke2fs, debugfs) not installed")
def test_ext4_image_with_deleted_file(tmp_path):
    src = tmp_path / "src"
    (src / "Users" / "x").mkdir(parents=True)
    a, gone, inner = jpeg(19), jpeg(20), jpeg(21)
    (src / "Users" / "x" / "a.jpg").write_bytes(a)
    (src / "gone.jpg").write_bytes(gone)
    (src / "Users" / "pack.zip").write_bytes(zip_bytes({"in.jpg": inner}))
    os.symlink("Users/x/a.jpg", src / "link")
    ev = tmp_path / "ev"
    ev.mkdir()
    img = ev / "disk.img"
    subprocess.run([MKE2FS, "-q", "-F", "-t", "ext4", "-d", str(src), str(img), "8M"], check=True,
                   capture_output=True)
    subprocess.run([DEBUGFS, "-w", "-R", "rm /gone.jpg", str(img)], check=True, capture_output=True)
    before = snapshot(ev)
    items = by_loc(scan([ev]))
    d = str(img)
    assert [(loc, i.deleted, code(i)) for loc, i in items.items()] == [
        (d, False, None),
        (f"{d}!/Users/pack.zip", False, None),
        (f"{d}!/Users/pack.zip!in.jpg", False, None),
        (f"{d}!/Users/x/a.jpg", False, None),
        (f"{d}!/gone.jpg", True, None),
        (f"{d}!/link", False, "link"),
    ]
    disk = items[d]
    assert disk.container and disk.meta["acquisition"] is True and disk.path == d
    assert items[f"{d}!/Users/x/a.jpg"].data == a
    assert items[f"{d}!/Users/x/a.jpg"].meta["fs"] == "ext4" and items[f"{d}!/Users/x/a.jpg"].meta["inode"] > 0
    assert "mtime" in items[f"{d}!/Users/x/a.jpg"].meta
    # debugfs rm leaves the extents: the deleted file's bytes are still there (a kernel unlink may not)
    assert items[f"{d}!/gone.jpg"].data == gone
    assert items[f"{d}!/Users/pack.zip!in.jpg"].data == inner
    assert items[f"{d}!/link"].meta["link_target"] == "Users/x/a.jpg"
    assert snapshot(ev) == before
    # the same image inside an archive (bytes, not a path) reads the same
    z = tmp_path / "z" / "img.zip"
    z.parent.mkdir()
    z.write_bytes(zip_bytes({"disk.img": img.read_bytes()}))
    inside = by_loc(scan([z], Settings(archive_max_ratio=10_000)))  # an empty file system packs very well
    assert inside[f"{z}!disk.img!/gone.jpg"].deleted and inside[f"{z}!disk.img!/gone.jpg"].data == gone
    assert inside[f"{z}!disk.img"].meta["acquisition"] is True


def fat12_image(live: bytes, deleted: bytes, extra_zip: bytes) -> bytes:
    """A minimal FAT12 volume: /PICS/LIVE.JPG, a deleted /ONE.JPG (0xE5) and /NOTE.ZIP."""
    bps, total, spc = 512, 512, 1
    boot = bytearray(512)
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"VIGIETST"
    struct.pack_into("<HBHBHHBHHHI", boot, 11, bps, spc, 1, 2, 16, total, 0xF8, 2, 32, 2, 0)
    struct.pack_into("<IBBBI11s8s", boot, 32, 0, 0x80, 0, 0x29, 0x12345678, b"VIGIE      ", b"FAT12   ")
    boot[510:512] = b"\x55\xaa"
    fat = bytearray(2 * bps)
    root = bytearray(bps)
    data = bytearray((total - 1 - 4 - 1) * bps)

    def setfat(n, v):
        off = n * 3 // 2
        if n % 2 == 0:
            fat[off] = v & 0xFF
            fat[off + 1] = (fat[off + 1] & 0xF0) | ((v >> 8) & 0x0F)
        else:
            fat[off] = (fat[off] & 0x0F) | ((v << 4) & 0xF0)
            fat[off + 1] = (v >> 4) & 0xFF

    setfat(0, 0xFF8)
    setfat(1, 0xFFF)
    nxt = [2]

    def alloc(content: bytes, chain: bool = True) -> int:
        first = nxt[0]
        n = max(1, -(-len(content) // bps))
        for k in range(n):
            if chain:
                setfat(first + k, first + k + 1 if k < n - 1 else 0xFFF)
        data[(first - 2) * bps:(first - 2) * bps + len(content)] = content
        nxt[0] += n
        return first

    def entry(buf, i, name83: bytes, attr: int, cluster: int, size: int):
        struct.pack_into("<11sBBBHHHHHHHI", buf, 32 * i, name83, attr, 0, 0, 0, 0x5021, 0x5021, 0, 0x6000,
                         0x5021, cluster, size)

    pics = alloc(bytes(bps))
    entry(root, 0, b"PICS       ", 0x10, pics, 0)
    subdir = bytearray(bps)
    entry(subdir, 0, b".          ", 0x10, pics, 0)
    entry(subdir, 1, b"..         ", 0x10, 0, 0)
    c_live = alloc(live)
    entry(subdir, 2, b"LIVE    JPG", 0x20, c_live, len(live))
    data[0:bps] = subdir
    c_zip = alloc(extra_zip)
    entry(root, 1, b"NOTE    ZIP", 0x20, c_zip, len(extra_zip))
    c_del = alloc(deleted, chain=False)  # freed clusters: FAT entries zero, as a deletion leaves them
    entry(root, 2, b"\xe5ONE    JPG", 0x20, c_del, len(deleted))
    return bytes(boot + fat[:bps] + fat[bps:] + fat[:bps] + fat[bps:] + root + data)[: total * bps]


def test_fat_image_live_and_deleted_and_partitioned(tmp_path):
    live, gone, inner = jpeg(22), jpeg(23), jpeg(24)
    vol = fat12_image(live, gone, zip_bytes({"z.jpg": inner}))
    img = tmp_path / "fat.raw"
    img.write_bytes(vol)
    items = by_loc(scan([img]))
    d = str(img)
    assert [(loc, i.deleted, code(i)) for loc, i in items.items()] == [
        (d, False, None),
        (f"{d}!/NOTE.ZIP", False, None),
        (f"{d}!/NOTE.ZIP!z.jpg", False, None),
        (f"{d}!/PICS/LIVE.JPG", False, None),
        (f"{d}!/_ONE.JPG", True, None),
    ]
    assert items[f"{d}!/PICS/LIVE.JPG"].data == live
    assert items[f"{d}!/_ONE.JPG"].data == gone
    assert items[f"{d}!/NOTE.ZIP!z.jpg"].data == inner
    assert items[f"{d}!/PICS/LIVE.JPG"].meta["fs"] == "fat12"

    # the same volume behind an MBR partition table: locations get the partition number
    start = 63
    mbr = bytearray(512)
    struct.pack_into("<B3sB3sII", mbr, 446, 0x80, b"\x00\x02\x00", 0x01, b"\xfe\xff\xff", start, len(vol) // 512)
    mbr[510:512] = b"\x55\xaa"
    disk = tmp_path / "disk.dd"
    disk.write_bytes(bytes(mbr) + bytes(512 * (start - 1)) + vol)
    got = by_loc(scan([disk]))
    d = str(disk)
    assert list(got) == [d, f"{d}!p1/NOTE.ZIP", f"{d}!p1/NOTE.ZIP!z.jpg", f"{d}!p1/PICS/LIVE.JPG",
                         f"{d}!p1/_ONE.JPG"]
    assert got[f"{d}!p1/_ONE.JPG"].deleted and got[f"{d}!p1/_ONE.JPG"].data == gone
    assert got[d].meta["partitions"] == 1 and got[f"{d}!p1/PICS/LIVE.JPG"].meta["partition"] == 1


def test_damaged_disk_image_is_reported(tmp_path):
    vol = bytearray(fat12_image(jpeg(25), jpeg(26), b"benign"))
    vol[11:13] = b"\x00\x00"  # bytes per sector 0: no file system any more, but the boot signature stays
    vol[0:3] = b"\xeb\x3c\x90"
    img = tmp_path / "bad.img"
    mbr = bytearray(512)
    struct.pack_into("<B3sB3sII", mbr, 446, 0x00, b"\x00\x02\x00", 0x07, b"\xfe\xff\xff", 1, 64)
    mbr[510:512] = b"\x55\xaa"
    img.write_bytes(bytes(mbr) + bytes(32768))
    items = scan([img])
    assert [(i.location, code(i)) for i in items] == [(str(img), None), (f"{img}!p1", "no_filesystem")]


@pytest.mark.skipif(shutil.which("mkntfs") is None,
                    reason="NTFS not tested: mkntfs missing (apt-get install ntfs-3g to run this test)")
def test_ntfs_image_opens(tmp_path):
    img = tmp_path / "n.img"
    with open(img, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", str(img)], check=True, capture_output=True)
    items = by_loc(scan([img]))
    assert items[str(img)].container and items[str(img)].error is None
    assert f"{img}!/$MFT" in items and items[f"{img}!/$MFT"].meta["fs"] == "ntfs"
    # a fresh volume holds only file-system structures: records, none opened ($Boot is no disk image), none
    # an error, none "deleted" (the reserved MFT records 16-23 TSK lists as orphans)
    members = [i for loc, i in items.items() if loc != str(img)]
    assert members and all(code(i) == "fs_metadata" and not i.deleted and i.data is None for i in members), \
        [(i.location, code(i)) for i in members]
    assert items[f"{img}!/$Boot"].meta["fs_metadata"] == "NTFS system file" and not items[f"{img}!/$Boot"].container


def test_7z_bomb_stops_the_stream_and_truncated_7z_is_reported(tmp_path):
    a = os.urandom(3000)
    src = tmp_path / "b.7z"
    with py7zr.SevenZipFile(src, "w") as z:
        z.writestr(a, "a.bin")
        z.writestr(bytes(20 * 1024 * 1024), "zeros.bin")
        z.writestr(b"after", "c.txt")
    items = scan([src], Settings(archive_max_ratio=20))
    assert [(i.location, code(i)) for i in items] == [(str(src), None), (f"{src}!a.bin", None),
                                                      (f"{src}!zeros.bin", "zip_bomb")]
    assert items[1].data == a
    cut = tmp_path / "cut.7z"
    cut.write_bytes(src.read_bytes()[:-40])
    got = scan([cut])
    assert [(i.location, i.container, code(i)) for i in got] == [(str(cut), True, "corrupt_container")]
    assert got[0].path == str(cut)  # still hashed as a file
