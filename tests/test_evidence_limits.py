"""Every size: large members keep their digests; bombs are judged on the bytes actually inflated.

A member over max_file_bytes inside an archive or a disk image is matched by its digests like
a plain file of the same size. A zip member that declares a huge compressed size for a tiny
deflate stream (hand-crafted here) is stopped as a bomb after about one RATIO_FLOOR of output,
never after inflating what its declared size would allow.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import zipfile

import pytest
from sqlalchemy import select

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.ingest.containers import iter_items
from vigie.ingest.members import CHUNK, RATIO_FLOOR
from vigie.ingest.scan import run_scan, scan_key
from vigie.settings import Settings
from vigie.store.models import Scan, ScanFile

MKE2FS = shutil.which("mke2fs") or ("/usr/sbin/mke2fs" if os.path.exists("/usr/sbin/mke2fs") else None)


def zip_bytes(members: list[tuple[str, bytes]], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def patch_member(raw: bytes, *, compressed: int | None = None, crc: int | None = None) -> bytes:
    """Rewrite the first member's declared compressed size and/or CRC, in its local header and central entry."""
    b = bytearray(raw)
    lh, cd = b.find(b"PK\x03\x04"), b.find(b"PK\x01\x02")
    if compressed is not None:
        struct.pack_into("<I", b, lh + 18, compressed)
        struct.pack_into("<I", b, cd + 20, compressed)
    if crc is not None:
        struct.pack_into("<I", b, lh + 14, crc)
        struct.pack_into("<I", b, cd + 16, crc)
    return bytes(b)


def ratio_numbers(message: str) -> tuple[int, int]:
    words = message.split()
    return int(words[-4]), int(words[-1])


def test_a_zip_lying_about_its_compressed_size_is_stopped_early(tmp_path):
    zeros = bytes(64 * 1024 * 1024)  # inflates ~1000:1
    honest = zip_bytes([("a-zeros.bin", zeros), ("b.txt", b"after the bomb")])
    liar = tmp_path / "liar.zip"
    liar.write_bytes(patch_member(honest, compressed=0xF0000000))  # "4 GB packed": a ratio of 1:64 declared
    z = zipfile.ZipFile(liar)
    assert z.infolist()[0].compress_size == 0xF0000000 and liar.stat().st_size < 200_000
    for src in (liar, tmp_path / "honest.zip"):
        if src.name == "honest.zip":
            src.write_bytes(honest)
        items = {i.location: i for i in iter_items([str(src)], Settings())}
        bomb = items[f"{src}!a-zeros.bin"]
        assert bomb.error.code == "zip_bomb" and bomb.data is None, bomb.error
        unpacked, packed = ratio_numbers(bomb.error.message)
        assert unpacked <= RATIO_FLOOR + CHUNK  # stopped within one chunk of the floor: memory bounded
        assert packed < 10_000  # the bytes actually consumed, not the size declared
        assert items[f"{src}!b.txt"].data == b"after the bomb"  # the archive goes on


def test_zip_member_with_a_bad_crc_is_reported(tmp_path):
    src = tmp_path / "crc.zip"
    src.write_bytes(patch_member(zip_bytes([("a.bin", os.urandom(3000))]), crc=0x12345678))
    it = list(iter_items([str(src)], Settings()))[1]
    assert it.error.code == "corrupt" and "CRC" in it.error.message and it.data is None


def _disk_with(tmp_path, name: str, data: bytes) -> bytes | None:
    if not MKE2FS:
        return None
    root = tmp_path / "fsroot"
    root.mkdir()
    (root / name).write_bytes(data)
    img = tmp_path / "fs.img"
    subprocess.run([MKE2FS, "-q", "-F", "-t", "ext4", "-d", str(root), str(img), "2M"], check=True,
                   capture_output=True)
    out = img.read_bytes()
    img.unlink()
    shutil.rmtree(root)
    return out


def test_large_members_keep_their_digests_and_match(store, tmp_path):
    big = b"\xff\xd8\xff\xe0" + os.urandom(200_000)  # a "video" too large to decode under this limit
    settings = store.settings.model_copy(update={"max_file_bytes": 50_000})
    md5, sha256 = hashlib.md5(big).hexdigest(), hashlib.sha256(big).hexdigest()
    banks.create_bank(store, "known", default_verdict=None)
    banks.import_entries(store, "known", enumerate([EntryData("md5", md5)], 1))
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "a.zip").write_bytes(zip_bytes([("big.jpg", big)]))
    (ev / "b.tar").write_bytes(_tar([("big.jpg", big)]))
    (ev / "plain.jpg").write_bytes(big)
    disk = _disk_with(tmp_path, "big.jpg", big)
    if disk is not None:
        (ev / "disk.img").write_bytes(disk)
    run_scan(store, settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {os.path.relpath(r.location, ev): r for r in s.scalars(select(ScanFile)
                                                                      .where(ScanFile.scan_id == scan_id))}
    wanted = ["a.zip!big.jpg", "b.tar!big.jpg", "plain.jpg"] + (["disk.img!/big.jpg"] if disk else [])
    for loc in wanted:
        r = rows[loc]
        assert (r.md5, r.sha256, r.size, r.klass) == (md5, sha256, len(big), "exact"), loc
        assert r.error_code == "too_large" and r.media_type == "image/jpeg", loc
        assert r.sha1 == hashlib.sha1(big).hexdigest()


def _tar(members):
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_other_zip_methods_still_read(tmp_path, method):
    data = os.urandom(5000) + bytes(5000)
    src = tmp_path / "m.zip"
    src.write_bytes(zip_bytes([("x.bin", data)], method))
    assert list(iter_items([str(src)], Settings()))[1].data == data
