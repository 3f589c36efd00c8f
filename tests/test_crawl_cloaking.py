"""Cloaking and cookies: a page that answers the crawler differently is asked again under another agent
(both answers recorded, the crawl goes on with the one that shows more); cookies are kept per site, never
per address.

Every picture is generated; every server listens on loopback (127.0.0.1 and 127.0.0.2); host names are
mapped to those addresses by the test, without any name lookup.
"""

from __future__ import annotations

import asyncio

from test_crawl_schedule import jpeg, run_crawls, settings

from vigie.demo_site import Route, Site
from vigie.ingest.crawl import Fetcher, crawl

from servers import serving

CLOAK = "iPhone"


def test_a_page_that_shows_the_crawler_a_404_is_checked_under_another_agent_and_recorded(tmp_path):
    st = settings(tmp_path)
    site = Site()
    shown = Route(200, "text/html", b'<img src="/hidden.jpg">')
    site.routes["/"] = Route(404, "text/plain", b"not found", by_agent=((CLOAK, shown),))
    site.routes["/hidden.jpg"] = Route(404, "text/plain", b"no",
                                       by_agent=((CLOAK, Route(200, "image/jpeg", jpeg(1))),))
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    c = res.cloaking
    assert c["differs"] and CLOAK in c["agent"]
    assert c["first"]["status"] == 404 and c["second"] == {"code": "ok", "status": 200, "media": 1, "bytes": 23}
    assert res.error is None  # the second answer is the page
    (m,) = res.media
    assert m.error is None and m.fetched.data == jpeg(1)  # the crawl went on under the second agent
    assert [e.get("agent") for e in res.fetches if e["url"].endswith("/hidden.jpg")] == [c["agent"]]
    assert any(e["code"] == "cloaking" for e in res.log)


def test_a_page_that_answers_alike_is_recorded_as_not_differing_and_nothing_changes(tmp_path):
    st = settings(tmp_path)
    site = Site().page("/", "<p>nothing here</p>")
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    assert res.cloaking["differs"] is False and res.media == [] and res.error is None
    assert site.agents[0] == st.crawl_user_agent and CLOAK in site.agents[1]


def test_a_page_with_pictures_is_not_asked_twice(tmp_path):
    st = settings(tmp_path)
    site = Site().page("/", '<img src="/a.jpg">').file("/a.jpg", jpeg(2))
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    assert res.cloaking is None and site.hits["/"] == 1 and all(CLOAK not in a for a in site.agents)


def test_no_second_look_when_the_second_agent_is_switched_off(tmp_path):
    st = settings(tmp_path, crawl_cloak_agent="")
    site = Site().page("/", "<p>nothing</p>")
    with serving(site) as base:
        (res,) = run_crawls(st, base + "/")
    assert res.cloaking is None and site.hits["/"] == 1


def _names(fetcher: Fetcher, table: dict[str, str]) -> None:
    """Resolve the test's names to loopback addresses without any lookup (then the address rules apply)."""
    real = fetcher.policy.resolve

    async def resolve(host, port):
        return await real(table.get(host, host), port)

    fetcher.policy.resolve = resolve


def test_cookies_are_kept_per_site_not_per_address(tmp_path):
    """Two sites on one server: the cookie one sets never reaches the other. One site on two servers: its
    cookie follows it to the second address."""
    st = settings(tmp_path)
    a, b = Site(), Site()
    for s in (a, b):
        s.routes["/set"] = Route(200, "text/html", b'<img src="/p.jpg">',
                                 headers=(("set-cookie", "sid=one; Domain=one.example"),))
        s.file("/p.jpg", jpeg(3))
        s.page("/look", '<img src="/q.jpg">').file("/q.jpg", jpeg(4))
    with serving(a) as base_a, serving(b, "127.0.0.2") as base_b:
        pa, pb = base_a.rsplit(":", 1)[1], base_b.rsplit(":", 1)[1]

        async def go():
            async with Fetcher(st) as f:
                _names(f, {"one.example": "127.0.0.1", "two.example": "127.0.0.1", "www.one.example": "127.0.0.2"})
                await crawl(f"http://one.example:{pa}/set", f)
                await crawl(f"http://two.example:{pa}/look", f)  # another site, same address
                await crawl(f"http://one.example:{pa}/look", f)  # the same site
                await crawl(f"http://www.one.example:{pb}/look", f)  # the same site, another address
        asyncio.run(go())
    cookies = dict()
    for path, c in a.cookies:
        cookies.setdefault(path, []).append(c)
    assert cookies["/look"] == [None, "sid=one"]  # two.example got nothing; one.example its own cookie
    assert b.cookies[0] == ("/look", "sid=one")  # the site's cookie at its other address
