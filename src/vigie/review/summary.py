"""Where the review work stands, read only: queue totals by source and priority, the place of a cluster in
someone's queue ("3 of 12"), and the counts a dashboard shows. Nothing here writes or audits: these are
counts of clusters and decisions, never media or hashes, so a page may show them on every load.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from vigie.review.clock import aware
from vigie.review.queue import SOURCES, list_queue
from vigie.store.db import Store
from vigie.store.review_models import ReviewCluster


def _priority(override: int | None) -> str:
    if not override:
        return "normal"
    return "raised" if override > 0 else "lowered"


def queue_totals(store: Store, *, user: str | None = None, now: datetime | None = None) -> dict:
    """Waiting clusters and items (those `user` has not decided on, or all), by source (most urgent first) and by
    priority (raised, normal, lowered), and the age in seconds of the oldest."""
    rows = list_queue(store, user=user)
    by_source = {s: {"clusters": 0, "items": 0} for s in SOURCES}
    by_priority = {p: 0 for p in ("raised", "normal", "lowered")}
    oldest = None
    for r in rows:
        by_source[r["source"]]["clusters"] += 1
        by_source[r["source"]]["items"] += r["size"]
        by_priority[_priority(r["priority_override"])] += 1
        created = aware(datetime.fromisoformat(r["created_at"]))
        oldest = created if oldest is None or created < oldest else oldest
    return {"clusters": len(rows), "items": sum(r["size"] for r in rows),
            "by_source": {k: v for k, v in by_source.items() if v["clusters"]},
            "by_priority": by_priority,
            "oldest_age_s": max(0.0, (now - oldest).total_seconds()) if now and oldest else None}


def position(store: Store, cluster_id: int, *, user: str | None = None) -> tuple[int | None, int]:
    """(place of the cluster in the queue, starting at 1, or None when it is not waiting for `user`; queue size)."""
    ids = [r["id"] for r in list_queue(store, user=user)]
    return (ids.index(cluster_id) + 1 if cluster_id in ids else None), len(ids)


def work_counts(store: Store, *, now: datetime) -> dict:
    """Clusters by state, and those decided in the last 7 days (for the dashboard)."""
    with store.sessions() as s:
        states = dict(s.execute(select(ReviewCluster.state, func.count()).group_by(ReviewCluster.state)).all())
        week = s.scalar(select(func.count()).select_from(ReviewCluster)
                        .where(ReviewCluster.decided_at.is_not(None),
                               ReviewCluster.decided_at >= now - timedelta(days=7)))
    return {"states": {k: int(v) for k, v in states.items()}, "decided_week": int(week or 0)}
