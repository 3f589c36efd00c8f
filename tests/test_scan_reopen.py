"""Every unknown picture of a scan reaches review with its media, wherever it was found.

The evidence is built here: nested archives (zip in tar.gz in 7z, a zip with a repeated
member name, a tar member named in Latin-1) and an ext4 disk image, inside a zip too. After
the scan, `read_location` re-opens each unknown location from its location string, and
`enqueue_scan` stores media for every queued item.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest
from sqlalchemy import select

from vigie.demo import encode, photo_like
from vigie.ingest.reopen import read_location
from vigie.ingest.scan import run_scan, scan_key
from vigie.settings import Settings
from vigie.store.models import Scan, ScanFile
from vigie.store.review_models import ReviewItem

MKE2FS = shutil.which("mke2fs") or ("/usr/sbin/mke2fs" if os.path.exists("/usr/sbin/mke2fs") else None)
DEBUGFS = shutil.which("debugfs") or ("/usr/sbin/debugfs" if os.path.exists("/usr/sbin/debugfs") else None)


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 64, 48), "JPEG")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ext4(tmp: Path, files: dict[bytes, bytes], delete: list[str] = ()) -> bytes:
    root = tmp / f"fsroot-{len(list(tmp.iterdir()))}"
    root.mkdir()
    for name, data in files.items():
        p = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    img = tmp / "fs.img"
    subprocess.run([MKE2FS, "-q", "-F", "-t", "ext4", "-d", str(root), str(img), "4M"], check=True,
                   capture_output=True)
    for name in delete:
        subprocess.run([DEBUGFS, "-w", "-R", f"rm /{name}", str(img)], check=True, capture_output=True)
    data = img.read_bytes()
    img.unlink()
    shutil.rmtree(root)
    return data


@pytest.fixture
def evidence(tmp_path):
    """Unknown pictures only inside containers, each at a known location (relative to the evidence folder)."""
    if not (MKE2FS and DEBUGFS):
        pytest.skip("e2fsprogs (mke2fs, debugfs) not installed")
    ev = tmp_path / "ev"
    ev.mkdir()
    pics = {i: jpeg(500 + i) for i in range(12)}
    inner = zip_bytes([("photos/p0.jpg", pics[0]), ("notes.txt", b"benign")])
    bundle = tar_bytes([("inner.zip", inner), ("dir/p1.jpg", pics[1])])
    with py7zr.SevenZipFile(ev / "outer.7z", "w") as z:
        z.writestr(bundle, "bundle.tgz")
        z.writestr(pics[2], "p2.jpg")
    with pytest.warns(UserWarning, match="Duplicate name"):
        (ev / "dup.zip").write_bytes(zip_bytes([("same.jpg", pics[3]), ("same.jpg", pics[4])]))
    (ev / "latin.tar").write_bytes(tar_bytes([("caf\udce9.jpg", pics[5])], mode="w"))
    disk = ext4(tmp_path, {b"Users/x/p6.jpg": pics[6], b"gr\xfcn.jpg": pics[7], b"gone.jpg": pics[8],
                           b"pack.zip": zip_bytes([("p9.jpg", pics[9])])}, delete=["gone.jpg"])
    (ev / "disk.img").write_bytes(disk)
    (ev / "carried.zip").write_bytes(zip_bytes([("usb.img", ext4(tmp_path, {b"DCIM/p10.jpg": pics[10],
                                                                     b"noise.bin": os.urandom(1 << 21)}))]))
    (ev / "plain.jpg").write_bytes(pics[11])
    expected = {
        "outer.7z!bundle.tgz!inner.zip!photos/p0.jpg": pics[0],
        "outer.7z!bundle.tgz!dir/p1.jpg": pics[1],
        "outer.7z!p2.jpg": pics[2],
        "dup.zip!same.jpg": pics[3],
        "dup.zip!same.jpg#2": pics[4],
        "latin.tar!caf\\xe9.jpg": pics[5],
        "disk.img!/Users/x/p6.jpg": pics[6],
        "disk.img!/gr\\xfcn.jpg": pics[7],
        "disk.img!/pack.zip!p9.jpg": pics[9],
        "carried.zip!usb.img!/DCIM/p10.jpg": pics[10],
        "plain.jpg": pics[11],
    }
    return ev, expected, pics[8]


def test_read_location_reopens_every_member(evidence):
    ev, expected, _ = evidence
    s = Settings()
    for rel, data in expected.items():
        assert read_location(f"{ev}/{rel}", s) == data, rel
    assert read_location(f"{ev}/dup.zip!nothing.jpg", s) is None
    assert read_location(f"{ev}/missing.zip!a.jpg", s) is None
    assert read_location(f"{ev}/outer.7z", s) == (ev / "outer.7z").read_bytes()
    small = Settings(max_file_bytes=100)  # bounded by the settings' largest file
    assert read_location(f"{ev}/outer.7z!p2.jpg", small) is None
    assert read_location(f"{ev}/plain.jpg", small) is None


def test_every_unknown_item_of_a_container_scan_has_media(store, evidence, tmp_path, media_key):
    from vigie.review import media as rmedia
    from vigie.review.queue import enqueue_scan

    ev, expected, gone = evidence
    settings = store.settings
    run_scan(store, settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {r.location: r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id))}
    unknown = {loc: r for loc, r in rows.items() if r.klass == "unknown"}
    want = {f"{ev}/{rel}" for rel in expected}
    assert want <= set(unknown), sorted(want - set(unknown))
    assert "name_not_utf8" in unknown[f"{ev}/latin.tar!caf\\xe9.jpg"].flags
    assert "name_not_utf8" in unknown[f"{ev}/disk.img!/gr\\xfcn.jpg"].flags
    for loc, r in unknown.items():  # the deleted one too, when its blocks still hold it
        assert sha(read_location(loc, settings) or b"") == r.sha256, loc

    rep = enqueue_scan(store, settings, scan_id, media_reader=lambda loc: read_location(loc, settings))
    distinct = {r.sha256 for r in unknown.values()}
    assert rep["items_added"] == len(distinct) and rep["media_missing"] == 0
    assert rep["media_stored"] == len(distinct)
    with store.sessions() as s:
        queued = list(s.scalars(select(ReviewItem)))
    assert {it.sha256 for it in queued} == distinct
    for it in queued:
        assert rmedia.has_media(store, it.sha256, "original"), it.source_refs
        assert sha(rmedia.read_media(store, settings, it.sha256, "original")) == it.sha256
    assert sha(gone) in distinct or not any(loc.endswith("!/gone.jpg") for loc in unknown)
