"""The crawler's network side against a benign site served on 127.0.0.1: parsing, limits, redirects, SSRF.

Every picture is generated; every server listens on loopback; the address rules are tested with
addresses that are never connected to (the refusal happens before any connection).
"""

from __future__ import annotations

import asyncio

import pytest

from vigie.demo import encode, photo_like
from vigie.demo_site import Route, Site
from vigie.ingest.crawl import AddressPolicy, Fetcher, FetchError, crawl, parse_page
from vigie.settings import Settings

from servers import serving


def jpeg(seed: int, w: int = 320, h: int = 240) -> bytes:
    return encode(photo_like(seed, w, h), "JPEG", quality=90)


def crawl_settings(tmp_path, **kw) -> Settings:
    base = dict(data_dir=tmp_path / "data", workers=1, crawl_allowed_networks=["127.0.0.1/32"],
                crawl_per_host_delay=0.0, crawl_timeout=1.0, crawl_fetch_seconds=3.0, crawl_max_media_bytes=2_000_000)
    return Settings(**(base | kw))


def fetch(settings, url, max_bytes=1_000_000):
    async def go():
        async with Fetcher(settings) as f:
            return await f.fetch(url, max_bytes)
    return asyncio.run(go())


def fetch_error(settings, url, max_bytes=1_000_000) -> FetchError:
    with pytest.raises(FetchError) as ei:
        fetch(settings, url, max_bytes)
    return ei.value


# ------------------------------------------------------------------------------------------------ parsing


def test_parse_page_finds_every_kind_of_media_reference_and_same_site_links():
    html = b"""<html><head><base href="/gallery/">
    <meta property="og:image" content="https://cdn.example.org/og.jpg">
    <meta name="twitter:image" content="tw.png"><link rel="image_src" href="ls.jpg"></head>
    <body><img src="a.jpg" srcset="b.jpg 1x, /abs/c.jpg 2x"><img data-src="lazy.webp">
    <picture><source srcset="p1.avif 480w, p2.avif 960w" type="image/avif"><img src="p.jpg"></picture>
    <video src="v.mp4" poster="poster.jpg"><source src="v.webm"></video>
    <a href="next.html">next</a><a href="full.JPG">full size</a><a href="#top">top</a>
    <a href="javascript:alert(1)">x</a><img src="data:image/png;base64,AAAA"><a href="mailto:a@b">m</a>
    <iframe src="frame.html"></iframe>
    <p>unclosed <div><img src=unquoted.gif></body>"""
    links = parse_page(html, "http://site.test/index.html")
    g = "http://site.test/gallery/"
    assert links.media == [g + "a.jpg", g + "b.jpg", "http://site.test/abs/c.jpg", g + "lazy.webp", g + "p1.avif",
                           g + "p2.avif", g + "p.jpg", g + "v.mp4", g + "poster.jpg", g + "v.webm",
                           g + "unquoted.gif", "https://cdn.example.org/og.jpg", g + "tw.png", g + "ls.jpg",
                           g + "full.JPG"]
    assert links.pages == [g + "next.html", g + "frame.html"]


def test_parse_page_survives_garbage():
    assert parse_page(b"\x00\xff<<<>>><img src=", "http://h/").media == []
    assert parse_page(b"", "http://h/").pages == []


# ---------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                                "100.64.0.1", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                "240.0.0.1", "198.18.0.1"])
def test_non_global_addresses_are_refused_by_default(ip):
    assert not AddressPolicy().allows(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_global_addresses_are_allowed(ip):
    assert AddressPolicy().allows(ip)


def test_allowed_networks_open_exactly_what_they_name():
    p = AddressPolicy(["127.0.0.1/32"])
    assert p.allows("127.0.0.1") and not p.allows("127.0.0.2") and not p.allows("10.0.0.1")


def test_loopback_server_is_refused_by_default_before_any_request(tmp_path):
    site = Site().file("/a.jpg", jpeg(1))
    with serving(site) as base:
        err = fetch_error(Settings(data_dir=tmp_path), base + "/a.jpg")
    assert err.code == "private_address" and "127.0.0.1" in err.message
    assert site.hits["/a.jpg"] == 0


def test_names_that_resolve_to_private_addresses_are_refused(tmp_path):
    st = crawl_settings(tmp_path, crawl_allowed_networks=[])
    site = Site().file("/a.jpg", jpeg(1))
    with serving(site) as base:
        port = base.rsplit(":", 1)[1]
        err = fetch_error(st, f"http://localhost:{port}/a.jpg")  # checked after DNS resolution
    assert err.code == "private_address" and "localhost resolves to" in err.message
    assert site.hits["/a.jpg"] == 0


def test_a_redirect_to_a_private_address_is_refused(tmp_path):
    st = crawl_settings(tmp_path)
    site = Site().file("/a.jpg", jpeg(1))
    with serving(site) as base:
        port = base.rsplit(":", 1)[1]
        site.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
        site.redirect("/to-other-loopback", f"http://127.0.0.2:{port}/a.jpg")  # would answer, but is not allowed
        site.redirect("/to-ftp", "ftp://127.0.0.1/a.jpg")
        assert fetch_error(st, base + "/to-metadata").code == "private_address"
        assert fetch_error(st, base + "/to-other-loopback").code == "private_address"
        assert fetch_error(st, base + "/to-ftp").code == "bad_scheme"
    assert site.hits["/a.jpg"] == 0


def test_requests_go_to_the_checked_address_with_the_host_header_kept(tmp_path):
    st = crawl_settings(tmp_path)
    site = Site().file("/a.jpg", jpeg(1))
    with serving(site) as base:
        f = fetch(st, base + "/a.jpg")
    assert f.ip == "127.0.0.1" and f.status == 200 and f.data == site.routes["/a.jpg"].body
    assert site.host_headers == [base.removeprefix("http://")]


# ------------------------------------------------------------------------------------------ limits, errors


def test_redirects_are_followed_up_to_the_limit_and_loops_refused(tmp_path):
    st = crawl_settings(tmp_path, crawl_max_redirects=2)
    site = Site().file("/a.jpg", jpeg(1))
    site.redirect("/r1", "/r2").redirect("/r2", "/a.jpg")
    site.redirect("/l1", "/l2").redirect("/l2", "/l1")
    site.redirect("/c1", "/c2").redirect("/c2", "/c3").redirect("/c3", "/a.jpg")
    with serving(site) as base:
        f = fetch(st, base + "/r1")
        assert f.url == base + "/a.jpg" and f.redirects == [base + "/r1", base + "/r2"]
        assert fetch_error(st, base + "/l1").code == "redirect_loop"
        assert fetch_error(st, base + "/c1").code == "too_many_redirects"


def test_size_time_and_status_limits(tmp_path):
    st = crawl_settings(tmp_path)
    site = Site().file("/a.jpg", jpeg(1))
    site.routes["/declared-huge.jpg"] = Route(200, "image/jpeg", b"x" * 300_000)
    site.routes["/endless.jpg"] = Route(200, "image/jpeg", endless=50_000_000)
    site.routes["/slow.jpg"] = Route(200, "image/jpeg", jpeg(2), delay=5.0)
    site.routes["/gone.jpg"] = Route(410, "text/plain", b"gone")
    site.routes["/busy.jpg"] = Route(503, "text/plain", b"busy")
    with serving(site) as base:
        e = fetch_error(st, base + "/declared-huge.jpg", max_bytes=100_000)
        assert e.code == "too_large" and "declares" in e.message
        e = fetch_error(st, base + "/endless.jpg", max_bytes=1_000_000)
        assert e.code == "too_large"
        e = fetch_error(st, base + "/slow.jpg")
        assert e.code == "timeout" and e.transient
        e = fetch_error(st, base + "/gone.jpg")
        assert (e.code, e.status, e.transient) == ("http_error", 410, False)
        e = fetch_error(st, base + "/busy.jpg")
        assert (e.code, e.status, e.transient) == ("http_transient", 503, True)
    e = fetch_error(st, base + "/a.jpg")  # the server is gone now
    assert e.code == "connect_failed" and e.transient


def test_per_host_concurrency_is_bounded(tmp_path):
    st = crawl_settings(tmp_path, crawl_per_host_concurrency=2, crawl_concurrency=8)
    active = {"now": 0, "max": 0}

    class Counting(Site):
        async def __call__(self, scope, receive, send):
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            try:
                await asyncio.sleep(0.05)
                await super().__call__(scope, receive, send)
            finally:
                active["now"] -= 1

    site = Counting()
    for i in range(10):
        site.file(f"/{i}.jpg", jpeg(i, 64, 64))

    async def go(base):
        async with Fetcher(st) as f:
            return await asyncio.gather(*(f.fetch(f"{base}/{i}.jpg", 1_000_000) for i in range(10)))

    with serving(site) as base:
        got = asyncio.run(go(base))
    assert len(got) == 10 and active["max"] == 2


# -------------------------------------------------------------------------------------------------- crawl


def test_crawl_follows_same_site_links_to_the_depth_and_budget_and_reports_errors(tmp_path):
    st = crawl_settings(tmp_path, crawl_max_depth=1)
    site = Site()
    site.page("/", '<img src="/a.jpg"><img srcset="/b.jpg 1x, /b2.jpg 2x"><a href="/p2.html">2</a>'
                   '<a href="http://other.example/x.html">elsewhere</a><img src="/missing.jpg">'
                   '<img src="/notmedia.jpg"><img src="http://10.9.8.7/internal.jpg">')
    site.page("/p2.html", '<img src="/c.png"><a href="/p3.html">3</a><p><b>unclosed <i>tags')
    site.page("/p3.html", '<img src="/deep.jpg">')  # depth 2: not followed
    site.file("/a.jpg", jpeg(1)).file("/b.jpg", jpeg(2)).file("/b2.jpg", jpeg(3))
    site.file("/c.png", encode(photo_like(4, 200, 150), "PNG"), "image/png").file("/deep.jpg", jpeg(5))
    site.page("/notmedia.jpg", "<html>sorry</html>")
    with serving(site) as base:
        async def go():
            async with Fetcher(st) as f:
                return await crawl(base + "/", f)
        res = asyncio.run(go())
    ok = sorted(m.url.removeprefix(base) for m in res.media if m.error is None)
    assert ok == ["/a.jpg", "/b.jpg", "/b2.jpg", "/c.png"]
    errors = {m.url.removeprefix(base): m.error.code for m in res.media if m.error is not None}
    assert errors == {"/missing.jpg": "http_error", "/notmedia.jpg": "not_media",
                      "http://10.9.8.7/internal.jpg": "private_address"}
    assert res.pages == [base + "/", base + "/p2.html"] and site.hits["/p3.html"] == 0
    assert site.hits.get("/deep.jpg", 0) == 0 and res.error is None


def test_a_reported_url_that_is_itself_a_picture_is_taken_as_media(tmp_path):
    st = crawl_settings(tmp_path)
    site = Site().file("/direct.jpg", jpeg(7), "application/octet-stream")
    with serving(site) as base:
        async def go():
            async with Fetcher(st) as f:
                return await crawl(base + "/direct.jpg", f)
        res = asyncio.run(go())
    assert [(m.url, m.media_type, m.page_url) for m in res.media] == [(base + "/direct.jpg", "image/jpeg", None)]
    assert res.pages == [] and site.hits["/direct.jpg"] == 1


def test_page_budget_is_kept(tmp_path):
    st = crawl_settings(tmp_path, crawl_max_depth=5, crawl_max_pages=3)
    site = Site()
    for i in range(10):
        site.page(f"/{i}.html", f'<a href="/{i + 1}.html">next</a>')
    with serving(site) as base:
        async def go():
            async with Fetcher(st) as f:
                return await crawl(base + "/0.html", f)
        res = asyncio.run(go())
    assert len(res.pages) == 3 and any(x["code"] == "budget" for x in res.log)
