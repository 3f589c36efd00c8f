"""Knowing where you are, in a real browser (Debian's Chromium via Playwright, uvicorn on loopback): today's
exposure and the time left are on every review page, stay in view when the page scrolls, and follow the server
by themselves (a poll of GET /api/v1/review/me every 5 s, and the answer to each end of a reveal), the lock
included, with its end in the deployment's time zone. The clock is the test's; the waits below only wait for the
page to catch up (they time nothing). Generated, benign pictures only."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from review_ui_kit import login, review_app

from test_web_browser import CHROMIUM
from test_web_kit import Clock

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")

POLL_WAIT_MS = 15000  # three polls' worth: the page must catch up without a reload or a heartbeat
COLOUR_SHOWN = """() => { const i = document.getElementById('stage');  // the server has served (and counted) it
  return (i.getAttribute('src') || '').endsWith('colour') && i.complete && i.naturalWidth > 0; }"""


def exposed(page) -> str:
    return page.locator('#exposure [data-k="exposed_today_s"]').inner_text()


def wait_exposed(page, text: str) -> None:
    page.wait_for_function("(t) => document.querySelector('#exposure [data-k=\"exposed_today_s\"]')"
                           ".textContent === t", arg=text, timeout=POLL_WAIT_MS)


def test_exposure_follows_the_server_on_every_review_page(settings, monkeypatch, browser):
    clock = Clock()
    with review_app(settings, monkeypatch, clock=clock) as (base, store, cid):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        assert exposed(page) == "0 s"
        page.keyboard.press("1")  # colour on item 1: the exposure count starts on the server
        page.wait_for_function(COLOUR_SHOWN)
        clock.advance(minutes=1)
        wait_exposed(page, "1 min")  # no heartbeat, no reload: the poll brought it
        page.evaluate("window.vigieReview.heartbeat()")  # the page keeps the reveal alive
        clock.advance(minutes=1)
        with page.expect_response(lambda r: r.url.endswith("/api/v1/review/reveal/stop")):
            page.keyboard.press("h")  # the reveal ends; its answer carries the exposure
        wait_exposed(page, "2 min")
        assert page.locator('#exposure [data-k="remaining_s"]').inner_text() == "43 min"  # the session: 45 - 2

        # another review page: the same panel, and it moves with the server too
        page.goto(f"{base}/review/upload")
        assert page.locator("#exposure").count() == 1 and exposed(page) == "2 min"
        assert page.locator('#exposure [data-k="session_s"]').inner_text() == "2 min"
        clock.advance(minutes=1)  # the session goes on while the page is open
        page.wait_for_function("() => document.querySelector('#exposure [data-k=\"session_s\"]').textContent === "
                               "'3 min'", timeout=POLL_WAIT_MS)
        assert exposed(page) == "2 min"  # nothing revealed since


def test_the_panel_stays_in_view_on_a_phone(settings, monkeypatch, browser):
    with review_app(settings, monkeypatch) as (base, store, cid):
        page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        login(page, base, "ana")
        for path in (f"/review/clusters/{cid}", "/review/policy"):
            page.goto(f"{base}{path}")
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            page.wait_for_function("() => window.scrollY > 100")
            box = page.locator("#exposure").bounding_box()
            assert box["y"] == 0 and box["height"] < 150, (path, box)


def test_the_lock_falls_by_the_poll_alone_and_says_when_in_local_time(settings, monkeypatch, browser):
    settings.timezone = "Europe/Paris"
    clock = Clock()  # 2026-11-24 09:00 UTC
    with review_app(settings, monkeypatch, clock=clock) as (base, store, cid):
        from vigie.review import wellbeing

        wellbeing.set_team_policy(store, {"daily_limit_min": 10, "warning_min": 3}, "sue")
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        page.keyboard.press("1")
        page.wait_for_function(COLOUR_SHOWN)
        for _ in range(6):  # revealed time passes, the page's heartbeat keeping the reveal alive
            clock.advance(minutes=1)
            page.evaluate("window.vigieReview.heartbeat()")
        assert page.locator("#exposure .banner").count() == 0  # 4 minutes left: no warning yet
        clock.advance(minutes=1)  # 3 minutes left: the warning comes with the next poll
        page.wait_for_selector("#exposure .banner.warning", timeout=POLL_WAIT_MS)
        assert "3 min of review left before a break" in page.locator("#exposure .banner.warning").inner_text()
        for _ in range(2):
            page.evaluate("window.vigieReview.heartbeat()")
            clock.advance(minutes=1)
        page.evaluate("window.vigieReview.heartbeat()")
        clock.advance(minutes=1, seconds=15)  # past the daily limit: the next poll locks
        page.wait_for_selector("#exposure .banner.locked", timeout=POLL_WAIT_MS)
        text = page.locator("#exposure .banner.locked").inner_text()
        until = datetime.fromisoformat(page.locator("#exposure .banner.locked time").get_attribute("datetime"))
        assert until > clock()
        local = until.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%d %H:%M")
        assert f"It opens again at {local} Europe/Paris." in text, text
        assert local != until.astimezone(UTC).strftime("%Y-%m-%d %H:%M")  # not UTC written as local time
        assert page.locator(".banner.warning").count() == 0
        shown = page.evaluate("""() => [...document.querySelectorAll('img, video')].filter((el) => {
            const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0
              && getComputedStyle(el).display !== 'none'; }).length""")
        assert shown == 0
        assert all(not b.is_visible() for b in page.locator(".reveal button").all())
        # the server renders the same words and time on the next page
        page.goto(f"{base}/review")
        assert f"It opens again at {local} Europe/Paris." in page.locator("#exposure").inner_text()
        assert page.locator("#next").count() == 0
