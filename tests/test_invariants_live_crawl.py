"""The crawler's invariants against real server processes (`vigie serve` with its intake worker), on SQLite and
on PostgreSQL: two servers share one store and crawl at once; then one of them is SIGKILLed at a random moment.

A small site on 127.0.0.1 (http.server in a thread) serves pages of generated JPEGs, some planted as known in
a bank, some shared between pages; reports name those pages (two reported URLs per page) and come through the
public API of either server while both crawl. Checked: every reported URL is claimed and crawled once (its page
fetched once, one `crawl.done`, one history event per picture seen there), each media URL has exactly one
sighting with the right outcome and every page it was seen on, every unknown picture is in the review queue
with its encrypted bytes, every acknowledged report is kept, and the audit chain verifies. Every picture is
generated; every server listens on 127.0.0.1.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from live_server import LiveServer, live_store
from sqlalchemy import func, select, update

from vigie import audit, repair
from vigie.banks import service
from vigie.demo import encode, photo_like
from vigie.hashing import hash_bytes
from vigie.ingest import worker
from vigie.ingest.reports import url_key
from vigie.review import media as rmedia
from vigie.store.db import Store
from vigie.store.intake_models import Report, ReportedUrl, ReportUrl, Sighting, SightingEvent, SightingPage
from vigie.store.models import MatchCount
from vigie.store.review_models import ReviewItem

from conftest import _PG_REASON
from test_web_kit import fast_hashing

pytestmark = [pytest.mark.usefixtures("media_key"), pytest.mark.slow]

PAGES = 10
WAIT_S = 120.0
#: Longer than any crawl of one of the site's pages takes, even on a loaded machine (under a second alone).
LIVE_CRAWL_MAX = timedelta(seconds=20)
#: Three races these tests found, each fixed where it lived and tested there too:
#: two servers queueing one picture at once (vigie.review.queue._enqueue, vigie.review.media.store_media:
#: test_review_media.py), two servers recording one media URL's first sighting at once (vigie.ingest.worker.
#: record_crawl), and a round killed between writing its URLs and deriving their reports' statuses
#: (vigie.ingest.reports.refresh_settled in the repair pass: test_invariants_intake.py).


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path, monkeypatch):
    """(store, env for the servers, data dir) on one store kind; the servers' intake worker crawls loopback
    only, often, with no per-host delay and no browser."""
    fast_hashing(monkeypatch)
    data = tmp_path / "data"
    env = {"VIGIE_REPORT_RATE_LIMIT_PER_HOUR": "100000", "VIGIE_API_RATE_LIMIT_PER_MINUTE": "100000",
           "VIGIE_CRAWL_INTERVAL_SECONDS": "0.3", "VIGIE_CRAWL_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
           "VIGIE_CRAWL_PER_HOST_DELAY": "0", "VIGIE_CRAWL_MAX_DEPTH": "0", "VIGIE_CRAWL_RENDER_AUTO": "false",
           "VIGIE_CRAWL_HASH_PROCESSES": "false", "VIGIE_CRAWL_RETRY_BACKOFF": "0.1", "VIGIE_WORKERS": "1"}
    if request.param == "postgresql" and _PG_REASON:
        pytest.skip(_PG_REASON)
    with live_store(request.param, data, env) as store:
        yield store, env, data


class CrawlServer(LiveServer):
    """`vigie serve` with its intake worker (LiveServer turns it off)."""

    intake_worker = True


# ------------------------------------------------------------------------------------------------- the site


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 240, 180), "JPEG", quality=90)


class Site:
    """Page i shows k<i> (known), u<i> (unknown) and s<i % 2> (shared: s0 known, s1 unknown). Counts every hit."""

    def __init__(self):
        self.files: dict[str, tuple[str, bytes]] = {}
        self.pictures: dict[str, bytes] = {}
        self.known: set[str] = set()
        self.page_media: dict[str, list[str]] = {}
        for name, seed in [("s0", 9000), ("s1", 9001)]:
            self._picture(name, seed)
        self.known.add("/img/s0.jpg")
        for i in range(PAGES):
            k, u = self._picture(f"k{i}", 7000 + i), self._picture(f"u{i}", 8000 + i)
            self.known.add(k)
            pics = [k, u, f"/img/s{i % 2}.jpg"]
            html = "<html><body>" + "".join(f'<img src="{p}">' for p in pics) + "</body></html>"
            self.files[f"/page/{i}.html"] = ("text/html; charset=utf-8", html.encode())
            self.page_media[f"/page/{i}.html"] = pics
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def _picture(self, name: str, seed: int) -> str:
        path = f"/img/{name}.jpg"
        self.pictures[path] = jpeg(seed)
        self.files[path] = ("image/jpeg", self.pictures[path])
        return path

    def serve(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                with site.lock:
                    site.hits[self.path] += 1
                got = site.files.get(self.path.split("?", 1)[0])
                if got is None:
                    self.send_error(404)
                    return
                ctype, body = got
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd


def reported_urls(base: str) -> dict[str, str]:
    """Two reported URLs per page (the page and the page with a query): reported URL -> page path."""
    out = {}
    for i in range(PAGES):
        out[f"{base}/page/{i}.html"] = f"/page/{i}.html"
        out[f"{base}/page/{i}.html?from=mail"] = f"/page/{i}.html"
    return out


def plant_known(store: Store, site: Site) -> None:
    service.create_bank(store, "planted")
    for path in site.known:
        service.add_entry(store, "planted", "md5", hash_bytes(site.pictures[path], store.settings).md5)


def submit_all(servers, urls: list[str], acked: list[tuple[str, str]], gap=(0.05, 0.3)) -> None:
    """One report per URL through the public API, taking turns between the servers that answer; keeps the
    acknowledged (reference, url)."""
    for n, u in enumerate(urls):
        for k in range(len(servers) * 3):
            srv = servers[(n + k) % len(servers)]
            try:
                r = httpx.post(srv.base + "/api/v1/reports", json={"urls": [u], "seen": ["image"]}, timeout=30)
            except httpx.HTTPError:
                continue
            if r.status_code == 201:
                acked.append((r.json()["reference"], u))
                break
        time.sleep(random.uniform(*gap))


def states(store: Store) -> dict[str, tuple[str, object]]:
    with store.sessions() as s:
        return {ru.url: (ru.crawl_state, ru.claimed_at) for ru in s.scalars(select(ReportedUrl))}


def open_reports(store: Store) -> dict[str, str]:
    with store.sessions() as s:
        return {r.reference: r.status for r in s.scalars(select(Report).where(
            Report.status.in_(("received", "crawling"))))}


def wait_done(store: Store, urls, timeout: float = WAIT_S, settle: float = 5.0) -> dict[str, tuple[str, object]]:
    """Until every URL is crawled and then (at most `settle` s more) every report's status is derived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = states(store)
        if set(urls) <= set(st) and all(st[u][0] == "done" for u in urls):
            end = time.monotonic() + settle
            while open_reports(store) and time.monotonic() < end:
                time.sleep(0.2)
            return st
        time.sleep(0.3)
    return states(store)


# ------------------------------------------------------------------------------------------------ the checks


def assert_all_done(final: dict) -> None:
    left = {u: v[0] for u, v in final.items() if v[0] != "done"}
    assert left == {}


def check_store(store: Store, site: Site, base: str, urls: dict[str, str], acked: list[tuple[str, str]]) -> None:
    """What must hold once every reported URL is crawled, whatever happened to the servers on the way."""
    media_urls = {base + p for p in site.pictures}
    known_urls = {base + p for p in site.known}
    with store.sessions() as s:
        rus = {ru.url: ru for ru in s.scalars(select(ReportedUrl))}
        assert set(rus) == set(urls), sorted(set(rus) ^ set(urls))
        bad = {u: (ru.crawl_state, ru.outcome, ru.error_code) for u, ru in rus.items()
               if ru.crawl_state != "done" or ru.outcome != "known" or ru.media_found != 3}
        assert not bad, bad
        # No acknowledged report is lost; each holds the URL it was acknowledged for, and is founded.
        reps = {r.reference: r for r in s.scalars(select(Report))}
        for ref, u in acked:
            assert ref in reps, ref
            uids = set(s.scalars(select(ReportUrl.url_id).where(ReportUrl.report_id == reps[ref].id)))
            assert uids == {rus[u].id}, (ref, u)
            assert reps[ref].status == "founded", (ref, reps[ref].status)
        # One sighting per media URL, with the right outcome (a unique key: a duplicate would have failed).
        sights = {x.media_url: x for x in s.scalars(select(Sighting))}
        assert set(sights) == media_urls, sorted(set(sights) ^ media_urls)
        for mu, x in sights.items():
            assert x.media_url_key == url_key(mu)
            if mu in known_urls:
                assert (x.outcome, x.bank, x.review_item_id) == ("known", "planted", None), (mu, x.outcome)
            else:
                assert x.outcome == "unknown" and x.review_item_id is not None, (mu, x.outcome, x.error_code, x.error)
        # Every page a picture was seen on, once; one crawl event per (picture, reported URL): crawled once.
        pages = collections.defaultdict(set)
        for sp in s.scalars(select(SightingPage)):
            pages[sp.url_id].add(sp.sighting_id)
        events = collections.Counter()
        for ev in s.scalars(select(SightingEvent).where(SightingEvent.kind == "crawl")):
            detail = ev.detail if isinstance(ev.detail, dict) else json.loads(ev.detail)
            events[(ev.sighting_id, detail.get("url_id"))] += 1
        want_events = collections.Counter()
        for u, page in urls.items():
            want = {sights[base + p].id for p in site.page_media[page]}
            assert pages[rus[u].id] == want, u
            for sid in want:
                want_events[(sid, rus[u].id)] = 1
        assert events == want_events, {k: v for k, v in (events - want_events).items()}
        # Every unknown picture is in the review queue, its bytes kept (encrypted) and readable.
        items = {it.id: it for it in s.scalars(select(ReviewItem))}
        unknown = {p for p in site.pictures if p not in site.known}
        assert len(items) == len(unknown)
        by_sha = {it.sha256: it for it in items.values()}
        for p in unknown:
            it = by_sha.get(hashlib.sha256(site.pictures[p]).hexdigest())
            assert it is not None and it.state == "queued", p
            x = sights[base + p]
            assert x.outcome == "unknown" and x.review_item_id == it.id, p
            assert rmedia.read_media(store, store.settings, it.sha256) == site.pictures[p], p
    # One crawl.done per reported URL (a URL crawled twice, or by both servers, records two).
    done = collections.Counter(r.object_id for r in audit.iter_records(store) if r.action == "crawl.done")
    assert done == collections.Counter({str(ru.id): 1 for ru in rus.values()}), done
    assert audit.verify(store, store.settings).ok


# ------------------------------------------------------------------------------------------------- the tests


def two_servers_and_a_site(backend):
    """The site served on 127.0.0.1, its reported URLs, its known pictures planted, two crawling servers (not
    started): (store, env, data, site, httpd, base, urls, a, b)."""
    store, env, data = backend
    site = Site()
    httpd = site.serve()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    urls = reported_urls(base)
    plant_known(store, site)
    a, b = CrawlServer(data, env, workers=1), CrawlServer(data, env, workers=1)
    return store, env, data, site, httpd, base, urls, a, b


def test_two_crawling_servers_crawl_each_reported_url_once(backend):
    store, _env, _data, site, httpd, base, urls, a, b = two_servers_and_a_site(backend)
    acked: list[tuple[str, str]] = []
    try:
        a.start()
        b.start()
        order = list(urls)
        random.shuffle(order)
        submit_all([a, b], order, acked)
        st = wait_done(store, urls)
    finally:
        a.stop()
        b.stop()
        httpd.shutdown()
    assert_all_done(st)
    assert len(acked) == len(urls)
    # Each reported URL's page was fetched once: no URL was crawled twice, nor by both servers.
    for u in urls:
        path = u[len(base):]
        assert site.hits[path] == 1, (path, site.hits[path])
    with store.sessions() as s:
        assert {ru.url: ru.crawl_attempts for ru in s.scalars(select(ReportedUrl))} == dict.fromkeys(urls, 1)
        # Both servers counted matches of the same entries at once (s0 is on every other page): every fetch of
        # a known picture is one match, and the counts add up (one upsert in the database, no lost update).
        counted = s.scalar(select(func.coalesce(func.sum(MatchCount.count), 0)))
    assert counted == sum(site.hits[p] for p in site.known) > 0
    check_store(store, site, base, urls, acked)


def test_crawl_survives_sigkill_of_one_server(backend):
    """While two servers crawl, one is SIGKILLed at a random moment (and started again); the URLs it had claimed
    are taken again once their claim is stale (`worker.STALE_CLAIM`, an hour: that hour is skipped here by
    ageing those claims), and everything ends crawled once, with nothing lost or half-written."""
    store, env, data, site, httpd, base, urls, a, b = two_servers_and_a_site(backend)
    st_ = store.settings
    acked: list[tuple[str, str]] = []
    servers = [a, b]
    a2 = None
    try:
        a.start()
        b.start()
        order = list(urls)
        random.shuffle(order)
        feeder = threading.Thread(target=submit_all, args=(servers, order, acked, (0.05, 0.2)))
        feeder.start()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not any(v[0] != "pending" for v in states(store).values()):
            time.sleep(0.05)
        time.sleep(random.uniform(0.0, 2.0))
        killed_at = datetime.now(UTC)
        a.kill()
        servers[:] = [b]  # the feeder goes on through the survivor
        a2 = CrawlServer(data, env, workers=1).start()  # restarted: its start runs the repair pass
        feeder.join(WAIT_S)
        # The survivor and the restarted server finish what is not claimed; what the killed one had claimed
        # stays `running` until its claim is stale. Once nothing moves, age exactly those claims.
        last, still = None, time.monotonic()
        while time.monotonic() < deadline:
            now_states = states(store)
            if now_states != last:
                last, still = now_states, time.monotonic()
            if all(v[0] == "done" for v in now_states.values()):
                break
            if time.monotonic() - still > 4.0:
                # Claimed before the kill: the killed server's, or the survivor's own, still crawling (under
                # load a crawl can stand still for 4 s). Only a claim older than any live crawl is the killed
                # one's: ageing a live claim of the survivor made a second server crawl that URL again.
                before = [u for u, (state, claimed) in now_states.items() if state == "running"
                          and claimed is not None and _aware(claimed) <= killed_at]
                orphans = [u for u in before if datetime.now(UTC) - _aware(now_states[u][1]) > LIVE_CRAWL_MAX]
                if not before and not any(v[0] == "pending" for v in now_states.values()):
                    break  # stuck by something else than the kill: judged below
                if orphans:
                    with store.session() as s:
                        s.execute(update(ReportedUrl).where(ReportedUrl.url.in_(orphans),
                                                            ReportedUrl.crawl_state == "running")
                                  .values(claimed_at=killed_at - worker.STALE_CLAIM - timedelta(minutes=1)))
                still = time.monotonic()
            time.sleep(0.3)
        final = wait_done(store, urls, timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for srv in (a, b, a2):
            if srv is not None:
                srv.stop()
        httpd.shutdown()
    assert_all_done(final)
    assert acked, "no report was acknowledged"
    repair.run(store, st_)
    # Nothing half-written: files a kill left without their row are swept; every kept one stays readable.
    repair.media_files(store, st_, grace=0)
    ack_urls = {u for _, u in acked}
    assert ack_urls == set(urls), sorted(set(urls) - ack_urls)  # the survivor took every report
    check_store(store, site, base, urls, acked)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
