"""The review pages' honest answers (TestClient, both stores): errors come back on the form with the input kept,
a supervisor's resolution needs a reason, labels from the category scheme instead of names, queue totals and
"n of m", each location once, the skip link and the favicon. Generated, benign pictures only."""

from __future__ import annotations

import re

import test_web_review
from fastapi.testclient import TestClient
from test_web_review import UNKNOWN_SEEDS, client, form, item_ids, jpeg, sha

from vigie.review import decisions, queue, summary

kit = test_web_review.kit  # the fixture: an app, a bank that knows one picture, two unknown ones queued


def test_a_decision_without_a_category_comes_back_on_the_form_with_the_note(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    c, csrf = client(app, store, "analyst", clock)
    r = form(c, f"/review/clusters/{cid}/decide", csrf, {"note": "looked at the hashes", "bank": "review-confirmed"})
    assert r.status_code == 422
    assert 'id="decide-error" role="alert">Choose a category first. Your note was kept.' in r.text
    assert 'value="looked at the hashes"' in r.text and "Something went wrong" not in r.text
    r = form(c, f"/review/clusters/{cid}/decide", csrf, {"category": "nonsense", "note": "kept too"})
    assert r.status_code == 400 and "unknown category" in r.text and 'value="kept too"' in r.text
    assert decisions.decisions_of(store, cid) == []


def test_upload_without_a_file_keeps_the_note(kit):
    app, clock, store, _ = kit
    c, csrf = client(app, store, "analyst", clock)
    r = form(c, "/review/upload", csrf, {"note": "report 7"})
    assert r.status_code == 422 and 'data-code="missing_value"' in r.text and 'value="report 7"' in r.text


def test_the_api_resolution_needs_a_reason_and_says_the_label(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    sup, _ = client(app, store, "supervisor", clock)
    r = sup.post(f"/api/v1/review/clusters/{cid}/resolve", json={"category": "not_illegal"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_value"
    assert decisions.decisions_of(store, cid) == []
    r = sup.post(f"/api/v1/review/clusters/{cid}/resolve", json={"category": "not_illegal", "note": "adult, clear"})
    assert r.status_code == 200 and r.json()["message"].startswith("Resolved as Not illegal:")
    assert [d["note"] for d in decisions.decisions_of(store, cid)] == ["adult, clear"]


def test_labels_not_names_on_the_queue_and_cluster_pages(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[1]))]
    decisions.decide(store, store.settings, cid, "analyst", "illegal_national", None)
    decisions.decide(store, store.settings, cid, "bob", "not_illegal", None)
    sup, _ = client(app, store, "supervisor", clock)
    for path in ("/review", "/review/disputed", f"/review/clusters/{cid}"):
        text = sup.get(path).text
        assert "Illegal under national law" in text, path
        assert not re.search(r">[^<]*\b(illegal_national|not_illegal)\b[^<]*<", text), path
    # the cluster page's resolve form chooses nothing beforehand and asks for a reason
    page = sup.get(f"/review/clusters/{cid}").text
    resolve = page.split('id="resolve"')[1].split("</form>")[0]
    assert "checked" not in resolve and "selected" not in resolve.split("Bank")[0]
    assert 'name="note" maxlength="4000" size="50" required' in resolve


def test_queue_totals_and_n_of_m(kit):
    app, clock, store, _ = kit
    ids = item_ids(store)
    first = queue.list_queue(store, user="analyst")[0]["id"]
    c, _ = client(app, store, "analyst", clock)
    q = c.get("/api/v1/review/queue").json()["totals"]
    assert q["clusters"] == 2 and q["items"] == 2 and q["by_source"] == {"scan": {"clusters": 2, "items": 2}}
    assert q["by_priority"] == {"raised": 0, "normal": 2, "lowered": 0}
    assert "<strong>2</strong> clusters (2 items) waiting for you" in c.get("/review").text
    assert c.get(f"/api/v1/review/clusters/{first}").json()["position"] == 1
    assert '1 of 2 waiting for you' in c.get(f"/review/clusters/{first}").text
    decisions.decide(store, store.settings, first, "analyst", "not_illegal", None)
    assert summary.position(store, first, user="analyst") == (None, 1)
    assert "Not in your queue (1 waiting)" in c.get(f"/review/clusters/{first}").text
    assert summary.position(store, first) == (1, 2)  # a supervisor's view: still waiting for a second vote
    assert len(ids) == 2


def test_skip_link_favicon_and_each_location_once(kit, tmp_path):
    app, clock, store, _ = kit
    data = jpeg(UNKNOWN_SEEDS[0])
    for _ in range(2):  # the same file from the same place twice
        queue.enqueue_media(store, store.settings, data, source="report", location="report-9/a.jpg")
    _iid, cid = item_ids(store)[sha(data)]
    c, _ = client(app, store, "analyst", clock)
    page = c.get(f"/review/clusters/{cid}").text
    assert page.index('class="skip" href="#main"') < page.index("<header")
    assert 'id="main"' in page
    assert page.count("<code>report-9/a.jpg</code>") == 1
    r = TestClient(app).get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon" and r.content[:4] == b"\0\0\1\0"
