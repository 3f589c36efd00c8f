"""Reports from the public, the intake worker (crawl, record, re-check) and the public web pages.

A benign site on 127.0.0.1 serves generated pictures; some of them are planted in a test bank
as "known". Runs on SQLite and PostgreSQL where the store matters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from vigie import audit
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.demo import encode, photo_like
from vigie.demo_site import Route, Site
from vigie.errors import InvalidInput, NotFound
from vigie.hashing import hash_bytes
from vigie.ingest import reports, worker
from vigie.settings import Settings
from vigie.store.intake_models import ReportedUrl, Sighting
from vigie.store.review_models import ReviewItem

from servers import serving
from test_web_kit import make_kit, session_client

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def jpeg(seed: int, w: int = 320, h: int = 240, q: int = 90) -> bytes:
    return encode(photo_like(seed, w, h), "JPEG", quality=q)


def intake_settings(store, **kw) -> Settings:
    base = store.settings.model_dump() | dict(workers=1, crawl_hash_processes=False,
                                              crawl_allowed_networks=["127.0.0.1/32"],
                                              crawl_per_host_delay=0.0, crawl_timeout=1.0, crawl_fetch_seconds=3.0,
                                              crawl_max_media_bytes=1_000_000)
    return Settings(**(base | kw))


def plant(store, settings, *datas: bytes, bank: str = "known") -> None:
    """Put the MD5 and PDQ of each benign picture in a bank, as if it were known material."""
    banks.create_bank(store, bank)
    for d in datas:
        rec = hash_bytes(d, settings)
        banks.add_entry(store, bank, "md5", rec.md5, verdict=Verdict(legality="baseline"))
        banks.add_entry(store, bank, "pdq", rec.pdq, verdict=Verdict(legality="baseline"))


# ------------------------------------------------------------------------------------------------ reports


@pytest.mark.parametrize("raw,norm", [
    ("HTTP://Example.COM", "http://example.com/"),
    ("example.com/a/B.html?x=1#frag", "http://example.com/a/B.html?x=1"),
    ("https://example.com:443/p", "https://example.com/p"),
    ("http://example.com:8080/p", "http://example.com:8080/p"),
    ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
    ("http://[2001:db8::1]:81/", "http://[2001:db8::1]:81/"),
])
def test_urls_are_normalised_so_the_same_address_joins_one_case(raw, norm):
    assert reports.normalise_url(raw) == norm


@pytest.mark.parametrize("bad", ["", "   ", "ftp://example.com/x", "javascript:alert(1)", "http://user:pw@example.com/",
                                 "http://", "http://exa mple.com/", "http://example.com:99999/", "x" * 3000])
def test_urls_that_cannot_be_crawled_are_refused_with_a_code(bad):
    with pytest.raises(InvalidInput) as ei:
        reports.normalise_url(bad)
    assert ei.value.code == "bad_url"


def test_a_report_is_stored_with_a_reference_and_identical_urls_join_the_case(store):
    a = reports.submit(store, ["http://example.com/a", "EXAMPLE.com/a#x", "http://example.com/b"],
                       seen=["image"], description="on a forum", now=T0)
    assert a["reference"].startswith("VR-") and len(a["reference"]) == 17 and a["urls"] == 2
    b = reports.submit(store, ["http://example.com/a"], now=T0 + timedelta(hours=1))
    assert b["joined_existing"] == 1 and b["reference"] != a["reference"]
    with store.sessions() as s:
        rows = {r.url: r for r in s.scalars(select(ReportedUrl)).all()}
    assert set(rows) == {"http://example.com/a", "http://example.com/b"}
    assert rows["http://example.com/a"].report_count == 2
    st = reports.public_status(store, a["reference"].lower())
    assert st["status"] == "received" and st["urls"] == 2 and "url" not in st
    assert [r.action for r in audit.iter_records(store)] == ["report.received", "report.received"]


def test_a_bad_report_stores_nothing(store):
    with pytest.raises(InvalidInput):
        reports.submit(store, ["http://ok.example/", "gopher://x/"])
    with pytest.raises(InvalidInput) as ei:
        reports.submit(store, [f"http://e.example/{i}" for i in range(21)])
    assert ei.value.code == "too_many_urls"
    with pytest.raises(InvalidInput):
        reports.submit(store, ["http://ok.example/"], seen=["smell"])
    assert reports.list_reports(store) == []
    with pytest.raises(NotFound):
        reports.public_status(store, "VR-0000-0000-0000")


# ----------------------------------------------------------------------------------------------- worker


@pytest.fixture
def planted_site(store, media_key):
    """A site with two known pictures (one re-encoded, so only PDQ knows it), one new one, and noise."""
    settings = intake_settings(store)
    known_a, known_b, new_c = jpeg(1), jpeg(2), jpeg(3)
    plant(store, settings, known_a, known_b)
    site = Site()
    site.page("/", '<html><body><img src="/a.jpg"><img srcset="/b-small.jpg 1x, /b.jpg 2x">'
                   '<a href="/more.html">more</a><img src="/missing.jpg"><img src="/huge.jpg"></body>')
    site.page("/more.html", '<div><p>unclosed <img src="c.jpg"><img src="http://10.0.0.5/x.jpg">')
    site.file("/a.jpg", known_a).file("/b.jpg", jpeg(2, q=60)).file("/b-small.jpg", jpeg(2, 160, 120))
    site.file("/c.jpg", new_c)
    site.routes["/huge.jpg"] = Route(200, "image/jpeg", endless=5_000_000)
    site.page("/empty.html", "<p>nothing here</p>")
    return store, settings, site


def test_crawl_records_known_and_new_media_and_queues_only_the_new(planted_site):
    store, settings, site = planted_site
    with serving(site) as base:
        ref = reports.submit(store, [base + "/"], now=T0)["reference"]
        got = worker.crawl_pending(store, settings, now=T0)
    assert got["urls"] == 1 and got["known"] == 3 and got["unknown"] == 1
    with store.sessions() as s:
        sights = {x.media_url.removeprefix(base): x for x in s.scalars(select(Sighting)).all()}
        items = s.scalars(select(ReviewItem)).all()
    assert {k: v.outcome for k, v in sights.items()} == {
        "/a.jpg": "known", "/b.jpg": "known", "/b-small.jpg": "known", "/c.jpg": "unknown", "/huge.jpg": "error",
        "http://10.0.0.5/x.jpg": "error"}
    assert sights["/a.jpg"].match_detail["signal"] in ("md5", "sha256") and sights["/a.jpg"].distance == 0
    assert sights["/b.jpg"].match_detail["signal"] == "pdq" and sights["/b.jpg"].bank == "known"
    assert sights["/a.jpg"].ip == "127.0.0.1" and sights["/a.jpg"].http_status == 200
    assert sights["/a.jpg"].page_url == base + "/" and sights["/c.jpg"].page_url == base + "/more.html"
    assert sights["/huge.jpg"].error_code == "too_large"
    assert sights["http://10.0.0.5/x.jpg"].error_code == "private_address"
    assert [i.sha256 for i in items] == [sights["/c.jpg"].sha256] and items[0].source == "crawl"
    assert sights["/c.jpg"].review_item_id == items[0].id
    d = reports.report_detail(store, ref)
    assert d["status"] == "founded" and d["urls"][0]["outcome"] == "known" and d["urls"][0]["pages_fetched"] == 2


def test_a_url_with_nothing_is_closed_unfounded_with_the_reason(planted_site):
    store, settings, site = planted_site
    with serving(site) as base:
        r1 = reports.submit(store, [base + "/empty.html"], now=T0)["reference"]
        r2 = reports.submit(store, [base + "/nowhere.html"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
    s1, s2 = reports.public_status(store, r1), reports.public_status(store, r2)
    assert s1["status"] == "unfounded" and "no picture or video was found" in s1["reason"]
    with serving(site) as base:  # media that cannot be read are not "nothing found"
        site.routes["/broken.html"] = site.routes["/empty.html"].__class__(
            200, "text/html", b'<img src="/huge.jpg">')
        r3 = reports.submit(store, [base + "/broken.html"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
    assert "1 picture(s) or video(s) there could not be checked" in reports.public_status(store, r3)["reason"]
    assert s2["status"] == "unfounded" and "http_error" in s2["reason"] and "404" in s2["reason"]
    assert s1["closed_at"] is not None


def test_unknown_only_waits_for_review_and_follows_the_decision(planted_site):
    from vigie.review import decisions

    store, settings, site = planted_site
    settings = intake_settings(store, review_consensus=1)
    with serving(site) as base:
        ref = reports.submit(store, [base + "/more.html"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
    assert reports.public_status(store, ref)["status"] == "in_review"
    with store.sessions() as s:
        item = s.scalars(select(ReviewItem)).one()
    decisions.decide(store, settings, item.cluster_id, "ana", "illegal_baseline")
    reports.refresh_statuses(store, now=T0)
    assert reports.public_status(store, ref)["status"] == "founded"


def test_a_transient_failure_is_tried_again_later_then_given_up(store, tmp_path):
    settings = intake_settings(store, crawl_max_attempts=2, crawl_retries=0)  # no retry inside a round here
    site = Site()
    site.routes["/busy"] = Route(503, "text/plain", b"busy")
    with serving(site) as base:
        ref = reports.submit(store, [base + "/busy"], now=T0)["reference"]
        worker.crawl_pending(store, settings, now=T0)
        assert reports.public_status(store, ref)["status"] == "crawling"
        assert worker.crawl_pending(store, settings, now=T0 + timedelta(minutes=1))["urls"] == 0  # not yet
        worker.crawl_pending(store, settings, now=T0 + timedelta(minutes=11))
    st = reports.public_status(store, ref)
    assert st["status"] == "unfounded" and "http_transient" in st["reason"] and site.hits["/busy"] == 2


def test_two_workers_never_crawl_the_same_url(store):
    reports.submit(store, [f"http://example.com/{i}" for i in range(5)], now=T0)
    a = worker.claim(store, 3, T0)
    b = worker.claim(store, 3, T0)
    assert len(a) == 3 and len(b) == 2 and not set(a) & set(b)
    assert worker.claim(store, 10, T0 + timedelta(hours=2)) == sorted(a + b)  # stale claims are taken again


def test_a_stale_claim_seen_by_two_workers_is_taken_by_one(store):
    """Two servers both list a URL whose claim went stale, then both take it (the interleaving of two `claim`
    calls): one wins. It stays `running`, so checking the state alone let both take it and crawl it twice (found
    by the live test that SIGKILLs one of two crawling servers: one page's crawl events were written twice)."""
    reports.submit(store, ["http://example.com/stale"], now=T0)
    (uid,) = worker.claim(store, 1, T0)
    later = T0 + timedelta(hours=2)
    assert worker._take(store, uid, "running", later)
    assert not worker._take(store, uid, "running", later + timedelta(seconds=1))  # the other server, just after
    assert not worker._take(store, uid, "running", later)
    assert worker.claim(store, 1, later) == []


def test_recheck_records_removal_and_change(planted_site):
    store, settings, site = planted_site
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        worker.crawl_pending(store, settings, now=T0)
        assert worker.recheck_due(store, settings, now=T0 + timedelta(minutes=5))["checked"] == 0  # not due yet
        t1 = T0 + timedelta(hours=1, minutes=1)
        site.remove("/a.jpg")  # the host took one down ...
        site.file("/b.jpg", jpeg(9))  # ... and replaced another with an unrelated picture
        got = worker.recheck_due(store, settings, now=t1)
    assert got == {"checked": 3, "online": 1, "removed": 1, "changed": 1, "unreachable": 0}
    with store.sessions() as s:
        x = {v.media_url.removeprefix(base): v for v in s.scalars(select(Sighting)).all()}
    assert (x["/a.jpg"].state, x["/a.jpg"].last_check_status) == ("removed", 404)
    assert x["/b.jpg"].state == "changed" and x["/b-small.jpg"].state == "online"
    assert x["/a.jpg"].removed_at.replace(tzinfo=UTC) == t1
    assert {"takedown.removed", "takedown.changed"} <= {r.action for r in audit.iter_records(store)}


def test_unreachable_host_says_nothing_about_removal(planted_site):
    store, settings, site = planted_site
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        worker.crawl_pending(store, settings, now=T0)
    got = worker.recheck_due(store, settings, now=T0 + timedelta(hours=2))  # server stopped: connection refused
    assert got["unreachable"] == 3 and got["removed"] == 0


# ------------------------------------------------------------------------------------------------- web


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def test_public_form_needs_no_login_and_gives_a_reference(kit):
    app, clock, store = kit
    c = TestClient(app)
    page = c.get("/report")
    assert page.status_code == 200 and "IP address is not" in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/report", data={"csrf_token": token, "urls": "http://example.com/x\n\nexample.org/y",
                                "seen": ["image", "video"], "description": "d"})
    assert r.status_code == 201
    ref = r.text.split('id="reference">')[1].split("<")[0]
    d = reports.report_detail(store, ref)
    assert [u["url"] for u in d["urls"]] == ["http://example.com/x", "http://example.org/y"]
    assert d["seen"] == ["image", "video"] and d["channel"] == "web"
    st = c.get("/report/status", params={"reference": ref})
    assert st.status_code == 200 and 'id="status">received' in st.text
    assert c.get("/report/status", params={"reference": "VR-NOPE"}).status_code == 404


def test_public_form_refuses_a_missing_csrf_token_and_shows_bad_urls(kit):
    app, _, store = kit
    c = TestClient(app)
    assert c.post("/report", data={"urls": "http://example.com/x", "csrf_token": "forged"}).status_code == 403
    token = c.get("/report").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/report", data={"csrf_token": token, "urls": "ftp://example.com/x"})
    assert r.status_code == 422 and "only http and https" in r.text and "ftp://example.com/x" in r.text
    assert reports.list_reports(store) == []


def test_report_api_and_its_rate_limit_without_storing_the_address(kit):
    app, _, store = kit
    c = TestClient(app)
    store_settings = app.state.settings
    app.state.settings = store_settings.model_copy(update={"report_rate_limit_per_hour": 2})
    r = c.post("/api/v1/reports", json={"urls": ["http://example.com/1"], "seen": ["image"]})
    assert r.status_code == 201 and r.headers["location"] == r.json()["status_url"]
    ref = r.json()["reference"]
    assert c.get(f"/api/v1/reports/{ref}").json()["status"] == "received"
    assert c.post("/api/v1/reports", json={"urls": ["http://example.com/2"]}).status_code == 201
    third = c.post("/api/v1/reports", json={"urls": ["http://example.com/3"]})
    assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"
    assert int(third.headers["retry-after"]) >= 1
    bad = c.post("/api/v1/reports", json={"urls": []})
    assert bad.status_code == 422
    assert c.get("/api/v1/reports/VR-0000-0000-0000").json()["error"]["code"] == "report_not_found"
    dumped = repr([reports.report_detail(store, x["reference"]) for x in reports.list_reports(store)])
    assert "testclient" not in dumped and "127.0.0.1" not in dumped


def test_analysts_see_reports_and_what_was_found(kit):
    app, _, store = kit
    ref = reports.submit(store, ["http://example.com/x"], description="on a forum", contact="me@example.org")[
        "reference"]
    c, _ = session_client(app, store, "analyst")
    page = c.get("/intake")
    assert page.status_code == 200 and ref in page.text
    detail = c.get(f"/intake/{ref}")
    assert detail.status_code == 200 and "http://example.com/x" in detail.text and "me@example.org" in detail.text
    api = c.get(f"/api/v1/intake/reports/{ref}").json()
    assert api["urls"][0]["crawl_state"] == "pending"
    assert TestClient(app).get("/api/v1/intake/reports").status_code == 401


def test_videos_on_a_page_are_recognised_by_vpdq_and_new_ones_queued(store, media_key, tmp_path):
    """A known video re-encoded at another bit rate (other bytes: only vPDQ knows it) and a new video."""
    import numpy as np

    from factory import video

    settings = intake_settings(store, crawl_max_media_bytes=20_000_000)
    stills = [np.asarray(photo_like(s, 160, 120)) for s in (31, 32, 33)]
    original = video(tmp_path / "orig.mp4", stills).read_bytes()
    reencoded = video(tmp_path / "re.mp4", stills, bit_rate=150_000).read_bytes()
    other = video(tmp_path / "new.mp4", [np.asarray(photo_like(s, 160, 120)) for s in (41, 42)]).read_bytes()
    assert original != reencoded
    banks.create_bank(store, "known-videos")
    banks.add_media(store, "known-videos", original, settings, verdict=Verdict(legality="baseline"))
    site = Site().page("/", '<video controls><source src="/v.mp4" type="video/mp4"></video>'
                            '<a href="/clips/new.mp4">another clip</a>')
    site.file("/v.mp4", reencoded, "video/mp4").file("/clips/new.mp4", other, "video/mp4")
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        got = worker.crawl_pending(store, settings, now=T0)
    assert (got["known"], got["unknown"]) == (1, 1)
    with store.sessions() as s:
        x = {v.media_url.removeprefix(base): v for v in s.scalars(select(Sighting)).all()}
        items = s.scalars(select(ReviewItem)).all()
    assert x["/v.mp4"].outcome == "known" and x["/v.mp4"].match_detail["signal"] == "vpdq"
    assert x["/v.mp4"].media_type.startswith("video/") and x["/v.mp4"].bank == "known-videos"
    assert x["/clips/new.mp4"].outcome == "unknown" and [i.media_type.split("/")[0] for i in items] == ["video"]


def test_a_url_whose_crawls_keep_dying_is_given_up(store):
    settings = intake_settings(store, crawl_max_attempts=2, crawl_retries=0)  # no retry inside a round here
    ref = reports.submit(store, ["http://example.com/crashes-us"], now=T0)["reference"]
    for hours in (0, 2):  # claimed, then the worker dies each time (nothing records the crawl)
        assert len(worker.claim(store, 5, T0 + timedelta(hours=hours), settings)) == 1
    assert worker.claim(store, 5, T0 + timedelta(hours=4), settings) == []
    d = reports.report_detail(store, ref)
    assert d["urls"][0]["crawl_state"] == "failed" and d["urls"][0]["error_code"] == "crawl_abandoned"
    assert d["status"] == "unfounded" and "crawl_abandoned" in d["reason"]


def test_the_worker_process_of_vigie_serve_crawls_and_stops(tmp_path):
    """The worker runs in a child process (a decoder crash must not take the web server down)."""
    import time

    from vigie.store import Store

    settings = Settings(data_dir=tmp_path / "data", workers=1, crawl_allowed_networks=["127.0.0.1/32"],
                        crawl_per_host_delay=0.0, crawl_interval_seconds=0.5, crawl_hash_processes=True)
    store = Store.open(settings)
    plant(store, settings, jpeg(5))
    site = Site().page("/", '<img src="/k.jpg">').file("/k.jpg", jpeg(5))
    with serving(site) as base:
        ref = reports.submit(store, [base + "/"])["reference"]
        stop = worker.start_worker(settings, restart_after=0.5)
        try:
            deadline = time.monotonic() + 90
            while reports.public_status(store, ref)["status"] != "founded" and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop.set()
    # the worker process hashed the picture in its own hashing process (it may start children)
    assert reports.public_status(store, ref)["status"] == "founded" and site.hits["/k.jpg"] == 1
    import threading

    deadline = time.monotonic() + 10
    while any(t.name == "vigie-intake-supervisor" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(t.name == "vigie-intake-supervisor" for t in threading.enumerate())
    store.close()


def test_the_access_log_does_not_keep_reporters_addresses():
    import logging

    from vigie.web.server import ReporterPrivacy

    f = ReporterPrivacy()

    def rec(path):
        r = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                              ("203.0.113.9:5555", "POST", path, "1.1", 201), None)
        f.filter(r)
        return r.getMessage()

    assert "203.0.113.9" not in rec("/api/v1/reports") and "203.0.113.9" not in rec("/report?x=1")
    assert "203.0.113.9" not in rec("/report/status?reference=VR-1")
    assert "203.0.113.9" in rec("/api/v1/match")  # other requests keep their address (security logging)


def crashing_media_hasher(url, data):
    """Stands in for a C decoder that kills its process on one hostile file."""
    import os

    if url.endswith("crash.jpg"):
        os._exit(139)
    return worker._hash_media(url, data)


def test_hashing_in_worker_processes_survives_a_decoder_crash(tmp_path):
    import asyncio

    settings = Settings(data_dir=tmp_path / "d", workers=2)
    pool = worker.HashPool(settings, 2, fn=crashing_media_hasher)
    names = ["a.jpg", "b.jpg", "crash.jpg", "c.jpg", "d.jpg"]

    async def go():
        return await asyncio.gather(*(pool.process(f"http://h/{n}", jpeg(i)) for i, n in enumerate(names)))

    try:
        got = asyncio.run(go())
        again = asyncio.run(pool.process("http://h/e.jpg", jpeg(9)))  # the pool was replaced: still works
    finally:
        pool.close()
    assert [r.error[0] if r.error else "ok" for r in got] == ["ok", "ok", "decoder_crash", "ok", "ok"]
    assert got[0].pdq == hash_bytes(jpeg(0), settings).pdq and again.error is None
    crashed = hash_bytes(jpeg(2), settings)  # its digests all the same: a bank may know the file by them
    assert (got[2].md5, got[2].sha256, got[2].media_type) == (crashed.md5, crashed.sha256, "image/jpeg")
    assert got[2].pdq is None


def test_a_known_picture_that_crashes_its_decoder_is_still_found_known(store, media_key):
    """A crawl through real HTTP on loopback, hashing in worker processes: a known picture made to crash the
    decoder is still known by its digests (read again in the crawler, never decoded there); an unknown one that
    crashes it is an error, never queued for a person; the crawl goes on with the others."""
    settings = intake_settings(store, workers=2, crawl_hash_processes=True)
    known, other, new = jpeg(21), jpeg(22), jpeg(23)
    plant(store, settings, known)
    site = Site()
    site.page("/", '<img src="/k-crash.jpg"><img src="/u-crash.jpg"><img src="/n.jpg">')
    site.file("/k-crash.jpg", known).file("/u-crash.jpg", other).file("/n.jpg", new)
    pool = worker.HashPool(settings, 2, fn=crashing_media_hasher)
    try:
        with serving(site) as base:
            reports.submit(store, [base + "/"], now=T0)
            got = worker.crawl_pending(store, settings, now=T0, hasher=pool)
    finally:
        pool.close()
    with store.sessions() as s:
        sights = {x.media_url.removeprefix(base): x for x in s.scalars(select(Sighting)).all()}
        queued = s.scalars(select(ReviewItem)).all()
    assert {k: v.outcome for k, v in sights.items()} == {"/k-crash.jpg": "known", "/u-crash.jpg": "error",
                                                        "/n.jpg": "unknown"}
    assert sights["/k-crash.jpg"].match_detail["signal"] in ("md5", "sha256")
    assert sights["/u-crash.jpg"].error_code == "decoder_crash"
    assert (got["known"], got["unknown"]) == (1, 1) and len(queued) == 1


def test_crawl_with_hashing_in_worker_processes(planted_site):
    store, settings, site = planted_site
    settings = settings.model_copy(update={"workers": 2, "crawl_hash_processes": True})
    with serving(site) as base:
        reports.submit(store, [base + "/"], now=T0)
        got = worker.crawl_pending(store, settings, now=T0)
    assert (got["known"], got["unknown"], got["errors"]) == (3, 1, 2)
