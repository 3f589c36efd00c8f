"""The review pages in a real browser (Debian's Chromium via Playwright) against uvicorn on loopback.

Analyst 1 opens the queue (no media on it), opens a cluster and sees a small, blurred, grey picture, reveals
colour then sharpness (the picture's address changes each time, and falls back when the item is left), and
decides; analyst 2 confirms; the hashes are in the bank and a new scan of the same picture queues nothing; an
analyst gets 403 on the supervisors' exposure page. Leaves docs/img/review_queue.png and review_cluster.png.
Every picture is generated (vigie.demo.photo_like).
"""

from __future__ import annotations

import base64
import io
import os
import time

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from test_web_review import KNOWN_SEED, jpeg, scan, sha

from vigie import accounts
from vigie.banks import service as banks
from vigie.review import queue
from vigie.store.review_models import ExposureEvent, ReviewItem

from servers import serving
from test_web_browser import ARGS, CHROMIUM, DOCS_IMG
from test_web_kit import PASSWORD, fast_hashing

UNKNOWN = (601, 602, 603)


@pytest.fixture
def review_server(settings, monkeypatch, tmp_path):
    from vigie.store import Store
    from vigie.web import create_app

    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    fast_hashing(monkeypatch)
    store = Store.open(settings)
    for name in ("ana", "bob"):
        accounts.create_user(store, name, "analyst", PASSWORD)
    banks.create_bank(store, "hotline-known", description="benign generated pictures")
    banks.add_media(store, "hotline-known", jpeg(KNOWN_SEED), settings)
    src = tmp_path / "seized"
    src.mkdir()
    (src / "known.jpg").write_bytes(jpeg(KNOWN_SEED))
    for s in UNKNOWN:
        (src / f"u{s}.jpg").write_bytes(jpeg(s, 480, 360))
    sid, klass = scan(store, src, tmp_path / "out1")
    assert klass["known.jpg"] == "exact"
    assert queue.enqueue_scan(store, settings, sid)["items_added"] == len(UNKNOWN)
    with serving(create_app(store, settings)) as base:
        yield base, store, tmp_path
    store.close()


def login(page, base, username):
    page.goto(f"{base}/login?next=/review")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/review")


def grey(data: bytes) -> bool:
    a = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def loaded(page, selector: str, src_end: str) -> None:
    page.wait_for_function("([sel, end]) => { const i = document.querySelector(sel);"
                           " return i && i.src.endsWith(end) && i.complete && i.naturalWidth > 0; }",
                           arg=[selector, src_end], timeout=5000)


def test_two_analysts_review_a_cluster_in_the_browser(review_server):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    base, store, tmp = review_server
    pic = jpeg(UNKNOWN[0], 480, 360)
    with store.sessions() as s:
        item = s.scalar(select(ReviewItem).where(ReviewItem.sha256 == sha(pic)))
        iid, cid = item.id, item.cluster_id
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1200, "height": 760})
        page = ctx.new_page()
        login(page, base, "ana")
        assert page.locator("#queue tr[data-cluster]").count() == len(UNKNOWN)
        assert page.locator("img").count() == 0  # the queue shows no media at all
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "review_queue.png"), full_page=True)

        page.click(f"#queue a[href='/review/clusters/{cid}']")
        page.wait_for_url(f"{base}/review/clusters/{cid}")
        page.click(f"#cell-{iid}")  # the item opens in the pane, still small, blurred and grey
        img_sel = "#stage"
        base_src = f"/review/items/{iid}/media"
        loaded(page, img_sel, base_src)
        img = page.locator(img_sel)
        assert "blurred" in img.get_attribute("class") and "grey" in img.get_attribute("class")
        assert "blur(" in img.evaluate("el => getComputedStyle(el).filter")
        served = page.request.get(f"{base}{base_src}")
        assert served.ok and grey(served.body())
        assert max(Image.open(io.BytesIO(served.body())).size) <= 160
        page.mouse.move(5, 5)
        page.screenshot(path=str(DOCS_IMG / "review_cluster.png"), full_page=True)

        item_el = page.locator("#pane .reveal")
        item_el.locator("button", has_text="Colour").click()
        loaded(page, img_sel, f"{base_src}?steps=colour")
        assert "grey" not in img.get_attribute("class") and "blurred" in img.get_attribute("class")
        item_el.locator("button", has_text="Sharpen").click()
        loaded(page, img_sel, f"{base_src}?steps=colour,sharp")
        assert "blurred" not in img.get_attribute("class")
        # leaving the item: the blurred preview again, and the server is told the reveal stopped
        page.locator("#decide input[value=illegal_national]").check()
        loaded(page, img_sel, base_src)
        assert "blurred" in img.get_attribute("class")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with store.sessions() as s:
                evs = list(s.scalars(select(ExposureEvent).where(ExposureEvent.user == "ana")))
            if evs and all(e.ended_at is not None for e in evs):
                break
            time.sleep(0.05)
        assert [e.kind for e in evs] == ["reveal_colour", "reveal_sharp"]
        assert all(e.ended_at is not None for e in evs)
        page.fill("#decide input[name=note]", "clear case")
        page.click("#decide button[type=submit]")
        page.click("#confirm-decision button[value=yes]")  # the decision asks first
        assert "waiting for 1 more analyst" in page.locator("#result").inner_text()

        ctx2 = browser.new_context(viewport={"width": 1200, "height": 760})
        page2 = ctx2.new_page()
        login(page2, base, "bob")
        page2.goto(f"{base}/review/clusters/{cid}")
        assert "clear case" not in page2.content()  # analysts never see each other's votes
        page2.locator("#decide input[value=illegal_national]").check()
        page2.click("#decide button[type=submit]")
        page2.click("#confirm-decision button[value=yes]")
        assert page2.locator("#result").inner_text() == "Confirmed: hashes added to bank review-confirmed."
        resp = page2.goto(f"{base}/review/exposure")
        assert resp.status == 403 and "Not allowed" in page2.content()
        browser.close()

    counts = {b.name: b.counts for b in banks.list_banks(store)}["review-confirmed"]
    assert counts.get("sha256", 0) >= 1 and counts.get("pdq", 0) >= 1
    src = tmp / "again"
    src.mkdir()
    (src / "same.jpg").write_bytes(pic)
    sid, klass = scan(store, src, tmp / "out2")
    assert klass["same.jpg"] == "exact"
    assert queue.enqueue_scan(store, store.settings, sid)["items_added"] == 0
    assert cid not in {c["id"] for c in queue.list_queue(store)}
