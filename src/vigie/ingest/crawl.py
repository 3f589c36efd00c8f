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

robots.txt is not consulted: a site that hides abuse material from crawlers must not hide it from a hotline.
"""

from __future__ import annotations

import asyncio
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
from vigie.ingest.fetch import Fetched, Fetcher, Gate, looks_like_markup
from vigie.ingest.fetch_errors import TRANSIENT_CODES, TRANSIENT_STATUS, FetchError

__all__ = ["AddressPolicy", "CrawlResult", "Fetched", "Fetcher", "FetchError", "Gate", "MEDIA_EXTENSIONS",
           "MediaFound", "PageLinks", "TRANSIENT_CODES", "TRANSIENT_STATUS", "ascii_host", "crawl", "is_media_link",
           "parse_page", "parse_refresh", "parse_srcset", "parse_stylesheet", "site_of"]

#: Stylesheets imported from stylesheets are followed this deep.
MAX_IMPORT_DEPTH = 3


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


MediaHandler = Callable[[MediaFound], Awaitable[None]]


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _site(url: str) -> str:
    return site_of(_host(url)) if _host(url) else ""


class _Crawl:
    def __init__(self, url: str, fetcher: Fetcher, on_media: MediaHandler | None):
        self.url, self.fetcher, self.on_media = url, fetcher, on_media
        self.st = fetcher.settings
        self.res = CrawlResult(url)
        self.sites = {_site(url)}
        self.seen_pages: set[str] = set()
        self.seen_media: set[str] = set()
        self.seen_sheets: set[str] = set()
        self.tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------------------------------ fetching

    def record(self, kind: str, url: str, attempt: int, code: str, trace: dict | None = None, *,
               fetched: Fetched | None = None, error: FetchError | None = None, page_url: str | None = None,
               retry_in: float | None = None) -> None:
        """One entry of `CrawlResult.fetches`: url, kind (page, media, stylesheet), attempt (0: never sent),
        code, status, ip, at (ISO time the request was sent), seconds (the request's own time), waited
        (for its turn), bytes, page_url, and when they apply final_url, message, retry_in."""
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
        self.res.fetches.append(e)

    def retry_in(self, exc: FetchError, attempt: int) -> float | None:
        """Seconds before the next try of a failed fetch, or None when it is not tried again now."""
        if not exc.transient or attempt > self.st.crawl_retries:
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.st.crawl_retry_max_wait else None
        return min(self.st.crawl_retry_backoff * 2 ** (attempt - 1), self.st.crawl_retry_max_wait)

    async def get(self, kind: str, url: str, max_bytes: int, page_bytes: int | None, page_url: str | None,
                  counter: MediaFound | None = None) -> Fetched:
        attempt = 0
        while True:
            attempt += 1
            if counter is not None:
                counter.attempts = attempt
            trace: dict = {}
            try:
                f = await self.fetcher.fetch(url, max_bytes, page_bytes=page_bytes, trace=trace)
            except FetchError as exc:
                wait = self.retry_in(exc, attempt)
                self.record(kind, url, attempt, exc.code, trace, error=exc, page_url=page_url, retry_in=wait)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                continue
            code = "not_media" if kind == "media" and not f.is_media else "ok"
            self.record(kind, url, attempt, code, trace, fetched=f, page_url=page_url)
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
        try:
            m.fetched = await self.get("media", m.url, self.st.crawl_max_media_bytes, None, m.page_url, m)
            m.media_type = m.fetched.sniffed
            if not m.fetched.is_media:
                m.error = FetchError("not_media", f"{m.url} is not a picture or video "
                                     f"({m.fetched.content_type or 'no type'})", status=m.fetched.status,
                                     ip=m.fetched.ip)
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
        except FetchError as exc:
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
        self.res.pages.append(f.url)
        links = parse_page(f.data, f.url)
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
        if depth < st.crawl_max_depth:
            nxt += [(u, f.url, depth + 1) for u in links.pages if _site(u) in self.sites]
        return nxt

    async def run(self) -> CrawlResult:
        st, res = self.st, self.res
        frontier: list[tuple[str, str | None, int]] = [(self.url, None, 0)]
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
        while self.tasks:
            batch, self.tasks = self.tasks, []
            await asyncio.gather(*batch)
        res.sites = sorted(s for s in self.sites if s)
        res.stats = {"pages": len(res.pages), "media": len(res.media),
                     "media_ok": sum(1 for m in res.media if m.error is None), "requests": self.fetcher.requests,
                     "fetches": len(res.fetches), "retries": sum(1 for e in res.fetches if e["attempt"] > 1)}
        return res


async def crawl(url: str, fetcher: Fetcher, *, on_media: MediaHandler | None = None) -> CrawlResult:
    """Crawl one reported URL: its page (or the media it is), same-site pages to the depth and page budget,
    and every media they show. `on_media` is awaited for each media as soon as it is downloaded (so hashing
    overlaps the next downloads); it must not raise."""
    return await _Crawl(url, fetcher, on_media).run()


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on one site (registrable domain)."""
    return bool(_site(a)) and _site(a) == _site(b)


def normalise_host(url: str) -> str:
    """The URL's host as it goes on the wire (IDNA 2008), '' when it has none or a bad one."""
    try:
        return ascii_host(_host(url)) if _host(url) else ""
    except FetchError:
        return ""
