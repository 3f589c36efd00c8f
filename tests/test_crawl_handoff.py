"""Downloads and hashing overlap within a bound: at most `Fetcher.media_in_hand` media are being downloaded or
wait for their handler at once (memory stays bounded), the handler is kept busy while downloads wait, nothing
is lost (a retried media gives its place back while it waits), and matching takes media several at a time.

The site is benign and generated, on 127.0.0.1."""

from __future__ import annotations

import asyncio

from vigie.demo import encode, photo_like
from vigie.demo_site import Site
from vigie.ingest import worker
from vigie.ingest.crawl import Fetcher, crawl
from vigie.settings import Settings

from servers import serving


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 64, 48), "JPEG", quality=90)


def settings(tmp_path, **kw) -> Settings:
    base = dict(data_dir=tmp_path / "data", workers=1, crawl_allowed_networks=["127.0.0.1/32"],
                crawl_per_host_delay=0.0, crawl_timeout=2.0, crawl_fetch_seconds=5.0, crawl_per_host_concurrency=4,
                crawl_concurrency=8, crawl_retry_backoff=0.05, crawl_max_depth=0)
    return Settings(**(base | kw))


class Counting(Site):
    """Counts the picture requests being answered at once."""

    def __init__(self):
        super().__init__()
        self.now = 0

    async def __call__(self, scope, receive, send):
        pic = scope.get("path", "").endswith(".jpg")
        self.now += pic
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.now -= pic


def gallery(n: int, site: Site | None = None) -> Site:
    site = site or Counting()
    site.page("/", "".join(f'<img src="/{i}.jpg">' for i in range(n)))
    for i in range(n):
        site.file(f"/{i}.jpg", jpeg(i), delay=0.01)
    return site


def test_media_in_hand_are_bounded_and_downloads_run_ahead_of_the_handler(tmp_path):
    st = settings(tmp_path)
    site = gallery(24)
    seen = {"most_in_hand": 0}
    handled: list[str] = []
    waiting: list[str] = []

    async def on_media(m):
        # What is in hand now: downloads on the wire, media waiting for the handler, and this one.
        waiting.append(m.url)
        in_hand = site.now + len(waiting)
        seen["most_in_hand"] = max(seen["most_in_hand"], in_hand)
        async with lock:
            waiting.remove(m.url)
            await asyncio.sleep(0.03)  # hashing
            handled.append(m.url)

    async def go(base):
        nonlocal lock
        lock = asyncio.Lock()  # one media handled at a time, as one hashing process would
        async with Fetcher(st) as f:
            f.media_in_hand = 4
            res = await crawl(base + "/", f, on_media=on_media)
            return res

    lock = None
    with serving(site) as base:
        res = asyncio.run(go(base))
    assert len(handled) == 24 and len(res.media) == 24 and all(m.error is None for m in res.media)
    assert 2 <= seen["most_in_hand"] <= 4  # ahead of the handler, never by more than the bound
    assert len({e["url"] for e in res.fetches if e["kind"] == "media" and e["code"] == "ok"}) == 24


def test_a_media_waiting_to_be_retried_gives_its_place_back(tmp_path):
    """One place only: a picture answering 503 twice waits between its tries without holding it, so the
    others go meanwhile, and it is still brought back in the end."""
    st = settings(tmp_path, crawl_retry_backoff=0.2)
    site = gallery(6, Site())
    site.file("/0.jpg", jpeg(0), fail_times=2, fail_status=503)
    got: list[str] = []

    async def on_media(m):
        got.append(m.url.rsplit("/", 1)[1])

    async def go(base):
        async with Fetcher(st) as f:
            f.media_in_hand = 1
            return await crawl(base + "/", f, on_media=on_media)

    with serving(site) as base:
        res = asyncio.run(go(base))
    assert sorted(got) == [f"{i}.jpg" for i in range(6)] and all(m.error is None for m in res.media)
    order = [p for _, p in site.times if p.endswith(".jpg")]
    last_try = len(order) - 1 - order[::-1].index("/0.jpg")
    assert order.index("/0.jpg") == 0 and any(p != "/0.jpg" for p in order[:last_try])  # others went meanwhile
    assert [e["code"] for e in res.fetches if e["url"].endswith("/0.jpg")] == ["http_transient", "http_transient",
                                                                                "ok"]


def test_matching_takes_media_several_at_a_time(tmp_path, monkeypatch):
    """Media hashed close together are matched in one call (one index refresh, one write of the counts), and
    every one gets its own answer."""
    calls: list[int] = []

    class Matched:
        def __init__(self, name):
            self.name = name

    def fake_match(matcher, results, banks, st):
        calls.append(len(results))
        return [Matched(r) for r in results]

    monkeypatch.setattr("vigie.ingest.scan._match", fake_match)
    from concurrent.futures import ThreadPoolExecutor

    async def go():
        with ThreadPoolExecutor(1) as pool:
            b = worker._MatchBatch(None, Settings(data_dir=tmp_path), pool, most=5)
            return await asyncio.gather(*(b.match(f"r{i}") for i in range(12)))

    got = asyncio.run(go())
    assert [g.name for g in got] == [f"r{i}" for i in range(12)]
    assert sum(calls) == 12 and max(calls) == 5 and len(calls) < 12


def test_a_failing_match_batch_fails_its_media_not_the_crawl(tmp_path, monkeypatch):
    def broken(matcher, results, banks, st):
        raise RuntimeError("index gone")

    monkeypatch.setattr("vigie.ingest.scan._match", broken)
    from concurrent.futures import ThreadPoolExecutor

    async def go():
        with ThreadPoolExecutor(1) as pool:
            b = worker._MatchBatch(None, Settings(data_dir=tmp_path), pool, most=4)
            return await asyncio.gather(*(b.match(i) for i in range(3)), return_exceptions=True)

    got = asyncio.run(go())
    assert all(isinstance(g, RuntimeError) for g in got)


def test_the_bound_covers_every_download_slot_and_the_hashing(tmp_path):
    st = Settings(data_dir=tmp_path, crawl_concurrency=8, workers=2)
    hasher = worker.HashPool(st, 2)
    assert worker.media_in_hand(st, hasher) == 8 + 4 * 3
    threads = worker.HashPool(st, 0)
    assert worker.media_in_hand(st, threads) == 8 + 4 * 3
