"""Every review page for each role at 1280 and 390 px in a real browser (Debian's Chromium via Playwright): no page
is wider than the window (the header wraps), no request fails (the favicon included), every picture has an alt
text that does not describe content. Leaves the screenshots in docs/img/review_<page>_<role>_<width>.png (a
small palette PNG each), which docs/review.md links. Generated, benign pictures only."""

from __future__ import annotations

import pytest
from PIL import Image
from review_ui_kit import OTHER_SEEDS, login, review_app, review_pages

from test_web_browser import ARGS, CHROMIUM, DOCS_IMG

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")

WIDTHS = {1280: 800, 390: 844}
ALT_OK = ("not revealed (small preview)", "revealed: ")


def small_png(path) -> None:
    """A 64-colour palette: the screenshots stay small in the repository."""
    img = Image.open(path).convert("RGB")
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def test_review_pages_fit_both_widths_and_leave_screenshots(settings, monkeypatch):
    from playwright.sync_api import sync_playwright

    from vigie.review import decisions, queue

    with review_app(settings, monkeypatch) as (base, store, cid), sync_playwright() as p:
        other = next(c["id"] for c in queue.list_queue(store) if c["id"] != cid)
        decisions.decide(store, settings, other, "ana", "illegal_national", "clear")
        decisions.decide(store, settings, other, "bob", "not_illegal", "adult")
        assert len(OTHER_SEEDS) == 2
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for user, role in (("ana", "analyst"), ("sue", "supervisor")):
            for width, height in WIDTHS.items():
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                failed = []
                page.on("response", lambda r, failed=failed: failed.append(r.url) if r.status >= 400 else None)
                login(page, base, user)
                for name, path in review_pages(role, cid, other).items():
                    resp = page.goto(f"{base}{path}")
                    assert resp.status == 200, (path, resp.status)
                    page.wait_for_load_state("networkidle")
                    assert page.evaluate("document.documentElement.scrollWidth") <= width, (path, width)
                    alts = page.eval_on_selector_all("img", "els => els.map((e) => e.getAttribute('alt'))")
                    assert all(a and any(k in a for k in ALT_OK) for a in alts), (path, alts)
                    assert page.locator("a.skip").count() == 1
                    if name == "cluster":  # the sticky decision bar leaves most of the window to the work
                        bar = page.locator("#decision-bar").bounding_box()
                        share = bar["height"] / height
                        print(f"decision bar at {width} px: {bar['height']:.0f} px, {share:.0%} of the window")
                        assert share <= 0.25, (width, bar)
                    page.mouse.move(1, 1)
                    shot = DOCS_IMG / f"review_{name}_{role}_{width}.png"
                    page.screenshot(path=str(shot))
                    small_png(shot)
                if role == "supervisor":  # the resolve confirmation, with the votes
                    page.goto(f"{base}/review/disputed")
                    page.check(f"[data-cluster='{other}'] input[value=not_illegal]")
                    page.fill(f"[data-cluster='{other}'] input[name=note]", "adult, clear")
                    page.click(f"[data-cluster='{other}'] button[type=submit]")
                    assert "ana (analyst): Illegal under national law" in page.locator("#votes").inner_text()
                    assert page.evaluate("document.documentElement.scrollWidth") <= width
                    shot = DOCS_IMG / f"review_resolve_{role}_{width}.png"
                    page.screenshot(path=str(shot))
                    small_png(shot)
                assert not failed, failed
        browser.close()
