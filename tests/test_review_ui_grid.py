"""The cluster page in a real browser (Debian's Chromium via Playwright) against uvicorn on loopback: a 9-item
cluster in a grid that never moves under the pointer, one item at a time in a fixed pane, the decision bar always
in view, the keyboard alone from the first key to the confirmed decision, and the lock that hides every picture
and reveal control when it falls (whatever the style sheet says). Generated, benign pictures only.

Also counts the key presses and clicks it takes to decide the 9-item cluster (printed, for the notes) and leaves
screenshots of the review pages for each role at 1280 and 390 px in docs/img/.
"""

from __future__ import annotations

import pytest
from review_ui_kit import Counter, login, review_app

from test_web_browser import CHROMIUM
from test_web_kit import Clock

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")

BOXES = """() => [...document.querySelectorAll('.cell, #decision-bar, #pane, .stage')].map((el) => {
  const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round); })"""


def boxes(page) -> list:
    return page.evaluate(BOXES)


def stage_src(page) -> str:
    return page.evaluate("document.getElementById('stage').getAttribute('src')")


def wait_src(page, end: str) -> None:
    page.wait_for_function("(end) => { const i = document.getElementById('stage');"
                           " return i && (i.getAttribute('src') || '').endsWith(end) && i.complete"
                           " && i.naturalWidth > 0; }", arg=end, timeout=5000)


def test_grid_never_moves_and_the_keyboard_decides_a_nine_item_cluster(settings, monkeypatch, browser):
    with review_app(settings, monkeypatch) as (base, store, cid):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        assert "3 clusters (11 items) waiting for you" in page.locator("#totals").inner_text()
        page.goto(f"{base}/review/clusters/{cid}")
        page.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        assert page.locator("#position").inner_text() == "1 of 3 waiting for you"
        cells = page.locator(".cell")
        assert cells.count() == 9
        page.wait_for_function("[...document.querySelectorAll('.thumb img')].every((i) => i.complete"
                               " && i.naturalWidth > 0)")
        # every thumbnail comes through the media route, unrevealed; the alt text never describes content
        srcs = page.eval_on_selector_all(".thumb img", "els => els.map((e) => e.getAttribute('src'))")
        assert all(s.startswith("/review/items/") and s.endswith("/media") for s in srcs)
        alts = page.eval_on_selector_all(".thumb img", "els => els.map((e) => e.alt)")
        assert alts[0] == "Item 1 of 9, not revealed (small preview)"
        # the decision bar is in view without scrolling, and the whole grid too
        bar = page.locator("#decision-bar").bounding_box()
        assert bar["y"] + bar["height"] <= 800
        last = cells.nth(8).bounding_box()
        assert last["y"] + last["height"] <= bar["y"]

        k = Counter(page)
        k.press("Tab")  # the skip link comes first
        assert page.evaluate("document.activeElement.className") == "skip"
        k.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        before = boxes(page)  # where everything is in the window: nothing below may move under the pointer
        # item 1 is selected: reveal colour, then sharp, then move on with j (the reveal ends)
        k.press("1")
        wait_src(page, "?steps=colour")
        assert page.get_attribute("#stage", "alt") == "Item 1 of 9, revealed: colour"
        assert boxes(page) == before
        k.press("2")
        wait_src(page, "?steps=colour,sharp")
        assert page.get_attribute("#stage", "alt") == "Item 1 of 9, revealed: colour, sharp"
        k.press("3")
        wait_src(page, "?steps=colour,sharp,full")
        assert boxes(page) == before  # full size stays inside the fixed pane
        k.press("h")
        wait_src(page, "/media")
        assert page.get_attribute("#stage", "alt") == "Item 1 of 9, not revealed (small preview)"
        for i in range(2, 10):
            k.press("j")
            k.press("1")
            wait_src(page, "?steps=colour")
            assert page.get_attribute("#stage", "alt") == f"Item {i} of 9, revealed: colour"
            assert page.evaluate("document.activeElement.dataset.index") == str(i - 1)
            assert page.locator(f"#detail-{page.get_attribute('.cell[aria-pressed=true]', 'data-item')}").is_visible()
        assert boxes(page) == before
        # the pointer over the grid, then over the pane and away: nothing moves, the reveal ends
        page.mouse.move(*center(cells.nth(4)))
        assert boxes(page) == before
        k.press("s")  # "Illegal under national law"
        assert page.is_checked("#decide input[value=illegal_national]")
        k.press("n")
        page.keyboard.type("nine copies")
        k.press("Escape")
        k.press("Enter")
        assert page.locator("#confirm-decision").is_visible()
        assert "“Illegal under national law” for all 9 items" in page.locator("#confirm-text").inner_text()
        assert boxes(page) == before
        k.press("Escape")  # cancel: nothing recorded
        assert not page.locator("#confirm-decision").is_visible()
        k.press("Enter")
        page.wait_for_selector("#confirm-decision", state="visible")  # the confirmation is up before its Enter
        k.press("Enter")
        page.wait_for_selector("#result")
        assert "waiting for 1 more analyst" in page.locator("#result").inner_text()
        print(f"\nAFTER keyboard, with reveals: {k.keys} key presses (plus {len('nine copies')} typed)")

        # a second analyst with the keyboard and no reveal at all: three keys
        page2 = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page2, base, "bob")
        page2.goto(f"{base}/review/clusters/{cid}")
        page2.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        k2 = Counter(page2)
        for key in ("s", "Enter"):
            k2.press(key)
        page2.wait_for_selector("#confirm-decision", state="visible")
        k2.press("Enter")
        page2.wait_for_selector("#result")
        assert page2.locator("#result").inner_text() == "Confirmed: hashes added to bank review-confirmed."
        print(f"AFTER keyboard, no reveal: {k2.keys} key presses")


def center(locator) -> tuple[float, float]:
    b = locator.bounding_box()
    return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2


def test_pointer_reveals_one_item_and_leaving_ends_it_without_moving_anything(settings, monkeypatch, browser):
    with review_app(settings, monkeypatch) as (base, store, cid):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        page.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        wait_src(page, "/media")
        before = boxes(page)
        k = Counter(page)
        k.click(".cell >> nth=3")
        assert page.get_attribute(".cell >> nth=3", "aria-pressed") == "true"
        k.click(".reveal button[data-key='1']")
        wait_src(page, "?steps=colour")
        assert "grey" not in page.get_attribute("#stage", "class")
        assert boxes(page) == before
        page.mouse.move(5, 5)  # the pointer leaves the pane: back to the preview
        wait_src(page, "/media")
        assert "grey" in page.get_attribute("#stage", "class") and boxes(page) == before
        # a mouse decision asks for confirmation too
        k.click("#decide input[value=not_illegal]")
        k.click("#decide button[type=submit]")
        assert "“Not illegal”" in page.locator("#confirm-text").inner_text()
        k.click("#confirm-decision button[value=yes]")
        page.wait_for_selector("#result")
        print(f"\nAFTER pointer, one reveal: {k.clicks} clicks")


def test_decide_without_a_category_keeps_the_note(settings, monkeypatch, browser):
    with review_app(settings, monkeypatch) as (base, store, cid):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        page.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        page.fill("#note", "looked twice")
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        assert page.locator("#decide-error").is_visible()
        assert "Choose a category" in page.locator("#decide-error").inner_text()
        assert not page.locator("#confirm-decision").is_visible()
        assert page.input_value("#note") == "looked twice"


def test_the_lock_hides_every_picture_and_reveal_control_when_it_falls(settings, monkeypatch, browser):
    clock = Clock()
    with review_app(settings, monkeypatch, clock=clock) as (base, store, cid):
        from vigie.review import wellbeing

        wellbeing.set_team_policy(store, {"daily_limit_min": 10, "warning_min": 5}, "sue")
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        page.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        page.click(".reveal button[data-key='1']")
        wait_src(page, "?steps=colour")
        for _ in range(11):  # revealed time passes, the page's heartbeat keeping the reveal alive
            clock.advance(minutes=1)
            page.evaluate("window.vigieReview.heartbeat()")
        page.wait_for_selector("#exposure .banner.locked")
        assert page.locator(".banner.warning").count() == 0
        shown = page.evaluate("""() => [...document.querySelectorAll('img, video')].filter((el) => {
            const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0
              && getComputedStyle(el).display !== 'none' && getComputedStyle(el).visibility !== 'hidden'; }).length""")
        assert shown == 0
        buttons = page.locator(".reveal button")
        for i in range(buttons.count()):
            assert not buttons.nth(i).is_visible() and buttons.nth(i).is_disabled()
        # clicking where the buttons were, or the keys, brings nothing back
        page.keyboard.press("1")
        page.click(".cell >> nth=2")
        page.keyboard.press("2")
        assert page.evaluate("document.getElementById('stage').getAttribute('src')") is None
        assert page.evaluate("[...document.querySelectorAll('.thumb img')].every((i) => !i.getAttribute('src'))")
        assert "locked" in page.locator("#stage-note").inner_text()
        # the decision bar stays, for what was already seen
        assert page.locator("#decide button[type=submit]").is_visible()


def test_count_deciding_a_nine_item_cluster_after_looking_at_each_in_colour(settings, monkeypatch, browser):
    """The numbers in docs/review.md: colour on each of the 9 items, then the decision, by keys and by pointer."""
    with review_app(settings, monkeypatch) as (base, store, cid):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        page.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        k = Counter(page)
        for i in range(9):
            if i:
                k.press("j")
            k.press("1")
            wait_src(page, "?steps=colour")
        for key in ("s", "Enter", "Enter"):
            k.press(key)
        page.wait_for_selector("#result")
        assert k.keys == 20

        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        login(page, base, "sue")
        page.goto(f"{base}/review/clusters/{cid}")
        page.wait_for_function("() => window.vigieReview")  # keys work once the script runs
        m = Counter(page)
        for i in range(9):
            if i:
                m.click(f".cell >> nth={i}")
            m.click(".reveal button[data-key='1']")
            wait_src(page, "?steps=colour")
        m.click("#decide input[value=illegal_national]")
        m.click("#decide button[type=submit]")
        assert page.evaluate("window.scrollY") == 0  # nothing had to be scrolled into view
        m.click("#confirm-decision button[value=yes]")
        page.wait_for_selector("#result")
        assert m.clicks == 20
