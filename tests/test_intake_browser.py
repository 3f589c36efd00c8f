"""Intake in a real browser (Debian's Chromium via Playwright) against real servers on loopback: a member of
the public fills the report form and follows the report; the worker crawls a benign site; an analyst reads the
report and the statistics page, whose charts must break no rule of the Content-Security-Policy.
Leaves screenshots in docs/img/ (report form, statistics)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vigie import accounts
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.demo import encode, photo_like
from vigie.demo_site import Site
from vigie.hashing import hash_bytes
from vigie.ingest import worker

from servers import serving
from test_web_browser import ARGS, CHROMIUM, DOCS_IMG, login

PASSWORD = "a long benign test password 1"


def test_public_report_then_analyst_reads_it_and_the_statistics(settings, media_key):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    from vigie.store import Store
    from vigie.web import create_app

    settings = settings.model_copy(update={"crawl_allowed_networks": ["127.0.0.1/32"], "crawl_per_host_delay": 0.0,
                                           "report_public_delay_hours": 0})
    store = Store.open(settings)
    accounts.create_user(store, "ann", "analyst", PASSWORD)
    known = encode(photo_like(21, 400, 300), "JPEG", quality=90)
    banks.create_bank(store, "known")
    banks.add_entry(store, "known", "md5", hash_bytes(known, settings).md5, verdict=Verdict(legality="baseline"))
    site = Site().page("/", '<img src="/k.jpg"><img src="/n.jpg">').file("/k.jpg", known)
    site.file("/n.jpg", encode(photo_like(22, 400, 300), "JPEG", quality=90))
    problems: list[str] = []
    with serving(site) as site_url, serving(create_app(store, settings)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.goto(f"{base}/report")
        page.fill("textarea[name=urls]", site_url + "/")
        page.check("input[name=seen][value=image]")
        page.screenshot(path=str(DOCS_IMG / "report_form.png"))
        page.click("button[type=submit]")
        ref = page.locator("#reference").inner_text(timeout=5000).strip()
        assert ref.startswith("VR-")
        page.click("a:has-text('follow your report')")
        assert page.locator("#status").inner_text().strip() == "being checked"  # no public delay here

        worker.run_once(store, settings, now=datetime.now(UTC))
        page.reload()
        assert page.locator("#status").inner_text().strip() == "closed"  # founded or not: the public is told less

        login(page, base, "ann", PASSWORD)
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/intake")
        page.click(f"a:has-text('{ref}')")
        body = page.locator("main").inner_text()
        assert site_url + "/k.jpg" in body and "known" in body and "unknown" in body
        page.goto(f"{base}/stats")
        assert page.locator("svg").count() >= 2
        page.screenshot(path=str(DOCS_IMG / "statistics.png"), full_page=True)
        browser.close()
    store.close()
    assert not [x for x in problems if "Content Security Policy" in x or "Refused" in x], problems
