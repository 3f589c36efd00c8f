"""Evidence formats and hidden pictures: E01 and split raw images, carving of unallocated space, pictures
embedded in PDFs, EXIF thumbnails.

The evidence is built here with real tools: a FAT16 volume made by ``mkfs.vfat`` and filled and
emptied with ``mcopy``/``mdel`` (mtools), with pictures written into its free clusters; the same disk
acquired to E01 by ``ewfacquire`` (ewf-tools) in several segments, and cut into ``.001``, ``.002``…
by ``split``. Each location's expected answer is written here. Tests that need a tool skip without it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image
from test_containers import by_loc, code, scan

from vigie.demo import encode, photo_like
from vigie.ingest.containers import Item
from vigie.ingest.reopen import read_location
from vigie.settings import Settings

MKFS = shutil.which("mkfs.vfat") or ("/usr/sbin/mkfs.vfat" if os.path.exists("/usr/sbin/mkfs.vfat") else None)
MTOOLS = shutil.which("mcopy") and shutil.which("mdel")
EWFACQUIRE = shutil.which("ewfacquire")
SPLIT = shutil.which("split")
need_fat = pytest.mark.skipif(not (MKFS and MTOOLS), reason="dosfstools (mkfs.vfat) and mtools not installed")
need_ewf = pytest.mark.skipif(not EWFACQUIRE, reason="ewf-tools (ewfacquire) not installed")

START = 2048  # partition start, in sectors
MiB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pic(seed: int, fmt: str = "JPEG", size=(64, 48), **kw) -> bytes:
    img = photo_like(seed, *size)
    if fmt == "GIF":
        img = img.convert("P")
    return encode(img, fmt, **kw)




def mp4(seed: int, seconds: int = 2) -> bytes:
    """A short H.264 MP4 written by PyAV (FFmpeg): ftyp, mdat, then moov, as a camera app leaves it."""
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        st = c.add_stream("libx264", rate=5)
        st.width, st.height, st.pix_fmt = 160, 120, "yuv420p"
        for i in range(seconds * 5):
            frame = av.VideoFrame.from_ndarray(np.asarray(photo_like(seed * 10 + i // 5, 160, 120)), format="rgb24")
            for p in st.encode(frame):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return buf.getvalue()


def mtools(*args):
    subprocess.run(list(args), check=True, capture_output=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def fat_disk(tmp: Path) -> tuple[bytes, dict, dict]:
    """A 16 MiB FAT16 volume behind an MBR: live files, a deleted PNG, and pictures written into free clusters.

    Returns the disk, the files TSK lists {location inside the partition: bytes} (the deleted PNG too),
    and what carving must find {byte offset inside the volume: bytes}."""
    vol = tmp / "vol.img"
    subprocess.run([MKFS, "-C", "-F", "16", "-n", "EVIDENCE", str(vol), "16384"], check=True, capture_output=True)
    live = pic(1, size=(120, 90))
    hidden = pic(2)
    holder = os.urandom(3000) + hidden + os.urandom(3000)  # a JPEG inside an allocated file: never carved
    gone = pic(3, "PNG")
    (tmp / "LIVE.JPG").write_bytes(live)
    (tmp / "HOLDER.BIN").write_bytes(holder)
    (tmp / "GONE.PNG").write_bytes(gone)
    for name in ("LIVE.JPG", "HOLDER.BIN", "GONE.PNG"):
        mtools("mcopy", "-i", str(vol), str(tmp / name), f"::/{name}")
    mtools("mdel", "-i", str(vol), "::/GONE.PNG")
    data = bytearray(vol.read_bytes())
    # where the deleted PNG's clusters lie: after the live files, as mcopy allocates them in order
    assert bytes(data).find(gone[:64]) > 0  # listed as deleted (_ONE.PNG) and still there: not carved again
    carve = {}
    raw = {8 * MiB: pic(4, size=(200, 150)), 9 * MiB: pic(5, "PNG"), 10 * MiB: pic(6, "GIF"),
           11 * MiB: pic(7, "BMP"), 12 * MiB: pic(8, "WEBP"), 13 * MiB + 4096: pic(9, size=(90, 70)),
           12 * MiB + 512 * 1024: mp4(11)}
    for off, b in raw.items():
        data[off:off + len(b)] = b
    carve.update(raw)
    cut = pic(10, size=(90, 70))
    data[14 * MiB:14 * MiB + len(cut) - 200] = cut[:-200]  # a JPEG cut short (no end marker): not carved
    data[15 * MiB:15 * MiB + 4] = b"BM\x00\x10"  # a BMP signature with no plausible header: not carved
    mbr = bytearray(512)
    struct.pack_into("<B3sB3sII", mbr, 446, 0x00, b"\x00\x02\x00", 0x0E, b"\xfe\xff\xff", START, len(data) // 512)
    mbr[510:512] = b"\x55\xaa"
    disk = bytes(mbr) + bytes(512 * (START - 1)) + bytes(data)
    return disk, {"/LIVE.JPG": live, "/HOLDER.BIN": holder, "/_ONE.PNG": gone}, carve


# -- carving -------------------------------------------------------------------------------------

@need_fat
def test_carving_finds_pictures_in_unallocated_space_only(tmp_path):
    disk, live, carve = fat_disk(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "disk.img").write_bytes(disk)
    items = by_loc(scan([ev]))
    d = str(ev / "disk.img")
    carved = {loc: it for loc, it in items.items() if "@unallocated:" in loc}
    assert sorted(carved) == sorted(f"{d}!p1/@unallocated:0x{off:x}" for off in carve)
    for off, data in carve.items():
        it = carved[f"{d}!p1/@unallocated:0x{off:x}"]
        assert it.data == data, off
        assert it.deleted and it.meta["carved"] is True and it.meta["offset"] == off and it.meta["partition"] == 1
        assert it.meta["fs"] == "fat16"
    kinds = {carved[f"{d}!p1/@unallocated:0x{off:x}"].meta["carved_type"] for off in carve}
    assert kinds == {"jpeg", "png", "gif", "bmp", "webp", "mp4"}
    assert items[f"{d}!p1/LIVE.JPG"].data == live["/LIVE.JPG"]
    assert items[f"{d}!p1/_ONE.PNG"].deleted and items[f"{d}!p1/_ONE.PNG"].data == live["/_ONE.PNG"]
    # re-read from the location alone, as review does
    s = Settings()
    for off, data in carve.items():
        assert read_location(f"{d}!p1/@unallocated:0x{off:x}", s) == data
    assert read_location(f"{d}!p1/@unallocated:0x{14 * MiB:x}", s) is None  # the cut JPEG
    assert read_location(f"{d}!p1/@unallocated:0x{8 * MiB + 1:x}", s) is None
    # carving can be turned off
    off = by_loc(scan([ev], Settings(carve_unallocated=False)))
    assert not [loc for loc in off if "@unallocated:" in loc]


# -- E01 and split raw ---------------------------------------------------------------------------

@need_fat
@need_ewf
def test_e01_in_segments_is_read_as_its_media_with_the_stored_hash_checked(tmp_path):
    disk, live, carve = fat_disk(tmp_path)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(disk)
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(ev / "case"), "-d", "sha1", "-c", "none",
                    "-S", "6MiB", str(raw)], check=True, capture_output=True)
    segs = sorted(p.name for p in ev.iterdir())
    assert segs[:2] == ["case.E01", "case.E02"] and len(segs) >= 3
    before = {p.name: p.stat().st_mtime_ns for p in ev.iterdir()}
    items = by_loc(scan([ev]))
    e = str(ev / "case.E01")
    img = items[e]
    assert img.container and img.error is None and img.meta["acquisition"] is True
    assert img.meta["format"] == "ewf" and img.meta["segments"] == len(segs) and img.meta["partitions"] == 1
    assert img.meta["media_sha256"] == sha(disk) and img.meta["media_md5"] == hashlib.md5(disk).hexdigest()
    assert img.meta["stored_md5"] == hashlib.md5(disk).hexdigest()
    assert img.meta["stored_sha1"] == hashlib.sha1(disk).hexdigest()
    assert img.meta["hash_check"] == "verified"
    for name in segs[1:]:  # later segments: records of the image, never opened alone
        seg = items[str(ev / name)]
        assert seg.container and seg.meta["segment"] == int(name[-2:]) and code(seg) is None
        assert not [loc for loc in items if loc.startswith(str(ev / name) + "!")]
    for path, data in live.items():
        assert items[f"{e}!p1{path}"].data == data
    for off, data in carve.items():
        assert items[f"{e}!p1/@unallocated:0x{off:x}"].data == data
    s = Settings()
    assert read_location(f"{e}!p1/LIVE.JPG", s) == live["/LIVE.JPG"]
    assert read_location(f"{e}!p1/@unallocated:0x{9 * MiB:x}", s) == carve[9 * MiB]
    assert {p.name: p.stat().st_mtime_ns for p in ev.iterdir()} == before  # read-only

    # a segment missing: the image is reported, not guessed at
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ev / "case.E01", alone / "case.E01")
    got = by_loc(scan([alone]))
    assert code(got[str(alone / "case.E01")]) == "corrupt_container" and len(got) == 1

    # the same E01 inside a zip (one segment only: bytes, not a path) reads the same
    one = tmp_path / "one"
    one.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(one / "usb"), "-c", "deflate:fast", str(raw)], check=True,
                   capture_output=True)
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.write(one / "usb.E01", "usb.E01")
    inside = by_loc(scan([z]))
    assert inside[f"{z}!usb.E01"].meta["hash_check"] == "verified"
    assert inside[f"{z}!usb.E01!p1/LIVE.JPG"].data == live["/LIVE.JPG"]
    assert read_location(f"{z}!usb.E01!p1/@unallocated:0x{8 * MiB:x}", s) == carve[8 * MiB]


def test_e01_hash_mismatch_is_reported():
    from vigie.ingest import evidence

    media = b"media bytes" * 1000
    got = {"media_md5": hashlib.md5(media).hexdigest(), "media_sha1": hashlib.sha1(media).hexdigest(),
           "media_sha256": sha(media), "media_size": len(media)}  # what the one pass over the media computed

    class Handle:
        def get_hash_values(self):
            return {"MD5": "00" * 16, "SHA1": hashlib.sha1(media).hexdigest()}

    item = Item("case.E01")
    evidence._check(item, dict(got), Handle())
    assert item.meta["hash_check"] == "mismatch" and code(item) == "hash_mismatch"
    assert item.meta["media_md5"] == hashlib.md5(media).hexdigest()
    ok = Item("case.E01")

    class Good(Handle):
        def get_hash_values(self):
            return {"MD5": hashlib.md5(media).hexdigest().upper()}

    evidence._check(ok, dict(got), Good())
    assert ok.meta["hash_check"] == "verified" and ok.error is None
    none = Item("case.E01")

    class Nothing(Handle):
        def get_hash_values(self):
            return {}

    evidence._check(none, dict(got), Nothing())
    assert none.meta["hash_check"] == "none stored" and none.error is None


@need_fat
@pytest.mark.skipif(not SPLIT, reason="coreutils split not installed")
def test_split_raw_image_is_one_disk(tmp_path):
    disk, live, carve = fat_disk(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    (tmp_path / "disk.raw").write_bytes(disk)
    piece = (START * 512 + 9 * MiB + 1000) // 2  # the second cut falls 1000 bytes into the PNG at 9 MiB
    subprocess.run([SPLIT, "-b", str(piece), "-d", "-a", "3", "--numeric-suffixes=1", str(tmp_path / "disk.raw"),
                    str(ev / "disk.")], check=True)
    pieces = sorted(p.name for p in ev.iterdir())
    assert pieces == ["disk.001", "disk.002", "disk.003", "disk.004"]
    items = by_loc(scan([ev]))
    first = str(ev / "disk.001")
    img = items[first]
    assert img.meta["format"] == "split raw" and img.meta["segments"] == 4 and img.meta["acquisition"] is True
    assert img.meta["media_sha256"] == sha(disk) and img.meta["media_size"] == len(disk)
    for p in pieces[1:]:
        rec = items[str(ev / p)]
        assert rec.container and rec.meta["segment_of"] == "disk.001" and code(rec) is None
    for path, data in live.items():
        assert items[f"{first}!p1{path}"].data == data
    for off, data in carve.items():  # pictures that straddle two pieces too
        assert items[f"{first}!p1/@unallocated:0x{off:x}"].data == data
    assert read_location(f"{first}!p1/@unallocated:0x{11 * MiB:x}", Settings()) == carve[11 * MiB]
    assert read_location(f"{first}!p1/HOLDER.BIN", Settings()) == live["/HOLDER.BIN"]


QEMU_IMG = shutil.which("qemu-img")


@need_fat
@pytest.mark.skipif(not QEMU_IMG, reason="qemu-utils (qemu-img) not installed")
def test_virtual_disks_vmdk_vhd_vhdx(tmp_path):
    disk, live, carve = fat_disk(tmp_path)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(disk)
    ev = tmp_path / "ev"
    ev.mkdir()
    for out, fmt, opts in (("mono.vmdk", "vmdk", []), ("split.vmdk", "vmdk", ["-o", "subformat=twoGbMaxExtentSparse"]),
                           ("dyn.vhd", "vpc", []), ("new.vhdx", "vhdx", [])):
        subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", fmt, *opts, str(raw), str(ev / out)], check=True,
                       capture_output=True)
    assert sorted(p.name for p in ev.iterdir()) == ["dyn.vhd", "mono.vmdk", "new.vhdx", "split-s001.vmdk",
                                                     "split.vmdk"]
    items = by_loc(scan([ev]))
    for name, fmt in (("mono.vmdk", "vmdk"), ("split.vmdk", "vmdk"), ("dyn.vhd", "vhd"), ("new.vhdx", "vhdx")):
        d = str(ev / name)
        img = items[d]
        assert img.error is None and img.meta["format"] == fmt and img.meta["acquisition"] is True, name
        media = disk + bytes(img.meta["media_size"] - len(disk))  # a VHD rounds its size up to a geometry
        assert img.meta["media_sha256"] == sha(media), name
        for path, data in live.items():
            assert items[f"{d}!p1{path}"].data == data, name
        for off, data in carve.items():
            assert items[f"{d}!p1/@unallocated:0x{off:x}"].data == data, name
        assert read_location(f"{d}!p1/@unallocated:0x{10 * MiB:x}", Settings()) == carve[10 * MiB]
    extent = items[str(ev / "split-s001.vmdk")]  # read through split.vmdk, never alone
    assert extent.container and extent.meta["segment"] == "extent" and code(extent) is None
    assert not [loc for loc in items if loc.startswith(str(ev / "split-s001.vmdk") + "!")]


# -- PDF -----------------------------------------------------------------------------------------

def pdf_with_images(images: list[tuple[str, int, int, bytes]], pages: int = 2) -> bytes:
    """A PDF, written object by object, drawing `images` ((filter, width, height, stream)) on every page."""
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    img_ids = []
    for filt, w, h, stream in images:
        img_ids.append(add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                           b"/BitsPerComponent 8 /Filter /%s /Length %d >>\nstream\n" % (w, h, filt.encode(),
                                                                                          len(stream))
                           + stream + b"\nendstream"))
    xobj = b" ".join(b"/Im%d %d 0 R" % (i, n) for i, n in enumerate(img_ids))
    content = b"".join(b"q 100 0 0 100 0 %d cm /Im%d Do Q\n" % (i * 100, i) for i in range(len(img_ids)))
    cid = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    pages_id = len(objs) + pages + 1
    page_ids = [add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 600 800] /Contents %d 0 R "
                    b"/Resources << /XObject << %s >> >> >>" % (pages_id, cid, xobj)) for _ in range(pages)]
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % p for p in page_ids),
                                                            pages)) == pages_id
    cat = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, cat, xref)
    return bytes(out)


def test_pdf_embedded_images_are_members(tmp_path):
    jpg = pic(20, size=(80, 60))
    rgb = photo_like(21, 32, 24)
    flate = zlib.compress(rgb.tobytes())
    doc = pdf_with_images([("DCTDecode", 80, 60, jpg), ("FlateDecode", 32, 24, flate)])
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "doc.pdf").write_bytes(doc)
    made = io.BytesIO()
    photo_like(22, 50, 40).save(made, "PDF")  # a PDF written by Pillow: its picture as a JPEG stream
    (ev / "pillow.pdf").write_bytes(made.getvalue())
    with zipfile.ZipFile(ev / "mail.zip", "w") as z:
        z.writestr("attachment.pdf", doc)
    items = by_loc(scan([ev]))
    d = str(ev / "doc.pdf")
    assert [loc for loc in items if loc.startswith(d)] == [d, f"{d}!image1.jpg", f"{d}!image2.png"]  # once each
    assert items[d].container and items[d].meta["format"] == "pdf" and items[d].meta["images"] == 2
    assert items[f"{d}!image1.jpg"].data == jpg  # the JPEG as it was put in: an exact match stays possible
    assert items[f"{d}!image1.jpg"].meta["page"] == 1 and items[f"{d}!image1.jpg"].meta["embedded"] is True
    png = Image.open(io.BytesIO(items[f"{d}!image2.png"].data))
    assert png.size == (32, 24) and png.convert("RGB").tobytes() == rgb.tobytes()
    p = str(ev / "pillow.pdf")
    assert Image.open(io.BytesIO(items[f"{p}!image1.jpg"].data)).size == (50, 40)
    m = str(ev / "mail.zip")
    assert items[f"{m}!attachment.pdf!image1.jpg"].data == jpg
    s = Settings()
    assert read_location(f"{d}!image1.jpg", s) == jpg
    assert read_location(f"{m}!attachment.pdf!image2.png", s) == items[f"{d}!image2.png"].data
    assert read_location(f"{d}!image3.jpg", s) is None
    # a picture declared larger than max_pixels is listed, not decoded
    small = by_loc(scan([ev / "doc.pdf"], Settings(max_pixels=1000)))
    assert code(small[f"{d}!image1.jpg"]) == "too_large" and small[f"{d}!image1.jpg"].data is None
    # a damaged PDF is reported on the container
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(500))
    bad = by_loc(scan([tmp_path / "bad.pdf"]))
    assert code(bad[str(tmp_path / "bad.pdf")]) == "corrupt_container"


# -- EXIF thumbnails -------------------------------------------------------------------------------

def with_exif_thumbnail(photo: bytes, thumb: bytes) -> bytes:
    """`photo` with an APP1 EXIF block whose IFD1 holds `thumb` (as cameras write it)."""
    make = b"Vigie\x00"
    ifd0 = 8
    ifd0_size = 2 + 12 + 4
    make_at = ifd0 + ifd0_size
    ifd1 = make_at + len(make)
    ifd1_size = 2 + 2 * 12 + 4
    thumb_at = ifd1 + ifd1_size
    tiff = b"II*\x00" + struct.pack("<I", ifd0)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, len(make), make_at) + struct.pack("<I", ifd1)
    tiff += make
    tiff += struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
    tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + struct.pack("<I", 0)
    tiff += thumb
    app1 = b"Exif\x00\x00" + tiff
    return photo[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + photo[2:]


def test_exif_thumbnail_is_a_member(tmp_path):
    thumb = pic(31, size=(40, 30))
    photo = with_exif_thumbnail(pic(30, size=(160, 120)), thumb)
    im = Image.open(io.BytesIO(photo))
    im.load()
    assert im.getexif()[0x010F] == "Vigie"  # a valid EXIF block, as Pillow reads it
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "photo.jpg").write_bytes(photo)
    (ev / "plain.jpg").write_bytes(pic(32))
    with zipfile.ZipFile(ev / "a.zip", "w") as z:
        z.writestr("dcim/photo.jpg", photo)
    items = by_loc(scan([ev]))
    p, z = str(ev / "photo.jpg"), str(ev / "a.zip")
    assert list(items) == [z, f"{z}!dcim/photo.jpg", f"{z}!dcim/photo.jpg!exif-thumbnail.jpg", p,
                           f"{p}!exif-thumbnail.jpg", str(ev / "plain.jpg")]
    assert items[p].path == p and not items[p].container  # the photo itself is still hashed as a picture
    t = items[f"{p}!exif-thumbnail.jpg"]
    assert t.data == thumb and t.meta["exif_thumbnail"] is True and t.meta["member"] == "exif-thumbnail.jpg"
    assert items[f"{z}!dcim/photo.jpg!exif-thumbnail.jpg"].data == thumb
    s = Settings()
    assert read_location(f"{p}!exif-thumbnail.jpg", s) == thumb
    assert read_location(f"{z}!dcim/photo.jpg!exif-thumbnail.jpg", s) == thumb
    assert read_location(f"{ev / 'plain.jpg'}!exif-thumbnail.jpg", s) is None


# -- the scan: every unknown item reviewable, acquisition hashes in the report ----------------------

@need_fat
@need_ewf
def test_scan_of_hidden_pictures_reaches_review_with_media(store, tmp_path, media_key):
    import json

    from sqlalchemy import select

    from vigie.ingest.scan import run_scan, scan_key
    from vigie.review import media as rmedia
    from vigie.review.queue import enqueue_scan
    from vigie.store.models import Scan, ScanFile

    disk, live, carve = fat_disk(tmp_path)
    (tmp_path / "disk.raw").write_bytes(disk)
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(ev / "case"), "-c", "deflate:fast", str(tmp_path / "disk.raw")],
                   check=True, capture_output=True)
    thumb = pic(41, size=(40, 30))
    (ev / "photo.jpg").write_bytes(with_exif_thumbnail(pic(40, size=(160, 120)), thumb))
    jpg = pic(42, size=(80, 60))
    (ev / "doc.pdf").write_bytes(pdf_with_images([("DCTDecode", 80, 60, jpg)], pages=1))
    settings = store.settings
    out = tmp_path / "out"
    run_scan(store, settings, [str(ev)], str(out), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {r.location: r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id))}
    e = str(ev / "case.E01")
    want = {f"{e}!p1/@unallocated:0x{off:x}": data for off, data in carve.items()} | {
        f"{ev}/photo.jpg!exif-thumbnail.jpg": thumb, f"{ev}/doc.pdf!image1.jpg": jpg}
    for loc, data in want.items():
        assert rows[loc].klass == "unknown" and rows[loc].sha256 == sha(data), loc
    assert "carved" in rows[f"{e}!p1/@unallocated:0x{8 * MiB:x}"].flags
    assert "deleted" in rows[f"{e}!p1/@unallocated:0x{8 * MiB:x}"].flags
    assert "exif_thumbnail" in rows[f"{ev}/photo.jpg!exif-thumbnail.jpg"].flags
    assert "embedded" in rows[f"{ev}/doc.pdf!image1.jpg"].flags
    summary = json.loads((out / "summary.json").read_text())
    (acq,) = summary["acquisition_hashes"]
    assert acq["location"] == e and acq["sha256"] == sha(disk) and acq["md5"] == hashlib.md5(disk).hexdigest()
    assert acq["hash_check"] == "verified" and acq["stored_md5"] == hashlib.md5(disk).hexdigest()
    assert acq["file_sha256"] == sha((ev / "case.E01").read_bytes())

    unknown = {loc: r for loc, r in rows.items() if r.klass == "unknown"}
    rep = enqueue_scan(store, settings, scan_id, media_reader=lambda loc: read_location(loc, settings))
    distinct = {r.sha256 for r in unknown.values()}
    assert rep["media_missing"] == 0 and rep["media_stored"] == len(distinct)
    for h in distinct:
        assert rmedia.has_media(store, h, "original")


# -- Windows thumbcache ----------------------------------------------------------------------------

def thumbcache_file(version: int, thumbs: list[tuple[int, bytes]]) -> bytes:
    """A minimal thumbcache_*.db as Explorer writes it: the header, then one entry per (cache id, data), and an
    empty entry (an id with no data), in the layout of `version` (21: Windows 7; 30: Windows 10)."""
    first = 24 if version == 21 else 28
    if version == 21:
        head = b"CMMM" + struct.pack("<IIIII", version, 1, first, 0, len(thumbs) + 1)
    else:
        head = b"CMMM" + struct.pack("<IIIIII", version, 1, 0, first, 0, len(thumbs) + 1)
    out = bytearray(head)
    for cache_id, data in [*thumbs, (0xDEAD, b"")]:
        ident = f"{cache_id:016x}".encode("utf-16-le")
        pad = b"\x00" * 8
        if version == 21:
            fixed = struct.pack("<IIIIQQ", len(ident), len(pad), len(data), 0, 0, 0)
        else:
            fixed = struct.pack("<IIIIIIQQ", len(ident), len(pad), len(data), 96, 72, 0, 0, 0)
        body = struct.pack("<Q", cache_id) + fixed + ident + pad + data
        out += b"CMMM" + struct.pack("<I", 8 + len(body)) + body
    return bytes(out)


def test_thumbcache_entries_are_members(tmp_path):
    a, b = pic(50, size=(96, 72)), pic(51, "PNG", size=(96, 72))
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "thumbcache_256.db").write_bytes(thumbcache_file(30, [(0x1122334455667788, a), (0xAB, b)]))
    (ev / "thumbcache_96.db").write_bytes(thumbcache_file(21, [(0x42, b), (0x42, a)]))
    items = by_loc(scan([ev]))
    t10, t7 = str(ev / "thumbcache_256.db"), str(ev / "thumbcache_96.db")
    assert [loc for loc in items if loc.startswith(t10)] == [t10, f"{t10}!1122334455667788.jpg",
                                                              f"{t10}!00000000000000ab.png"]
    assert items[t10].container and items[t10].meta["thumbcache_version"] == 30
    assert items[f"{t10}!1122334455667788.jpg"].data == a and items[f"{t10}!00000000000000ab.png"].data == b
    assert items[f"{t10}!1122334455667788.jpg"].meta["cache_id"] == "1122334455667788"
    assert [loc for loc in items if loc.startswith(t7)] == [t7, f"{t7}!0000000000000042.png",
                                                             f"{t7}!0000000000000042.jpg"]
    assert items[f"{t7}!0000000000000042.jpg"].data == a
    assert read_location(f"{t10}!00000000000000ab.png", Settings()) == b
    # damage after the first entry: what was listed stays, the damage is reported
    cut = bytearray(thumbcache_file(30, [(1, a), (2, b)]))
    second = cut.find(b"CMMM", 28 + 8)
    cut[second + 4:second + 8] = struct.pack("<I", 1 << 30)
    (tmp_path / "thumbcache_32.db").write_bytes(bytes(cut))
    dam = by_loc(scan([tmp_path / "thumbcache_32.db"]))
    t = str(tmp_path / "thumbcache_32.db")
    assert dam[f"{t}!0000000000000001.jpg"].data == a and code(dam[f"{t}!<damaged>"]) == "corrupt_container"


# -- Windows Thumbs.db -------------------------------------------------------------------------------

def compound_file(streams: dict[str, bytes]) -> bytes:
    """An OLE compound file (version 3, 512-byte sectors) holding `streams` at its root; each stream at least
    4096 bytes (the mini-stream cutoff), so all live in regular sectors."""
    sec, end, free, none = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFF
    names = sorted(streams, key=lambda n: (len(n), n.upper()))
    assert all(len(streams[n]) >= 4096 for n in names)
    ndir = -(-(1 + len(names)) // 4)
    counts = [-(-len(streams[n]) // sec) for n in names]
    nfat = 1
    while nfat * 128 < nfat + ndir + sum(counts):
        nfat += 1
    fat = [0xFFFFFFFD] * nfat
    dir_start = len(fat)
    fat += [len(fat) + i + 1 if i < ndir - 1 else end for i in range(ndir)]
    starts = []
    for k in counts:
        starts.append(len(fat))
        fat += [len(fat) + i + 1 if i < k - 1 else end for i in range(k)]
    fat += [free] * (nfat * 128 - len(fat))
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, nfat, dir_start, 0, 4096, end, 0, end, 0)
              + struct.pack("<109I", *(list(range(nfat)) + [free] * (109 - nfat))))

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = (name.encode("utf-16-le") + b"\x00\x00") if name else b""
        return (raw.ljust(64, b"\x00") + struct.pack("<HBBIII", len(raw), kind, 1, none, right, child) + bytes(16)
                + struct.pack("<IQQIQ", 0, 0, 0, start, size))

    dirs = entry("Root Entry", 5, none, 1 if names else none, end, 0)
    for i, n in enumerate(names, 1):
        dirs += entry(n, 2, i + 1 if i < len(names) else none, none, starts[i - 1], len(streams[n]))
    dirs = dirs.ljust(ndir * sec, b"\x00")
    for k in range(len(names) + 1, ndir * 4):  # unused entries: no siblings, no child
        dirs = dirs[:k * 128 + 68] + struct.pack("<III", none, none, none) + dirs[k * 128 + 80:]
    body = b"".join(streams[n].ljust(c * sec, b"\x00") for n, c in zip(names, counts))
    return header + struct.pack(f"<{nfat * 128}I", *fat) + dirs + body


def thumbs_db(thumbs: dict[int, tuple[str, bytes]]) -> bytes:
    """A Thumbs.db as Windows XP writes it: stream per index (digits reversed) with a 12-byte header, a Catalog."""
    cat = struct.pack("<HHIII", 16, 7, len(thumbs), 96, 96)
    streams = {}
    for idx, (name, data) in thumbs.items():
        raw = name.encode("utf-16-le") + b"\x00\x00"
        cat += struct.pack("<IIQ", 16 + len(raw), idx, 0) + raw
        streams[str(idx)[::-1]] = struct.pack("<III", 12, idx, len(data)) + data
    streams["Catalog"] = cat.ljust(4096, b"\x00")
    return compound_file(streams)


def test_thumbs_db_entries_are_members(tmp_path):
    import olefile

    a, b = pic(60, size=(200, 150)), pic(61, size=(220, 160))
    db = thumbs_db({1: ("holiday.jpg", a), 12: ("\u00e9t\u00e9.jpg", b)})
    ole = olefile.OleFileIO(db)  # a compound file olefile reads as Windows wrote it
    assert sorted(ole.listdir()) == [["1"], ["21"], ["Catalog"]]
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "Thumbs.db").write_bytes(db)
    (ev / "old.doc").write_bytes(compound_file({"WordDocument": os.urandom(5000)}))
    items = by_loc(scan([ev]))
    t = str(ev / "Thumbs.db")
    assert [loc for loc in items if loc.startswith(t)] == [t, f"{t}!1.jpg", f"{t}!21.jpg"]
    assert items[t].meta["format"] == "thumbs.db"
    assert items[f"{t}!1.jpg"].data == a and items[f"{t}!1.jpg"].meta["catalog_name"] == "holiday.jpg"
    assert items[f"{t}!21.jpg"].data == b and items[f"{t}!21.jpg"].meta["catalog_name"] == "\u00e9t\u00e9.jpg"
    doc = str(ev / "old.doc")
    assert items[doc].meta["format"] == "ole" and code(items[doc]) is None
    assert not [loc for loc in items if loc.startswith(doc + "!")]
    assert read_location(f"{t}!21.jpg", Settings()) == b
