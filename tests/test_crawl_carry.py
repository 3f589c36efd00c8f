"""A report's time budget: past `crawl_report_seconds` nothing more is sent, what is left is carried to the
next round and taken up where it stopped; nothing is lost and nothing fetched twice. Rendering asked for a
reported URL is kept with it. Runs on SQLite and PostgreSQL where the store matters.

Every picture is generated; every server listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from test_crawl_schedule import jpeg, settings
from test_intake import intake_settings, plant

from vigie.demo_site import Site
from vigie.errors import NotFound
from vigie.ingest import crawl_plans, reports, worker
from vigie.ingest.crawl import Fetcher, crawl
from vigie.store.crawl_models import CrawlPlan
from vigie.store.intake_models import ReportedUrl, Sighting

from servers import serving

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def slow_gallery(n: int, delay: float) -> Site:
    site = Site()
    site.page("/", "".join(f'<img src="/g/{i}.jpg">' for i in range(n // 2)) + '<a href="/p2">next</a>')
    site.page("/p2", "".join(f'<img src="/g/{i}.jpg">' for i in range(n // 2, n)))
    for i in range(n):
        site.file(f"/g/{i}.jpg", jpeg(i), delay=delay)
    return site


def test_the_part_left_past_the_time_budget_is_carried_and_taken_up_without_loss_or_repeat(tmp_path):
    st = settings(tmp_path, crawl_concurrency=1, crawl_per_host_concurrency=1, crawl_report_seconds=0.3)
    site = slow_gallery(20, 0.05)
    rounds = []
    with serving(site) as base:
        async def go():
            carry = None
            while True:
                async with Fetcher(st) as f:
                    res = await crawl(base + "/", f, resume=carry)
                rounds.append(res)
                if res.carry is None or len(rounds) > 20:
                    return
                carry = res.carry
        asyncio.run(go())
    assert len(rounds) > 1 and rounds[-1].carry is None
    first = rounds[0]
    assert first.carry["media"] and any(e["code"] == "carried" and e["attempt"] == 0 for e in first.fetches)
    assert any(x["code"] == "carried" for x in first.log)
    got = [m for r in rounds for m in r.media]
    assert all(m.error is None for m in got)
    assert sorted(m.url for m in got) == sorted(f"{base}/g/{i}.jpg" for i in range(20))  # none lost, none twice
    assert all(site.hits[f"/g/{i}.jpg"] == 1 for i in range(20)) and site.hits["/"] == 1 and site.hits["/p2"] == 1


def test_the_worker_carries_a_report_to_the_next_round_and_keeps_its_strongest_outcome(store, media_key):
    st = intake_settings(store, crawl_concurrency=1, crawl_per_host_concurrency=1, crawl_report_seconds=0.3)
    site = slow_gallery(16, 0.05)
    plant(store, st, jpeg(0))  # the first picture is known: found in the first round
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        one = worker.crawl_pending(store, st, now=T0)
        with store.sessions() as s:
            ru = s.scalars(select(ReportedUrl)).one()
            plan = s.get(CrawlPlan, ru.id)
            assert one["carried_urls"] == 1 and ru.crawl_state == "pending" and ru.outcome == "known"
            assert plan.rounds == 1 and plan.carry["media"] and plan.outcome == "known"
            assert ru.crawl_attempts == 0  # running out of time is not a failed try
        n = 1
        while n < 20:
            n += 1
            got = worker.crawl_pending(store, st, now=T0 + timedelta(seconds=n))
            assert got["urls"] == 1  # taken up at the next round, without the wait of a failed try
            if not got["carried_urls"]:
                break
    with store.sessions() as s:
        ru = s.scalars(select(ReportedUrl)).one()
        sights = s.scalars(select(Sighting)).all()
        plan = s.get(CrawlPlan, ru.id)
    assert ru.crawl_state == "done" and ru.outcome == "known"  # later rounds found only unknown pictures
    assert plan.carry is None
    assert sorted(x.media_url for x in sights) == sorted(f"{base}/g/{i}.jpg" for i in range(16))
    assert all(site.hits[f"/g/{i}.jpg"] == 1 for i in range(16))


def test_a_carried_crawl_is_given_up_after_its_rounds(store, media_key):
    st = intake_settings(store, crawl_concurrency=1, crawl_per_host_concurrency=1, crawl_report_seconds=0.2,
                         crawl_carry_rounds=1)
    site = slow_gallery(16, 0.1)
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        assert worker.crawl_pending(store, st, now=T0)["carried_urls"] == 1
        assert worker.crawl_pending(store, st, now=T0 + timedelta(seconds=1))["carried_urls"] == 0
    with store.sessions() as s:
        ru = s.scalars(select(ReportedUrl)).one()
    assert ru.crawl_state == "done" and any(e["code"] == "budget" and "given up" in e["message"] for e in ru.log)


def test_rendering_asked_for_a_reported_url_is_used_by_the_worker(store, media_key, monkeypatch):
    st = intake_settings(store)
    site = Site().page("/", '<img src="/a.jpg">').file("/a.jpg", jpeg(1))
    seen = {}

    async def fake_crawl(url, fetcher, **kw):
        seen.update(kw)
        return await crawl(url, fetcher, on_media=kw["on_media"])

    monkeypatch.setattr(worker, "crawl", fake_crawl)
    with serving(site) as base:
        ref = reports.submit(store, [base + "/"], now=T0)["reference"]
        with store.sessions() as s:
            uid = s.scalars(select(ReportedUrl.id)).one()
        assert crawl_plans.ask_render_report(store, ref) == [uid]  # the report's flag, kept with each URL
        worker.crawl_pending(store, st, now=T0)
        assert seen["render"] is True and seen["renderer"] is not None and seen["resume"] is None
        reports.submit(store, [base + "/other"], now=T0)
        worker.crawl_pending(store, st, now=T0)
        assert seen["render"] is False  # another report's URL is not rendered unless its page asks for it
    with pytest.raises(NotFound):
        crawl_plans.ask_render_report(store, "NO-SUCH")
