"""`vigie scan` end to end on a generated "seized" source: exact counts, every location listed, resumable."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import ImageOps

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.hashing import hash_bytes
from vigie.ingest.scan import run_scan
from vigie.store import Store

import factory

MKE2FS = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
DEBUGFS = shutil.which("debugfs") or "/usr/sbin/debugfs"


def jpeg(seed, w=320, h=240, **kw):
    return factory.save(factory.picture(seed, w, h), "JPEG", quality=kw.get("quality", 90))


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def targz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ext4_image(tmp, files: dict[str, bytes], delete: list[str]) -> bytes | None:
    if not (os.path.exists(MKE2FS) and os.path.exists(DEBUGFS)):
        return None
    d = tmp / "fsroot"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    img = tmp / "fs.img"
    subprocess.run([MKE2FS, "-q", "-t", "ext4", "-d", str(d), str(img), "4M"], check=True, capture_output=True)
    for name in delete:
        subprocess.run([DEBUGFS, "-w", "-R", f"rm /{name}", str(img)], check=True, capture_output=True)
    data = img.read_bytes()
    shutil.rmtree(d)
    img.unlink()
    return data


@pytest.fixture
def seized(tmp_path, settings):
    """A source built so that every class has a known count."""
    store = Store.open(settings)
    src = tmp_path / "evidence"
    (src / "photos").mkdir(parents=True)
    known = [jpeg(100 + i) for i in range(3)]
    banks.create_bank(store, "known", default_verdict=None)
    rows = []
    for data in known:
        rec = hash_bytes(data, settings)
        rows += [EntryData("md5", rec.md5), EntryData("pdq", rec.pdq)]
    banks.import_entries(store, "known", enumerate(rows, 1))
    # a known picture whose media we hold (entry variants: crops) and a known video
    held = factory.picture(150, 480, 360)
    banks.add_media(store, "known", factory.save(held, "PNG"), settings, path="held.png")
    stills = [np.asarray(factory.picture(160 + i, 192, 144)) for i in range(4)]
    known_video = factory.video(tmp_path / "kv.mp4", stills)
    banks.add_media(store, "known", known_video.read_bytes(), settings, path="kv.mp4")
    w = factory.write
    # exact: 3 known + 1 duplicate copy + 1 inside a zip inside a tar.gz = 5 locations, 3 contents
    for i, data in enumerate(known):
        w(src / "photos", f"k{i}.jpg", data)
    w(src, "copy-of-k0.jpg", known[0])
    w(src, "bundle.tar.gz", targz_bytes({"inner.zip": zip_bytes({"deep/k1.jpg": known[1]})}))
    # near: recompressed + resized copy of k2, mirrored copy of k0
    small = factory.picture(102).resize((160, 120))
    w(src, "k2-small.jpg", factory.save(small, "JPEG", quality=60))
    w(src, "k0-mirror.png", factory.save(ImageOps.mirror(factory.picture(100)), "PNG"))
    w(src, "held-cropped.jpg", factory.save(held.crop((24, 18, 456, 342)), "JPEG", quality=85))
    factory.video(src / "kv-reencoded.mp4", stills, size=(160, 120), bit_rate=80_000)
    factory.video(src / "new-video.mp4", [np.asarray(factory.picture(170 + i, 192, 144)) for i in range(3)])
    # unknown: 3 distinct pictures, one of them twice at different sizes (one cluster of 2)
    w(src / "photos", "u0.jpg", jpeg(200))
    w(src / "photos", "u1.png", factory.save(factory.picture(201), "PNG"))
    w(src / "photos", "u2.jpg", jpeg(202))
    w(src / "photos", "u2-big.jpg", factory.save(factory.picture(202).resize((640, 480)), "JPEG"))
    # hostile and odd
    w(src, "truncated.jpg", jpeg(300)[:400])
    w(src, "text.jpg", b"this is not a picture")
    w(src, "empty.png", b"")
    os.mkfifo(src / "pipe")
    # a disk image holding a known picture and an unknown one that was deleted
    disk = ext4_image(tmp_path, {"holiday.jpg": known[2], "gone.jpg": jpeg(400)}, delete=["gone.jpg"])
    if disk is not None:
        w(src, "drive.dd", disk)
    return store, src, disk is not None


def read_files(out):
    with open(out / "files.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_scan_counts_and_every_location(seized, settings, tmp_path):
    store, src, has_disk = seized
    out = tmp_path / "out"
    summary = run_scan(store, settings, [str(src)], str(out), workers=2, case="CASE-1", operator="tester")
    rows = read_files(out)
    by_loc = {r["location"]: r for r in rows}
    assert len(by_loc) == len(rows)  # every location exactly once
    rel = {os.path.relpath(k, src) if k.startswith(str(src)) else k: v for k, v in by_loc.items()}
    cls = {k: v["class"] for k, v in rel.items()}
    assert cls["photos/k0.jpg"] == cls["copy-of-k0.jpg"] == "exact"
    assert cls["bundle.tar.gz!inner.zip!deep/k1.jpg"] == "exact"
    assert cls["bundle.tar.gz"] == cls["bundle.tar.gz!inner.zip"] == "skipped"
    assert cls["k2-small.jpg"] == "near" and cls["k0-mirror.png"] == "near"
    assert cls["held-cropped.jpg"] == "near" and rel["held-cropped.jpg"]["variant"].endswith("crop90")
    assert cls["kv-reencoded.mp4"] == "near" and rel["kv-reencoded.mp4"]["variant"] == "video/video"
    assert cls["new-video.mp4"] == "unknown"
    assert rel["k0-mirror.png"]["variant"].split("/")[0] != "original"
    assert {cls[f"photos/u{i}.jpg" if i != 1 else "photos/u1.png"] for i in range(3)} == {"unknown"}
    assert rel["photos/u2.jpg"]["cluster"] == rel["photos/u2-big.jpg"]["cluster"] != rel["photos/u0.jpg"]["cluster"]
    assert rel["truncated.jpg"]["error"].startswith("truncated") and cls["truncated.jpg"] == "error"
    assert cls["text.jpg"] == "skipped" and "not_media" in rel["text.jpg"]["flags"]
    assert rel["empty.png"]["error"].startswith("empty")
    assert cls["pipe"] == "skipped" and rel["pipe"]["error"].startswith("special_file")
    c = summary["counts"]["by_class"]
    expected = {"exact": 5, "near": 4, "unknown": 5, "error": 2, "skipped": 4}
    if has_disk:
        assert cls["drive.dd!/holiday.jpg"] == "exact"
        assert cls["drive.dd"] == "skipped"
        deleted = [r for k, r in rel.items() if k.startswith("drive.dd!") and "deleted" in r["flags"]]
        assert [os.path.basename(r["location"]) for r in deleted] == ["gone.jpg"]
        disk_rows = [k for k in rel if k.startswith("drive.dd!")]
        expected["exact"] += 1
        expected["skipped"] += 1  # the image itself
        for k in disk_rows:
            if k != "drive.dd!/holiday.jpg":
                expected[cls[k]] += 1
        assert summary["acquisition_hashes"][0]["sha256"] == rel["drive.dd"]["sha256"]
    assert c == expected, (c, {k: v for k, v in cls.items()})
    assert summary["counts"]["locations"] == len(rows)
    assert summary["case"] == "CASE-1" and summary["operator"] == "tester"
    assert summary["exposure_spared"]["classified_without_viewing"] == c["exact"] + c["near"]
    vics = json.loads((out / "media.vics.json").read_text())
    assert "2.0" in vics["@odata.context"] and vics["value"][0]["Media"]
    # no picture in the report unless asked (--thumbnails: tests/test_cleardisk_scan.py)
    assert not (out / "thumbs").exists() and "<img" not in (out / "report.html").read_text()


def test_scan_resumes_after_a_kill(seized, settings, tmp_path):
    store, src, _ = seized
    full = run_scan(store, settings, [str(src)], str(tmp_path / "a"), workers=1, case="uninterrupted")
    partial = run_scan(store, settings, [str(src)], str(tmp_path / "b"), workers=1, case="killed", stop_after=7)
    assert partial["status"] == "interrupted"
    resumed = run_scan(store, settings, [str(src)], str(tmp_path / "b"), workers=2, case="killed")
    assert resumed["counts"] == full["counts"]
    a = [{k: v for k, v in r.items()} for r in read_files(tmp_path / "a")]
    b = [{k: v for k, v in r.items()} for r in read_files(tmp_path / "b")]
    assert a == b


def test_scan_cli_json(seized, tmp_path):
    from test_cli_hash import lines, vigie

    _, src, _ = seized
    r = vigie("scan", str(src / "photos"), "--out", str(tmp_path / "o"), "--json", "--data-dir",
              str(tmp_path / "fresh"))
    assert r.returncode == 0, r.stderr
    s = lines(r.stdout)[0]
    assert s["counts"]["by_class"]["unknown"] == 7 and s["counts"]["locations"] == 7
