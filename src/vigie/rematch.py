"""Retroactive matching: when a bank learns something, everything that waits is matched again.

A bank change (vigie.banks.changes) is noted in its own transaction; `run()` then, for every
noted change not yet done:

1. the review queue: waiting items a bank now knows leave it, their media purged at once
   (vigie.review.queue.drop_known); this runs first, and `ensure()` runs it before the queue is
   listed, so nothing is served from the queue until it has run (the media choke point,
   vigie.review.showable, checks again at the moment of showing in any case);
2. crawl sightings: an `unknown` sighting that a bank now knows becomes `known`, with the verdict
   and action of vigie.policy (so it goes to a takedown notice if its verdict says so, and its
   report is founded or not by the same rule); a known sighting's verdict and action are
   re-derived (a changed verdict changes what it triggers); each change goes into the
   sighting's history;
3. past scans' `unknown` rows that a bank now knows are re-classified `exact` or `near`, with
   their matches and a `reclassified` flag, so a scan report issued again says so.

The changes are marked done in the transaction that ends the pass; a crash in between leaves them
pending, and the next pass (in the same process, the worker's round, or `vigie repair` at start)
does the work again, which is idempotent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, update

from vigie import audit, policy
from vigie.store.db import Store
from vigie.store.models import BankChange

log = logging.getLogger(__name__)


def pending(store: Store) -> int:
    from vigie.banks import changes

    return changes.pending(store)


def ensure(store: Store, settings) -> dict | None:
    """Run the pending re-matches of the queue and the sightings now if there are any (cheap when there are
    none). Past scans' rows are left to the worker's pass (`run(scans=True)`), so a page never waits on them."""
    if not pending(store):
        return None
    return run(store, settings, scans=False)


def run(store: Store, settings, *, by: str = "system", scans: bool = True) -> dict:
    """One pass over every pending change (see the module docstring); with `scans`, past scans' rows too, for
    every change whose scan pass has not run. Only one process runs it at a time; another finds it busy and
    returns at once (the choke point keeps showing safe meanwhile)."""
    with store.exclusive("rematch") as mine:
        if not mine:
            return {"busy": True}
        with store.sessions() as s:
            top = s.scalar(select(BankChange.id).where(BankChange.done_at.is_(None))
                           .order_by(BankChange.id.desc()).limit(1))
            scans_top = s.scalar(select(BankChange.id).where(BankChange.scans_done_at.is_(None))
                                 .order_by(BankChange.id.desc()).limit(1)) if scans else None
        out: dict = {"changes": 0}
        if top is not None:
            from vigie.review.queue import drop_known

            out["queue_items"] = drop_known(store, settings, by=by)
            out.update(rematch_sightings(store, settings, by=by))
        if scans_top is not None:
            out["scan_rows"] = rematch_scans(store, settings)
        if top is None and scans_top is None:
            return out
        now = datetime.now(UTC)
        with store.session() as s:
            if top is not None:
                out["changes"] = s.execute(update(BankChange).where(BankChange.id <= top,
                                                                    BankChange.done_at.is_(None))
                                           .values(done_at=now)).rowcount
            if scans_top is not None:
                s.execute(update(BankChange).where(BankChange.id <= scans_top, BankChange.scans_done_at.is_(None))
                          .values(scans_done_at=now))
            audit.record(store, by, "bank.rematch", "bank_changes", max(top or 0, scans_top or 0), out, session=s)
        return out


# ---------------------------------------------------------------------------------------------- sightings


def _sighting_query(x):
    from vigie.matching import Query

    exact = {k: getattr(x, k) for k in ("md5", "sha256") if getattr(x, k)}
    q = Query(f"sighting:{x.id}", exact, [], None)
    if x.pdq:
        q.pdq = [("original", x.pdq)]
        q.pdq_quality = 100  # its quality passed the floor when it was first hashed, or it has no PDQ
    return q


def rematch_sightings(store: Store, settings, *, by: str = "system", batch: int = 1000) -> dict:
    """Unknown sightings a bank now knows become known; known ones get their verdict and action again."""
    from vigie.matching import shared_matcher
    from vigie.store.intake_models import Sighting

    m = shared_matcher(store, settings)
    became, reverdict, last = 0, 0, 0
    report_ids: set[int] = set()
    while True:
        with store.sessions() as s:
            rows = list(s.scalars(select(Sighting).where(Sighting.id > last,
                                                         Sighting.outcome.in_(("unknown", "known")))
                                  .order_by(Sighting.id).limit(batch)))
        if not rows:
            break
        last = rows[-1].id
        results = m.match([_sighting_query(x) for x in rows])
        with store.session() as s:
            for x, res in zip(rows, results):
                best, act = policy.strongest(res.matches, settings)
                row = s.get(Sighting, x.id)
                if best is None:
                    continue  # a known sighting whose entry left every bank keeps its follow-up
                verdict = best.verdict.as_dict() if best.verdict else None
                if row.outcome == "unknown":
                    row.outcome = "known"
                    row.state = "online"
                    became += 1
                elif row.verdict == verdict and row.action == ("notice" if act.notice else "none"):
                    continue
                else:
                    reverdict += 1
                apply_match(row, best, act)
                record_event(s, row, "rematch", {"bank": best.bank, "entry_id": best.entry_id,
                                                 "action": row.action})
                if row.url_id is not None:
                    report_ids.add(row.url_id)
    if report_ids:
        from vigie.ingest.reports import refresh_statuses
        from vigie.ingest.worker import _report_ids

        refresh_statuses(store, _report_ids(store, sorted(report_ids)))
    return {"sightings_now_known": became, "sightings_reverdicted": reverdict}


def apply_match(row, best, act: policy.Action) -> None:
    """Write a match and what its verdict triggers on a sighting row (the crawler and the re-match alike)."""
    row.bank, row.entry_id, row.category, row.distance = best.bank, best.entry_id, best.category, best.distance
    d = best.as_dict()
    row.labels = d.get("labels")
    row.match_detail = {k: d.get(k) for k in ("signal", "query_variant", "entry_variant", "start", "end")
                        if d.get(k) is not None}
    row.verdict = best.verdict.as_dict() if best.verdict else None
    row.action = "notice" if act.notice else "none"
    row.action_reason = act.reason


def record_event(s, row, kind: str, detail: dict | None = None, *, at: datetime | None = None) -> None:
    """Append one event to a sighting's history (never rewritten)."""
    from vigie.store.intake_models import SightingEvent

    s.add(SightingEvent(sighting_id=row.id, at=at or datetime.now(UTC), kind=kind, outcome=row.outcome,
                        state=row.state, http_status=row.http_status, sha256=row.sha256, detail=detail))


# ---------------------------------------------------------------------------------------------- scans


def rematch_scans(store: Store, settings, *, batch: int = 2000) -> int:
    """Re-classify past scans' unknown rows that a bank now knows (exact or near, flagged `reclassified`)."""
    from vigie.matching import Query, shared_matcher
    from vigie.store.models import ScanFile

    m = shared_matcher(store, settings)
    changed, last = 0, 0
    while True:
        with store.sessions() as s:
            rows = list(s.scalars(select(ScanFile).where(ScanFile.id > last, ScanFile.klass == "unknown")
                                  .order_by(ScanFile.id).limit(batch)))
        if not rows:
            return changed
        last = rows[-1].id
        queries = []
        for r in rows:
            q = Query(r.location, {k: getattr(r, k) for k in ("md5", "sha1", "sha256") if getattr(r, k)}, [],
                      r.pdq_quality)
            if r.pdq:
                q.pdq = [("original", r.pdq)] + [(v["kind"], v["pdq"]) for v in (r.detail or {}).get("pdq_variants")
                                                 or [] if v.get("pdq")]
            queries.append(q)
        results = m.match(queries)
        with store.session() as s:
            for r, res in zip(rows, results):
                if not res.matches:
                    continue
                row = s.get(ScanFile, r.id)
                exact = any(x.signal in ("md5", "sha1", "sha256") for x in res.matches)
                row.klass = "exact" if exact else "near"
                row.matches = [x.as_dict() for x in res.matches]
                row.flags = sorted(set(row.flags or []) | {"reclassified"})
                changed += 1
