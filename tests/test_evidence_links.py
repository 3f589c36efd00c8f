"""Links as a forensic tool treats them: recorded with their target, never followed out of the evidence.

The evidence folder holds an absolute link to a picture outside it, a link to a folder of
pictures outside it, a dangling link, a relative link to a picture inside it and a loop.
Nothing outside the evidence is hashed, counted or queued; every link is a `link` record.
"""

from __future__ import annotations

import hashlib
import os

from sqlalchemy import select

from vigie.demo import encode, photo_like
from vigie.ingest.containers import iter_items
from vigie.ingest.reopen import read_location
from vigie.ingest.scan import run_scan, scan_key
from vigie.settings import Settings
from vigie.store.models import Scan, ScanFile


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 64, 48), "JPEG")


def build(tmp_path):
    outside = tmp_path / "outside"
    (outside / "album").mkdir(parents=True)
    secret = jpeg(1)
    (outside / "secret.jpg").write_bytes(secret)
    (outside / "album" / "o1.jpg").write_bytes(jpeg(2))
    (outside / "album" / "o2.jpg").write_bytes(jpeg(3))
    ev = tmp_path / "ev"
    ev.mkdir()
    inside = jpeg(4)
    (ev / "in.jpg").write_bytes(inside)
    os.symlink(outside / "secret.jpg", ev / "abs-out")
    os.symlink(outside / "album", ev / "dir-out")
    os.symlink("../outside/secret.jpg", ev / "rel-out")
    os.symlink("/no/such/file.jpg", ev / "dangling")
    os.symlink("in.jpg", ev / "rel-in")
    os.symlink("loop", ev / "loop")
    return ev, outside, inside


def test_links_are_records_never_followed(tmp_path):
    ev, outside, inside = build(tmp_path)
    items = {i.location: i for i in iter_items([str(ev)], Settings())}
    assert sorted(items) == sorted(f"{ev}/{n}" for n in ("abs-out", "dangling", "dir-out", "in.jpg", "loop",
                                                           "rel-in", "rel-out"))
    links = {os.path.basename(k): i for k, i in items.items() if not k.endswith("in.jpg")}
    assert all(i.error.code == "link" and i.path is None and i.data is None for i in links.values())
    assert links["abs-out"].meta == {"link_target": str(outside / "secret.jpg"), "link_outside_evidence": True}
    assert links["dir-out"].meta == {"link_target": str(outside / "album"), "link_outside_evidence": True}
    assert links["rel-out"].meta["link_outside_evidence"] is True
    assert links["dangling"].meta == {"link_target": "/no/such/file.jpg", "link_dangling": True}
    assert links["loop"].meta["link_dangling"] is True
    assert links["rel-in"].meta == {"link_target": "in.jpg"}  # inside: listed where it really is
    assert read_location(f"{ev}/abs-out", Settings()) is None  # review never reads through a link either
    # a link named as the source itself is what the user asked for: followed
    assert [i.location for i in iter_items([str(ev / "rel-in")], Settings())] == [f"{ev}/rel-in"]
    assert next(iter_items([str(ev / "rel-in")], Settings())).path == str(ev / "rel-in")


def test_scan_counts_nothing_from_outside(store, tmp_path):
    ev, outside, inside = build(tmp_path)
    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = {os.path.basename(r.location): r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id))}
    assert set(rows) == {"abs-out", "dangling", "dir-out", "in.jpg", "loop", "rel-in", "rel-out"}
    outside_sha = {hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.jpg")}
    assert not outside_sha & {r.sha256 for r in rows.values()}
    for name, r in rows.items():
        if name == "in.jpg":
            assert r.klass == "unknown" and r.sha256 == hashlib.sha256(inside).hexdigest()
            continue
        assert (r.klass, r.error_code, r.sha256) == ("skipped", "link", None), name
        assert "link" in r.flags and r.detail["source"]["link_target"]
    assert "link_dangling" in rows["dangling"].flags and "link_outside_evidence" in rows["abs-out"].flags
    c = summary["counts"]
    assert c["by_class"]["unknown"] == 1 and c["by_class"]["error"] == 0 and c["by_media_type"] == {"image/jpeg": 1,
                                                                                                    "unknown": 6}
