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


def work_counts(store: Store, *, now: datetime, user: str | None = None, settings=None, clock=None,
                supervisor: bool = False) -> dict:
    """The counts of the dashboard, each a question someone on the team asks at the start of a shift:

    clusters by state and those decided in the last 7 days; the queue (waiting for `user`, or all) with the age
    of its oldest cluster; reports received and being crawled; sightings of known material due a takedown notice
    (needs `settings`: the re-notice delay and the verdict policy) and those removed in the last 7 days; the scans
    still running; and for a supervisor (`supervisor=True`, with the review `clock`) the team's revealed seconds
    today. Counts only: no URL, hash or media. Writes nothing of its own (the queue listing first applies bank
    changes not yet re-matched, as every listing of the queue does)."""
    from vigie.store.intake_models import Report, Sighting
    from vigie.store.models import Scan, ScanFile

    week_ago = now - timedelta(days=7)
    with store.sessions() as s:
        states = dict(s.execute(select(ReviewCluster.state, func.count()).group_by(ReviewCluster.state)).all())
        week = s.scalar(select(func.count()).select_from(ReviewCluster)
                        .where(ReviewCluster.decided_at.is_not(None), ReviewCluster.decided_at >= week_ago))
        reports = dict(s.execute(select(Report.status, func.count())
                                 .where(Report.status.in_(("received", "crawling"))).group_by(Report.status)).all())
        removed = s.scalar(select(func.count()).select_from(Sighting)
                           .where(Sighting.outcome == "known", Sighting.removed_at.is_not(None),
                                  Sighting.removed_at >= week_ago))
        scans = [{"id": sc.id, "case_id": sc.case_id, "operator": sc.operator, "started_at": aware(sc.started_at),
                  "files": int(s.scalar(select(func.count()).select_from(ScanFile)
                                        .where(ScanFile.scan_id == sc.id)) or 0)}
                 for sc in s.scalars(select(Scan).where(Scan.status == "running").order_by(Scan.started_at))]
    waiting = queue_totals(store, user=user, now=now)
    out = {"states": {k: int(v) for k, v in states.items()}, "decided_week": int(week or 0),
           "waiting": {"clusters": waiting["clusters"], "items": waiting["items"],
                       "oldest_age_s": waiting["oldest_age_s"]},
           "disputed": int(states.get("disputed", 0)),
           "reports": {"received": int(reports.get("received", 0)), "crawling": int(reports.get("crawling", 0))},
           "notices_due": None, "removed_week": int(removed or 0), "scans_running": scans, "team_today": None}
    if settings is not None:
        from vigie.actions.takedown import due_sightings

        out["notices_due"] = len(due_sightings(store, now, settings))
    if supervisor:
        from vigie.review.wellbeing import team_exposure

        rows = team_exposure(store, "day", clock)["users"]
        out["team_today"] = {"exposed_s": round(sum(r["exposed_s"] for r in rows), 1),
                             "analysts": sum(1 for r in rows if r["exposed_s"] > 0),
                             "most_s": max((r["exposed_s"] for r in rows), default=0.0)}
    return out
