"""Media at rest: AES-GCM with a key outside the database, audited views, purge after the decision.

Every picture is generated (vigie.demo); runs on SQLite and PostgreSQL where the store is used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from vigie import audit
from vigie.demo import encode, photo_like
from vigie.review import decisions, media, queue, showable
from vigie.review.clock import FixedClock
from vigie.store.review_models import MediaBlob, ReviewCluster, ReviewDecision, ReviewItem

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def key(monkeypatch):
    k = new_key()
    monkeypatch.setenv("VIGIE_MEDIA_KEY", k)
    return k


def jpeg(seed, w=320, h=240):
    return encode(photo_like(seed, w, h), "JPEG")


def test_no_key_refuses_to_keep_media(store, monkeypatch):
    monkeypatch.delenv("VIGIE_MEDIA_KEY", raising=False)
    with pytest.raises(media.MediaKeyError) as e:
        queue.enqueue_upload(store, store.settings, jpeg(1), "ana")
    assert e.value.code == "no_media_key"
    with store.sessions() as s:
        assert s.scalar(select(ReviewItem)) is None
    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(media.MediaKeyError):
        media.media_key(store.settings)


def test_encrypted_on_disk_and_audited_views(store, key, monkeypatch):
    data = jpeg(2, 400, 300)
    q = queue.enqueue_upload(store, store.settings, data, "ana")
    sha = q["sha256"]
    with store.sessions() as s:
        blobs = {b.kind: b for b in s.scalars(select(MediaBlob).where(MediaBlob.sha256 == sha))}
    orig = blobs["original"]
    path = store.settings.data_dir / orig.path
    assert orig.path == f"media/{sha[:2]}/{sha}.bin"
    ct = path.read_bytes()
    assert data not in ct and data[:32] not in ct and data[1000:1032] not in ct
    assert ct[:4] == media.FILE_MAGIC and len(ct) == 4 + 12 + len(data) + 16  # the nonce in the file, the tag
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert orig.key_id == media.key_id(base64.b64decode(key))
    # the key is nowhere in the database
    with store.engine.connect() as c:
        for table in ("media_blobs", "review_items", "audit_log"):
            dump = repr(c.execute(text(f"SELECT * FROM {table}")).all())
            assert key not in dump and base64.b64decode(key).hex() not in dump
    assert media.load_media(store, store.settings, sha, user="ana", kind="original") == data
    preview = media.load_media(store, store.settings, sha, user="ana")
    assert len(preview) < len(data) or preview != data
    views = [r for r in audit.iter_records(store) if r.action == "review.media_view"]
    assert [(r.actor, r.detail["kind"]) for r in views] == [("ana", "original"), ("ana", "preview")]
    # a wrong key does not open it
    monkeypatch.setenv("VIGIE_MEDIA_KEY", new_key())
    with pytest.raises(media.MediaKeyError) as e:
        media.load_media(store, store.settings, sha, user="ana", kind="original")
    assert e.value.code == "media_key_mismatch"
    monkeypatch.setenv("VIGIE_MEDIA_KEY", key)
    # a swapped file (the preview's ciphertext under the original's name) does not decrypt
    prev_path = store.settings.data_dir / blobs["preview"].path
    path.write_bytes(prev_path.read_bytes())
    with store.session() as s:
        row = s.get(MediaBlob, orig.id)
        row.nonce = blobs["preview"].nonce
    with pytest.raises(media.MediaKeyError):
        media.load_media(store, store.settings, sha, user="ana", kind="original")


def test_a_file_written_before_files_carried_their_nonce_still_opens(store, key):
    """Files written before the nonce went into the file hold only AES-GCM's output; their nonce is the row's."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = jpeg(5, 300, 200)
    q = queue.enqueue_upload(store, store.settings, data, "ana")
    sha = q["sha256"]
    k, _ = media.media_key(store.settings)
    nonce = os.urandom(12)
    with store.session() as s:
        row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha, MediaBlob.kind == "original"))
        row.nonce = nonce.hex()
        (store.settings.data_dir / row.path).write_bytes(AESGCM(k).encrypt(nonce, data, f"{sha}:original".encode()))
    assert media.load_media(store, store.settings, sha, user="ana", kind="original") == data


def test_the_same_picture_stored_at_once_by_two_writers_still_opens(store, key):
    """Two writers storing the same picture at once (two crawlers queueing it): whichever file and row win, the
    picture decrypts. With the nonce only in the row, the loser's file replaced the winner's for good."""
    from racing import at_once

    data = jpeg(6, 300, 200)
    sha = hashlib.sha256(data).hexdigest()
    media.store_media(store, store.settings, sha, data)
    for _ in range(10):
        # a lost race on the row is allowed (its exception is not asserted), a broken file is not
        at_once(lambda k: media.store_media(store, store.settings, sha, data), 2)
        with store.sessions() as s:
            row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha, MediaBlob.kind == "original"))
            assert media._decrypt(store.settings, row) == data
    leftovers = [p for p in (store.settings.data_dir / "media").rglob("*.tmp")]
    assert leftovers == []


def test_round_trip_without_store(tmp_path, key):
    from vigie.settings import Settings

    st = Settings(data_dir=tmp_path)
    k, kid = media.media_key(st)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sha = hashlib.sha256(b"x").hexdigest()
    ct = AESGCM(k).encrypt(nonce, b"benign bytes", f"{sha}:original".encode())
    assert AESGCM(k).decrypt(nonce, ct, f"{sha}:original".encode()) == b"benign bytes"
    assert len(kid) == 16 and kid != key[:16]


def test_purge_after_retention_leaves_hashes_and_decisions(store, key):
    st = store.settings
    q = queue.enqueue_media(store, st, jpeg(3), source="report")
    other = queue.enqueue_media(store, st, jpeg(4), source="report")
    clock = FixedClock(T0)
    decisions.decide(store, st, q["cluster"], "ana", "illegal_national", clock=clock)
    decisions.decide(store, st, q["cluster"], "bob", "illegal_national", clock=clock)
    with store.sessions() as s:
        files = [st.data_dir / b.path for b in s.scalars(select(MediaBlob).where(MediaBlob.sha256 == q["sha256"]))]
    assert len(files) == 2 and all(f.exists() for f in files)
    clock.advance(days=29)
    assert media.purge_decided(store, st, clock)["files"] == 0
    clock.advance(days=1, seconds=1)
    res = media.purge_decided(store, st, clock)
    assert res == {"files": 2, "decided_items": 1, "known_items": 0, "retention_days": 30}
    assert not any(f.exists() for f in files)
    with store.sessions() as s:
        assert all(b.purged_at is not None for b in s.scalars(select(MediaBlob).where(
            MediaBlob.sha256 == q["sha256"])))
        it = s.scalar(select(ReviewItem).where(ReviewItem.sha256 == q["sha256"]))
        assert it.md5 and it.sha1 and it.pdq and it.state == "decided"  # the hashes remain
        assert s.get(ReviewCluster, q["cluster"]).category == "illegal_national"
        assert len(list(s.scalars(select(ReviewDecision)))) == 2
    # Decided: no longer shown to anyone (vigie.review.showable), purged or not.
    with pytest.raises(showable.NotShowable) as e:
        media.load_media(store, st, q["sha256"], user="ana", kind="original")
    assert e.value.code == "not_showable"
    assert media.has_media(store, other["sha256"])  # not decided: kept
    assert any(r.action == "review.media_purge" for r in audit.iter_records(store))


def test_retention_setting(store, key):
    st = store.settings.model_copy(update={"media_retention_days": 0})
    q = queue.enqueue_media(store, st, jpeg(5), source="crawl")
    decisions.resolve(store, st, q["cluster"], "sup", "not_illegal", clock=FixedClock(T0))
    assert media.purge_decided(store, st, FixedClock(T0 + timedelta(seconds=1)))["files"] == 2


def test_video_is_shown_first_as_a_keyframe_strip(store, key, tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from vigie.review.media import view_item
    from vigie.review.wellbeing import ExposureTracker, WellbeingPolicy

    import factory

    stills = [np.asarray(photo_like(120 + i, 192, 144)) for i in range(3)]
    data = factory.video(tmp_path / "v.mp4", stills).read_bytes()
    q = queue.enqueue_media(store, store.settings, data, source="crawl")
    with store.sessions() as s:
        kinds = set(s.scalars(select(MediaBlob.kind).where(MediaBlob.sha256 == q["sha256"])))
        it = s.get(ReviewItem, q["item"])
    assert kinds == {"original", "strip"} and it.media_type.startswith("video/")
    assert it.detail["video"]["duration"] > 0
    clock, tr = FixedClock(T0), ExposureTracker(store)
    img_bytes, mt = view_item(store, store.settings, q["item"], "ana", clock=clock, tracker=tr)
    img = Image.open(io.BytesIO(img_bytes))
    assert mt == "image/jpeg" and img.mode == "L" and img.width > img.height  # a strip, greyscale
    assert img.height <= WellbeingPolicy().thumb_px
    assert tr.status("ana", clock)["exposed_today_s"] == 0
    for n in (1, 2, 3):  # the steps come in order: colour, sharp and full size of the strip, then the video
        view_item(store, store.settings, q["item"], "ana", steps=["colour", "sharp", "full"][:n], clock=clock,
                  tracker=tr)
    vid, mt = view_item(store, store.settings, q["item"], "ana", steps=["colour", "sharp", "full", "video"],
                        clock=clock, tracker=tr)
    assert vid == data and mt.startswith("video/")
    clock.advance(seconds=12)
    assert tr.stop_reveal("ana", clock) == 12.0


def test_the_same_picture_queued_at_once_by_two_crawlers_is_one_item_that_opens(store, key):
    """Two processes queueing the same unknown picture at once (two crawlers, two servers): neither fails, the
    picture is one item with its media, which decrypts, and both sources are on it."""
    from racing import at_once

    from vigie.store.review_models import ReviewItem

    st = store.settings
    for n in range(6):
        data = jpeg(20 + n, 300, 200)
        results = []

        def crawler(k, data=data, results=results):
            results.append(queue.enqueue_media(store, st, data, source="crawl", ref={"kind": "crawl", "crawler": k}))

        errors = at_once(crawler, 2)
        assert errors == []
        sha = hashlib.sha256(data).hexdigest()
        with store.sessions() as s:
            items = list(s.scalars(select(ReviewItem).where(ReviewItem.sha256 == sha)))
            assert len(items) == 1
            assert sorted(r.get("crawler") for r in items[0].source_refs) == [0, 1]
        assert media.load_media(store, st, sha, user="ana", kind="original") == data
