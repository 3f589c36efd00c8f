"""A 20-cluster queue reviewed with the keyboard alone, in a real browser (Debian's Chromium via Playwright):

* analyst 1 records one decision on 18 clusters of one source from the queue page (bulk), splits an item out of
  the 9-item cluster, labels another item on its own and decides the cluster, and decides one more cluster;
* analyst 2 confirms the 18 in bulk (consensus: decided) and disagrees on the last one (disputed);
* a supervisor settles the disputed cluster on its page, confirming with the votes shown and a reason;
* the decision bar never moves under the pointer while keys are pressed, and when the break lock falls every
  picture and reveal control disappears.

Generated, benign pictures only; every server on 127.0.0.1.
"""

from __future__ import annotations

import pytest
from review_ui_kit import Counter, login, review_app

from vigie.demo import encode, photo_like
from vigie.review import queue, wellbeing
from vigie.store.review_models import ReviewCluster

from test_web_browser import CHROMIUM
from test_web_kit import Clock

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")


def _state(store, cid):
    with store.sessions() as s:
        c = s.get(ReviewCluster, cid)
        return c.state, c.category


def _bulk(page, k, clusters, option_downs: int) -> None:
    for v in clusters:
        k.tab_to(f"el.name === 'cluster' && el.value === '{v}'")
        k.press("Space")
    k.tab_to("el.name === 'category' && el.closest('#bulk')")
    for _ in range(option_downs):
        k.press("ArrowDown")
    k.tab_to("el.type === 'submit' && el.closest('#bulk')")
    k.press("Enter")
    page.wait_for_selector("#message")


def test_a_twenty_cluster_queue_by_keyboard_alone(settings, monkeypatch, browser):
    clock = Clock()
    with review_app(settings, monkeypatch, clock=clock) as (base, store, nine):
        for s in range(17):  # 17 more clusters of the same source: 20 in all
            queue.enqueue_media(store, settings, encode(photo_like(900 + s, 320, 240), "JPEG"), source="report",
                                ref={"report": "R-3"}, location=f"report-3/{s}.jpg")
        ids = [c["id"] for c in queue.list_queue(store)]
        assert len(ids) == 20
        singles = [c for c in ids if c != nine]
        bulk, last = singles[:18], singles[18]

        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ana = ctx.new_page()
        ana.on("dialog", lambda d: d.accept())  # the split's "are you sure", accepted as by Enter
        login(ana, base, "ana")
        ka = Counter(ana)
        ana.goto(f"{base}/review/clusters/{ids[0]}")
        ana.wait_for_function("() => window.vigieReview")
        with ana.expect_navigation():
            ka.press("]")  # skip for now: the next one after it
        assert ana.url.endswith(f"/review/clusters/{ids[1]}")
        with ana.expect_navigation():
            ka.press("Shift+N")  # the next cluster not decided: the most urgent again
        assert ana.url.endswith(f"/review/clusters/{ids[0]}")
        ana.goto(f"{base}/review")
        _bulk(ana, ka, bulk, 3)  # "Not illegal"
        assert "recorded on 18 clusters" in ana.locator("#message").inner_text()

        ana.goto(f"{base}/review/clusters/{nine}")
        bar = ana.locator("#decision-bar").bounding_box()
        ka.press("j")
        ka.press("j")
        ka.press("Shift+X")  # item 3 out into a cluster of its own
        ana.wait_for_url(f"{base}/review/clusters/{nine}?split=*")
        ka.press("j")
        ka.press("l")  # item 2: a label of its own
        ka.press("ArrowDown")
        ka.press("Escape")
        assert ana.locator("#decision-bar").bounding_box() == bar  # nothing moved under the pointer
        ka.press("s")  # illegal under national law for the others
        ka.press("Enter")
        ka.press("Enter")
        ana.wait_for_url("**/decide")

        ana.goto(f"{base}/review/clusters/{last}")
        ka.press("a")  # illegal: baseline
        ka.press("Enter")
        ka.press("Enter")
        ana.wait_for_url("**/decide")
        assert ka.clicks == 0

        bob = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(bob, base, "bob")
        kb = Counter(bob)
        _bulk(bob, kb, bulk, 3)
        assert "18 now decided" in bob.locator("#message").inner_text()
        bob.goto(f"{base}/review/clusters/{last}")
        kb.press("d")  # not illegal: disagrees with ana
        kb.press("Enter")
        kb.press("Enter")
        bob.wait_for_url("**/decide")
        assert kb.clicks == 0
        assert all(_state(store, c) == ("decided", "not_illegal") for c in bulk)
        assert _state(store, last)[0] == "disputed"

        sue = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(sue, base, "sue")
        ks = Counter(sue)
        sue.goto(f"{base}/review/clusters/{last}")
        ks.tab_to("el.name === 'category' && el.closest('#resolve')")  # a radio group: Tab enters it once
        ks.press("ArrowDown")  # from "baseline" to "national law", which the arrow also checks
        assert sue.evaluate("document.activeElement.value") == "illegal_national"
        ks.tab_to("el.name === 'note' && el.closest('#resolve')")
        sue.keyboard.type("national law applies here")
        ks.tab_to("el.type === 'submit' && el.closest('#resolve')")
        ks.press("Enter")
        sue.wait_for_selector("#votes")
        assert "ana" in sue.locator("#votes").inner_text() and "bob" in sue.locator("#votes").inner_text()
        ks.tab_to("el.id === 'confirm-resolve'")
        with sue.expect_navigation():
            ks.press("Enter")
        assert ks.clicks == 0 and _state(store, last) == ("decided", "illegal_national")

        # The break lock falls on an open page: every picture and reveal control goes.
        split = next(c["id"] for c in queue.list_queue(store, user="bob") if c["id"] not in ids)
        wellbeing.set_team_policy(store, {"daily_limit_min": 10, "warning_min": 5}, "sue")
        ana.goto(f"{base}/review/clusters/{split}")
        ana.wait_for_function("() => window.vigieReview && document.querySelector('.cell')")
        ka.press("1")
        ana.wait_for_function("() => (document.getElementById('stage').getAttribute('src') || '')"
                              ".endsWith('?steps=colour') && document.getElementById('stage').complete")
        for _ in range(11):
            clock.advance(minutes=1)
            ana.evaluate("window.vigieReview.heartbeat()")
        ana.wait_for_selector("#exposure .banner.locked")
        shown = ana.evaluate("""() => [...document.querySelectorAll('img, video')].filter((el) => {
            const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0
              && getComputedStyle(el).display !== 'none' && getComputedStyle(el).visibility !== 'hidden'; }).length""")
        assert shown == 0
        buttons = ana.locator(".reveal button")
        assert all(not buttons.nth(i).is_visible() for i in range(buttons.count()))
        print(f"\n20 clusters by keyboard: ana {ka.keys} keys, bob {kb.keys} keys, sue {ks.keys} keys, 0 clicks")
