"""Decisions at the grain of the work in the web app (TestClient, both stores): a label and annotations per item from
the item pane, splitting an item out, and a bulk decision from the queue page, as pages and as JSON.
Generated, benign pictures only."""

from __future__ import annotations

import test_web_review
from test_web_review import UNKNOWN_SEEDS, client, form, item_ids, jpeg, sha

from vigie.demo import encode, photo_like
from vigie.review import decisions, queue

kit = test_web_review.kit  # the fixture: an app, a bank that knows one picture, two unknown ones queued (a scan)


def two_copies(store, seed=640):
    base = photo_like(seed, 320, 240)
    out = [queue.enqueue_media(store, store.settings, encode(base.resize(wh), "JPEG"), source="report",
                               ref={"report": seed}) for wh in ((320, 240), (480, 360))]
    assert out[0]["cluster"] == out[1]["cluster"]
    return out[0]["cluster"], out[0]["item"], out[1]["item"]


def test_the_item_pane_labels_and_annotates_each_item_and_the_help_says_the_keys(kit):
    app, clock, store, _ = kit
    cid, a, b = two_copies(store)
    c, csrf = client(app, store, "analyst", clock)
    page = c.get(f"/review/clusters/{cid}").text
    assert f'<select name="item_category" form="decide" class="item-cat" data-item="{b}"' in page
    assert f'value="{a}:viral"' in page and "Possible self-production" in page
    assert f'action="/review/items/{a}/split"' in page
    assert "<kbd>l</kbd></th><td>label the selected item" in page and "<kbd>Shift</kbd>+<kbd>X</kbd>" in page
    r = form(c, f"/review/clusters/{cid}/decide", csrf, {"category": "illegal_national",
                                                          "item_category": ["", f"{b}:not_illegal"],
                                                          "item_annotation": [f"{a}:viral", f"{a}:infant"]})
    assert r.status_code == 200, r.text[:300]
    [d] = decisions.decisions_of(store, cid)
    assert d["category"] == "illegal_national"
    assert d["per_item"] == {"categories": {str(b): "not_illegal"}, "annotations": {str(a): ["infant", "viral"]}}
    # the second analyst by JSON, agreeing item by item: each item banked with its own verdict
    bob, _ = client(app, store, "bob", clock)
    r = bob.post(f"/api/v1/review/clusters/{cid}/decide",
                 json={"category": "illegal_national", "item_categories": {str(b): "not_illegal"}})
    assert r.status_code == 200 and r.json()["state"] == "decided", r.text
    r = bob.post(f"/api/v1/review/clusters/{cid}/decide",
                 json={"category": "illegal_national", "item_annotations": {str(a): ["nude"]}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_annotation"


def test_split_from_the_page_and_the_api(kit):
    app, clock, store, _ = kit
    cid, a, b = two_copies(store, 650)
    c, csrf = client(app, store, "analyst", clock)
    r = form(c, f"/review/items/{b}/split", csrf, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/review/clusters/{cid}?split=")
    new = int(r.headers["location"].rsplit("=", 1)[1])
    page = c.get(r.headers["location"]).text
    assert 'id="split-notice"' in page and f'href="/review/clusters/{new}"' in page
    assert item_ids(store)[queue.item_of(store, b).sha256] == (b, new)
    r = c.post(f"/api/v1/review/items/{b}/split")  # alone in its cluster now
    assert r.status_code == 400 and r.json()["error"]["code"] == "split_single"
    # a decided cluster: refused
    _iid, scan_cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    sup, _ = client(app, store, "supervisor", clock)
    sup.post(f"/api/v1/review/clusters/{scan_cid}/resolve", json={"category": "not_illegal", "note": "adult"})
    r = c.post(f"/api/v1/review/items/{_iid}/split")
    assert r.status_code == 409 and r.json()["error"]["code"] == "item_not_waiting"


def test_bulk_decision_from_the_queue_page_and_the_api(kit):
    app, clock, store, _ = kit
    ids = item_ids(store)
    scans = [ids[sha(jpeg(s))][1] for s in UNKNOWN_SEEDS]
    report, _a, _b = two_copies(store, 660)
    c, csrf = client(app, store, "analyst", clock)
    page = c.get("/review").text
    for cid in scans:
        assert f'name="cluster" value="{cid}" form="bulk" data-source="scan"' in page
    assert 'action="/review/bulk-decide" id="bulk"' in page
    r = c.post("/api/v1/review/bulk-decide", json={"clusters": [scans[0], report], "category": "not_illegal"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "mixed_sources"
    r = form(c, "/review/bulk-decide", csrf, {"cluster": [str(x) for x in scans], "category": "not_illegal"})
    assert r.status_code == 200 and "“Not illegal” recorded on 2 clusters (0 now decided)." in r.text
    bob, bcsrf = client(app, store, "bob", clock)
    r = bob.post("/api/v1/review/bulk-decide", json={"clusters": scans, "category": "not_illegal"})
    assert r.status_code == 200 and r.json()["decided"] == 2
    assert [x["state"] for x in r.json()["results"]] == ["decided", "decided"]
    r = form(bob, "/review/bulk-decide", bcsrf, {"cluster": [str(scans[0])], "category": "not_illegal"})
    assert "Not recorded: #" in r.text and "decided already" in r.text
