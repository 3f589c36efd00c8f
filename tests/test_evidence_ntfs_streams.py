"""NTFS alternate data streams: a picture hidden in ``file.txt:hidden.jpg`` is found, hashed, matched, re-read
for review by its location and reported under a location naming the stream.

The NTFS volume is made by Debian's ntfs-3g tools, without mounting anything: ``mkntfs`` formats it,
``ntfscp`` copies a file in, and ``ntfscp -N hidden.jpg`` writes the picture into a named stream of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vigie.demo import encode, photo_like
from vigie.ingest.containers import iter_items
from vigie.ingest.reopen import read_location
from vigie.settings import Settings


def _tool(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)


MKNTFS, NTFSCP = _tool("mkntfs"), _tool("ntfscp")
pytestmark = pytest.mark.skipif(not (MKNTFS and NTFSCP), reason="ntfs-3g (mkntfs, ntfscp) not installed")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jpeg(seed: int, size=(64, 48)) -> bytes:
    return encode(photo_like(seed, *size), "JPEG")


def ntfs_with_streams(tmp: Path) -> tuple[Path, dict[str, bytes]]:
    """An 8 MiB NTFS volume: ``file.txt`` with two streams (a JPEG, a PNG) and ``plain.jpg`` without any.
    Returns the image and {location inside the image: bytes}."""
    img = tmp / "ntfs.img"
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run([MKNTFS, "-F", "-Q", "-q", str(img)], check=True, capture_output=True)
    text, hidden, other, plain = b"nothing to see\n", jpeg(1, (120, 90)), encode(photo_like(2, 50, 40), "PNG"), jpeg(3)
    src = tmp / "src"
    src.mkdir()
    for name, data in (("file.txt", text), ("hidden.jpg", hidden), ("other.png", other), ("plain.jpg", plain)):
        (src / name).write_bytes(data)

    def cp(*args):
        subprocess.run([NTFSCP, "-q", *args], check=True, capture_output=True)

    cp(str(img), str(src / "file.txt"), "file.txt")
    cp(str(img), str(src / "plain.jpg"), "plain.jpg")
    cp("-N", "hidden.jpg", str(img), str(src / "hidden.jpg"), "file.txt")
    cp("-N", "other.png", str(img), str(src / "other.png"), "file.txt")
    root = jpeg(4, (40, 30))
    (src / "root.jpg").write_bytes(root)
    cp("-i", "-N", "root.jpg", str(img), str(src / "root.jpg"), "5")  # a stream of the root folder (MFT record 5)
    return img, {"/file.txt": text, "/file.txt:hidden.jpg": hidden, "/file.txt:other.png": other,
                 "/plain.jpg": plain, "/:root.jpg": root}


def test_alternate_data_streams_are_members_located_by_stream(tmp_path):
    img, want = ntfs_with_streams(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    disk = ev / "ntfs.img"
    shutil.move(img, disk)
    items = {i.location: i for i in iter_items([str(ev)], Settings())}
    d = str(disk)
    for path, data in want.items():
        it = items[f"{d}!{path}"]
        assert it.error is None and it.data == data, path
    streams = {loc for loc, it in items.items() if it.meta.get("ads")}
    assert streams == {f"{d}!/file.txt:hidden.jpg", f"{d}!/file.txt:other.png", f"{d}!/:root.jpg"}
    s = items[f"{d}!/file.txt:hidden.jpg"]
    assert s.meta["stream"] == "hidden.jpg" and s.meta["fs"] == "ntfs" and not s.deleted
    assert not [loc for loc in items if loc.startswith(f"{d}!/plain.jpg:")]  # no stream, nothing more listed
    # re-read by location alone, as review does: the stream, not the file it hangs on
    st = Settings()
    assert read_location(f"{d}!/file.txt:hidden.jpg", st) == want["/file.txt:hidden.jpg"]
    assert read_location(f"{d}!/file.txt:other.png", st) == want["/file.txt:other.png"]
    assert read_location(f"{d}!/file.txt", st) == want["/file.txt"]
    assert read_location(f"{d}!/file.txt:nope.jpg", st) is None
    assert read_location(f"{d}!/:root.jpg", st) == want["/:root.jpg"]


def test_a_known_picture_in_a_stream_matches_and_an_unknown_one_reaches_review(store, tmp_path, media_key):
    import csv

    from sqlalchemy import select

    from vigie.banks import service as banks
    from vigie.ingest.scan import run_scan, scan_key
    from vigie.review import media as rmedia
    from vigie.review.queue import enqueue_scan
    from vigie.store.models import Scan, ScanFile

    img, want = ntfs_with_streams(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    shutil.move(img, ev / "ntfs.img")
    d = str(ev / "ntfs.img")
    banks.create_bank(store, "partner")
    banks.add_entry(store, "partner", "sha256", sha(want["/file.txt:hidden.jpg"]))
    out = tmp_path / "out"
    settings = store.settings
    run_scan(store, settings, [str(ev)], str(out), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {r.location: r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id))}
    hidden = rows[f"{d}!/file.txt:hidden.jpg"]
    assert hidden.klass == "exact" and hidden.sha256 == sha(want["/file.txt:hidden.jpg"])
    assert hidden.md5 == hashlib.md5(want["/file.txt:hidden.jpg"]).hexdigest()
    assert hidden.detail["source"]["stream"] == "hidden.jpg" and hidden.detail["source"]["ads"] is True
    assert "ads" in (hidden.flags or [])
    other = rows[f"{d}!/file.txt:other.png"]
    assert other.klass == "unknown" and other.sha256 == sha(want["/file.txt:other.png"])
    with open(out / "files.csv", newline="") as f:
        report = {r[0]: r for r in csv.reader(f)}
    assert report[f"{d}!/file.txt:hidden.jpg"][7] == "exact"  # the report names the stream
    rep = enqueue_scan(store, settings, scan_id, media_reader=lambda loc: read_location(loc, settings))
    assert rep["media_missing"] == 0
    assert rmedia.has_media(store, other.sha256, "original")
