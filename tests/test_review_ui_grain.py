"""Decisions at the grain of the work in a real browser (Debian's Chromium via Playwright) against uvicorn on
loopback, with the keyboard alone: a label and an annotation for one item of the 9-item cluster from the item pane,
a split, the decision, then a bulk decision over two clusters from the queue page. Generated, benign pictures only.
"""

from __future__ import annotations

import pytest
from review_ui_kit import Counter, login, review_app

from vigie.review import decisions

from test_web_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")


def test_labels_per_item_a_split_and_a_bulk_decision_by_keyboard(settings, monkeypatch, browser):
    with review_app(settings, monkeypatch) as (base, store, cid):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.on("dialog", lambda d: d.accept())  # the split's "are you sure": accepted, as by Enter
        login(page, base, "ana")
        page.goto(f"{base}/review/clusters/{cid}")
        items = page.eval_on_selector_all(".cell", "els => els.map((e) => +e.dataset.item)")
        bar = page.locator("#decision-bar").bounding_box()
        k = Counter(page)
        k.press("j")
        k.press("j")  # item 3: out into a cluster of its own (first: the split reloads the page)
        k.press("Shift+X")
        page.wait_for_url(f"{base}/review/clusters/{cid}?split=*")
        assert page.locator("#split-notice").is_visible() and page.locator(".cell").count() == 8
        k.press("j")  # item 2: its own label and an annotation
        k.press("l")
        assert page.evaluate("document.activeElement.id") == f"item-cat-{items[1]}"
        k.press("ArrowDown")  # the first category after "as the cluster"
        k.press("Escape")
        assert page.evaluate(f"document.getElementById('item-cat-{items[1]}').value") == \
            f"{items[1]}:illegal_baseline"
        assert "own-label" in page.get_attribute(f"#cell-{items[1]}", "class")
        k.press("m")
        k.press("Space")  # the first annotation: possible self-production
        k.press("Escape")
        assert page.locator("#decision-bar").bounding_box() == bar  # nothing moved under the pointer
        k.press("s")  # illegal under national law for the other items
        k.press("Enter")
        assert "7 items, 1 labelled on its own" in page.locator("#confirm-text").inner_text()
        k.press("Enter")
        page.wait_for_url("**/decide")
        [d] = decisions.decisions_of(store, cid)
        assert d["category"] == "illegal_national"
        assert d["per_item"]["categories"] == {str(items[1]): "illegal_baseline"}
        assert d["per_item"]["annotations"] == {str(items[1]): ["self_production"]}
        assert str(items[2]) not in d["per_item"]["categories"]  # the split item's own label went nowhere
        # the queue: tick two clusters of the same source, one category, record
        page.goto(f"{base}/review")
        boxes = page.eval_on_selector_all("#queue input[name=cluster]", "els => els.map((e) => e.value)")
        others = [b for b in boxes if int(b) != cid][:2]
        for v in others:
            k.tab_to(f"el.name === 'cluster' && el.value === '{v}'")
            k.press("Space")
        k.tab_to("el.name === 'category' && el.closest('#bulk')")
        k.press("ArrowDown")
        k.press("ArrowDown")
        k.press("ArrowDown")  # "Not illegal"
        k.tab_to("el.type === 'submit' && el.closest('#bulk')")
        k.press("Enter")
        page.wait_for_selector("#message")
        assert "“Not illegal” recorded on 2 clusters (0 now decided)." in page.locator("#message").inner_text()
        for v in others:
            assert [x["category"] for x in decisions.decisions_of(store, int(v))] == ["not_illegal"]
        print(f"\nper-item label, annotation, split, decision, bulk decision: {k.keys} keys, {k.clicks} clicks")
