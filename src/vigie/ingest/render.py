"""Rendering mode: a page opened in a real browser (Debian's chromium through Playwright), for pictures that
only a script puts on the page (script-inserted pictures, single-page apps).

The browser has **no network of its own**. Every request it makes (the page, its scripts, XHR and fetch,
pictures, videos, whatever the script asks for) is intercepted (`BrowserContext.route`) and handed to the crawl,
which fetches it with the crawler's own `Fetcher`: the same address rules (a request to 10.0.0.5 or
169.254.169.254 is refused before any connection, and the browser is told ``blockedbyclient``), the
same pinning to the checked address, size limits, turns, retries and crawl log. The browser is given the
decoded answer (`route.fulfill`). So every picture or video the page loads is captured at the network level,
with its bytes, and goes through the same hashing and matching as a fetched one.

What could still leave the browser without passing a route (WebSockets, WebRTC, DNS prefetch, a
service worker) is shut too: chromium resolves no name at all (``--host-resolver-rules=MAP * ~NOTFOUND``),
sends anything else to a proxy that does not exist (a closed port on loopback, loopback included), has
WebRTC limited to that proxy and service workers blocked.

Each page gets `crawl_render_seconds` in all (load, scrolling for lazy pictures, the network going
quiet); past it the page is closed and what it loaded so far is kept. The fetches the browser had asked
for go on in the crawl, like any other fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from vigie.ingest.fetch import Fetched
from vigie.ingest.fetch_errors import FetchError
from vigie.settings import Settings

log = logging.getLogger("vigie.crawl")

#: chromium's switches: headless, nothing in the background, and no network of its own (module docstring).
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
                 "--mute-audio", "--dns-prefetch-disable", "--host-resolver-rules=MAP * ~NOTFOUND",
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--force-webrtc-ip-handling-policy=disable_non_proxied_udp")
#: Fetch errors told to the browser as "blocked" (refused by a rule) rather than "failed" (the network).
REFUSED = frozenset({"private_address", "bad_scheme", "bad_url", "budget", "carried"})
#: Request headers of the browser passed on to the site (the crawler sets its own User-Agent).
FORWARDED = ("accept", "accept-language", "content-type", "cookie", "origin", "referer", "x-requested-with")
#: Scrolls of one screen each, to wake lazy-loaded pictures.
SCROLLS = 4


def chromium_path(settings: Settings) -> str | None:
    """The chromium to run: `crawl_chromium`, else Debian's on the PATH; None when there is none."""
    if settings.crawl_chromium:
        return settings.crawl_chromium
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class BrowserRequest:
    """One request of the browser, as the crawl is asked to answer it."""

    url: str
    method: str
    body: bytes | None
    headers: dict[str, str]
    #: Playwright's resource type: document, image, media, script, fetch, xhr, stylesheet...
    kind: str
    navigation: bool


@dataclass
class Rendered:
    url: str
    #: The page's final URL and its DOM once rendered (read for links and media like a fetched page).
    final_url: str | None = None
    html: bytes = b""
    #: Every request of the browser: url, resource type, and the code it got (ok or the error code).
    requests: list[dict] = field(default_factory=list)
    #: The requests refused by a rule (addresses, schemes, budgets), never sent.
    refused: list[str] = field(default_factory=list)
    #: The page's time budget ran out before it was quiet.
    timed_out: bool = False
    error: str | None = None


Answer = Callable[[BrowserRequest], Awaitable[Fetched]]


class Renderer:
    """One chromium for a round of crawls, started when first needed; a fresh context (cookies, cache) per
    page. `crawl_render_concurrency` pages at once."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.executable = chromium_path(settings)
        self._pw = None
        self._browser = None
        self._lock: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def available(self) -> bool:
        return self.executable is not None

    async def _get(self):
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._slots = asyncio.Semaphore(self.settings.crawl_render_concurrency)
        async with self._lock:
            if self._browser is None:
                from playwright.async_api import async_playwright

                self._pw = await async_playwright().start()
                self._browser = await self._pw.chromium.launch(executable_path=self.executable,
                                                               args=list(CHROMIUM_ARGS))
            return self._browser

    async def close(self) -> None:
        browser, pw, self._browser, self._pw = self._browser, self._pw, None, None
        with contextlib.suppress(Exception):
            if browser is not None:
                await browser.close()
        with contextlib.suppress(Exception):
            if pw is not None:
                await pw.stop()

    async def render(self, url: str, answer: Answer, *, user_agent: str,
                     spawn: Callable[[Awaitable], asyncio.Task]) -> Rendered:
        """Open `url` in the browser, every request answered by `answer` (which fetches under the crawler's
        rules and raises FetchError when it cannot). `spawn` runs each answer as a task of the crawl, so a
        fetch the browser asked for is finished and recorded even when the page is closed before it."""
        out = Rendered(url)
        if not self.available:
            out.error = "render_unavailable"
            return out
        browser = await self._get()
        async with self._slots:
            ctx = await browser.new_context(user_agent=user_agent, service_workers="block", accept_downloads=False,
                                            viewport={"width": 1280, "height": 1600})
            try:
                await self._run(ctx, url, answer, spawn, out)
            finally:
                with contextlib.suppress(Exception):
                    await ctx.close()
        return out

    async def _run(self, ctx, url: str, answer: Answer, spawn, out: Rendered) -> None:
        from playwright.async_api import Error as PlaywrightError

        budget = self.settings.crawl_render_seconds
        closed = False

        async def on_route(route) -> None:
            req = route.request
            u = req.url
            if closed or not u.startswith(("http://", "https://")):
                out.requests.append({"url": u, "kind": req.resource_type, "code": "bad_scheme" if not closed
                                     else "budget"})
                out.refused.append(u)
                with contextlib.suppress(Exception):
                    await route.abort("blockedbyclient")
                return
            try:
                headers = await req.all_headers()
            except PlaywrightError:
                headers = req.headers
            br = BrowserRequest(u, req.method, req.post_data_buffer,
                                {k: v for k, v in headers.items() if k.lower() in FORWARDED},
                                req.resource_type, req.is_navigation_request())
            task = spawn(answer(br))
            try:
                f = await asyncio.shield(task)
            except FetchError as exc:
                out.requests.append({"url": u, "kind": br.kind, "code": exc.code})
                if exc.code in REFUSED:
                    out.refused.append(u)
                with contextlib.suppress(Exception):
                    await route.abort("blockedbyclient" if exc.code in REFUSED else
                                      "timedout" if exc.code == "timeout" else "failed")
                return
            except Exception:  # noqa: BLE001 - the page is gone, or a bug: the browser gets a failure
                with contextlib.suppress(Exception):
                    await route.abort("failed")
                return
            out.requests.append({"url": u, "kind": br.kind, "code": "ok"})
            with contextlib.suppress(Exception):
                if f.url != u:  # a redirect: the browser follows it (the crawl answers the next one from cache)
                    await route.fulfill(status=302, headers={"location": f.url})
                else:
                    await route.fulfill(status=f.status, headers=f.headers, body=f.data)

        await ctx.route("**/*", on_route)  # the context's: pages the script opens and their workers too
        page = await ctx.new_page()
        page.set_default_timeout(budget * 1000)
        try:
            async with asyncio.timeout(budget):
                await page.goto(url, wait_until="load")
                for _ in range(SCROLLS):  # lazy pictures load as they come into view
                    await page.evaluate("window.scrollBy(0, window.innerHeight)")
                    await asyncio.sleep(0.05)
                await page.wait_for_load_state("networkidle")
        except TimeoutError:
            out.timed_out = True
        except PlaywrightError as exc:
            out.error = str(exc).splitlines()[0][:300]
        closed = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                out.final_url = page.url
                out.html = (await page.content()).encode()[:self.settings.crawl_max_page_bytes]
