"""Rendering mode: pages whose pictures only a script shows, opened in Debian's chromium through Playwright.

Every request the browser makes is intercepted and fetched by the crawler under its own rules, so a
script asking for 10.0.0.5 or 169.254.169.254 is refused before any connection, and nothing leaves the
browser around the interception (a WebSocket to a listening loopback port never arrives).

Every picture is generated; every server listens on 127.0.0.1; addresses outside loopback appear only as
refused requests (no connection is attempted: asserted on the event loop's connections).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from unittest.mock import ANY

import pytest
from test_crawl_schedule import jpeg, settings

from vigie.demo_site import Site
from vigie.ingest.crawl import Fetcher, crawl
from vigie.ingest.render import Renderer

from servers import counting_listener, serving

pytestmark = pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                                reason="Debian's chromium is not installed")


@pytest.fixture
def loopback_only(monkeypatch):
    """Every connection this process opens must go to loopback: the test fails on any other."""
    seen: list[str] = []
    real = asyncio.base_events.BaseEventLoop.create_connection

    async def guarded(self, protocol_factory, host=None, port=None, *a, **kw):
        seen.append(str(host))
        assert host is None or str(host).startswith("127."), f"connection to {host}"
        return await real(self, protocol_factory, host, port, *a, **kw)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", guarded)
    return seen


def render_crawl(st, url, **kw):
    async def go():
        r = Renderer(st)
        try:
            async with Fetcher(st) as f:
                return await crawl(url, f, renderer=r, **kw)
        finally:
            await r.close()
    return asyncio.run(go())


def ok_media(res):
    return {m.url.rsplit("/", 1)[1]: m for m in res.media if m.error is None}


def test_a_script_inserted_picture_is_captured_by_rendering_automatically(tmp_path, loopback_only):
    st = settings(tmp_path)
    site = Site()
    site.page("/", "<html><body><h1>hello</h1><script>var i = new Image(); i.src = '/pics/' + 'p1.jpg';"
              "document.body.appendChild(i);</script></body></html>")
    site.file("/pics/p1.jpg", jpeg(1))
    with serving(site) as base:
        res = render_crawl(st, base + "/")
    (r,) = res.renders
    assert r["reason"] == "auto" and r["media"] == [base + "/pics/p1.jpg"] and not r["refused"]
    m = ok_media(res)["p1.jpg"]
    assert m.via == "render" and m.fetched.data == jpeg(1) and m.media_type == "image/jpeg"
    # The page is fetched once by the crawler and once under the second agent (no picture: a cloaking check),
    # never by the browser, which is given the crawler's copy.
    assert site.hits["/pics/p1.jpg"] == 1 and site.hits["/"] == 2
    assert res.cloaking["differs"] is False and res.cloaking["first"] == res.cloaking["second"] | {"bytes": ANY}
    assert [e["code"] for e in res.fetches if e["url"].endswith("p1.jpg")] == ["ok"]
    assert all(h.startswith("127.") for h in loopback_only)


SPA = """
const app = document.getElementById('app');
fetch('/api/items.json').then(r => r.json()).then(items => {
  for (const it of items) {
    if (it.bg) { const d = document.createElement('div'); d.style.backgroundImage = `url(${it.src})`;
                 d.style.width = '40px'; d.style.height = '40px'; app.appendChild(d); }
    else { const i = document.createElement('img'); i.src = it.src; app.appendChild(i); }
  }
  const a = document.createElement('a'); a.href = '/gallery/2'; a.textContent = 'more'; app.appendChild(a);
});
"""


def test_a_single_page_app_is_rendered_and_every_picture_it_loads_is_found_under_the_same_limits(tmp_path):
    st = settings(tmp_path, crawl_max_media_bytes=20_000)
    site = Site()
    site.page("/", '<html><body><div id="app">loading</div><script src="/app.js"></script></body></html>')
    site.file("/app.js", SPA.encode(), "application/javascript")
    items = [{"src": "/media/a.jpg"}, {"src": "/media/b.jpg", "bg": True}, {"src": "/media/big.jpg"}]
    site.file("/api/items.json", json.dumps(items).encode(), "application/json")
    site.file("/media/a.jpg", jpeg(2))
    site.file("/media/b.jpg", jpeg(3))
    site.file("/media/big.jpg", jpeg(4, 800, 600))  # over the media limit
    site.page("/gallery/2", '<img src="/media/c.jpg">')
    site.file("/media/c.jpg", jpeg(5))
    with serving(site) as base:
        res = render_crawl(st, base + "/")
    got = ok_media(res)
    assert {"a.jpg", "b.jpg", "c.jpg"} <= set(got)
    assert got["a.jpg"].via == got["b.jpg"].via == "render" and got["c.jpg"].via == "fetch"
    (big,) = [m for m in res.media if m.url.endswith("big.jpg")]
    assert big.error is not None and big.error.code == "too_large"
    kinds = {e["url"].rsplit("/", 1)[1]: e["kind"] for e in res.fetches}
    assert kinds["items.json"] == "render" and kinds["app.js"] == "render" and kinds["a.jpg"] == "media"
    assert base + "/gallery/2" in res.pages  # a link the script wrote is followed like any other
    assert len(res.media) == len({m.url for m in res.media})  # each picture once


def test_requests_of_a_script_to_private_addresses_are_refused_without_connecting(tmp_path, loopback_only):
    st = settings(tmp_path)
    site = Site()
    with counting_listener() as (ws_port, ws_hits):
        site.page("/", "<html><body><script>"
                  "var i = new Image(); i.src = 'http://10.0.0.5/x.jpg'; document.body.appendChild(i);"
                  "fetch('http://169.254.169.254/latest/meta-data/').catch(() => 0);"
                  "fetch('http://[::ffff:a9fe:a9fe]/latest/').catch(() => 0);"
                  "var f = document.createElement('iframe'); f.src = 'http://10.0.0.5/frame';"
                  "document.body.appendChild(f);"
                  f"try {{ new WebSocket('ws://127.0.0.1:{ws_port}/'); }} catch (e) {{}}"
                  "var j = new Image(); j.src = '/ok.jpg'; document.body.appendChild(j);"
                  "</script></body></html>")
        site.file("/ok.jpg", jpeg(6))
        with serving(site) as base:
            res = render_crawl(st, base + "/")
    (r,) = res.renders
    refused = {"http://10.0.0.5/x.jpg", "http://169.254.169.254/latest/meta-data/",
               "http://[::ffff:a9fe:a9fe]/latest/", "http://10.0.0.5/frame"}
    assert refused <= set(r["refused"])
    for u in refused:
        (e,) = [e for e in res.fetches if e["url"] == u]
        assert e["code"] == "private_address" and e["at"] is None and e["seconds"] == 0  # never sent
    assert "ok.jpg" in ok_media(res)
    assert ws_hits == []  # nothing leaves the browser around the interception
    assert all(h.startswith("127.") for h in loopback_only)
    (x,) = [m for m in res.media if m.url == "http://10.0.0.5/x.jpg"]
    assert x.error.code == "private_address"  # recorded like a refused <img> of the page itself


def test_rendering_is_chosen_per_report_and_per_host_and_not_for_plain_pages(tmp_path):
    site = Site()
    site.page("/", '<img src="/s.jpg"><script>var i = new Image(); i.src = "/dyn.jpg";</script>')
    site.file("/s.jpg", jpeg(7))
    site.file("/dyn.jpg", jpeg(8))
    with serving(site) as base:
        plain = render_crawl(settings(tmp_path), base + "/")
        asked = render_crawl(settings(tmp_path), base + "/", render=True)
        by_host = render_crawl(settings(tmp_path, crawl_render_hosts=["127.0.0.1"]), base + "/")
    assert plain.renders == [] and set(ok_media(plain)) == {"s.jpg"}  # it shows a picture: not rendered
    assert [r["reason"] for r in asked.renders] == ["report"] and set(ok_media(asked)) == {"s.jpg", "dyn.jpg"}
    assert [r["reason"] for r in by_host.renders] == ["host"] and "dyn.jpg" in ok_media(by_host)
    assert site.hits["/s.jpg"] == 3 and site.hits["/dyn.jpg"] == 2  # once per crawl: never again for the browser


def test_a_page_past_its_time_budget_is_closed_and_what_it_asked_for_is_still_recorded(tmp_path):
    st = settings(tmp_path, crawl_render_seconds=1.0, crawl_fetch_seconds=5.0, crawl_timeout=5.0)
    site = Site()
    site.page("/", "<script>var i = new Image(); i.src = '/slow.jpg'; document.body.appendChild(i);</script>")
    site.file("/slow.jpg", jpeg(9), delay=2.0)
    with serving(site) as base:
        res = render_crawl(st, base + "/")
    (r,) = res.renders
    assert r["timed_out"]
    (m,) = [m for m in res.media if m.url.endswith("slow.jpg")]
    assert m.error is None and m.via == "render"  # the fetch the browser asked for finished in the crawl


def test_a_page_that_asks_for_too_much_is_held_to_a_request_budget(tmp_path, monkeypatch):
    from vigie.ingest import crawl as crawl_module

    monkeypatch.setattr(crawl_module, "MAX_RENDER_REQUESTS", 5)
    site = Site()
    site.page("/", "<script>for (let i = 0; i < 20; i++) fetch('/api/' + i).catch(() => 0);</script>")
    for i in range(20):
        site.file(f"/api/{i}", b"{}", "application/json")
    with serving(site) as base:
        res = render_crawl(settings(tmp_path), base + "/")
    assert sum(site.hits[f"/api/{i}"] for i in range(20)) == 5
    assert len([e for e in res.fetches if e["kind"] == "render" and e["code"] == "budget"]) == 15
    assert len(res.renders[0]["refused"]) == 15
