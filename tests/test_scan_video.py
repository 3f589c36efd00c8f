"""Videos in a scan: vPDQ against known videos, frames against known pictures, with where in the video."""

from __future__ import annotations

import csv

import numpy as np

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.hashing import hash_bytes
from vigie.ingest.scan import run_scan
from vigie.signals.vpdq import hash_video
from vigie.store import Store

import factory


def stills(seed: int, n: int) -> list[np.ndarray]:
    return [np.asarray(factory.picture(seed + i, 192, 144)) for i in range(n)]


def test_videos_match_known_videos_and_pictures(tmp_path, settings, media_key):
    store = Store.open(settings)
    src = tmp_path / "src"
    src.mkdir()
    known_video = factory.video(tmp_path / "known.mp4", stills(500, 5))
    # the same video re-encoded smaller and at a low bit rate: a near copy
    factory.video(src / "reencoded.mp4", stills(500, 5), size=(160, 120), bit_rate=80_000)
    # a video that shows a known picture between 2 s and 4 s
    pic = stills(600, 1)[0]
    factory.video(src / "contains-picture.mp4", stills(700, 2) + [pic, pic] + stills(710, 2))
    # an unknown video
    factory.video(src / "new.mp4", stills(800, 4))
    banks.create_bank(store, "videos")
    vh = hash_video(str(known_video))
    rec = hash_bytes(factory.save(__import__("PIL.Image", fromlist=["Image"]).fromarray(pic), "PNG"), settings)
    banks.import_entries(store, "videos", [(1, EntryData("vpdq", vh.value)), (2, EntryData("pdq", rec.pdq))])
    assert next(iter(banks.iter_entries(store, "videos"))).value == vh.value  # long value kept whole

    out = tmp_path / "out"
    summary = run_scan(store, settings, [str(src)], str(out), workers=1, thumbnails=True)
    with open(out / "files.csv", newline="") as f:
        rows = {r["location"].rsplit("/", 1)[-1]: r for r in csv.DictReader(f)}
    assert rows["reencoded.mp4"]["class"] == "near" and rows["reencoded.mp4"]["variant"] == "video/video"
    assert float(rows["reencoded.mp4"]["start"]) == 0.0 and float(rows["reencoded.mp4"]["end"]) >= 4.0
    hit = rows["contains-picture.mp4"]
    assert hit["class"] == "near" and hit["variant"] == "frame/original"
    assert 2.0 <= float(hit["start"]) <= float(hit["end"]) <= 4.0
    assert rows["new.mp4"]["class"] == "unknown"
    assert summary["counts"]["by_media_type"] == {"video/mp4": 3}
    kf = sorted(p.name for p in (out / "thumbs").iterdir())
    assert kf and all(n.startswith(rows["new.mp4"]["sha256"]) for n in kf)  # keyframes of unknown only
    assert all(n.endswith(".bin") for n in kf)  # sealed (vigie.report.thumbs)
