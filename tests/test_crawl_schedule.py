"""The crawler loses nothing: fair turns between hosts, time limits that count only a request's own time,
retries with backoff (Retry-After honoured), every fetch in the result; content told by its bytes; pages and
decoded bodies held to their limits with bounded memory.

Every picture is generated; every server listens on loopback (127.0.0.1 and 127.0.0.2).
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib

import brotli
import pytest

from vigie.demo import encode, photo_like
from vigie.demo_site import Route, Site
from vigie.ingest.crawl import Fetcher, FetchError, crawl
from vigie.ingest.decode import Decoder, decode_all
from vigie.ingest.fetch import retry_after_seconds
from vigie.settings import Settings

from servers import serving

_JPEGS: dict[tuple, bytes] = {}


def jpeg(seed: int, w: int = 64, h: int = 48) -> bytes:
    key = (seed, w, h)
    if key not in _JPEGS:
        _JPEGS[key] = encode(photo_like(seed, w, h), "JPEG", quality=80)
    return _JPEGS[key]


def settings(tmp_path, **kw) -> Settings:
    base = dict(data_dir=tmp_path / "data", workers=1, crawl_allowed_networks=["127.0.0.1/32", "127.0.0.2/32"],
                crawl_per_host_delay=0.0, crawl_timeout=2.0, crawl_fetch_seconds=3.0, crawl_retry_backoff=0.05,
                crawl_max_media_bytes=2_000_000)
    return Settings(**(base | kw))


def run_crawls(st, *urls):
    async def go():
        async with Fetcher(st) as f:
            return await asyncio.gather(*(crawl(u, f) for u in urls))
    return asyncio.run(go())


def gallery_site(n: int, prefix: str = "g", delay: float = 0.0) -> Site:
    site = Site()
    site.page("/", "".join(f'<img src="/{prefix}/{i}.jpg">' for i in range(n)))
    for i in range(n):
        site.file(f"/{prefix}/{i}.jpg", jpeg(i % 50), delay=delay)
    return site


# ----------------------------------------------------------------------------------------------- scheduling


def test_a_big_gallery_beside_a_second_host_loses_nothing_and_the_second_host_is_not_starved(tmp_path):
    """300 pictures on one host and 11 on another, two slots for the whole crawler, a one-second limit per
    request: the queue takes several seconds, and not one picture times out without being requested."""
    st = settings(tmp_path, crawl_concurrency=2, crawl_per_host_concurrency=2, crawl_fetch_seconds=1.0)
    a, b = gallery_site(300, "a", delay=0.01), gallery_site(11, "b", delay=0.01)
    with serving(a) as base_a, serving(b, "127.0.0.2") as base_b:
        ra, rb = run_crawls(st, base_a + "/", base_b + "/")
    for res, n in ((ra, 300), (rb, 11)):
        assert len(res.media) == n and all(m.error is None for m in res.media), \
            [(m.url, m.error.code) for m in res.media if m.error][:5]
        assert not [e for e in res.fetches if e["code"] not in ("ok",)]
    assert all(a.hits[f"/a/{i}.jpg"] == 1 for i in range(300)) and all(b.hits[f"/b/{i}.jpg"] == 1 for i in range(11))
    # Turns are fair: the second host's pictures were all fetched while the gallery was still early on.
    a_times = sorted(t for t, p in a.times if p.startswith("/a/"))
    b_last = max(t for t, p in b.times if p.startswith("/b/"))
    assert b_last < a_times[len(a_times) // 4]
    # The wait for a turn is not counted in a request's own time.
    waited = [e["waited"] for e in ra.fetches if e["kind"] == "media"]
    assert max(waited) > st.crawl_fetch_seconds


def test_tarpit_pictures_cost_only_themselves(tmp_path):
    """Two pictures that never answer hold both of the host's turns for a while; the host's other pictures
    wait their turn (not counted) and are all fetched; the tarpits are retried, then recorded as timeouts."""
    st = settings(tmp_path, crawl_per_host_concurrency=2, crawl_fetch_seconds=0.5, crawl_retries=1)
    site = gallery_site(30)
    site.routes["/"] = Route(200, "text/html", b'<img src="/tarpit/1.jpg"><img src="/tarpit/2.jpg">'
                             + site.routes["/"].body)
    for i in (1, 2):
        site.file(f"/tarpit/{i}.jpg", jpeg(99), delay=30.0)
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    errors = {m.url.removeprefix(base): (m.error.code, m.attempts) for m in res.media if m.error}
    assert errors == {"/tarpit/1.jpg": ("timeout", 2), "/tarpit/2.jpg": ("timeout", 2)}
    assert sum(1 for m in res.media if m.error is None) == 30
    tarpit = [e for e in res.fetches if e["url"].endswith("/tarpit/1.jpg")]
    assert [(e["attempt"], e["code"]) for e in tarpit] == [(1, "timeout"), (2, "timeout")]
    assert tarpit[0]["retry_in"] == pytest.approx(0.05) and "retry_in" not in tarpit[1]
    assert all(e["seconds"] >= 0.45 for e in tarpit)


def test_busy_pictures_are_retried_with_backoff_and_retry_after_honoured(tmp_path):
    st = settings(tmp_path, crawl_retries=3, crawl_retry_max_wait=5.0)
    site = Site()
    site.page("/", '<img src="/429.jpg"><img src="/503.jpg"><img src="/later.jpg"><img src="/gone.jpg">')
    site.file("/429.jpg", jpeg(1), fail_times=1, fail_status=429, fail_headers=(("Retry-After", "1"),))
    site.file("/503.jpg", jpeg(2), fail_times=2, fail_status=503)
    site.file("/later.jpg", jpeg(3), fail_times=9, fail_status=429, fail_headers=(("Retry-After", "3600"),))
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    got = {m.url.removeprefix(base): (m.error.code if m.error else "ok", m.attempts) for m in res.media}
    assert got == {"/429.jpg": ("ok", 2), "/503.jpg": ("ok", 3), "/later.jpg": ("http_transient", 1),
                   "/gone.jpg": ("http_error", 1)}
    log = [(e["url"].removeprefix(base), e["attempt"], e["code"], e["status"], e.get("retry_in"))
           for e in res.fetches if e["kind"] == "media"]
    assert sorted(log, key=lambda x: (x[0], x[1])) == [
        ("/429.jpg", 1, "http_transient", 429, 1.0), ("/429.jpg", 2, "ok", 200, None),
        ("/503.jpg", 1, "http_transient", 503, 0.05), ("/503.jpg", 2, "http_transient", 503, 0.1),
        ("/503.jpg", 3, "ok", 200, None),
        ("/gone.jpg", 1, "http_error", 404, None),
        ("/later.jpg", 1, "http_transient", 429, None)]  # Retry-After past the longest wait: a later round
    assert site.hits["/429.jpg"] == 2 and site.hits["/later.jpg"] == 1
    assert all(e["at"] and e["ip"] == "127.0.0.1" for e in res.fetches)


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_every_fetch_is_in_the_result_even_those_the_budget_skipped(tmp_path):
    st = settings(tmp_path, crawl_max_media=2)
    site = gallery_site(4)
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    codes = sorted((e["kind"], e["code"], e["attempt"]) for e in res.fetches)
    assert codes == [("media", "budget", 0), ("media", "budget", 0), ("media", "ok", 1), ("media", "ok", 1),
                     ("page", "ok", 1)]


def test_the_user_agent_is_a_browsers_by_default_and_configurable(tmp_path):
    site = gallery_site(1)
    with serving(site) as base:
        run_crawls(settings(tmp_path), base + "/")
        run_crawls(settings(tmp_path, crawl_user_agent="HotlineBot/2"), base + "/")
    assert site.agents[0].startswith("Mozilla/5.0") and "Vigie" not in site.agents[0]
    assert site.agents[-1] == "HotlineBot/2"


# -------------------------------------------------------------------------------------------- content, size


def test_a_picture_served_as_html_is_a_picture(tmp_path):
    st = settings(tmp_path)
    site = Site().file("/p", jpeg(5), "text/html").file("/q.jpg", jpeg(6), "text/html; charset=utf-8")
    site.page("/", '<img src="/q.jpg">')
    with serving(site) as base:
        direct, page = run_crawls(st, base + "/p", base + "/")
    assert [(m.url, m.media_type, m.error) for m in direct.media] == [(base + "/p", "image/jpeg", None)]
    assert direct.pages == [] and direct.error is None
    assert [(m.url, m.media_type, m.error) for m in page.media] == [(base + "/q.jpg", "image/jpeg", None)]


def test_a_50_mb_page_is_too_large_read_only_to_the_page_limit_and_its_first_pictures_taken(tmp_path):
    limit = 1_000_000
    st = settings(tmp_path, crawl_max_page_bytes=limit, crawl_max_media_bytes=100_000_000)
    chunk = b'<html><body><img src="/first.jpg">' + b"<p>" + b"x" * 65000 + b"</p>"
    site = Site().file("/first.jpg", jpeg(7))
    site.routes["/big.html"] = Route(200, "text/html", endless=50_000_000, endless_chunk=chunk)
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/big.html")
    assert res.error is not None and res.error.code == "too_large" and "page limit" in res.error.message
    assert [m.url for m in res.media if m.error is None] == [base + "/first.jpg"]
    (page,) = [e for e in res.fetches if e["kind"] == "page"]
    assert page["code"] == "too_large" and limit < page["bytes"] <= limit + 64 * 1024


def test_a_large_picture_at_a_reported_url_is_read_to_the_media_limit(tmp_path):
    st = settings(tmp_path, crawl_max_page_bytes=10_000)
    big = jpeg(8, 640, 480)
    assert len(big) > 10_000
    site = Site().file("/big", big, "text/html")
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/big")
    assert res.error is None and [m.fetched.data for m in res.media] == [big]


# ---------------------------------------------------------------------------------------------- encodings


def _gzip_bomb(mib: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join([c.compress(zeros) for _ in range(mib)] + [c.flush()])


def _brotli_bomb(mib: int) -> bytes:
    c = brotli.Compressor(quality=5)
    zeros = b"\0" * (1 << 20)
    return b"".join([c.process(zeros) for _ in range(mib)] + [c.finish()])


def test_encodings_stacked_and_single_decode_to_the_original():
    data = jpeg(9, 320, 240) * 3
    raw = zlib.compressobj(wbits=-15)
    raw_deflate = raw.compress(data) + raw.flush()
    cases = {"gzip": gzip.compress(data), "x-gzip": gzip.compress(data), "deflate": zlib.compress(data),
             "br": brotli.compress(data), "gzip, br": brotli.compress(gzip.compress(data)),
             "gzip, gzip": gzip.compress(gzip.compress(data)), "identity": data}
    for enc, body in cases.items():
        assert decode_all(enc, body, len(data)) == data, enc
    assert decode_all("deflate", raw_deflate, len(data)) == data
    assert decode_all("gzip", gzip.compress(data[:10]) + gzip.compress(data[10:]), len(data)) == data
    with pytest.raises(FetchError) as ei:
        decode_all("gzip", gzip.compress(data), len(data) - 1)
    assert ei.value.code == "too_large"
    for bad in ("compress", "gzip, gzip, gzip, gzip"):
        with pytest.raises(FetchError) as ei:
            Decoder(bad, 100)
        assert ei.value.code == "bad_response"


@pytest.mark.parametrize("encoding", ["br", "gzip, gzip"])
def test_bombs_stop_at_the_limit_with_bounded_memory(tmp_path, encoding):
    """A brotli bomb and a gzip-in-gzip bomb of 256 MiB each: the crawler reads 1 MB of what they decode to
    and keeps a few pieces in memory, never the whole."""
    bomb = _brotli_bomb(256) if encoding == "br" else gzip.compress(_gzip_bomb(256))
    assert len(bomb) < 300_000
    st = settings(tmp_path, crawl_max_media_bytes=1_000_000, crawl_retries=0)
    site = Site().file("/bomb.jpg", bomb, headers=(("Content-Encoding", encoding),))
    site.page("/", '<img src="/bomb.jpg">')
    with serving(site) as base:
        tracemalloc.start()
        try:
            (res,) = run_crawls(st, base + "/")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    (m,) = res.media
    assert m.error is not None and m.error.code == "too_large"
    (e,) = [e for e in res.fetches if e["kind"] == "media"]
    assert 500_000 < e["bytes"] <= 1_000_000 + 64 * 1024  # decoded up to the limit, never past it
    assert peak < 16 * 1024 * 1024, f"{peak:,} bytes at peak"
