"""An E01 is read once: the acquisition hash, the files and carving share one sequential read of the media.

Bytes are counted where every read of an E01's media goes, `vigie.ingest.evidence.LibMedia.read` (libewf
inflates a chunk for each). Before, the media was hashed in one read and then walked and carved through The
Sleuth Kit: over twice its size. Now the one pass reads each byte once; The Sleuth Kit reads only the file
system's own structures while listing (and, on FAT, every directory slot of the volume: its search for
orphan files). The scan's items are the same both ways.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vigie.demo import encode, photo_like
from vigie.ingest import carving, diskimage, evidence
from vigie.ingest import containers as C
from vigie.ingest.containers import iter_items
from vigie.settings import Settings

EWFACQUIRE = shutil.which("ewfacquire")
MKE2FS = shutil.which("mke2fs") or ("/usr/sbin/mke2fs" if os.path.exists("/usr/sbin/mke2fs") else None)
pytestmark = pytest.mark.skipif(not (EWFACQUIRE and MKE2FS), reason="ewf-tools (ewfacquire) or e2fsprogs "
                                "(mke2fs) not installed")
MiB = 1 << 20


def pic(seed: int, size=(320, 240)) -> bytes:
    return encode(photo_like(seed, *size), "JPEG")


def ext4_e01(tmp: Path) -> tuple[Path, bytes, dict, dict]:
    """An E01 of a 32 MiB ext4 volume (``mke2fs -d``: no mount) with pictures and a 3 MiB file, and a picture in
    its free space. Returns the E01, the media, {path: bytes} of the files, {offset: bytes} to carve."""
    src = tmp / "src"
    (src / "dcim").mkdir(parents=True)
    files = {f"/dcim/p{i}.jpg": pic(i) for i in range(12)}
    files["/big.bin"] = os.urandom(3 * MiB)
    for path, data in files.items():
        (src / path.lstrip("/")).write_bytes(data)
    raw = tmp / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(32 * MiB)
    subprocess.run([MKE2FS, "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(src), str(raw)], check=True,
                   capture_output=True)
    media = bytearray(raw.read_bytes())
    hidden = pic(99, (200, 150))
    media[28 * MiB:28 * MiB + len(hidden)] = hidden
    raw.write_bytes(bytes(media))
    ev = tmp / "ev"
    ev.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(ev / "case"), "-c", "deflate:fast", str(raw)], check=True,
                   capture_output=True)
    return ev / "case.E01", bytes(media), files, {28 * MiB: hidden}


def counted(monkeypatch) -> dict:
    """Count every byte read from an E01's media, and those The Sleuth Kit asked for (`listing`)."""
    count = {"bytes": 0, "listing": 0}
    real, tsk = evidence.LibMedia.read, diskimage._FileImg.read

    def read(self, n=-1):
        data = real(self, n)
        count["bytes"] += len(data)
        return data

    def listing(self, offset, size):
        before = count["bytes"]
        data = tsk(self, offset, size)
        count["listing"] += count["bytes"] - before
        return data

    monkeypatch.setattr(evidence.LibMedia, "read", read)
    monkeypatch.setattr(diskimage._FileImg, "read", listing)
    return count


def the_old_way(monkeypatch) -> None:
    """What the scan did before: the media hashed in a read of its own, then walked and carved."""
    real = diskimage.members

    def old(item, fobj, size, kind, depth, ctx):
        if getattr(fobj, "one_pass", None) is not None:
            done = fobj.one_pass
            del fobj.one_pass
            fobj.seek(0)
            hs = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
            while chunk := fobj.read(4 * MiB):
                for h in hs:
                    h.update(chunk)
            done(item, {"media_md5": hs[0].hexdigest(), "media_sha1": hs[1].hexdigest(),
                        "media_sha256": hs[2].hexdigest(), "media_size": size})
        yield from real(item, fobj, size, kind, depth, ctx)

    monkeypatch.setitem(C.KINDS, "disk", old)


def summary(items) -> dict:
    return {i.location: (i.data and hashlib.sha256(i.data).hexdigest(), i.deleted, i.error and i.error.code,
                         i.meta.get("member")) for i in items}


def test_e01_media_is_read_once_for_hash_files_and_carving(tmp_path, monkeypatch):
    e01, media, files, carve = ext4_e01(tmp_path)
    e = str(e01)
    count = counted(monkeypatch)
    items = list(iter_items([str(e01.parent)], Settings()))
    after = count["bytes"]
    by = {i.location: i for i in items}
    img = by[e]
    assert items[-1] is img  # the image's own item comes once its media has been read through
    assert img.meta["media_sha256"] == hashlib.sha256(media).hexdigest() and img.meta["hash_check"] == "verified"
    assert img.meta["media_md5"] == hashlib.md5(media).hexdigest()
    assert img.meta["media_bytes_reread"] == 0
    for path, data in files.items():
        assert by[f"{e}!{path}"].data == data, path
        assert by[f"{e}!{path}"].meta["member"] == path
    (off, data), = carve.items()
    assert by[f"{e}!/{carving.MARK}0x{off:x}"].data == data
    # read once: every byte of the media once in the pass (hash, files, carving), and besides it only what The
    # Sleuth Kit reads of the file system's own structures while listing (inode tables, folders, bitmaps)
    assert after - count["listing"] == len(media), (after, count["listing"], len(media))
    assert count["listing"] < 0.25 * len(media), count

    count["bytes"] = 0
    with monkeypatch.context() as m:
        the_old_way(m)
        old = list(iter_items([str(e01.parent)], Settings()))
    before = count["bytes"]
    assert before > 2 * len(media), (before, len(media))  # hashed, then every file and the free space again
    assert summary(old) == summary(items)  # the same items, the same bytes, the same names
    print(f"E01 of {len(media)} bytes: read {before} bytes before ({before / len(media):.2f}x), "
          f"{after} after ({after / len(media):.2f}x)")


def test_one_pass_gives_what_the_sleuth_kit_reads_on_fat_with_deleted_and_carved_files(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_evidence_formats import MKFS, MTOOLS, fat_disk

    if not (MKFS and MTOOLS):
        pytest.skip("dosfstools (mkfs.vfat) and mtools not installed")
    disk, live, carve = fat_disk(tmp_path)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(disk)
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(ev / "case"), "-c", "deflate:fast", str(raw)], check=True,
                   capture_output=True)
    count = counted(monkeypatch)
    items = list(iter_items([str(ev)], Settings()))
    after = count["bytes"]
    assert after - count["listing"] == len(disk)  # the pass: each byte once
    e = str(ev / "case.E01")
    by = {i.location: i for i in items}
    assert by[e].meta["media_bytes_reread"] == 0 and by[e].meta["hash_check"] == "verified"
    for path, data in live.items():
        assert by[f"{e}!p1{path}"].data == data
    assert by[f"{e}!p1/_ONE.PNG"].deleted
    for off, data in carve.items():
        assert by[f"{e}!p1/{carving.MARK}0x{off:x}"].data == data
    count["bytes"] = 0
    with monkeypatch.context() as m:
        the_old_way(m)
        old = list(iter_items([str(ev)], Settings()))
    assert summary(old) == summary(items)
    # FAT: The Sleuth Kit itself reads every sector of the volume while listing (its search for orphan files),
    # so the media is read twice, not four times
    assert after < 0.7 * count["bytes"], (after, count["bytes"])


def test_the_pass_holds_only_what_carving_may_read_again():
    import io

    from vigie.ingest import onepass

    media = os.urandom(3 * onepass.CHUNK + 123)
    mp = onepass.MediaPass(io.BytesIO(media), len(media))
    assert mp.read(10, 100) == media[10:110]
    mp.release(onepass.CHUNK + 5)
    assert mp.read(2 * onepass.CHUNK, 50) == media[2 * onepass.CHUNK:2 * onepass.CHUNK + 50]
    assert mp.buf_at == onepass.CHUNK + 5 and len(mp.buf) == mp.end - mp.buf_at
    assert mp.read(0, 4) == media[:4] and mp.bytes_reread == 4  # behind the pass: read again, and counted
    mp.release(len(media))
    mp.advance(len(media))
    assert len(mp.buf) == 0 and mp.end == len(media)
    assert mp.digests()["media_sha256"] == hashlib.sha256(media).hexdigest()


@pytest.mark.parametrize("fs", ["ntfs", "hfs", "exfat"])
def test_one_pass_gives_the_same_items_on_ntfs_hfs_and_exfat(tmp_path, monkeypatch, fs):
    """NTFS (with alternate data streams, small files resident in the MFT), HFS+ (a deleted picture carved) and
    exFAT (deleted files listed): the one pass and the old way agree on every item."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    if fs == "ntfs":
        from test_evidence_ntfs_streams import MKNTFS, NTFSCP, ntfs_with_streams

        if not (MKNTFS and NTFSCP):
            pytest.skip("ntfs-3g (mkntfs, ntfscp) not installed")
        raw, _ = ntfs_with_streams(tmp_path)
    elif fs == "hfs":
        from test_evidence_deleted_fs import hfs_delete, hfsplus_volume

        vol = hfsplus_volume(tmp_path, {"keep.jpg": pic(1), "gone.jpg": pic(2), "other.jpg": pic(3)})
        hfs_delete(vol, "gone.jpg")
        raw = tmp_path / "hfs.img"
        raw.write_bytes(bytes(vol))
    else:
        from test_evidence_deleted_fs import exfat_by_hand

        raw, _, _ = exfat_by_hand(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(ev / "case"), "-c", "deflate:fast", str(raw)], check=True,
                   capture_output=True)
    count = counted(monkeypatch)
    items = list(iter_items([str(ev)], Settings()))
    media = raw.read_bytes()
    assert count["bytes"] - count["listing"] == len(media)  # the pass: each byte once
    assert items[-1].meta["media_sha256"] == hashlib.sha256(media).hexdigest()
    with monkeypatch.context() as m:
        the_old_way(m)
        old = list(iter_items([str(ev)], Settings()))
    assert summary(old) == summary(items)
    streams = [i for i in items if i.meta.get("ads")]
    carved = [i for i in items if i.meta.get("carved")]
    deleted = [i for i in items if i.deleted and not i.meta.get("carved")]
    assert {"ntfs": len(streams) == 3, "hfs": len(carved) == 1, "exfat": len(deleted) == 2}[fs]


def test_past_the_deferral_cap_files_are_read_while_listing(tmp_path, monkeypatch):
    from vigie.ingest import onepass

    e01, media, files, carve = ext4_e01(tmp_path)
    monkeypatch.setattr(onepass, "DEFER_MAX", 3)
    count = counted(monkeypatch)
    items = {i.location: i for i in iter_items([str(e01.parent)], Settings())}
    for path, data in files.items():
        assert items[f"{e01}!{path}"].data == data, path
    assert items[str(e01)].meta["media_sha256"] == hashlib.sha256(media).hexdigest()
    assert count["bytes"] - count["listing"] == len(media)  # the pass itself still reads each byte once


def test_one_pass_without_carving_and_without_a_file_system(tmp_path):
    e01, media, files, carve = ext4_e01(tmp_path)
    items = {i.location: i for i in iter_items([str(e01.parent)], Settings(carve_unallocated=False))}
    assert not [loc for loc in items if carving.MARK in loc]
    for path, data in files.items():
        assert items[f"{e01}!{path}"].data == data, path
    assert items[str(e01)].meta["hash_check"] == "verified"
    # media The Sleuth Kit cannot read: still hashed and checked, its error says why
    noise = tmp_path / "noise.raw"
    noise.write_bytes(os.urandom(2 * MiB))
    ev = tmp_path / "noise"
    ev.mkdir()
    subprocess.run([EWFACQUIRE, "-u", "-q", "-t", str(ev / "n"), "-c", "deflate:fast", str(noise)], check=True,
                   capture_output=True)
    (img,) = iter_items([str(ev)], Settings())  # all of it carved (tests/test_evidence_no_filesystem.py): noise
    assert img.error.code == "no_filesystem" and img.meta["hash_check"] == "verified"
    assert img.meta["media_sha256"] == hashlib.sha256(noise.read_bytes()).hexdigest()
