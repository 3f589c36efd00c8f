"""Verdicts drive intake, takedown and statistics in one place (vigie.policy), and bank changes reach the
crawler's sightings (vigie.rematch). A benign site on 127.0.0.1 serves generated pictures; runs on both stores.
"""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_intake import T0, intake_settings, jpeg

from vigie import stats
from vigie.actions import takedown
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.demo_site import Site
from vigie.hashing import hash_bytes
from vigie.ingest import reports, worker
from vigie.review import decisions, queue
from vigie.store.intake_models import Sighting, SightingEvent
from vigie.store.review_models import ReviewItem

from servers import serving

pytestmark = pytest.mark.usefixtures("media_key")


def sightings(store):
    with store.sessions() as s:
        return {x.media_url.rsplit("/", 1)[-1]: x for x in s.scalars(select(Sighting))}


def status(store, ref):
    """The report's status as analysts see it (the public is told less, and later: vigie.ingest.reports)."""
    from vigie.store.intake_models import Report

    with store.sessions() as s:
        rep = s.scalar(select(Report).where(Report.reference == ref))
        return {"status": rep.status, "reason": rep.reason}


def provider(store, country):
    takedown.add_provider(store, "Loop Hosting", "abuse@loop.example", networks=["127.0.0.0/8"], country=country,
                          by="tester")


def test_a_not_illegal_decision_never_becomes_a_takedown(store):
    settings = intake_settings(store)
    pic = jpeg(41)
    q = queue.enqueue_upload(store, settings, pic, "ana")
    decisions.decide(store, settings, q["cluster"], "ana", "not_illegal")
    decisions.decide(store, settings, q["cluster"], "bob", "not_illegal")
    provider(store, None)
    site = Site().page("/", '<img src="/p.jpg">').file("/p.jpg", pic)
    with serving(site) as base:
        ref = reports.submit(store, [base + "/"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
    x = sightings(store)["p.jpg"]
    assert x.outcome == "known" and x.action == "none" and x.verdict == {"legality": "not_illegal"}
    st = status(store, ref)
    assert st["status"] == "unfounded" and "not illegal" in (st.get("reason") or "")
    assert takedown.due_sightings(store, T0, settings) == []
    sent = takedown.send_notices(store, settings, T0, mailer=lambda *a: pytest.fail("a notice was sent"))
    assert sent["sent"] == 0 and sent["due"] == 0
    got = stats.compute(store)
    assert got["totals"]["founded"] == 0 and got["totals"]["unfounded"] == 1


def test_a_bank_learning_an_unknown_sighting_founds_the_report_and_notices_it(store):
    settings = intake_settings(store)
    pic = jpeg(42)
    provider(store, None)
    site = Site().page("/", '<img src="/n.jpg">').file("/n.jpg", pic)
    with serving(site) as base:
        ref = reports.submit(store, [base + "/"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
    assert sightings(store)["n.jpg"].outcome == "unknown"
    assert status(store, ref)["status"] == "in_review"
    banks.create_bank(store, "partner", default_verdict=Verdict(legality="baseline"))
    digest = hashlib.sha256(pic).hexdigest()
    banks.import_file(store, "partner", io.BytesIO(f"{digest}\n".encode()), "text", signal="sha256")
    x = sightings(store)["n.jpg"]
    assert x.outcome == "known" and x.action == "notice" and x.bank == "partner"
    with store.sessions() as s:
        assert s.scalar(select(ReviewItem.state).where(ReviewItem.sha256 == digest)) == "known"
        kinds = [e.kind for e in s.scalars(select(SightingEvent).where(SightingEvent.sighting_id == x.id)
                                           .order_by(SightingEvent.id))]
    assert kinds == ["crawl", "rematch"]
    assert status(store, ref)["status"] == "founded"
    assert [d.id for d in takedown.due_sightings(store, T0, settings)] == [x.id]


@pytest.mark.parametrize("country,noticed", [("FR", True), ("NL", False)])
def test_national_material_goes_only_to_providers_in_its_jurisdiction(store, country, noticed):
    settings = intake_settings(store)
    pic = jpeg(43)
    banks.create_bank(store, "national")
    rec = hash_bytes(pic, settings)
    banks.add_entry(store, "national", "md5", rec.md5, verdict=Verdict(legality="national", jurisdictions=("FR",)))
    provider(store, country)
    site = Site().page("/", '<img src="/f.jpg">').file("/f.jpg", pic)
    with serving(site) as base:
        ref = reports.submit(store, [base + "/"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
    assert status(store, ref)["status"] == "founded"  # illegal under some law: founded
    bodies = []
    got = takedown.send_notices(store, settings, T0, mailer=lambda msg, _s: bodies.append(msg))
    assert (got["sent"] == 1) is noticed and len(bodies) == int(noticed)


def test_a_recrawl_never_erases_a_known_sightings_follow_up(store):
    settings = intake_settings(store)
    pic = jpeg(44)
    banks.create_bank(store, "known")
    banks.add_entry(store, "known", "sha256", hashlib.sha256(pic).hexdigest(), verdict=Verdict(legality="baseline"))
    site = Site().page("/", '<img src="/k.jpg">').file("/k.jpg", pic)
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        worker.crawl_pending(store, settings, now=T0)
        first = sightings(store)["k.jpg"]
        assert first.outcome == "known"
        site.file("/k.jpg", jpeg(45))  # other bytes now, which no bank knows
        reports.submit(store, [base + "/"], now=T0 + timedelta(days=2))
        worker.crawl_pending(store, settings, now=T0 + timedelta(days=2))
    x = sightings(store)["k.jpg"]
    assert x.outcome == "known" and x.state == "online" and x.bank == "known"
    with store.sessions() as s:
        evs = list(s.scalars(select(SightingEvent).where(SightingEvent.sighting_id == x.id).order_by(SightingEvent.id)))
    assert [e.detail.get("outcome") for e in evs] == ["known", "unknown"] and evs[-1].detail["kept"] == "known"


def test_a_round_killed_before_its_statuses_leaves_reports_that_the_repair_pass_derives(store):
    """A crawl round writes each URL as its crawl ends and derives its reports' statuses when the round ends: a
    server killed in between left the reports `received` for good. The repair pass (at every start, in every
    worker round) derives the status of every report whose URLs are all crawled, and only of those."""
    from vigie import audit, repair
    from vigie.store.intake_models import Report, ReportedUrl

    st = intake_settings(store)
    done = reports.submit(store, ["http://127.0.0.1:9/gone.html"])["reference"]
    waiting = reports.submit(store, ["http://127.0.0.1:9/later.html"])["reference"]
    with store.session() as s:  # what the crawl of the first wrote before the kill: its URL, no status
        ru = s.scalar(select(ReportedUrl).where(ReportedUrl.url == "http://127.0.0.1:9/gone.html"))
        ru.crawl_state, ru.outcome, ru.crawl_attempts = "done", "nothing", 1
    out = repair.run(store, st)
    assert out["report_statuses"] == 1
    with store.sessions() as s:
        status = {r.reference: r.status for r in s.scalars(select(Report))}
    assert status[done] == "unfounded" and status[waiting] == "received"
    assert [r.object_id for r in audit.iter_records(store) if r.action == "report.status"] == [done]
    assert repair.run(store, st)["report_statuses"] == 0  # idempotent
