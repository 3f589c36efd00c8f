"""Review queue: from a real scan (known material never enters), clustering, priority, re-prioritising, uploads.

Every picture is generated (vigie.demo); runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from vigie import audit
from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.demo import encode, photo_like
from vigie.errors import Conflict, InvalidInput
from vigie.hashing import hash_bytes
from vigie.ingest.scan import run_scan
from vigie.review import queue
from vigie.review.clock import FixedClock
from vigie.store.review_models import MediaBlob, ReviewCluster, ReviewItem

pytestmark = pytest.mark.usefixtures("media_key")


def jpeg(seed, w=320, h=240, **kw):
    return encode(photo_like(seed, w, h), "JPEG", **kw)


def plant(store, settings, seeds, bank="known"):
    banks.create_bank(store, bank)
    rows = []
    for sd in seeds:
        rec = hash_bytes(jpeg(sd), settings)
        rows += [EntryData("md5", rec.md5), EntryData("pdq", rec.pdq)]
    banks.import_entries(store, bank, enumerate(rows, 1))


def scan(store, folder, out):
    run_scan(store, store.settings, [str(folder)], str(out), workers=1)
    with store.sessions() as s:
        from vigie.ingest.scan import scan_key
        from vigie.store.models import Scan

        return s.scalar(select(Scan.id).where(Scan.key == scan_key([str(folder)], None)))


def items(store):
    with store.sessions() as s:
        return {it.sha256: it for it in s.scalars(select(ReviewItem))}


def sha(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def scanned(store, tmp_path):
    """A scanned folder: 2 known pictures (one also resized), 3 unknown ones, one twice and one at two sizes."""
    settings = store.settings
    plant(store, settings, [10, 11])
    src = tmp_path / "evidence"
    src.mkdir()
    (src / "k0.jpg").write_bytes(jpeg(10))
    (src / "k1.jpg").write_bytes(jpeg(11))
    (src / "k1-small.jpg").write_bytes(encode(photo_like(11, 320, 240).resize((160, 120)), "JPEG", quality=70))
    (src / "u0.jpg").write_bytes(jpeg(20))
    (src / "u0-copy.jpg").write_bytes(jpeg(20))
    (src / "u1.png").write_bytes(encode(photo_like(21, 320, 240), "PNG"))
    (src / "u2.jpg").write_bytes(jpeg(22))
    (src / "u2-big.jpg").write_bytes(encode(photo_like(22, 320, 240).resize((640, 480)), "JPEG"))
    (src / "notes.txt").write_bytes(b"not a picture")
    scan_id = scan(store, src, tmp_path / "out")
    return scan_id, src


def test_enqueue_scan_takes_unknown_only_and_clusters(store, scanned, tmp_path):
    scan_id, src = scanned
    rep = queue.enqueue_scan(store, store.settings, scan_id)
    assert rep["items_added"] == 4 and rep["known_now"] == 0
    assert rep["clusters_new"] == 3 and rep["media_stored"] == 4
    got = items(store)
    known = {sha(jpeg(10)), sha(jpeg(11))}
    assert not known & set(got)  # known material never enters the queue
    u0 = got[sha(jpeg(20))]
    assert sorted(os.path.basename(x) for x in u0.source_refs[0]["locations"]) == ["u0-copy.jpg", "u0.jpg"]
    u2, u2big = got[sha(jpeg(22))], got[sha((src / "u2-big.jpg").read_bytes())]
    assert u2.cluster_id == u2big.cluster_id != u0.cluster_id  # the resized copy is in the same cluster
    assert (u2.width, u2.height, u2big.width) == (320, 240, 640)
    with store.sessions() as s:
        blobs = list(s.scalars(select(MediaBlob)))
        assert {b.kind for b in blobs} == {"original", "preview"}
        sizes = {c.id: c.size for c in s.scalars(select(ReviewCluster))}
    assert sizes[u2.cluster_id] == 2
    for b in blobs:  # encrypted at rest, under data_dir/media/<sha[:2]>/
        p = store.settings.data_dir / b.path
        assert p.parent.name == b.sha256[:2] and b"JFIF" not in p.read_bytes()[:64]
    # the same scan again adds nothing
    again = queue.enqueue_scan(store, store.settings, scan_id)
    assert again["items_added"] == 0 and again["items_existing"] == 4
    assert len(items(store)) == 4
    assert any(r.action == "review.enqueue" for r in audit.iter_records(store))


def test_new_copy_joins_an_open_cluster_and_new_knowledge_is_rechecked(store, scanned, tmp_path):
    scan_id, _ = scanned
    queue.enqueue_scan(store, store.settings, scan_id)
    u1_cluster = items(store)[sha(encode(photo_like(21, 320, 240), "PNG"))].cluster_id
    # a later scan: a resized copy of u1 (joins its open cluster), and u0 which a bank learnt meanwhile
    plant(store, store.settings, [20], bank="partner")
    src2 = tmp_path / "second"
    src2.mkdir()
    (src2 / "u1-small.jpg").write_bytes(encode(photo_like(21, 320, 240).resize((200, 150)), "JPEG", quality=75))
    (src2 / "u5.jpg").write_bytes(jpeg(25))
    rep = queue.enqueue_scan(store, store.settings, scan(store, src2, tmp_path / "out2"))
    assert rep["items_added"] == 2 and rep["clusters_joined"] == 1 and rep["clusters_new"] == 1
    small = items(store)[sha((src2 / "u1-small.jpg").read_bytes())]
    assert small.cluster_id == u1_cluster
    # u0 is queued from the first scan; the bank learnt it: the import's re-match took it out, media purged
    # (vigie.rematch), so an explicit pass finds nothing left to do
    assert queue.drop_known(store, store.settings) == 0
    u0 = items(store)[sha(jpeg(20))]
    assert u0.state == "known"
    with store.sessions() as s:
        assert s.get(ReviewCluster, u0.cluster_id).state == "known"
        assert all(b.purged_at is not None for b in s.scalars(select(MediaBlob).where(MediaBlob.sha256 == u0.sha256)))
    assert u0.cluster_id not in {c["id"] for c in queue.list_queue(store)}


def test_priority_order_and_supervisor_override(store, scanned):
    scan_id, _ = scanned
    queue.enqueue_scan(store, store.settings, scan_id)
    s_ = store.settings
    police = queue.enqueue_media(store, s_, jpeg(40), source="police", ref={"request": "REQ-1"})
    report = queue.enqueue_media(store, s_, jpeg(41), source="report", ref={"report": 7})
    crawl = queue.enqueue_media(store, s_, jpeg(42), source="crawl", ref={"url": "https://example.org/x"})
    upload = queue.enqueue_upload(store, s_, jpeg(43), "ana", "seen in a report follow-up")
    got = items(store)
    u0c, u1c = got[sha(jpeg(20))].cluster_id, got[sha(encode(photo_like(21, 320, 240), "PNG"))].cluster_id
    u2c = got[sha(jpeg(22))].cluster_id
    with store.session() as s:  # u1 waited two days longer; u0 is likely AI-generated
        s.get(ReviewCluster, u1c).created_at -= timedelta(days=2)
        s.get(ReviewCluster, u0c).ai_likely = True
    order = [c["id"] for c in queue.list_queue(store)]
    # police > report > upload > crawl > scan; among scans: older first, then larger, AI-likely last
    assert order == [police["cluster"], report["cluster"], upload["cluster"], crawl["cluster"], u1c, u2c, u0c]
    assert [c["source"] for c in queue.list_queue(store)][:4] == ["police", "report", "upload", "crawl"]
    queue.reprioritise(store, u0c, 10, "sup")
    queue.reprioritise(store, police["cluster"], -1, "sup")
    order = [c["id"] for c in queue.list_queue(store)]
    assert order[0] == u0c and order[-1] == police["cluster"]
    queue.reprioritise(store, u0c, None, "sup")
    assert [c["id"] for c in queue.list_queue(store)][-2] == u0c
    assert any(r.action == "review.reprioritise" and r.actor == "sup" for r in audit.iter_records(store))
    # next_cluster: the most urgent one, as text and hashes only
    view = queue.next_cluster(store, "ana", FixedClock())
    assert view["id"] == report["cluster"]  # police was pushed to the end
    item = view["items"][0]
    assert item["hashes"]["sha256"] == sha(jpeg(41)) and "Picture (JPEG)" in item["description"]
    assert "decisions" not in view  # analysts review blind
    assert set(item["media"]) == {"original", "preview"}


def test_upload_of_known_material_is_refused(store):
    s_ = store.settings
    plant(store, s_, [50])
    with pytest.raises(Conflict) as e:
        queue.enqueue_upload(store, s_, jpeg(50), "ana")
    assert e.value.code == "known_material"
    # a re-encoded, resized copy is near: refused as well
    near = encode(photo_like(50, 320, 240).resize((240, 180)), "JPEG", quality=70)
    with pytest.raises(Conflict):
        queue.enqueue_upload(store, s_, near, "ana")
    assert items(store) == {}
    with pytest.raises(InvalidInput) as e:
        queue.enqueue_upload(store, s_, b"hello", "ana")
    assert e.value.code == "not_media"
    ok = queue.enqueue_upload(store, s_, jpeg(51), "ana", "from a report")
    it = items(store)[sha(jpeg(51))]
    assert it.source == "upload" and it.source_refs[0]["by"] == "ana" and ok["items_added"] == 1
    assert [r.action for r in audit.iter_records(store)].count("review.refused_known") == 2


def test_cluster_view_is_text_only(store, scanned):
    scan_id, _ = scanned
    queue.enqueue_scan(store, store.settings, scan_id)
    cid = items(store)[sha(jpeg(22))].cluster_id
    v = queue.cluster_view(store, cid, user="ana")
    assert v["size"] == 2 and len(v["items"]) == 2
    assert all(isinstance(x["description"], str) and x["hashes"]["pdq"] for x in v["items"])
    assert "found at 1 location(s) via scan" in v["items"][0]["description"]
    blob = repr(v)
    assert "JFIF" not in blob and "\\xff\\xd8" not in blob
    sup = queue.cluster_view(store, cid, supervisor=True)
    assert sup["decisions"] == []


def test_altered_copies_join_their_originals_cluster_and_say_by_which_variant(store):
    """A mirrored and a framed copy of a queued picture are reviewed with it, not as new material."""
    from PIL import ImageOps

    settings = store.settings
    img = photo_like(71, 400, 300)
    first = queue.enqueue_media(store, settings, encode(img, "JPEG", quality=90), source="report")
    mirrored = queue.enqueue_media(store, settings, encode(ImageOps.mirror(img), "JPEG", quality=90),
                                   source="crawl")
    framed = queue.enqueue_media(store, settings, encode(ImageOps.expand(img, 60, fill=(250, 250, 250)), "JPEG",
                                                         quality=90), source="crawl")
    other = queue.enqueue_media(store, settings, jpeg(72, 400, 300), source="crawl")
    assert mirrored["cluster"] == framed["cluster"] == first["cluster"] != other["cluster"]
    view = queue.cluster_view(store, first["cluster"])
    near = {it["id"]: it["near"] for it in view["items"]}
    assert near[first["item"]] is None
    assert near[mirrored["item"]]["item"] == first["item"] and near[mirrored["item"]]["variant"] in (
        "flipy", "flipx", "rot180")
    assert near[framed["item"]]["variant"].startswith("unbordered")


def test_enqueue_scan_in_small_batches_gives_the_same_queue_and_a_stopped_run_is_completed(store, scanned):
    """A scan's contents are queued a batch at a time, each batch a transaction of its own (a seized drive's tens
    of millions of unknown pictures are never held at once): with one content per batch the queue is the one a
    single batch gives (the resized copy still joins its original's cluster, queued in another batch), and a
    run stopped half-way (here: the evidence unreadable at the third content) keeps what it committed and is
    completed by running it again, nothing queued twice."""
    from vigie.ingest.reopen import read_location

    scan_id, src = scanned
    calls = []

    def failing_third(loc):
        calls.append(loc)
        if len(calls) >= 3:  # one read per content (its first location reads back)
            raise OSError("the evidence drive went away")
        return read_location(loc, store.settings)

    with pytest.raises(OSError, match="went away"):
        queue.enqueue_scan(store, store.settings, scan_id, batch=1, media_reader=failing_third)
    first = items(store)
    assert len(first) == 2  # two batches committed before the failure, each whole
    assert all(it.state == "queued" for it in first.values())
    rep = queue.enqueue_scan(store, store.settings, scan_id, batch=1)
    assert rep["unknown_rows"] == 5 and rep["items_existing"] == 2 and rep["items_added"] == 2
    got = items(store)
    assert len(got) == 4 and set(first) <= set(got)
    u0 = got[sha(jpeg(20))]
    assert sorted(os.path.basename(x) for x in u0.source_refs[0]["locations"]) == ["u0-copy.jpg", "u0.jpg"]
    u2, u2big = got[sha(jpeg(22))], got[sha((src / "u2-big.jpg").read_bytes())]
    assert u2.cluster_id == u2big.cluster_id != u0.cluster_id
    with store.sessions() as s:
        assert len(list(s.scalars(select(ReviewCluster)))) == 3
    enqueues = [r for r in audit.iter_records(store) if r.action == "review.enqueue"]
    assert len(enqueues) == 4  # one per batch that queued something
    again = queue.enqueue_scan(store, store.settings, scan_id, batch=3)
    assert again["items_added"] == 0 and again["items_existing"] == 4 and again["unknown_rows"] == 5
