"""End to end, with real servers on loopback only: a report comes in over HTTP, the crawl finds the planted
pictures on a benign site, notices go out to a local SMTP server, the site removes a picture, the re-check
records when, and the statistics show it. Then the police export holds the whole story.

Everything is generated: the "known" pictures are benign ones whose hashes the test plants in a bank.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from vigie import audit, stats
from vigie.actions import escalation, takedown
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.demo import encode, photo_like
from vigie.demo_site import Site
from vigie.hashing import hash_bytes
from vigie.ingest import reports, worker
from vigie.settings import Settings
from vigie.store import Store
from vigie.web.app import create_app

from servers import mail_server, serving

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def jpeg(seed: int, w: int = 400, h: int = 300, q: int = 90) -> bytes:
    return encode(photo_like(seed, w, h), "JPEG", quality=q)


@pytest.fixture
def world(tmp_path, media_key):
    """The store, a bank of two benign "known" pictures, a provider for 127.0.0.1, a site, an SMTP server."""
    with mail_server() as (inbox, smtp_port):
        settings = Settings(data_dir=tmp_path / "data", workers=1, crawl_allowed_networks=["127.0.0.1/32"],
                            crawl_per_host_delay=0.0, crawl_timeout=2.0, smtp_host="127.0.0.1", smtp_port=smtp_port,
                            smtp_timeout=5, hotline_name="Test Hotline", notice_from="notices@hotline.example",
                            report_public_delay_hours=0)
        store = Store.open(settings)
        known1, known2 = jpeg(11), jpeg(12)
        banks.create_bank(store, "known")
        for d in (known1, known2):
            rec = hash_bytes(d, settings)
            banks.add_entry(store, "known", "md5", rec.md5, verdict=Verdict(legality="baseline"))
            banks.add_entry(store, "known", "pdq", rec.pdq, verdict=Verdict(legality="baseline"))
        takedown.add_provider(store, "Loopback Hosting", "abuse@loopback-hosting.example",
                              networks=["127.0.0.0/8"], country="FR", by="test")
        site = Site()
        site.page("/gallery.html", '<html><body><h1>Holiday</h1><img src="/p/1.jpg">'
                  '<picture><source srcset="/p/2-large.jpg 2x"><img src="/p/2.jpg"></picture>'
                  '<a href="/about.html">about</a><img src="/p/new.jpg"></body></html>')
        site.page("/about.html", "<p>Just pictures of the sea.")
        site.file("/p/1.jpg", known1).file("/p/2.jpg", jpeg(12, q=70)).file("/p/2-large.jpg", jpeg(12, 800, 600))
        site.file("/p/new.jpg", jpeg(13))
        yield store, settings, site, inbox
        store.close()


def test_report_crawl_notice_removal_statistics(world):
    store, settings, site, inbox = world
    app = create_app(store, settings, clock=lambda: T0)
    with serving(site) as site_url:
        with serving(app) as vigie_url:
            # 1. A member of the public reports the gallery and a dead link, over HTTP, with no account.
            r = httpx.post(vigie_url + "/api/v1/reports", json={"urls": [site_url + "/gallery.html",
                                                                        site_url + "/gone.html"], "seen": ["image"]})
            assert r.status_code == 201
            ref = r.json()["reference"]
            # No public delay in this test: at once "being checked" (never whether it was reported before).
            assert httpx.get(vigie_url + f"/api/v1/reports/{ref}").json()["status"] == "being_checked"

            # 2. The worker's round: crawl, recognise, notify.
            first = worker.run_once(store, settings, now=T0)
            assert first["crawl"]["known"] == 3 and first["crawl"]["unknown"] == 1
            assert first["notices"]["sent"] == 1
            # The reporter is told only that it is closed (founded or not alike); analysts see "founded".
            status = httpx.get(vigie_url + f"/api/v1/reports/{ref}").json()
            assert status["status"] == "closed" and "reason" not in status
            assert reports.report_detail(store, ref)["status"] == "founded"

        # 3. One notice reached the provider's abuse address with every known media URL and no picture.
        (to, msg), = inbox.parsed()
        assert to == ["abuse@loopback-hosting.example"]
        text = msg.get_body(("plain",)).get_content()
        for path in ("/p/1.jpg", "/p/2.jpg", "/p/2-large.jpg"):
            assert site_url + path in text
        assert site_url + "/p/new.jpg" not in text  # unknown: it waits for analysts, nobody is noticed yet
        attachments = list(msg.iter_attachments())
        assert [a.get_content_type() for a in attachments] == ["application/json"]
        machine = json.loads(attachments[0].get_content())
        assert sorted(i["media_url"] for i in machine["items"]) == sorted(
            site_url + p for p in ("/p/1.jpg", "/p/2.jpg", "/p/2-large.jpg"))

        # 4. The host takes one picture down; the re-check an hour later records when it was found gone.
        site.remove("/p/1.jpg")
        t1 = T0 + timedelta(hours=1, minutes=5)
        second = worker.run_once(store, settings, now=t1)
        assert second["recheck"] == {"checked": 3, "online": 2, "removed": 1, "changed": 0, "unreachable": 0}
        assert second["notices"]["sent"] == 0  # re-notices wait 24 hours

        # 5. A day later the other two are still up: the provider is noticed again, about those two only.
        third = worker.run_once(store, settings, now=T0 + timedelta(hours=25))
        assert third["notices"]["sent"] == 1 and third["notices"]["notices"][0]["kind"] == "renotice"
        renotice = inbox.parsed()[1][1].get_body(("plain",)).get_content()
        assert site_url + "/p/1.jpg" not in renotice and site_url + "/p/2.jpg" in renotice
    assert len(inbox.messages) == 2

    # 6. Statistics: one report founded, 4 media seen (3 known), 2 notices, one removal after 1 h 5 min.
    st = stats.compute(store, now=T0 + timedelta(days=2))
    tot = st["totals"]
    assert (tot["reports"], tot["founded"], tot["media_seen"], tot["known"], tot["new"]) == (1, 1, 4, 3, 1)
    assert tot["notices_sent"] == 2 and tot["removals"] == 1
    assert tot["median_hours"] == pytest.approx(1 + 5 / 60, abs=0.01)
    fr = [c for c in st["countries"] if c["country"] == "FR"][0]
    assert fr["removed"] == 1 and fr["still_online"] == 2

    # 7. The police export tells the whole story, without media.
    out = escalation.export_escalation(store, settings, ref, store.settings.data_dir / "esc.zip", by="supervisor")
    z = zipfile.ZipFile(out["path"])
    names = set(z.namelist())
    assert {"report.json", "urls.csv", "sightings.csv", "notices.json", "audit.jsonl", "manifest.json"} <= names
    sightings_csv = z.read("sightings.csv").decode()
    assert site_url + "/p/1.jpg" in sightings_csv and "removed" in sightings_csv
    assert not any(n.lower().endswith((".jpg", ".png")) for n in names)
    actions = {json.loads(line)["action"] for line in io.TextIOWrapper(z.open("audit.jsonl")) if line.strip()}
    assert {"report.received", "takedown.notice_sent", "takedown.removed"} <= actions
    assert audit.verify(store).ok


def test_the_crawler_refuses_private_addresses_by_default_even_through_a_redirect(tmp_path):
    """No setting: the reported loopback URL is refused before any request, and so is a redirect to it."""
    settings = Settings(data_dir=tmp_path / "data", workers=1)
    store = Store.open(settings)
    site = Site().page("/", "<img src='/a.jpg'>").file("/a.jpg", jpeg(1))
    with serving(site) as site_url:
        port = int(site_url.rsplit(":", 1)[1])
        ref = reports.submit(store, [site_url + "/"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
        # A host allowed for the test redirects to another loopback address that is not.
        allowed = settings.model_copy(update={"crawl_allowed_networks": ["127.0.0.1/32"]})
        site.redirect("/jump", f"http://127.0.0.2:{port}/a.jpg")
        ref2 = reports.submit(store, [site_url + "/jump"], now=T0)["reference"]
        worker.crawl_pending(store, allowed, now=T0)
    assert site.hits["/"] == 0 and site.hits["/a.jpg"] == 0
    for r in (ref, ref2):
        d = reports.report_detail(store, r)
        assert d["status"] == "unfounded" and d["urls"][0]["error_code"] == "private_address", d
        assert "private_address" in reports.public_status(store, r)["reason"]
    store.close()
