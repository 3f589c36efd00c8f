"""Decisions: consensus of N distinct analysts, disputes resolved by a supervisor, confirmed hashes in a bank.

Every picture is generated (vigie.demo); runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from vigie import audit
from vigie.banks import service as banks
from vigie.demo import encode, photo_like
from vigie.errors import Conflict, NotFound, UsageError
from vigie.ingest.scan import run_scan, scan_key
from vigie.review import decisions, queue
from vigie.review.clock import FixedClock
from vigie.settings import Settings
from vigie.store.models import Scan, ScanFile
from vigie.store.review_models import ReviewCluster, ReviewItem

pytestmark = pytest.mark.usefixtures("media_key")


def jpeg(seed, w=320, h=240, **kw):
    return encode(photo_like(seed, w, h), "JPEG", **kw)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def scan(store, folder, out):
    run_scan(store, store.settings, [str(folder)], str(out), workers=1)
    with store.sessions() as s:
        sid = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(folder)], None)))
        return sid, {r.location: r.klass for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == sid))}


def cluster_of(store, data):
    with store.sessions() as s:
        return s.scalar(select(ReviewItem.cluster_id).where(ReviewItem.sha256 == sha(data)))


def state(store, cid):
    with store.sessions() as s:
        return s.get(ReviewCluster, cid)


def test_consensus_of_two_banks_the_hashes_and_the_picture_never_comes_back(store, tmp_path):
    st = store.settings
    banks.create_bank(store, "hotline", review_target=True)
    src = tmp_path / "a"
    src.mkdir()
    pic = jpeg(60)
    (src / "p.jpg").write_bytes(pic)
    (src / "p-big.jpg").write_bytes(encode(photo_like(60, 320, 240).resize((480, 360)), "JPEG"))
    (src / "other.jpg").write_bytes(jpeg(61))
    sid, _ = scan(store, src, tmp_path / "out")
    queue.enqueue_scan(store, st, sid)
    cid = cluster_of(store, pic)
    clock = FixedClock()
    r = decisions.decide(store, st, cid, "ana", "illegal_national", "clear case", bank="hotline", clock=clock)
    assert r["state"] == "pending_consensus" and r["votes"] == {"illegal_national": 1} and r["needed"] == 2
    # the same analyst again never counts twice (the later decision replaces the earlier one)
    r = decisions.decide(store, st, cid, "ana", "illegal_national", clock=clock)
    assert r["state"] == "pending_consensus" and r["votes"] == {"illegal_national": 1}
    # ana no longer gets this cluster; bob does
    assert queue.next_cluster(store, "ana", clock)["id"] != cid
    assert queue.next_cluster(store, "bob", clock)["id"] == cid
    clock.advance(minutes=3)
    r = decisions.decide(store, st, cid, "bob", "illegal_national", clock=clock)
    assert r["state"] == "decided" and r["category"] == "illegal_national" and r["bank"] == "hotline"
    assert r["banked"]["items"] == 2 and r["banked"]["with_media"] == 2
    c = state(store, cid)
    assert c.decided_by == ["ana", "bob"] and c.banked_at is not None
    assert c.verdict == {"legality": "national"}
    # every hash of both pictures is in the bank, with the verdict and the deciders
    with store.sessions() as s:
        its = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cid)))
    assert {it.state for it in its} == {"decided"}
    entries = list(banks.iter_entries(store, "hotline"))
    for it in its:
        for sig in ("md5", "sha1", "sha256", "pdq"):
            e = next(e for e in entries if e.signal == sig and e.value == getattr(it, sig))
            assert e.verdict.legality == "national" and e.added_by == "ana,bob" and "review" in e.tags
    with pytest.raises(Conflict) as e:
        decisions.decide(store, st, cid, "carl", "not_illegal", clock=clock)
    assert e.value.code == "cluster_decided"
    # a new scan of the same picture, and of a resized copy: known, so nothing enters the queue
    src2 = tmp_path / "b"
    src2.mkdir()
    (src2 / "again.jpg").write_bytes(pic)
    (src2 / "again-small.jpg").write_bytes(encode(photo_like(60, 320, 240).resize((200, 150)), "JPEG", quality=70))
    sid2, klass = scan(store, src2, tmp_path / "out2")
    assert sorted(klass.values()) == ["exact", "near"]
    rep = queue.enqueue_scan(store, st, sid2)
    assert rep["items_added"] == 0 and rep["unknown_rows"] == 0
    actions = [r.action for r in audit.iter_records(store)]
    for a in ("review.decision", "review.confirmed", "review.banked", "review.assign", "review.view"):
        assert a in actions
    assert audit.verify(store).ok


def test_disagreement_goes_to_a_supervisor(store):
    st = store.settings
    q = queue.enqueue_media(store, st, jpeg(70), source="report", ref={"report": 1})
    cid = q["cluster"]
    decisions.decide(store, st, cid, "ana", "illegal_national")
    r = decisions.decide(store, st, cid, "bob", "not_illegal")
    assert r["state"] == "disputed" and r["votes"] == {"illegal_national": 1, "not_illegal": 1}
    assert queue.next_cluster(store, "carl", FixedClock()) is None  # analysts no longer get it
    with pytest.raises(Conflict) as e:
        decisions.decide(store, st, cid, "carl", "not_illegal")
    assert e.value.code == "cluster_disputed"
    assert [d["cluster"] for d in decisions.disputed(store)] == [cid]
    with pytest.raises(UsageError):
        decisions.resolve(store, st, cid, "sup", "second_opinion")
    with pytest.raises(NotFound):
        decisions.resolve(store, st, cid, "sup", "not_illegal", bank="no-such-bank")
    r = decisions.resolve(store, st, cid, "sup", "not_illegal", "a holiday picture", clock=FixedClock())
    assert r["state"] == "decided" and r["was"] == "disputed" and r["bank"] == "review-confirmed"
    e = next(e for e in banks.iter_entries(store, "review-confirmed") if e.signal == "sha256")
    assert e.value == sha(jpeg(70)) and e.verdict.legality == "not_illegal" and e.added_by == "sup"
    sup = queue.cluster_view(store, cid, supervisor=True)
    assert [(d["user"], d["role"]) for d in sup["decisions"]] == [("ana", "analyst"), ("bob", "analyst"),
                                                                  ("sup", "supervisor")]
    with pytest.raises(Conflict):
        queue.enqueue_upload(store, st, jpeg(70), "ana")  # decided and banked: known from now on


def test_consensus_of_three_and_second_opinions(store):
    st = store.settings.model_copy(update={"review_consensus": 3})
    cid = queue.enqueue_media(store, st, jpeg(80), source="crawl")["cluster"]
    for user in ("a", "b"):
        assert decisions.decide(store, st, cid, user, "illegal_baseline")["state"] == "pending_consensus"
    r = decisions.decide(store, st, cid, "c", "illegal_baseline")
    assert r["state"] == "decided" and r["needed"] == 3
    assert {e.verdict.legality for e in banks.iter_entries(store, "review-confirmed")} == {"baseline"}
    # as many second-opinion requests as the consensus needs: to a supervisor
    cid2 = queue.enqueue_media(store, st, jpeg(81), source="crawl")["cluster"]
    decisions.decide(store, st, cid2, "a", "second_opinion", "cannot tell the age")
    decisions.decide(store, st, cid2, "b", "second_opinion")
    assert decisions.decide(store, st, cid2, "c", "second_opinion")["state"] == "disputed"
    with pytest.raises(UsageError) as e:
        decisions.decide(store, st, cid2, "d", "maybe")
    assert e.value.code == "bad_category"


def test_categories_are_configurable():
    class S(Settings):
        review_categories: dict = {"uk_a": {"label": "UK category A", "verdict": "uk:A"},
                                   "ai_illegal": {"verdict": {"legality": "national", "synthetic": "ai_generated"}},
                                   "unsure": {"verdict": None}}

    cats = decisions.categories(S())
    assert cats["uk_a"].verdict.severity == "penetrative" and cats["uk_a"].verdict.is_illegal
    assert cats["ai_illegal"].verdict.synthetic == "ai_generated"
    assert not cats["unsure"].classifies
    default = decisions.categories(Settings())
    assert set(default) == {"illegal_baseline", "illegal_national", "not_illegal", "ai_generated",
                            "second_opinion"}
    assert default["ai_generated"].verdict.synthetic == "ai_generated"
