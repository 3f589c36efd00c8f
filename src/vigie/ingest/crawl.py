"""The crawler's network side: fetch reported URLs safely, read their pages, download the media they show.

Nothing here touches the store; `vigie.ingest.worker` hashes, matches and records what this
module brings back. The parts live in modules of their own and are re-exported here:

* `vigie.ingest.addresses`: host names (IDNA 2008), the address rules (SSRF), sites (public suffix list);
* `vigie.ingest.fetch`: one fetch (limits, content by bytes) and the scheduler (per address, fair);
* `vigie.ingest.decode`: Content-Encoding decoded in streaming under the byte limit;
* `vigie.ingest.extract`: every media reference of HTML and CSS.

What this module adds is the crawl of one reported URL:

* **Nothing lost.** Every failed fetch that may succeed later (timeout, refused connection, 408, 425,
  429, 5xx) is tried again, `crawl_retries` times, after a backoff (`crawl_retry_backoff` doubled at
  each try, or the server's Retry-After when it says one, up to `crawl_retry_max_wait`; a longer
  Retry-After leaves the fetch `http_transient`, which the worker tries again in a later round). A task
  waiting to retry holds no slot.
* **Every fetch in the result** (`CrawlResult.fetches`): one entry per attempt, skipped or not,
  with its code (``ok``, ``not_media``, an error code, ``budget`` for what the budget left unfetched).
* **Same site** by registrable domain, the site a redirect (or refresh) of the reported URL lands on
  included: links are followed there to `crawl_max_depth`; media are taken from anywhere.
* Pages are fetched a depth level at a time, concurrently; media and stylesheets as soon as found.
* **Rendering** (`vigie.ingest.render`): a page is also opened in chromium when its report asks for it
  (``render=True``), when its host is in `crawl_render_hosts`, or (`crawl_render_auto`) when it runs
  scripts and shows no picture; every request of the browser is fetched here, under the same rules, and
  every picture or video it loads is a `MediaFound` like any other (``via="render"``).
* **Cloaking**: when the reported URL answers with an error or a page without a picture, it is asked
  again under `crawl_cloak_agent`; the two answers are recorded (`CrawlResult.cloaking`), and when the
  second shows more, the crawl goes on with it and under that agent.
* **Time budget** (`crawl_report_seconds`): past it nothing more is sent; what is left (pages,
  stylesheets, media) is in `CrawlResult.carry`, with what was done, and `crawl(resume=...)` takes it up
  in the next round where it stopped (fetches code ``carried`` in the log).

robots.txt is not consulted: a site that hides abuse material from crawlers must not hide it from a hotline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from vigie.ingest.addresses import AddressPolicy, ascii_host, site_of
from vigie.ingest.extract import (
    MEDIA_EXTENSIONS,
    PageLinks,
    is_media_link,
    parse_page,
    parse_refresh,
    parse_srcset,
    parse_stylesheet,
)
from vigie.ingest.fetch import Fetched, Fetcher, Gate, Hold, looks_like_markup
from vigie.ingest.fetch_errors import TRANSIENT_CODES, TRANSIENT_STATUS, FetchError
from vigie.ingest.render import BrowserRequest, Renderer

__all__ = ["AddressPolicy", "CrawlResult", "Fetched", "Fetcher", "FetchError", "Gate", "MEDIA_EXTENSIONS",
           "MediaFound", "PageLinks", "Renderer", "TRANSIENT_CODES", "TRANSIENT_STATUS", "ascii_host", "crawl",
           "is_media_link", "parse_page", "parse_refresh", "parse_srcset", "parse_stylesheet", "site_of"]

#: Stylesheets imported from stylesheets are followed this deep.
MAX_IMPORT_DEPTH = 3
#: Requests one rendered page may make (besides pictures already in hand); more get `budget`.
MAX_RENDER_REQUESTS = 500
#: What the browser is given for a picture the crawl fetches anyway (a 1x1 transparent GIF): never fetched twice.
BLANK_GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


@dataclass
class MediaFound:
    """One media URL and what came of downloading it: `fetched` or `error`."""

    url: str
    page_url: str | None
    fetched: Fetched | None = None
    error: FetchError | None = None
    media_type: str | None = None
    #: How many requests it took (1 when the first one answered).
    attempts: int = 0
    #: ``fetch`` (found in HTML or CSS) or ``render`` (loaded by the page in the browser).
    via: str = "fetch"


@dataclass
class CrawlResult:
    url: str
    pages: list[str] = field(default_factory=list)
    media: list[MediaFound] = field(default_factory=list)
    #: Why the reported URL itself could not be read (None when it could). A page over the page limit
    #: gets `too_large` here although the pictures of its first part were still taken.
    error: FetchError | None = None
    #: Page-level events (a page's error, budgets spent), as before.
    log: list[dict] = field(default_factory=list)
    #: Every request, one entry per attempt, skipped or not (see `_Crawl.record`).
    fetches: list[dict] = field(default_factory=list)
    #: The sites (registrable domains) whose links were followed.
    sites: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    #: Pages opened in the browser: url, reason (report, host, auto), requests, refused, media, timed_out.
    renders: list[dict] = field(default_factory=list)
    #: The second look under another agent, when there was one: agent, first, second, differs.
    cloaking: dict | None = None
    #: What the time budget left undone, to take up next round (`crawl(resume=...)`); None when all is done.
    carry: dict | None = None


MediaHandler = Callable[[MediaFound], Awaitable[None]]


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _site(url: str) -> str:
    return site_of(_host(url)) if _host(url) else ""


class _Carried(Exception):
    """The report's time budget is spent: this fetch goes to the next round."""


class _Crawl:
    def __init__(self, url: str, fetcher: Fetcher, on_media: MediaHandler | None, *, render: bool = False,
                 renderer: Renderer | None = None, resume: dict | None = None):
        self.url, self.fetcher, self.on_media = url, fetcher, on_media
        self.st = fetcher.settings
        self.res = CrawlResult(url)
        self.sites = {_site(url)}
        self.seen_pages: set[str] = set()
        self.seen_media: set[str] = set()
        self.seen_sheets: set[str] = set()
        self.tasks: list[asyncio.Task] = []
        #: Fetches the browser asked for (their errors are the browser's business: gathered apart).
        self.browser_tasks: list[asyncio.Task] = []
        self.render, self.renderer, self.renders = render, renderer, 0
        #: Extra request headers for the whole crawl (the second agent, once a site cloaked).
        self.headers: dict[str, str] = {}
        self.deadline = time.monotonic() + self.st.crawl_report_seconds
        self.carry: dict[str, list] = {"pages": [], "sheets": [], "media": []}
        self.frontier: list[tuple[str, str | None, int]] = [(url, None, 0)]
        if resume:
            self.seen_pages |= set(resume.get("done_pages", ()))
            self.seen_media |= set(resume.get("done_media", ()))
            self.seen_sheets |= set(resume.get("done_sheets", ()))
            self.sites |= set(resume.get("sites", ()))
            self.headers = dict(resume.get("headers") or {})
            self.frontier = [tuple(x) for x in resume.get("pages", ())]
            self.resumed_media = [tuple(x) for x in resume.get("media", ())]
            self.resumed_sheets = [tuple(x) for x in resume.get("sheets", ())]
        else:
            self.resumed_media, self.resumed_sheets = [], []

    # ------------------------------------------------------------------------------------------ fetching

    def record(self, kind: str, url: str, attempt: int, code: str, trace: dict | None = None, *,
               fetched: Fetched | None = None, error: FetchError | None = None, page_url: str | None = None,
               retry_in: float | None = None, agent: str | None = None) -> None:
        """One entry of `CrawlResult.fetches`: url, kind (page, media, stylesheet, render: another request of
        the browser), attempt (0: never sent), code, status, ip, at (ISO time the request was sent), seconds
        (the request's own time), waited (for its turn), bytes, page_url, and when they apply final_url,
        message, retry_in, agent (a User-Agent other than the crawler's)."""
        trace = trace or {}
        at = trace.get("at")
        e = {"url": url, "kind": kind, "attempt": attempt, "code": code,
             "status": fetched.status if fetched else (error.status if error else None),
             "ip": (fetched.ip if fetched else None) or (error.ip if error else None) or trace.get("ip"),
             "at": at.isoformat() if at else None, "seconds": round(trace.get("seconds", 0.0), 4),
             "waited": round(trace.get("waited", 0.0), 4),
             "bytes": len(fetched.data) if fetched else trace.get("bytes"), "page_url": page_url}
        if fetched is not None and fetched.url != url:
            e["final_url"] = fetched.url
        if error is not None:
            e["message"] = error.message
        if retry_in is not None:
            e["retry_in"] = round(retry_in, 3)
        if agent is not None:
            e["agent"] = agent
        self.res.fetches.append(e)

    def retry_in(self, exc: FetchError, attempt: int) -> float | None:
        """Seconds before the next try of a failed fetch, or None when it is not tried again now."""
        if not exc.transient or attempt > self.st.crawl_retries:
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.st.crawl_retry_max_wait else None
        return min(self.st.crawl_retry_backoff * 2 ** (attempt - 1), self.st.crawl_retry_max_wait)

    def spent(self) -> bool:
        return time.monotonic() > self.deadline

    async def get(self, kind: str, url: str, max_bytes: int, page_bytes: int | None, page_url: str | None,
                  counter: MediaFound | None = None, *, method: str = "GET", body: bytes | None = None,
                  headers: dict[str, str] | None = None, hold: Hold | None = None) -> Fetched:
        """Fetch with retries; `_Carried` when the report's time budget is spent before it could be sent.
        `hold` (a place among the media in hand) is given back while waiting to try again."""
        attempt = 0
        hdrs = self.headers | (headers or {})
        agent = hdrs.get("User-Agent")
        while True:
            attempt += 1
            if counter is not None:
                counter.attempts = attempt
            trace: dict = {}
            if self.spent():
                self.record(kind, url, 0, "carried", page_url=page_url, agent=agent)
                raise _Carried(url)
            try:
                f = await self.fetcher.fetch(url, max_bytes, page_bytes=page_bytes, trace=trace, method=method,
                                             body=body, headers=hdrs, deadline=self.deadline, hold=hold)
            except FetchError as exc:
                if exc.code == "carried":
                    self.record(kind, url, 0, "carried", trace, page_url=page_url, agent=agent)
                    raise _Carried(url) from None
                wait = self.retry_in(exc, attempt)
                self.record(kind, url, attempt, exc.code, trace, error=exc, page_url=page_url, retry_in=wait,
                            agent=agent)
                if wait is None:
                    raise
                if hold is not None:
                    hold.release()
                await asyncio.sleep(wait)
                continue
            code = "not_media" if kind == "media" and not f.is_media else "ok"
            self.record(kind, url, attempt, code, trace, fetched=f, page_url=page_url, agent=agent)
            return f

    # --------------------------------------------------------------------------------------------- media

    def want_media(self, u: str, page: str | None) -> None:
        if u in self.seen_media:
            return
        if len(self.seen_media) >= self.st.crawl_max_media:
            self.res.log.append({"url": u, "code": "budget", "message": "media budget spent"})
            self.record("media", u, 0, "budget", page_url=page)
            self.seen_media.add(u)
            return
        self.seen_media.add(u)
        self.tasks.append(asyncio.create_task(self.get_media(MediaFound(u, page))))

    async def get_media(self, m: MediaFound) -> None:
        """Download one media and hand it to `on_media`, holding a place among the media in hand from its turn
        until `on_media` is done with it (`Fetcher.media_in_hand`: downloads never run far ahead of hashing)."""
        hold = self.fetcher.hold()
        try:
            await self._get_media(m, hold)
        finally:
            if hold is not None:
                hold.release()

    async def _get_media(self, m: MediaFound, hold: Hold | None) -> None:
        try:
            m.fetched = await self.get("media", m.url, self.st.crawl_max_media_bytes, None, m.page_url, m,
                                       hold=hold)
            m.media_type = m.fetched.sniffed
            if not m.fetched.is_media:
                m.error = FetchError("not_media", f"{m.url} is not a picture or video "
                                     f"({m.fetched.content_type or 'no type'})", status=m.fetched.status,
                                     ip=m.fetched.ip)
        except _Carried:
            self.carry["media"].append((m.url, m.page_url))
            return
        except FetchError as exc:
            m.error = exc
        await self.found(m)

    async def found(self, m: MediaFound) -> None:
        self.res.media.append(m)
        if self.on_media is not None:
            await self.on_media(m)

    def want_sheet(self, u: str, page: str, depth: int) -> None:
        if u in self.seen_sheets or depth > MAX_IMPORT_DEPTH:
            return
        self.seen_sheets.add(u)
        if len(self.seen_sheets) > self.st.crawl_max_pages:
            self.res.log.append({"url": u, "code": "budget", "message": "stylesheet budget spent"})
            self.record("stylesheet", u, 0, "budget", page_url=page)
            return
        self.tasks.append(asyncio.create_task(self.get_sheet(u, page, depth)))

    async def get_sheet(self, u: str, page: str, depth: int) -> None:
        try:
            f = await self.get("stylesheet", u, self.st.crawl_max_page_bytes, None, page)
        except _Carried:
            self.carry["sheets"].append((u, page, depth))
            return
        except FetchError as exc:
            self.res.log.append({"url": u} | exc.as_dict())
            return
        if f.is_media:  # a picture linked as a stylesheet is still a picture
            self.seen_media.add(f.url)
            await self.found(MediaFound(u, page, fetched=f, media_type=f.sniffed, attempts=1))
            return
        media, imports = parse_stylesheet(f.data, f.url)
        for x in media:
            self.want_media(x, page)
        for x in imports:
            self.want_sheet(x, page, depth + 1)

    # --------------------------------------------------------------------------------------------- pages

    async def page(self, page_url: str, ref: str | None, depth: int) -> list[tuple[str, str | None, int]]:
        st = self.st
        try:
            f = await self.get("page", page_url, st.crawl_max_media_bytes, st.crawl_max_page_bytes, ref)
        except _Carried:
            self.carry["pages"].append((page_url, ref, depth))
            return []
        except FetchError as exc:
            f = None
            if depth == 0 and exc.code == "http_error":  # 403, 404, 410...: maybe only to the crawler
                f = await self.second_look(page_url, ref, first_error=exc)
            if f is None:
                self.res.log.append({"url": page_url} | exc.as_dict())
                if depth == 0:
                    self.res.error = exc
                if exc.code == "too_large" and exc.partial is not None and looks_like_markup(exc.partial):
                    # Too long to read whole: the pictures of its first part are still taken.
                    f = Fetched(page_url, exc.status or 200, "text/html", exc.partial, exc.ip or "")
                else:
                    return []
        if depth == 0:
            self.sites.add(_site(f.url))  # a short link: the site it lands on is the reported site
        if f.is_media:  # the URL is itself a picture or a video, whatever its type says
            self.seen_media.add(f.url)
            m = MediaFound(page_url, ref, fetched=f, media_type=f.sniffed, attempts=1)
            self.res.media.append(m)
            if self.on_media is not None:
                self.tasks.append(asyncio.create_task(self.on_media(m)))
            return []
        if not f.is_html:
            self.res.log.append({"url": page_url, "code": "not_media", "message": "neither a page nor media "
                                 f"({f.content_type or 'no type'})", "status": f.status})
            return []
        links = parse_page(f.data, f.url)
        if depth == 0 and not links.media and not links.refresh and self.res.cloaking is None:
            other = await self.second_look(page_url, ref, first=f, first_links=links)
            if other is not None:
                return await self.read(other, ref, depth)
        return await self.read(f, ref, depth, links)

    async def read(self, f: Fetched, ref: str | None, depth: int, links: PageLinks | None = None
                   ) -> list[tuple[str, str | None, int]]:
        """Take what a fetched page shows (rendering it when it should be) and return the pages it leads to."""
        if f.is_media:
            self.seen_media.add(f.url)
            await self.found(MediaFound(f.url, ref, fetched=f, media_type=f.sniffed, attempts=1))
            return []
        links = links or parse_page(f.data, f.url)
        self.res.pages.append(f.url)
        for u in links.media:
            self.want_media(u, f.url)
        for u in links.stylesheets:
            self.want_sheet(u, f.url, 0)
        nxt: list[tuple[str, str | None, int]] = []
        refresh = list(links.refresh)
        header = parse_refresh(f.refresh)
        if header:
            refresh.append(urljoin(f.url, header))
        for u in refresh:  # like a redirect: followed wherever it goes, at the same depth
            if depth == 0:
                self.sites.add(_site(u))
            nxt.append((u, f.url, depth))
        pages = list(links.pages)
        reason = self.render_reason(f, links)
        if reason is not None:
            pages += await self.rendered(f, reason)
        if depth < self.st.crawl_max_depth:
            nxt += [(u, f.url, depth + 1) for u in dict.fromkeys(pages) if _site(u) in self.sites]
        return nxt

    # ----------------------------------------------------------------------------------------- rendering

    def render_reason(self, f: Fetched, links: PageLinks) -> str | None:
        """Why this page is opened in the browser (report, host, auto), or None."""
        if self.renderer is None or self.renders >= self.st.crawl_render_pages or self.spent():
            return None
        host = _host(f.url)
        if self.render:
            return "report"
        if host in self.st.crawl_render_hosts or _site(f.url) in self.st.crawl_render_hosts:
            return "host"
        if self.st.crawl_render_auto and links.scripts and not links.media:
            return "auto"
        return None

    async def rendered(self, f: Fetched, reason: str) -> list[str]:
        """Open the page in the browser; every picture and video it loads is found; the links of its DOM are
        returned. Every request of the browser is answered by `answer`, under the crawler's rules."""
        self.renders += 1
        st, page_url = self.st, f.url
        cache: dict[str, Fetched] = {f.url: f}
        captured: list[str] = []

        asked = [0]

        async def answer(br: BrowserRequest) -> Fetched:
            if br.method == "GET" and br.url in cache:
                return cache.pop(br.url)
            media = br.kind in ("image", "media")
            new = media and br.url not in self.seen_media
            if media and not new:  # the crawl has (or is getting) it: the browser gets a blank pixel
                return Fetched(br.url, 200, "image/gif", BLANK_GIF, "", headers={"content-type": "image/gif"})
            asked[0] += 1
            if asked[0] > MAX_RENDER_REQUESTS:
                self.record("render", br.url, 0, "budget", page_url=page_url)
                raise FetchError("budget", f"more than {MAX_RENDER_REQUESTS} requests from one rendered page")
            if new:
                if len(self.seen_media) >= st.crawl_max_media:
                    self.record("media", br.url, 0, "budget", page_url=page_url)
                    raise FetchError("budget", "media budget spent")
                self.seen_media.add(br.url)
            m = MediaFound(br.url, page_url, via="render")
            try:
                got = await self.get("media" if media else "render", br.url, st.crawl_max_media_bytes,
                                     None if media else st.crawl_max_page_bytes, page_url, m if new else None,
                                     method=br.method, body=br.body, headers=br.headers)
            except _Carried:
                if new:
                    self.carry["media"].append((br.url, page_url))
                raise FetchError("carried", "the report's time budget is spent") from None
            except FetchError as exc:
                if new:
                    m.error = exc
                    await self.found(m)
                raise
            if got.url != br.url:
                cache[got.url] = got  # the browser follows the redirect: answered from here
            if got.is_media and (new or got.url not in self.seen_media):
                self.seen_media.add(got.url)
                m.fetched, m.media_type = dataclasses.replace(got), got.sniffed  # the browser keeps `got`
                captured.append(br.url)
                self.tasks.append(asyncio.create_task(self.found(m)))
            elif new:
                m.fetched = dataclasses.replace(got)
                m.error = FetchError("not_media", f"{br.url} is not a picture or video "
                                     f"({got.content_type or 'no type'})", status=got.status, ip=got.ip)
                self.tasks.append(asyncio.create_task(self.found(m)))
            return got

        def spawn(coro) -> asyncio.Task:
            t = asyncio.create_task(coro)
            self.browser_tasks.append(t)
            return t

        agent = self.headers.get("User-Agent", self.fetcher.user_agent)
        r = await self.renderer.render(page_url, answer, user_agent=agent, spawn=spawn)
        self.res.renders.append({"url": page_url, "reason": reason, "requests": len(r.requests),
                                 "refused": r.refused, "media": captured, "timed_out": r.timed_out,
                                 "error": r.error})
        if r.error == "render_unavailable":
            self.res.log.append({"url": page_url, "code": "render_unavailable",
                                 "message": "no chromium to render the page with (crawl_chromium)"})
        if not r.html:
            return []
        links = parse_page(r.html, r.final_url or page_url)
        for u in links.media:
            self.want_media(u, page_url)
        for u in links.stylesheets:
            self.want_sheet(u, page_url, 0)
        return links.pages

    # ------------------------------------------------------------------------------------------ cloaking

    async def second_look(self, url: str, ref: str | None, *, first: Fetched | None = None,
                          first_error: FetchError | None = None, first_links: PageLinks | None = None
                          ) -> Fetched | None:
        """Ask the reported URL again under `crawl_cloak_agent` (its first answer was an error or a page without
        a picture); record both answers; the second when it shows more (the crawl then keeps that agent)."""
        agent = self.st.crawl_cloak_agent
        if not agent or agent == self.headers.get("User-Agent", self.fetcher.user_agent):
            return None

        def summary(f: Fetched | None, err: FetchError | None, links: PageLinks | None) -> dict:
            if f is None:
                return {"code": err.code if err else None, "status": err.status if err else None, "media": 0}
            n = 1 if f.is_media else len((links or parse_page(f.data, f.url)).media) if f.is_html else 0
            return {"code": "ok", "status": f.status, "media": n, "bytes": len(f.data)}

        one = summary(first, first_error, first_links)
        try:
            other = await self.get("page", url, self.st.crawl_max_media_bytes, self.st.crawl_max_page_bytes, ref,
                                   headers={"User-Agent": agent})
            err = None
        except _Carried:
            return None
        except FetchError as exc:
            other, err = None, exc
        two = summary(other, err, None)
        differs = one["code"] != two["code"] or one["status"] != two["status"] or one["media"] != two["media"]
        self.res.cloaking = {"url": url, "agent": agent, "first": one, "second": two, "differs": differs}
        if differs:
            self.res.log.append({"url": url, "code": "cloaking", "message": "the page answered the crawler "
                                 f"differently under another agent ({one} then {two})"})
        if other is not None and differs and (one["code"] != "ok" or two["media"] > one["media"]):
            self.headers["User-Agent"] = agent
            return other
        return None

    # ----------------------------------------------------------------------------------------------- run

    async def run(self) -> CrawlResult:
        st, res = self.st, self.res
        for u, page in self.resumed_media:
            self.seen_media.discard(u)
            self.want_media(u, page)
        for u, page, depth in self.resumed_sheets:
            self.seen_sheets.discard(u)
            self.want_sheet(u, page, depth)
        frontier = self.frontier
        while frontier:
            level = []
            for u, ref, depth in frontier:
                if u in self.seen_pages:
                    continue
                self.seen_pages.add(u)
                if len(self.seen_pages) > st.crawl_max_pages:
                    res.log.append({"url": u, "code": "budget", "message": "page budget spent"})
                    self.record("page", u, 0, "budget", page_url=ref)
                    continue
                level.append((u, ref, depth))
            found = await asyncio.gather(*(self.page(u, ref, d) for u, ref, d in level))
            frontier = [x for nxt in found for x in nxt]
        while self.tasks or self.browser_tasks:
            batch, self.tasks = self.tasks, []
            await asyncio.gather(*batch)
            browser, self.browser_tasks = self.browser_tasks, []
            await asyncio.gather(*browser, return_exceptions=True)  # their errors went to the browser
        res.sites = sorted(s for s in self.sites if s)
        self.finish_carry()
        res.stats = {"pages": len(res.pages), "media": len(res.media),
                     "media_ok": sum(1 for m in res.media if m.error is None), "requests": self.fetcher.requests,
                     "fetches": len(res.fetches), "retries": sum(1 for e in res.fetches if e["attempt"] > 1),
                     "rendered": len(res.renders), "carried": sum(len(v) for v in self.carry.values())}
        return res

    def finish_carry(self) -> None:
        c = self.carry
        if not any(c.values()):
            return
        pages = {p[0] for p in c["pages"]}
        media = {m[0] for m in c["media"]}
        sheets = {s[0] for s in c["sheets"]}
        self.res.carry = {
            "pages": [list(p) for p in c["pages"]], "media": [list(m) for m in c["media"]],
            "sheets": [list(s) for s in c["sheets"]],
            "done_pages": sorted(self.seen_pages - pages), "done_media": sorted(self.seen_media - media),
            "done_sheets": sorted(self.seen_sheets - sheets), "sites": sorted(s for s in self.sites if s),
            "headers": dict(self.headers)}
        self.res.log.append({"url": self.url, "code": "carried", "message": f"time budget of "
                             f"{self.st.crawl_report_seconds:g} s spent: {len(pages)} pages, {len(sheets)} "
                             f"stylesheets and {len(media)} media left for the next round"})


async def crawl(url: str, fetcher: Fetcher, *, on_media: MediaHandler | None = None, render: bool = False,
                renderer: Renderer | None = None, resume: dict | None = None) -> CrawlResult:
    """Crawl one reported URL: its page (or the media it is), same-site pages to the depth and page budget,
    and every media they show. `on_media` is awaited for each media as soon as it is downloaded (so hashing
    overlaps the next downloads); it must not raise. `render`: open its pages in the browser (the report
    asked for it; `renderer` must be given for any rendering). `resume`: a `CrawlResult.carry` of an earlier
    round, taken up where it stopped."""
    return await _Crawl(url, fetcher, on_media, render=render, renderer=renderer, resume=resume).run()


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on one site (registrable domain)."""
    return bool(_site(a)) and _site(a) == _site(b)


def normalise_host(url: str) -> str:
    """The URL's host as it goes on the wire (IDNA 2008), '' when it has none or a bad one."""
    try:
        return ascii_host(_host(url)) if _host(url) else ""
    except FetchError:
        return ""
