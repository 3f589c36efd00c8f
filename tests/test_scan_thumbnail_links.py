"""Desktop thumbnails (the freedesktop.org Thumbnail Managing Standard: ``~/.cache/thumbnails/normal/<md5 of
URI>.png`` on Linux) name the file they were made of in ``Thumb::URI``. A scan links each to its original, so a
thumbnail of known material says where that file was on the device, even once the file is deleted."""

from __future__ import annotations

import csv
import hashlib
import io
import json

from PIL import PngImagePlugin

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.demo import photo_like
from vigie.ingest.scan import run_scan
from vigie.media.provenance import read_provenance


def thumbnail(seed: int, uri: str, mtime: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Thumb::URI", uri)
    info.add_text("Thumb::MTime", str(mtime))
    info.add_text("Software", "GNOME::ThumbnailFactory")
    buf = io.BytesIO()
    photo_like(seed, 128, 96).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def scan_links(store, root, out, known: bytes) -> tuple[dict, dict[str, dict]]:
    """Scan `root` with `known` planted in a bank (by MD5): the summary and `thumbnail_links.csv` by original."""
    banks.create_bank(store, "known", default_verdict=None)
    banks.import_entries(store, "known", enumerate([EntryData("md5", hashlib.md5(known).hexdigest())], 1))
    summary = run_scan(store, store.settings, [str(root)], str(out), workers=1)
    with open(out / "thumbnail_links.csv", newline="") as f:
        return summary, {r["original_uri"]: r for r in csv.DictReader(f)}


def test_provenance_reads_the_original_of_a_desktop_thumbnail():
    got = read_provenance(thumbnail(1, "file:///home/u/Pictures/IMG_0001.jpg", 1700000000), "image/png")
    assert got.thumbnail_of == {"uri": "file:///home/u/Pictures/IMG_0001.jpg", "mtime": 1700000000,
                                "software": "GNOME::ThumbnailFactory"}
    plain = io.BytesIO()
    photo_like(2, 64, 48).save(plain, "PNG")
    assert read_provenance(plain.getvalue(), "image/png").thumbnail_of is None


def test_a_scan_links_thumbnails_to_their_originals_and_says_which_show_known_material(store, tmp_path):
    settings = store.settings
    folder = tmp_path / "home" / "u" / ".cache" / "thumbnails" / "normal"
    folder.mkdir(parents=True)
    known_uri, other_uri = "file:///home/u/Pictures/gone.jpg", "file:///media/usb/holiday%20photo.jpg"
    known = thumbnail(3, known_uri, 1690000000)
    other = thumbnail(4, other_uri, 1691000000)
    for uri, data in ((known_uri, known), (other_uri, other)):
        (folder / f"{hashlib.md5(uri.encode()).hexdigest()}.png").write_bytes(data)
    out = tmp_path / "out"
    summary, rows = scan_links(store, tmp_path / "home", out, known)
    assert summary["thumbnail_links"] == {"count": 2, "known": 1}
    assert rows[known_uri]["class"] == "exact" and rows[known_uri]["bank"] == "known"
    assert rows[known_uri]["original_mtime"] == "1690000000"
    assert rows[known_uri]["location"].endswith(f"{hashlib.md5(known_uri.encode()).hexdigest()}.png")
    assert rows[other_uri]["class"] == "unknown" and rows[other_uri]["bank"] == ""
    with open(out / "files.csv", newline="") as f:
        flagged = [r for r in csv.DictReader(f) if "thumbnail_of" in r["flags"].split(";")]
    assert len(flagged) == 2
    assert json.loads((out / "summary.json").read_text())["counts"]["flags"]["thumbnail_of"] == 2
    page = (out / "report.html").read_text()  # the known one, as text: where known material was
    assert "Thumbnails of known material: 1" in page and known_uri in page and other_uri not in page
    assert "<img" not in page
    # a scan with none writes no such file
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_bytes(b"not a picture")
    assert run_scan(store, settings, [str(empty)], str(tmp_path / "out2"), workers=1)["thumbnail_links"] == \
        {"count": 0, "known": 0}
    assert not (tmp_path / "out2" / "thumbnail_links.csv").exists()
