"""What the crawler is to do with a reported URL beyond the defaults, kept between rounds (`CrawlPlan`):

* **rendering asked** for it (`ask_render`): its pages are opened in the browser whatever their content
  (the report said the pictures only show with scripts, or an analyst asks for it);
* **the carried part** of its crawl: a round's time budget (`crawl_report_seconds`) ran out, so what was
  left (pages, stylesheets, media, and what was already done) waits here; the URL goes back to
  ``pending`` at once, without counting as a failed try, and the next round takes the crawl up where it
  stopped. After `crawl_carry_rounds` rounds what is still left is given up (``budget`` in its log).
  The URL's outcome is the strongest of its rounds: a round that finds less never lowers it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from vigie.ingest.crawl import CrawlResult
from vigie.settings import Settings
from vigie.store.crawl_models import CrawlPlan
from vigie.store.db import Store
from vigie.store.intake_models import ReportedUrl

RANK = {None: 0, "nothing": 1, "unknown": 2, "known": 3}


def ask_render(store: Store, url_id: int, render: bool = True) -> None:
    """Open the pages of this reported URL in the browser at its next crawl (or stop doing so)."""
    with store.session() as s:
        p = s.get(CrawlPlan, url_id)
        if p is None:
            s.add(CrawlPlan(url_id=url_id, render=render, rounds=0))
        else:
            p.render = render


def ask_render_report(store: Store, reference: str, render: bool = True) -> list[int]:
    """`ask_render` for every URL of a report (by its reference); returns their ids."""
    from vigie.errors import NotFound
    from vigie.store.intake_models import Report, ReportUrl

    with store.sessions() as s:
        rep = s.scalar(select(Report).where(Report.reference == str(reference).strip().upper()))
        if rep is None:
            raise NotFound(f"no report {reference}", code="report_not_found")
        ids = list(s.scalars(select(ReportUrl.url_id).where(ReportUrl.report_id == rep.id)).all())
    for uid in ids:
        ask_render(store, uid, render)
    return ids


def plans_of(store: Store, url_ids: list[int]) -> dict[int, dict]:
    """The plans of these URLs (only those that have one): render, carry, rounds, outcome."""
    with store.sessions() as s:
        rows = s.scalars(select(CrawlPlan).where(CrawlPlan.url_id.in_(url_ids))).all()
        return {p.url_id: {"render": p.render, "carry": p.carry, "rounds": p.rounds, "outcome": p.outcome}
                for p in rows}


def after_round(store: Store, settings: Settings, url_id: int, res: CrawlResult, now: datetime) -> bool:
    """Keep what the round left (True: the URL waits for the next round) and the strongest outcome so far.
    Called after `record_crawl` wrote the round."""
    with store.session() as s:
        p = s.get(CrawlPlan, url_id)
        if p is None and res.carry is None:  # most URLs: nothing to keep (their row is not even read)
            return False
        ru = s.get(ReportedUrl, url_id)
        if p is None:
            p = CrawlPlan(url_id=url_id, render=False, rounds=0)
            s.add(p)
        best = max(p.outcome, ru.outcome, key=lambda o: RANK.get(o, 0))
        p.outcome, p.updated_at = best, now
        if ru.crawl_state == "done" and best is not None:
            ru.outcome = best
        if res.carry is not None and ru.crawl_state == "done" and p.rounds < settings.crawl_carry_rounds:
            p.carry, p.rounds = res.carry, p.rounds + 1
            ru.crawl_state, ru.claimed_at = "pending", None
            ru.crawl_attempts = max(0, ru.crawl_attempts - 1)  # a round that ran out of time is not a failure
            return True
        if res.carry is not None:
            left = sum(len(res.carry[k]) for k in ("pages", "sheets", "media"))
            ru.log = (ru.log or []) + [{"url": ru.url, "code": "budget", "message": f"carried over {p.rounds} "
                                        f"rounds: the {left} fetches still left are given up"}]
        p.carry = None
        return False
