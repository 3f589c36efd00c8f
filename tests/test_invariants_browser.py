"""The invariants as a person meets them, in a real browser (Debian's Chromium via Playwright) on loopback.

1. A picture is queued and shown (small, blurred, grey); a partner's list holding it is imported; the very
   next request for the picture is refused (410), the cluster page shows no picture, and the queue drops it.
2. Two analysts decide "Not illegal" in the browser; the same picture is then reported and crawled from a
   benign site: the report is unfounded, no notice is due, and the reporter's status page says nothing of a
   confirmation.
Every picture is generated (vigie.demo.photo_like); every server listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from sqlalchemy import select
from test_web_review_browser import login

from vigie import accounts
from vigie.actions import takedown
from vigie.banks import service as banks
from vigie.demo import encode, photo_like
from vigie.demo_site import Site
from vigie.ingest import reports, worker
from vigie.review import queue
from vigie.store.intake_models import Report, Sighting

from servers import serving
from test_web_browser import ARGS, CHROMIUM
from test_web_kit import PASSWORD, fast_hashing


def jpeg(seed):
    return encode(photo_like(seed, 320, 240), "JPEG")


@pytest.fixture
def app_server(settings, monkeypatch):
    from vigie.store import Store
    from vigie.web import create_app

    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    fast_hashing(monkeypatch)
    st = settings.model_copy(update={"crawl_allowed_networks": ["127.0.0.1/32"], "crawl_hash_processes": False,
                                     "crawl_per_host_delay": 0.0, "crawl_timeout": 2.0})
    store = Store.open(st)
    for name in ("ana", "bob"):
        accounts.create_user(store, name, "analyst", PASSWORD)
    with serving(create_app(store, st)) as base:
        yield base, store, st
    store.close()


def test_imported_after_queueing_is_no_longer_shown_and_not_illegal_never_becomes_a_notice(app_server):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    base, store, st = app_server
    known_later, benign = jpeg(811), jpeg(812)
    a = queue.enqueue_upload(store, st, known_later, "ana")
    b = queue.enqueue_upload(store, st, benign, "ana")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1200, "height": 760}).new_page()
        login(page, base, "ana")
        media_url = f"{base}/review/items/{a['item']}/media"
        assert page.request.get(media_url).status == 200  # shown while nobody knows it
        # A partner's list with the picture's SHA-256 is imported (the CLI's `vigie bank import` calls this).
        banks.create_bank(store, "partner")
        digest = hashlib.sha256(known_later).hexdigest()
        banks.import_file(store, "partner", io.BytesIO(f"{digest}\n".encode()), "text", signal="sha256")
        for steps in ("", "?steps=colour", "?steps=colour,sharp,full"):
            assert page.request.get(media_url + steps).status == 410
        page.goto(f"{base}/review")
        assert page.locator(f"#queue a[href='/review/clusters/{a['cluster']}']").count() == 0
        page.goto(f"{base}/review/clusters/{a['cluster']}")
        assert page.locator(f"img[src*='/review/items/{a['item']}/media']").count() == 0

        # Two analysts decide "Not illegal" in the browser.
        for user in ("ana", "bob"):
            ctx = browser.new_context(viewport={"width": 1200, "height": 760})
            pg = ctx.new_page()
            login(pg, base, user)
            pg.goto(f"{base}/review/clusters/{b['cluster']}")
            pg.locator("#decide input[value=not_illegal]").check()
            pg.click("#decide button[type=submit]")
            pg.click("#confirm-decision button[value=yes]")
            pg.wait_for_selector("#result")
            ctx.close()
        assert page.request.get(f"{base}/review/items/{b['item']}/media").status == 403  # decided: not shown

        # The same picture is reported and crawled: known, "not illegal", so unfounded and no notice.
        takedown.add_provider(store, "Loop", "abuse@loop.example", networks=["127.0.0.0/8"], by="test")
        site = Site().page("/", '<img src="/b.jpg">').file("/b.jpg", benign)
        with serving(site) as site_base:
            page.goto(f"{base}/report")
            page.fill("textarea[name=urls], input[name=urls]", site_base + "/")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            worker.crawl_pending(store, st)
        browser.close()
    with store.sessions() as s:
        x = s.scalars(select(Sighting)).one()
        rep = s.scalars(select(Report)).one()
    assert x.outcome == "known" and x.action == "none"
    assert rep.status == "unfounded"
    assert takedown.due_sightings(store, None, st) == []
    assert reports.public_status(store, rep.reference)["status"] != "founded"
