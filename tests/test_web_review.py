"""The review pages and their JSON twins (TestClient, injected clock): a queue without media, blurred grey
previews, counted reveals, locks without sleeping, consensus into a bank, roles and CSRF.

Every picture is generated (vigie.demo.photo_like); runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from vigie import accounts
from vigie.banks import service as banks
from vigie.demo import encode, photo_like
from vigie.ingest.scan import run_scan, scan_key
from vigie.review import media, queue, wellbeing
from vigie.store.models import Scan, ScanFile
from vigie.store.review_models import ReviewItem

from test_web_kit import PASSWORD, make_kit, session_client

KNOWN_SEED, UNKNOWN_SEEDS = 500, (501, 502)


def jpeg(seed: int, w: int = 320, h: int = 240) -> bytes:
    return encode(photo_like(seed, w, h), "JPEG")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scan(store, folder, out) -> tuple[int, dict[str, str]]:
    run_scan(store, store.settings, [str(folder)], str(out), workers=1)
    with store.sessions() as s:
        sid = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(folder)], None)))
        return sid, {os.path.basename(r.location): r.klass
                     for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == sid))}


@pytest.fixture
def kit(store, monkeypatch, tmp_path):
    """An app with one account per role and a second analyst, a known picture in a bank, and a scan of a folder
    holding it and two unknown pictures, queued for review."""
    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    app, clock, store = make_kit(store, monkeypatch)
    accounts.create_user(store, "bob", "analyst", PASSWORD)
    banks.create_bank(store, "hotline-known", description="benign generated pictures")
    banks.add_media(store, "hotline-known", jpeg(KNOWN_SEED), store.settings)
    src = tmp_path / "seized"
    src.mkdir()
    (src / "known.jpg").write_bytes(jpeg(KNOWN_SEED))
    for s in UNKNOWN_SEEDS:
        (src / f"u{s}.jpg").write_bytes(jpeg(s))
    sid, klass = scan(store, src, tmp_path / "out1")
    assert klass["known.jpg"] == "exact" and klass["u501.jpg"] == "unknown"
    report = queue.enqueue_scan(store, store.settings, sid)
    assert report["items_added"] == 2
    return app, clock, store, tmp_path


def client(app, store, who, clock):
    c, csrf = session_client(app, store, who, clock)
    c.headers["X-CSRF-Token"] = csrf  # JSON calls; page forms send the form field instead
    return c, csrf


def form(c, url: str, csrf: str, data: dict | None = None, **kw):
    """A page form: the token in the form field `csrf_token`, as a browser sends it (no header)."""
    tok = c.headers.pop("X-CSRF-Token", None)
    try:
        return c.post(url, data={**(data or {}), "csrf_token": csrf}, **kw)
    finally:
        if tok:
            c.headers["X-CSRF-Token"] = tok


def item_ids(store) -> dict[str, tuple[int, int]]:
    with store.sessions() as s:
        return {it.sha256: (it.id, it.cluster_id) for it in s.scalars(select(ReviewItem))}


def image(resp) -> Image.Image:
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["content-type"] == "image/jpeg"
    assert resp.headers["cache-control"] == "no-store"
    img = Image.open(io.BytesIO(resp.content))
    img.load()
    return img


def is_grey(img: Image.Image) -> bool:
    rgb = img.convert("RGB")
    a = np.asarray(rgb).astype(int)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def test_queue_lists_clusters_without_any_media_and_known_material_never_appears(kit):
    app, clock, store, _ = kit
    ids = item_ids(store)
    assert sha(jpeg(KNOWN_SEED)) not in ids  # never queued
    c, _ = client(app, store, "analyst", clock)
    page = c.get("/review")
    assert page.status_code == 200
    assert "<img" not in page.text and "<video" not in page.text
    rows = re.findall(r'data-cluster="(\d+)"', page.text)
    assert sorted(map(int, rows)) == sorted({cid for _i, cid in ids.values()})
    assert "scan" in page.text and "Revealed today" in page.text
    api = c.get("/api/v1/review/queue").json()
    assert {x["id"] for x in api["clusters"]} == {cid for _i, cid in ids.values()}
    assert api["disputed"] is None and api["exposure"]["locked"] is False
    assert all({"state", "size", "source", "age_s", "ai_likely"} <= set(x) for x in api["clusters"])
    # the cluster page: text and hashes for every item, one blurred preview per queued item, nothing else
    _iid, cid = ids[sha(jpeg(UNKNOWN_SEEDS[0]))]
    page = c.get(f"/review/clusters/{cid}")
    assert page.status_code == 200
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', page.text)
    assert srcs and all(re.fullmatch(r"/review/items/\d+/media", s) for s in srcs)
    assert 'class="review-media blurred grey"' in page.text
    assert sha(jpeg(UNKNOWN_SEEDS[0])) in page.text and sha(jpeg(KNOWN_SEED)) not in page.text
    for label, key in (("Colour", 1), ("Sharpen", 2), ("Full size", 3)):
        assert f">{label} <kbd>{key}</kbd></button>" in page.text
    # the next cluster, by redirect
    r = c.get("/review/next", follow_redirects=False)
    assert r.status_code == 303 and re.fullmatch(r"/review/clusters/\d+", r.headers["location"])


def test_media_are_small_grey_and_blurred_until_a_counted_reveal(kit):
    app, clock, store, _ = kit
    iid, _cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    c, _ = client(app, store, "analyst", clock)
    thumb = wellbeing.policy_for(store, "analyst").thumb_px
    img = image(c.get(f"/review/items/{iid}/media"))
    assert max(img.size) <= thumb and is_grey(img)
    assert c.get("/api/v1/review/me").json()["exposed_today_s"] == 0  # the preview is no reveal
    img = image(c.get(f"/review/items/{iid}/media?steps=colour"))
    assert max(img.size) <= thumb and not is_grey(img)
    assert c.get(f"/review/items/{iid}/media?steps=colour,sharp,full").status_code == 400  # no skipped step
    clock.advance(seconds=10)
    assert c.post("/api/v1/review/heartbeat").status_code == 200
    c.get(f"/review/items/{iid}/media?steps=colour,sharp")
    clock.advance(seconds=10)
    img = image(c.get(f"/review/items/{iid}/media?steps=colour,sharp,full"))
    assert img.size == (320, 240) and not is_grey(img)
    clock.advance(seconds=10)
    stop = c.post("/api/v1/review/reveal/stop", json={"item_id": iid}).json()
    assert stop["seconds"] == 10 and stop["exposure"]["exposed_today_s"] == 30
    clock.advance(seconds=60)  # nothing open: no more counted
    assert c.get("/api/v1/review/me").json()["exposed_today_s"] == 30
    assert c.get(f"/review/items/{iid}/media?steps=xray").status_code == 400
    assert c.get("/review/items/999999/media").status_code == 404
    # purged media: gone for good, the description and hashes remain
    media.purge_media(store, store.settings, [sha(jpeg(UNKNOWN_SEEDS[0]))], by="test", reason="test")
    r = c.get(f"/review/items/{iid}/media")
    assert r.status_code == 410 and 'data-code="media_purged"' in r.text
    assert c.get(f"/review/clusters/{_cid}").status_code == 200


def test_openapi_documents_the_review_twins(kit):
    app, clock, store, _ = kit
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    for p in ("/api/v1/review/queue", "/api/v1/review/clusters/{cluster_id}/decide", "/api/v1/review/exposure",
              "/api/v1/review/heartbeat", "/api/v1/review/reveal/stop", "/api/v1/review/upload"):
        assert p in paths, p


def test_warning_then_lock_then_open_again_with_the_clock_moved(kit):
    app, clock, store, _ = kit
    iid, _cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    sup, _ = client(app, store, "supervisor", clock)
    r = sup.post("/api/v1/review/policy/team", json={"daily_limit_min": 10, "warning_min": 5})
    assert r.status_code == 200 and r.json()["team"]["daily_limit_min"] == 10
    c, _ = client(app, store, "analyst", clock)
    image(c.get(f"/review/items/{iid}/media?steps=colour"))

    def beat(seconds):  # the open page's heartbeat, every 30 s (a reveal without one ends after 90 s)
        for _ in range(seconds // 30):
            clock.advance(seconds=30)
            x = c.post("/api/v1/review/heartbeat")
        return x.json()

    beat(4 * 60)
    x = beat(2 * 60)
    assert x["warning"] and not x["locked"] and x["remaining_s"] == 240
    assert "of review left before a break" in c.get("/review").text
    beat(4 * 60 + 30)
    r = c.get(f"/review/items/{iid}/media")
    assert r.status_code == 423 and "review is locked" in r.text
    api = c.get(f"/review/items/{iid}/media", headers={"Accept": "application/json"})
    assert api.status_code == 423
    assert c.get("/api/v1/review/next").json()["error"]["code"] == "review_locked"
    r = c.get("/review/next", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review?msg=locked"
    page = c.get("/review?msg=locked").text
    assert "Review is locked" in page and "2026-11-25 00:00" in page and 'id="next"' not in page
    cluster_page = c.get(f"/review/clusters/{_cid}").text
    assert "<img" not in cluster_page  # no preview during the break; the decision form stays
    assert 'action="/review/clusters/' in cluster_page
    clock.advance(hours=15)  # the next day (and a new login: the session expired overnight)
    c, _ = client(app, store, "analyst", clock)
    assert image(c.get(f"/review/items/{iid}/media")).size


def test_two_analysts_confirm_the_bank_learns_the_hashes_and_a_new_scan_queues_nothing(kit):
    app, clock, store, tmp = kit
    pic = jpeg(UNKNOWN_SEEDS[0])
    _iid, cid = item_ids(store)[sha(pic)]
    ana, ana_csrf = client(app, store, "analyst", clock)
    bob, bob_csrf = client(app, store, "bob", clock)
    r = form(ana, f"/review/clusters/{cid}/decide", ana_csrf,
             {"category": "illegal_national", "note": "clear case", "bank": "review-confirmed"})
    assert r.status_code == 200 and "waiting for 1 more analyst." in r.text
    # bob reviews blind: he sees that one person decided, never what or who
    view = bob.get(f"/api/v1/review/clusters/{cid}").json()
    assert view["decisions"] is None and view["decisions_so_far"] == 1
    page = bob.get(f"/review/clusters/{cid}").text
    assert "clear case" not in page and "analyst (analyst)" not in page
    sup, _ = client(app, store, "supervisor", clock)
    assert [d["user"] for d in sup.get(f"/api/v1/review/clusters/{cid}").json()["decisions"]] == ["analyst"]
    r = bob.post(f"/api/v1/review/clusters/{cid}/decide", json={"category": "illegal_national"})
    out = r.json()
    assert r.status_code == 200 and out["state"] == "decided", out
    assert out["message"] == "Confirmed: hashes added to bank review-confirmed."
    counts = {b.name: b.counts for b in banks.list_banks(store)}["review-confirmed"]
    assert counts.get("sha256", 0) >= 1 and counts.get("pdq", 0) >= 1
    # the same picture in a new scan is known now: nothing is queued
    src = tmp / "again"
    src.mkdir()
    (src / "same.jpg").write_bytes(pic)
    sid, klass = scan(store, src, tmp / "out2")
    assert klass["same.jpg"] == "exact"
    assert queue.enqueue_scan(store, store.settings, sid)["items_added"] == 0
    assert cid not in {x["id"] for x in ana.get("/api/v1/review/queue").json()["clusters"]}
    # a decided cluster takes no more decisions
    r = ana.post(f"/api/v1/review/clusters/{cid}/decide", json={"category": "not_illegal"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "cluster_decided"


def test_disputes_go_to_a_supervisor_who_resolves_and_reprioritises(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[1]))]
    ana, _ = client(app, store, "analyst", clock)
    bob, _ = client(app, store, "bob", clock)
    ana.post(f"/api/v1/review/clusters/{cid}/decide", json={"category": "illegal_national"})
    r = bob.post(f"/api/v1/review/clusters/{cid}/decide", json={"category": "not_illegal"}).json()
    assert r["state"] == "disputed" and "supervisor" in r["message"]
    sup, sup_csrf = client(app, store, "supervisor", clock)
    q = sup.get("/api/v1/review/queue").json()
    assert [d["cluster"] for d in q["disputed"]] == [cid]
    assert "Disputed" in sup.get("/review").text
    page = sup.get("/review/disputed")
    assert page.status_code == 200 and f'action="/review/clusters/{cid}/resolve"' in page.text
    other = next(c for _i, c in item_ids(store).values() if c != cid)
    r = form(sup, f"/review/clusters/{other}/priority", sup_csrf, {"priority": "5"}, follow_redirects=False)
    assert r.status_code == 303
    assert sup.get("/api/v1/review/queue").json()["clusters"][0]["priority_override"] == 5
    # resolving takes a reason and a confirmation that shows the votes; nothing is chosen beforehand
    assert "checked" not in page.text.split(f'data-cluster="{cid}"')[1].split("</form>")[0]
    r = form(sup, f"/review/clusters/{cid}/resolve", sup_csrf, {"category": "not_illegal", "bank": "review-confirmed"})
    assert r.status_code == 422 and "Give the reason" in r.text and 'value="not_illegal" required checked' in r.text
    r = form(sup, f"/review/clusters/{cid}/resolve", sup_csrf,
             {"category": "not_illegal", "note": "benign holiday scene", "bank": "review-confirmed"})
    assert r.status_code == 200 and 'id="confirm-resolve"' in r.text
    assert "analyst (analyst): <strong>Illegal under national law</strong>" in r.text
    assert "bob (analyst): <strong>Not illegal</strong>" in r.text
    assert [d["cluster"] for d in sup.get("/api/v1/review/disputed").json()] == [cid]  # not yet
    r = form(sup, f"/review/clusters/{cid}/resolve", sup_csrf, {"category": "not_illegal", "bank": "review-confirmed",
                                                                 "note": "benign holiday scene", "confirm": "yes"})
    assert r.status_code == 200 and "Resolved as Not illegal: hashes added" in r.text
    assert sup.get("/api/v1/review/disputed").json() == []
    note = [d for d in sup.get(f"/api/v1/review/clusters/{cid}").json()["decisions"] if d["role"] == "supervisor"]
    assert [(d["category"], d["note"]) for d in note] == [("not_illegal", "benign holiday scene")]
    # the decided cluster says so in words from the category scheme
    assert "Decided: Not illegal; hashes in bank review-confirmed." in sup.get(f"/review/clusters/{cid}").text


def test_upload_refuses_known_material_and_queues_the_rest(kit):
    app, clock, store, _ = kit
    c, csrf = client(app, store, "analyst", clock)
    r = form(c, "/review/upload", csrf, files={"file": ("k.jpg", jpeg(KNOWN_SEED), "image/jpeg")})
    assert r.status_code == 409 and 'data-code="known_material"' in r.text
    r = c.post("/api/v1/review/upload", files={"file": ("k.jpg", jpeg(KNOWN_SEED), "image/jpeg")})
    assert r.status_code == 409 and r.json()["error"]["code"] == "known_material"
    assert sha(jpeg(KNOWN_SEED)) not in item_ids(store)
    r = form(c, "/review/upload", csrf, {"note": "report 12"}, files={"file": ("n.jpg", jpeg(503), "image/jpeg")})
    assert r.status_code == 200 and "Queued as item" in r.text
    assert sha(jpeg(503)) in item_ids(store)
    assert c.get("/review/upload").status_code == 200


def test_exposure_and_policy_pages_by_role(kit):
    app, clock, store, _ = kit
    iid, _cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    ana, ana_csrf = client(app, store, "analyst", clock)
    image(ana.get(f"/review/items/{iid}/media?steps=colour"))
    clock.advance(seconds=90)
    ana.post("/api/v1/review/reveal/stop", json={})
    for path in ("/review/exposure", "/review/disputed", "/api/v1/review/exposure", "/api/v1/review/disputed"):
        assert ana.get(path).status_code == 403, path
    assert ana.post("/api/v1/review/policy/team", json={"blur_px": 0}).status_code == 403
    assert ana.post(f"/api/v1/review/clusters/{_cid}/priority", json={"priority": 1}).status_code == 403
    sup, _ = client(app, store, "supervisor", clock)
    page = sup.get("/review/exposure")
    assert page.status_code == 200 and '<svg id="chart-day"' in page.text and 'data-user="analyst"' in page.text
    day = sup.get("/api/v1/review/exposure").json()["day"]
    assert day["users"][0]["user"] == "analyst" and day["users"][0]["exposed_s"] == 90
    # an analyst's own settings: gentler ones take effect, harsher ones do not
    page = ana.get("/review/policy")
    assert page.status_code == 200 and 'id="team-policy"' not in page.text
    fields = {"form": "policy", "thumb_px": "96", "blur_px": "4", "grayscale": "on",
            "step_colour": "on", "step_sharp": "on", "video_muted": "on", "video_paused": "on",
            "keyframes_first": "on", "daily_limit_min": "60", "session_limit_min": "45", "break_min": "15",
            "warning_min": "5"}
    r = form(ana, "/review/policy", ana_csrf, fields, follow_redirects=False)
    assert r.status_code == 303
    eff = ana.get("/api/v1/review/policy").json()["effective"]
    assert eff["thumb_px"] == 96 and eff["blur_px"] == 12 and eff["daily_limit_min"] == 60
    assert eff["reveal_steps"] == ["colour", "sharp"]
    assert max(image(ana.get(f"/review/items/{iid}/media")).size) <= 96
    assert ana.get(f"/review/items/{iid}/media?steps=colour,sharp,full").status_code == 400
    assert "Full size <kbd>" not in ana.get(f"/review/clusters/{_cid}").text
    assert 'id="team-policy"' in sup.get("/review/policy").text


def test_csrf_is_required_on_every_review_post(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    c, csrf = session_client(app, store, "analyst", clock)  # no X-CSRF-Token header
    r = c.post(f"/review/clusters/{cid}/decide", data={"category": "not_illegal"})
    assert r.status_code == 403 and 'data-code="csrf"' in r.text
    for path in ("/api/v1/review/heartbeat", "/api/v1/review/reveal/stop",
                 f"/api/v1/review/clusters/{cid}/decide"):
        r = c.post(path, json={"category": "not_illegal"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", path
    r = c.post("/review/upload", files={"file": ("n.jpg", jpeg(504), "image/jpeg")})
    assert r.status_code == 403
    s, _ = session_client(app, store, "supervisor", clock)
    assert s.post(f"/review/clusters/{cid}/resolve", data={"category": "not_illegal"}).status_code == 403
    assert s.post(f"/review/clusters/{cid}/priority", data={"priority": "1"}).status_code == 403
    # with the token, the same decision goes through
    r = c.post(f"/review/clusters/{cid}/decide", data={"category": "not_illegal", "csrf_token": csrf})
    assert r.status_code == 200


def test_the_cluster_page_states_what_is_applied(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    c, _ = client(app, store, "analyst", clock)
    pol = wellbeing.policy_for(store, "analyst")
    page = c.get(f"/review/clusters/{cid}").text
    assert f"at most {pol.thumb_px} px" in page and f"blurred {pol.blur_px} px" in page
    wellbeing.set_personal_policy(store, "analyst", {"blur_px": pol.blur_px + 10})  # gentler: more blur
    assert f"blurred {pol.blur_px + 10} px" in c.get(f"/review/clusters/{cid}").text


def test_a_decided_cluster_page_shows_no_broken_picture_and_says_why(kit):
    app, clock, store, _ = kit
    iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    from vigie.review import decisions

    decisions.resolve(store, store.settings, cid, "supervisor", "not_illegal", note="test")
    c, _ = client(app, store, "analyst", clock)
    page = c.get(f"/review/clusters/{cid}").text
    assert f"/review/items/{iid}/media" not in page  # no address that would answer 403
    assert "Decided: its media are no longer shown to anyone." in page
    assert c.get(f"/review/items/{iid}/media").status_code == 403


def test_next_and_skip_go_through_the_queue_without_deciding(kit):
    app, clock, store, _ = kit
    c, _ = client(app, store, "analyst", clock)
    order = [x["id"] for x in queue.list_queue(store, user="analyst")]
    assert len(order) >= 2
    r = c.get("/review/next", follow_redirects=False)
    assert r.headers["location"] == f"/review/clusters/{order[0]}"
    r = c.get(f"/review/next?skip={order[0]}", follow_redirects=False)  # the ] key: passed over for now
    assert r.headers["location"] == f"/review/clusters/{order[1]}"
    every = ",".join(str(x) for x in order)
    r = c.get(f"/review/next?skip={every}", follow_redirects=False)  # all skipped: the most urgent again
    assert r.headers["location"] == f"/review/clusters/{order[0]}"
    assert c.get("/review/next?skip=" + "9" * 40, follow_redirects=False).status_code == 303  # bad ids ignored
    page = c.get(f"/review/clusters/{order[0]}").text
    assert "skip this cluster for now" in page and "next cluster (the most urgent you have not decided)" in page
