"""Decisions at the grain of the work: splitting an item out of its cluster, and one decision over many clusters.

Clusters group near copies so that one decision covers them, but a clustering can be wrong: a picture that is
not a copy of the others gets its own cluster with `split_item`. The split is refused on a cluster that is
decided (its hashes are banked: the decision stands) and on the cluster's last item. The decisions already cast
on the old cluster stay with it and still count there for the items left; a label such a decision gave the
split item is kept in the decision (the record of what was said) but no longer asked for, since consensus
only looks at the items waiting in the cluster. The new cluster starts open with no vote: the item is
reviewed afresh, by anyone (the people who voted on the old cluster included). The old cluster keeps its state:
a disputed one stays disputed (a supervisor settles it) even when the item at issue leaves, and a pending one is
looked at again at its next decision. The split locks the old cluster like a decision does, so a split and a
decision on the same cluster at the same instant give the outcome of one order or the other.

Splitting is meant for an item that is *not* a near copy of the others; where it is one, deciding the old
cluster banks near copies of it, and the re-match then takes it out of the queue as known.

`decide_many` applies one analyst's decision to several clusters selected together on the queue page. They must
all come from the same source (a bulk decision over a batch of one scan, say, never a mix of a police upload and
a crawl), checked before anything is written. Each cluster is decided in its own transaction through
`decisions.decide` (same consensus, same bank rules, same refusals), and the answer says per cluster what
happened: one cluster decided or disputed meanwhile never stops the others.
"""

from __future__ import annotations

from sqlalchemy import select

from vigie import audit
from vigie.errors import Conflict, NotFound, UsageError, VigieError
from vigie.review import decisions
from vigie.review.clock import Clock
from vigie.store.db import Store
from vigie.store.review_models import ReviewCluster, ReviewItem


def split_item(store: Store, settings, item_id: int, by: str) -> dict:
    """Move a waiting item into a new open cluster of its own; returns {item, from, cluster}."""
    with store.session() as s:
        it = s.get(ReviewItem, item_id)
        if it is None:
            raise NotFound(f"no review item {item_id}", code="item_not_found")
        if it.cluster_id is None or it.state != "queued":
            raise Conflict(f"item {item_id} is not waiting for review", code="item_not_waiting")
        old = s.get(ReviewCluster, it.cluster_id, with_for_update=True)
        if old.state in ("decided", "known"):
            raise Conflict(f"cluster {old.id} is decided already: its items cannot be split out",
                           code="cluster_decided")
        rest = [m for m in s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == old.id,
                                                               ReviewItem.state == "queued")) if m.id != it.id]
        if not rest:
            raise UsageError(f"item {item_id} is the only one waiting in cluster {old.id}", code="split_single")
        new = ReviewCluster(state="open", source_rank=it.source_rank, size=1, ai_likely=it.ai_likely,
                            created_at=old.created_at)  # it waited as long as the others: same place in the queue
        s.add(new)
        s.flush()
        it.cluster_id = new.id
        members = [m for m in s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == old.id,
                                                                  ReviewItem.state != "known")) if m.id != it.id]
        old.size = len(members)
        old.source_rank = min(m.source_rank for m in members)
        old.ai_likely = all(m.ai_likely for m in members)
        out = {"item": item_id, "from": old.id, "cluster": new.id}
        audit.record(store, by, "review.split", "review_cluster", old.id, out, session=s)
    return out


def decide_many(store: Store, settings, cluster_ids: list[int], user: str, category: str,
                note: str | None = None, *, bank: str | None = None, clock: Clock | None = None) -> dict:
    """One analyst's decision on each selected cluster (same source only), each in its own transaction.

    Returns {"results": [{"cluster", "ok", ...decide's answer or "error", "message"}], "decided": n}."""
    ids = list(dict.fromkeys(int(c) for c in cluster_ids))
    if not ids:
        raise UsageError("select at least one cluster", code="no_clusters")
    decisions._category(settings, category)  # a bad category refuses the whole request, before anything
    with store.sessions() as s:
        found = {c.id: c.source_rank for c in s.scalars(select(ReviewCluster).where(ReviewCluster.id.in_(ids)))}
    missing = [c for c in ids if c not in found]
    if missing:
        raise NotFound(f"no review cluster {missing[0]}", code="cluster_not_found")
    if len(set(found.values())) > 1:
        raise UsageError("a bulk decision covers clusters of one source only", code="mixed_sources")
    results = []
    for cid in ids:
        try:
            r = decisions.decide(store, settings, cid, user, category, note, bank=bank, clock=clock)
            results.append({"ok": True, **{k: v for k, v in r.items() if k != "items"}})
        except VigieError as exc:
            results.append({"cluster": cid, "ok": False, "error": getattr(exc, "code", "error"),
                            "message": str(exc)})
    audit.record(store, user, "review.bulk_decision", "review_cluster", ids[0],
                 {"clusters": ids, "category": category, "ok": sum(r["ok"] for r in results)})
    return {"results": results, "decided": sum(1 for r in results if r.get("state") == "decided")}
