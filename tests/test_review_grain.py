"""Decisions at the grain of the work: labels and annotations per item, splitting an item out, bulk decisions.

Every picture is generated (vigie.demo); runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vigie.banks import service as banks
from vigie.demo import encode, photo_like
from vigie.errors import Conflict, UsageError
from vigie.review import decisions, grain, queue
from vigie.store.review_models import ReviewCluster, ReviewItem

pytestmark = pytest.mark.usefixtures("media_key")


def near_copies(store, seed, source="report", n=3):
    """A cluster of n near copies of one generated picture; returns (cluster id, item ids)."""
    base = photo_like(seed, 320, 240)
    sizes = [(320, 240), (480, 360), (400, 300), (360, 270)][:n]
    cids = {queue.enqueue_media(store, store.settings, encode(base.resize(wh), "JPEG"), source=source,
                                ref={"report": seed})["cluster"] for wh in sizes}
    with store.sessions() as s:
        cid = s.scalar(select(ReviewItem.cluster_id).where(ReviewItem.id == max(
            s.scalars(select(ReviewItem.id)))))
        ids = list(s.scalars(select(ReviewItem.id).where(ReviewItem.cluster_id == cid).order_by(ReviewItem.id)))
    assert len(ids) == n, (cids, ids)
    return cid, ids


def entries_by_item(store, bank, ids):
    with store.sessions() as s:
        its = {it.id: it for it in s.scalars(select(ReviewItem).where(ReviewItem.id.in_(ids)))}
    by_sha = {e.value: e for e in banks.iter_entries(store, bank) if e.signal == "sha256"}
    return {i: by_sha[its[i].sha256] for i in ids}


def test_labels_per_item_reach_consensus_item_by_item_and_bank_each_items_verdict(store):
    st = store.settings
    cid, (a, b, c) = near_copies(store, 500)
    r = decisions.decide(store, st, cid, "ana", "illegal_national", item_categories={c: "not_illegal"},
                         item_annotations={a: ["viral", "self_production"]})
    assert r["state"] == "pending_consensus" and r["items"][c] == {"not_illegal": 1}
    # bob agrees on every item, though his default is another category: per item, they agree
    r = decisions.decide(store, st, cid, "bob", "not_illegal",
                         item_categories={a: "illegal_national", b: "illegal_national"})
    assert r["state"] == "decided" and r["category"] == "illegal_national"
    with store.sessions() as s:
        cl = s.get(ReviewCluster, cid)
        assert cl.decided_by == ["ana", "bob"] and cl.verdict == {"legality": "national"}
        own = {it.id: it.decision for it in s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cid))}
    assert own[b] is None  # the cluster's category, unchanged
    assert own[c]["category"] == "not_illegal" and own[a]["annotations"] == ["self_production", "viral"]
    e = entries_by_item(store, "review-confirmed", [a, b, c])
    assert e[a].verdict.legality == "national" and set(e[a].verdict.flags) == {"self_production", "viral"}
    assert e[b].verdict.legality == "national" and e[b].verdict.flags == ()
    assert e[c].verdict.legality == "not_illegal" and "review:not_illegal" in e[c].tags


def test_two_analysts_disagreeing_on_one_item_dispute_the_cluster(store):
    st = store.settings
    cid, (a, b, c) = near_copies(store, 510)
    decisions.decide(store, st, cid, "ana", "illegal_national")
    r = decisions.decide(store, st, cid, "bob", "illegal_national", item_categories={b: "not_illegal"})
    assert r["state"] == "disputed" and r["items"][b] == {"illegal_national": 1, "not_illegal": 1}
    assert r["votes"] == {"illegal_national": 2}
    # the supervisor settles it, with a label for the item at issue
    r = decisions.resolve(store, st, cid, "sup", "illegal_national", item_categories={b: "not_illegal"})
    e = entries_by_item(store, "review-confirmed", [a, b, c])
    assert r["state"] == "decided" and e[b].verdict.legality == "not_illegal"
    assert e[a].verdict.legality == e[c].verdict.legality == "national"


def test_labels_per_item_are_checked(store):
    st = store.settings
    cid, (a, _) = near_copies(store, 520, n=2)
    other = queue.enqueue_media(store, st, encode(photo_like(521, 320, 240), "JPEG"), source="report")["item"]
    for kw, code in (({"item_categories": {other: "not_illegal"}}, "item_not_in_cluster"),
                     ({"item_categories": {a: "second_opinion"}}, "bad_category"),
                     ({"item_annotations": {a: ["nude"]}}, "bad_annotation")):
        with pytest.raises(UsageError) as e:
            decisions.decide(store, st, cid, "ana", "illegal_national", **kw)
        assert e.value.code == code
    assert decisions.decisions_of(store, cid) == []  # nothing written by a refused decision


def test_split_item_makes_a_new_open_cluster_and_old_votes_stay(store):
    st = store.settings
    cid, (a, b, c) = near_copies(store, 530)
    decisions.decide(store, st, cid, "ana", "illegal_national", item_categories={c: "not_illegal"})
    out = grain.split_item(store, st, c, "ana")
    assert out["from"] == cid and out["cluster"] != cid
    with store.sessions() as s:
        new, old = s.get(ReviewCluster, out["cluster"]), s.get(ReviewCluster, cid)
        assert (new.state, new.size, old.size, old.state) == ("open", 1, 2, "pending_consensus")
    assert queue.cluster_view(store, out["cluster"])["decisions_so_far"] == 0
    with pytest.raises(UsageError) as e:
        grain.split_item(store, st, c, "bob")  # alone in its new cluster
    assert e.value.code == "split_single"
    # ana's vote stays with the old cluster: bob's agreeing vote confirms it for the items left
    r = decisions.decide(store, st, cid, "bob", "illegal_national")
    assert r["state"] == "decided" and set(r["items"]) == {a, b}
    with store.sessions() as s:
        split = s.get(ReviewItem, c)
    assert split.sha256 not in {e.value for e in banks.iter_entries(store, "review-confirmed")}
    # the split item is a near copy of what was just banked: the re-match takes it out of the queue as known
    assert split.state == "known"
    with pytest.raises(Conflict) as e:
        grain.split_item(store, st, a, "bob")
    assert e.value.code == "item_not_waiting"


def test_split_is_refused_on_a_decided_cluster(store):
    st = store.settings
    cid, (a, b) = near_copies(store, 540, n=2)
    with store.session() as s:  # a decided cluster whose item is, by accident, still marked waiting
        s.get(ReviewCluster, cid).state = "decided"
    with pytest.raises(Conflict) as e:
        grain.split_item(store, st, a, "ana")
    assert e.value.code == "cluster_decided"


def test_bulk_decision_answers_per_cluster_and_refuses_mixed_sources(store):
    st = store.settings
    c1 = queue.enqueue_media(store, st, encode(photo_like(550, 320, 240), "JPEG"), source="crawl")["cluster"]
    c2 = queue.enqueue_media(store, st, encode(photo_like(551, 320, 240), "JPEG"), source="crawl")["cluster"]
    c3 = queue.enqueue_media(store, st, encode(photo_like(552, 320, 240), "JPEG"), source="crawl")["cluster"]
    police = queue.enqueue_media(store, st, encode(photo_like(553, 320, 240), "JPEG"), source="police")["cluster"]
    with pytest.raises(UsageError) as e:
        grain.decide_many(store, st, [c1, police], "ana", "not_illegal")
    assert e.value.code == "mixed_sources"
    assert decisions.decisions_of(store, c1) == []
    decisions.decide(store, st, c3, "bob", "illegal_national")
    decisions.decide(store, st, c3, "carl", "illegal_national")  # decided before the bulk decision
    out = grain.decide_many(store, st, [c1, c2, c3], "ana", "not_illegal")
    assert [(r["cluster"], r["ok"]) for r in out["results"]] == [(c1, True), (c2, True), (c3, False)]
    assert out["results"][2]["error"] == "cluster_decided" and out["decided"] == 0
    out = grain.decide_many(store, st, [c1, c2], "bob", "not_illegal")
    assert [r["state"] for r in out["results"]] == ["decided", "decided"] and out["decided"] == 2
