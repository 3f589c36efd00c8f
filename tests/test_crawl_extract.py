"""Everything a browser shows, found without running scripts: srcset by the standard's algorithm, CSS through
a tokenizer, SVG, JSON-LD, preload, lazy-load attributes, refresh; links followed by site (registrable domain),
the site a short link lands on included, two levels deep by default.

Every picture is generated; every server listens on loopback (127.0.0.1 and 127.0.0.2).
"""

from __future__ import annotations

import asyncio

from vigie.demo import encode, photo_like
from vigie.demo_site import Route, Site
from vigie.ingest.crawl import Fetcher, crawl
from vigie.ingest.extract import css_value_urls, parse_page, parse_refresh, parse_srcset, parse_stylesheet
from vigie.settings import Settings

from servers import serving


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 64, 48), "JPEG", quality=80)


def settings(tmp_path, **kw) -> Settings:
    base = dict(data_dir=tmp_path / "data", workers=1, crawl_allowed_networks=["127.0.0.1/32", "127.0.0.2/32"],
                crawl_per_host_delay=0.0, crawl_timeout=2.0, crawl_fetch_seconds=3.0, crawl_retry_backoff=0.05)
    return Settings(**(base | kw))


def run_crawl(st, url):
    async def go():
        async with Fetcher(st) as f:
            return await crawl(url, f)
    return asyncio.run(go())


# ------------------------------------------------------------------------------------------------- srcset


def test_srcset_urls_with_commas_are_kept_whole():
    assert parse_srcset("/cdn/w_400,h_300/u.jpg 1x, /cdn/w_800,h_600/u.jpg 2x") == \
        ["/cdn/w_400,h_300/u.jpg", "/cdn/w_800,h_600/u.jpg"]
    assert parse_srcset("a.jpg, b.jpg 2x ,, c.jpg,") == ["a.jpg", "b.jpg", "c.jpg"]
    assert parse_srcset("a.jpg,b.jpg 2x") == ["a.jpg,b.jpg"]  # a URL runs to white space, as in browsers
    assert parse_srcset("  a.jpg 100w (foo, bar), b.jpg") == ["a.jpg", "b.jpg"]
    assert parse_srcset("") == [] and parse_srcset(" , ,") == []


def test_refresh_values_by_the_standard():
    assert parse_refresh("0; url=/next") == "/next"
    assert parse_refresh("5;URL='http://x.example/a b'") == "http://x.example/a b"
    assert parse_refresh("3, /other") == "/other"
    assert parse_refresh("0.5 url = \"/q\"") == "/q"
    assert parse_refresh("10") is None and parse_refresh("nonsense; url=/x") is None and parse_refresh("") is None


# ----------------------------------------------------------------------------------------------------- CSS


def test_css_is_read_with_a_tokenizer():
    css = """/* url(/commented.jpg) */ @import url("more.css"); @import 'other.css' screen;
    .a { background: #fff url( "/bg one.jpg" ) no-repeat; }
    .b { background-image: image-set("/set1.png" 1x, url(/set2.png) 2x); content: "url(/not-a-url.jpg)"; }
    @media (min-width: 10px) { .c { background: url(/in-media.webp) } }
    @font-face { font-family: x; src: url(/font.woff2); }
    .d { background: url(/esc\\29 aped.jpg); }"""
    media, imports = parse_stylesheet(css, "http://h.test/css/site.css")
    assert media == ["http://h.test/bg one.jpg", "http://h.test/set1.png", "http://h.test/set2.png",
                     "http://h.test/in-media.webp", "http://h.test/esc)aped.jpg"]
    assert imports == ["http://h.test/css/more.css", "http://h.test/css/other.css"]
    assert css_value_urls("background:url(/x.jpg), url('y.jpg'); color: red") == ["/x.jpg", "y.jpg"]


# ---------------------------------------------------------------------------------------------------- HTML


PAGE = """<html><head>
<link rel="preload" as="image" href="/pre.jpg" imagesrcset="/pre-2x.jpg 2x">
<link rel="preload" as="font" href="/font.woff2"><link rel="Stylesheet" href="/site.css">
<link rel="next" href="?page=2">
<meta http-equiv="refresh" content="30; url=/next.html">
<style>.hero { background-image: url('/hero.jpg') }</style>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "ImageGallery",
  "image": ["/ld1.jpg", {"@type": "ImageObject", "url": "/ld2.jpg", "contentUrl": "/ld3.jpg"}],
  "author": {"name": "x", "url": "/not-a-picture.html", "logo": {"url": "/logo.png"}},
  "associatedMedia": {"@type": "VideoObject", "thumbnailUrl": "/thumb.jpg"}}</script>
<script type="application/ld+json">{not json</script>
</head><body>
<img srcset="/cdn/w_400,h_300/u.jpg 1x, /cdn/w_800,h_600/u.jpg 2x">
<img class="lazy" src="/placeholder.gif" data-lazy-src="/lazy1.jpg" data-lazy-srcset="/lazy2.jpg 2x">
<div data-bg="/bg-attr.jpg"></div><div data-background-image="url(/bg-attr2.jpg)"></div>
<div style="background: url(/styled.jpg) center / cover"></div>
<svg><image href="/svg1.png"/><image xlink:href="/svg2.png"/></svg>
</body></html>"""


def test_every_html_source_is_found():
    links = parse_page(PAGE.encode(), "http://h.test/gallery/index.html")
    h = "http://h.test"
    assert set(links.media) == {h + p for p in (
        "/pre.jpg", "/pre-2x.jpg", "/hero.jpg", "/ld1.jpg", "/ld2.jpg", "/ld3.jpg", "/logo.png", "/thumb.jpg",
        "/cdn/w_400,h_300/u.jpg", "/cdn/w_800,h_600/u.jpg", "/placeholder.gif", "/lazy1.jpg", "/lazy2.jpg",
        "/bg-attr.jpg", "/bg-attr2.jpg", "/styled.jpg", "/svg1.png", "/svg2.png")}
    assert links.stylesheets == [h + "/site.css"] and links.refresh == [h + "/next.html"]
    assert links.pages == [h + "/gallery/index.html?page=2"]


def test_a_crawl_downloads_what_the_page_and_its_stylesheets_show(tmp_path):
    site = Site()
    site.page("/", '<link rel=stylesheet href="/css/a.css"><div style="background:url(/s.jpg)"></div>'
                   '<img srcset="/cdn/w_400,h_300/u.jpg 1x">')
    site.routes["/css/a.css"] = Route(200, "text/css", b'@import "b.css"; .x{background:url(../a.jpg)}')
    site.routes["/css/b.css"] = Route(200, "text/css", b".y{background-image:url(/b.jpg)}")
    for i, p in enumerate(("/s.jpg", "/cdn/w_400,h_300/u.jpg", "/a.jpg", "/b.jpg")):
        site.file(p, jpeg(i))
    with serving(site) as base:
        res = run_crawl(settings(tmp_path), base + "/")
    assert sorted(m.url.removeprefix(base) for m in res.media if m.error is None) == \
        ["/a.jpg", "/b.jpg", "/cdn/w_400,h_300/u.jpg", "/s.jpg"]
    assert sorted(e["url"].removeprefix(base) for e in res.fetches if e["kind"] == "stylesheet") == \
        ["/css/a.css", "/css/b.css"]


# ------------------------------------------------------------------------------------- sites, depth, refresh


def test_a_short_link_is_followed_on_the_site_it_lands_on_to_depth_two(tmp_path):
    """The report names a short link on 127.0.0.2; it redirects to a gallery on 127.0.0.1, whose own pages are
    followed two levels deep; a third host's pages are not followed, its pictures are taken."""
    gal, short = Site(), Site()
    with serving(gal) as base, serving(short, "127.0.0.2") as sbase:
        short.redirect("/s/abc", base + "/g/1.html")
        gal.page("/g/1.html", '<img src="/p1.jpg"><a href="/g/2.html">2</a>'
                              f'<a href="{sbase}/elsewhere.html">x</a>')
        gal.page("/g/2.html", '<img src="/p2.jpg"><a href="/g/3.html">3</a>')
        gal.page("/g/3.html", '<img src="/p3.jpg"><a href="/g/4.html">4</a>')
        gal.page("/g/4.html", '<img src="/p4.jpg">')
        short.page("/elsewhere.html", '<img src="/p9.jpg">')
        for i in (1, 2, 3, 4):
            gal.file(f"/p{i}.jpg", jpeg(i))
        res = run_crawl(settings(tmp_path), sbase + "/s/abc")
    assert res.error is None and res.sites == ["127.0.0.1", "127.0.0.2"]
    assert sorted(m.url.removeprefix(base) for m in res.media if m.error is None) == ["/p1.jpg", "/p2.jpg",
                                                                                       "/p3.jpg"]
    assert gal.hits["/g/4.html"] == 0  # depth 3


def test_links_to_another_site_are_not_followed(tmp_path):
    site, other = Site(), Site()
    with serving(site) as base, serving(other, "127.0.0.2") as obase:
        site.page("/", f'<a href="{obase}/page.html">other</a><a href="/mine.html">mine</a>')
        site.page("/mine.html", "<p>nothing")
        other.page("/page.html", '<img src="/x.jpg">')
        res = run_crawl(settings(tmp_path), base + "/")
    assert res.pages == [base + "/", base + "/mine.html"] and other.hits["/page.html"] == 0


def test_meta_refresh_and_refresh_header_are_followed_like_redirects(tmp_path):
    site = Site()
    site.page("/", '<meta http-equiv="refresh" content="0; url=/landing.html">')
    site.page("/landing.html", "<p>please wait")
    site.routes["/landing.html"].headers = (("Refresh", "1; url=/final.html"),)
    site.page("/final.html", '<img src="/pic.jpg">')
    site.file("/pic.jpg", jpeg(1))
    with serving(site) as base:
        res = run_crawl(settings(tmp_path, crawl_max_depth=0), base + "/")
    assert [m.url.removeprefix(base) for m in res.media if m.error is None] == ["/pic.jpg"]
    assert res.pages == [base + "/", base + "/landing.html", base + "/final.html"]
