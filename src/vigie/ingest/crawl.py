"""The crawler's network side: fetch reported URLs safely, read their pages, download the media they show.

Nothing here touches the store; `vigie.ingest.worker` hashes, matches and records what this
module brings back.

Safety, because a public form decides where the crawler goes:

* **Addresses** (`AddressPolicy`): a host is resolved first and refused when any of its
  addresses is private, loopback, link-local, multicast, reserved or otherwise not global
  (error `private_address`), unless it lies in `crawl_allowed_networks`. The request is then
  sent to the address that was checked (the Host header and TLS name stay the host's), so a
  DNS answer that changes between check and connect cannot steer it. Redirects are followed
  by hand, each target checked the same way, at most `crawl_max_redirects`, loops refused.
* **Size**: a body is read in chunks and dropped past its limit (`too_large`); a declared
  Content-Length over the limit is refused before reading.
* **Time**: connect and read timeouts, plus a deadline on the whole download (a server that
  drips one byte a second cannot hold a worker).
* **Politeness**: at most `crawl_per_host_concurrency` requests at once to one host, starts
  spaced by `crawl_per_host_delay`, `crawl_concurrency` in all. robots.txt is not consulted:
  a site that hides abuse material from crawlers must not hide it from a hotline.

Links are followed on the same host only (a site's other pages), to `crawl_max_depth` and
`crawl_max_pages`; media (pictures and videos) are taken from anywhere the page points to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from vigie.media.sniff import sniff
from vigie.settings import Settings

MEDIA_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
                    ".avif", ".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".3gp", ".wmv", ".flv", ".mpg",
                    ".mpeg")
#: HTTP statuses worth trying again later (the URL may come back); others close the question.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset({"timeout", "connect_failed", "http_transient"})
CHUNK = 64 * 1024


class FetchError(Exception):
    """Why a URL could not be fetched: a stable code, a message, and the HTTP status when there was one."""

    def __init__(self, code: str, message: str, *, status: int | None = None, ip: str | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.ip = code, message, status, ip

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "status": self.status}


@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    content_type: str
    data: bytes
    ip: str
    redirects: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def is_html(self) -> bool:
        ct = self.content_type.lower()
        if "html" in ct:
            return True
        if not ct or ct.startswith(("text/plain", "application/octet-stream")):
            return sniff(self.data[:64]) is None and self.data.lstrip()[:1] == b"<"
        return False


# --------------------------------------------------------------------------------------------- addresses


class AddressPolicy:
    """Which IP addresses the crawler may connect to: global ones, plus `crawl_allowed_networks`."""

    def __init__(self, allowed_networks: list[str] | tuple = ()):
        self.allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def allows(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in n for n in self.allowed):
            return True
        return addr.is_global and not addr.is_multicast

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to; FetchError `private_address` when any address of the host is refused."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
            ips = [str(literal)]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise FetchError("dns_failed", f"cannot resolve {host}: {exc}") from None
            ips = list(dict.fromkeys(str(i[4][0]) for i in infos))
        if not ips:
            raise FetchError("dns_failed", f"no address for {host}")
        refused = [ip for ip in ips if not self.allows(ip)]
        if refused:
            raise FetchError("private_address", f"{host} resolves to {refused[0]}, a private, loopback, link-local "
                             "or reserved address: refused (see crawl_allowed_networks)", ip=refused[0])
        return ips[0]


# ------------------------------------------------------------------------------------------------ fetcher


class HostGate:
    """Per-host concurrency and spacing of request starts."""

    def __init__(self, per_host: int, delay: float):
        self.per_host, self.delay = per_host, delay
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    def semaphore(self, host: str) -> asyncio.Semaphore:
        return self._sems.setdefault(host, asyncio.Semaphore(self.per_host))

    async def wait_turn(self, host: str) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + self.delay
        if start > now:
            await asyncio.sleep(start - now)


class Fetcher:
    """An httpx client with the address, size, time and politeness rules of the module docstring."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.policy = AddressPolicy(settings.crawl_allowed_networks)
        self.gate = HostGate(settings.crawl_per_host_concurrency, settings.crawl_per_host_delay)
        self.slots = asyncio.Semaphore(settings.crawl_concurrency)
        t = settings.crawl_timeout
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(t, connect=t, read=t, write=t, pool=None), follow_redirects=False,
            headers={"User-Agent": settings.crawl_user_agent, "Accept": "*/*"}, transport=transport,
            limits=httpx.Limits(max_connections=settings.crawl_concurrency * 2, max_keepalive_connections=20),
            trust_env=False)
        self.requests = 0

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, max_bytes: int) -> Fetched:
        """GET `url` following redirects by hand; raises FetchError (never anything else) on failure."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.crawl_fetch_seconds):
                return await self._follow(url, max_bytes, started)
        except TimeoutError:
            raise FetchError("timeout", f"gave up after {self.settings.crawl_fetch_seconds:g} s") from None

    async def _follow(self, url: str, max_bytes: int, started: float) -> Fetched:
        seen: list[str] = []
        current = url
        while True:
            if current in seen:
                raise FetchError("redirect_loop", f"redirect loop back to {current}")
            seen.append(current)
            resp_status, location, fetched = await self._one(current, max_bytes)
            if location is None:
                fetched.redirects = seen[:-1]
                fetched.seconds = time.monotonic() - started
                return fetched
            if len(seen) > self.settings.crawl_max_redirects:
                raise FetchError("too_many_redirects",
                                 f"more than {self.settings.crawl_max_redirects} redirects from {url}")
            current = urljoin(current, location)

    async def _one(self, url: str, max_bytes: int) -> tuple[int, str | None, Fetched | None]:
        p = urlsplit(url)
        if p.scheme not in ("http", "https"):
            raise FetchError("bad_scheme", f"only http and https are fetched, not {p.scheme or 'none'}:")
        try:
            host, port = p.hostname, p.port or (443 if p.scheme == "https" else 80)
        except ValueError:
            raise FetchError("bad_url", f"not a valid URL: {url}") from None
        if not host:
            raise FetchError("bad_url", f"no host in {url}")
        ip = await self.policy.resolve(host, port)
        netloc_ip = f"[{ip}]" if ":" in ip else ip
        target = urlunsplit((p.scheme, f"{netloc_ip}:{port}", p.path or "/", p.query, ""))
        host_header = p.netloc.rsplit("@", 1)[-1]
        async with self.slots, self.gate.semaphore(host):
            await self.gate.wait_turn(host)
            self.requests += 1
            try:
                async with self.client.stream("GET", target, headers={"Host": host_header},
                                              extensions={"sni_hostname": host}) as resp:
                    if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                        return resp.status_code, resp.headers["location"], None
                    if resp.status_code >= 400:
                        code = "http_transient" if resp.status_code in TRANSIENT_STATUS else "http_error"
                        raise FetchError(code, f"HTTP {resp.status_code} from {url}", status=resp.status_code,
                                         ip=ip)
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError("too_large", f"{url} declares {int(declared):,} bytes, more than the "
                                         f"limit of {max_bytes:,}", status=resp.status_code, ip=ip)
                    buf = bytearray()
                    async for chunk in resp.aiter_bytes(CHUNK):  # decoded bytes count: a gzip bomb stops here
                        buf += chunk
                        if len(buf) > max_bytes:
                            raise FetchError("too_large", f"{url} sends more than the limit of {max_bytes:,} "
                                             "bytes", status=resp.status_code, ip=ip)
                    ctype = resp.headers.get("content-type", "").split(";")[0].strip()
                    return resp.status_code, None, Fetched(url, resp.status_code, ctype, bytes(buf), ip)
            except httpx.TimeoutException:
                raise FetchError("timeout", f"{url} did not answer within {self.settings.crawl_timeout:g} s",
                                 ip=ip) from None
            except httpx.DecodingError as exc:
                raise FetchError("bad_response", f"{url}: cannot decode the body: {exc}", ip=ip) from None
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                    httpx.ProxyError) as exc:
                raise FetchError("connect_failed", f"{url}: {type(exc).__name__}: {exc}", ip=ip) from None
            except httpx.HTTPError as exc:
                raise FetchError("bad_response", f"{url}: {type(exc).__name__}: {exc}", ip=ip) from None


# ------------------------------------------------------------------------------------------------ parsing


@dataclass
class PageLinks:
    media: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)


def _srcset(value: str) -> list[str]:
    out = []
    for cand in value.split(","):
        u = cand.strip().split()
        if u:
            out.append(u[0])
    return out


def is_media_link(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(MEDIA_EXTENSIONS)


def parse_page(html: bytes, base_url: str) -> PageLinks:
    """Media and same-site page links of an HTML page; malformed HTML is read as a browser would."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    base = base_url
    b = tree.css_first("base[href]")
    if b is not None and b.attributes.get("href"):
        base = urljoin(base_url, b.attributes["href"].strip())
    media: list[str] = []
    pages: list[str] = []

    def add(lst: list[str], raw: str | None) -> None:
        if not raw:
            return
        raw = raw.strip()
        if not raw or raw.startswith(("data:", "javascript:", "mailto:", "#", "blob:", "tel:")):
            return
        u = urljoin(base, raw)
        p = urlsplit(u)
        if p.scheme in ("http", "https") and p.hostname:
            lst.append(urlunsplit((p.scheme, p.netloc, p.path or "/", p.query, "")))

    for node in tree.css("img, source, video, audio, embed, input[type=image]"):
        a = node.attributes
        for attr in ("src", "data-src", "data-original", "poster"):
            add(media, a.get(attr))
        for attr in ("srcset", "data-srcset"):
            if a.get(attr):
                for u in _srcset(a[attr]):
                    add(media, u)
    for node in tree.css("meta"):
        a = node.attributes
        prop = (a.get("property") or a.get("name") or "").lower()
        if prop in ("og:image", "og:image:url", "og:image:secure_url", "og:video", "og:video:url",
                    "og:video:secure_url", "twitter:image", "twitter:image:src", "twitter:player:stream"):
            add(media, a.get("content"))
    for node in tree.css("link[rel]"):
        if (node.attributes.get("rel") or "").lower() in ("image_src",):
            add(media, node.attributes.get("href"))
    for node in tree.css("a[href], area[href], iframe[src], frame[src]"):
        a = node.attributes
        target = a.get("href") or a.get("src")
        found: list[str] = []
        add(found, target)
        for u in found:
            (media if is_media_link(u) else pages).append(u)
    return PageLinks(list(dict.fromkeys(media)), list(dict.fromkeys(pages)))


# ------------------------------------------------------------------------------------------------- crawl


@dataclass
class MediaFound:
    """One media URL and what came of downloading it: `fetched` or `error`."""

    url: str
    page_url: str | None
    fetched: Fetched | None = None
    error: FetchError | None = None
    media_type: str | None = None


@dataclass
class CrawlResult:
    url: str
    pages: list[str] = field(default_factory=list)
    media: list[MediaFound] = field(default_factory=list)
    #: Why the reported URL itself could not be read (None when it could).
    error: FetchError | None = None
    log: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


MediaHandler = Callable[[MediaFound], Awaitable[None]]


def _same_host(a: str, b: str) -> bool:
    return (urlsplit(a).hostname or "").lower() == (urlsplit(b).hostname or "").lower()


async def crawl(url: str, fetcher: Fetcher, *, on_media: MediaHandler | None = None) -> CrawlResult:
    """Crawl one reported URL: its page (or the media it is), same-host pages to the depth and page budget,
    and every media they point to. `on_media` is awaited for each media as soon as it is downloaded (so
    hashing overlaps the next downloads); it must not raise."""
    st = fetcher.settings
    res = CrawlResult(url)
    queue: list[tuple[str, int]] = [(url, 0)]
    seen_pages: set[str] = set()
    seen_media: set[str] = set()
    tasks: list[asyncio.Task] = []

    async def get_media(m: MediaFound) -> None:
        try:
            m.fetched = await fetcher.fetch(m.url, st.crawl_max_media_bytes)
            m.media_type = sniff(m.fetched.data[:64])
            if m.media_type is None or m.media_type.split("/")[0] not in ("image", "video"):
                m.error = FetchError("not_media", f"{m.url} is not a picture or video "
                                     f"({m.fetched.content_type or 'no type'})", status=m.fetched.status,
                                     ip=m.fetched.ip)
        except FetchError as exc:
            m.error = exc
        res.media.append(m)
        if on_media is not None:
            await on_media(m)

    def want_media(u: str, page: str | None) -> None:
        if u in seen_media or len(seen_media) >= st.crawl_max_media:
            if len(seen_media) >= st.crawl_max_media and u not in seen_media:
                res.log.append({"url": u, "code": "budget", "message": "media budget spent"})
            return
        seen_media.add(u)
        tasks.append(asyncio.create_task(get_media(MediaFound(u, page))))

    while queue:
        page_url, depth = queue.pop(0)
        if page_url in seen_pages:
            continue
        if len(seen_pages) >= st.crawl_max_pages:
            res.log.append({"url": page_url, "code": "budget", "message": "page budget spent"})
            continue
        seen_pages.add(page_url)
        try:
            f = await fetcher.fetch(page_url, max(st.crawl_max_page_bytes, st.crawl_max_media_bytes)
                                    if depth == 0 else st.crawl_max_page_bytes)
        except FetchError as exc:
            res.log.append({"url": page_url} | exc.as_dict())
            if depth == 0:
                res.error = exc
            continue
        if not f.is_html:
            mt = sniff(f.data[:64])
            if mt and mt.split("/")[0] in ("image", "video"):  # the reported URL is itself a picture or video
                seen_media.add(f.url)
                m = MediaFound(page_url, None, fetched=f, media_type=mt)
                res.media.append(m)
                if on_media is not None:
                    tasks.append(asyncio.create_task(on_media(m)))
            else:
                res.log.append({"url": page_url, "code": "not_media", "message": f"neither a page nor media "
                                f"({f.content_type or 'no type'})", "status": f.status})
            continue
        res.pages.append(f.url)
        if len(f.data) > st.crawl_max_page_bytes:
            res.log.append({"url": page_url, "code": "too_large", "message": "page larger than the page limit"})
            continue
        links = parse_page(f.data, f.url)
        for u in links.media:
            want_media(u, f.url)
        if depth < st.crawl_max_depth:
            for u in links.pages:
                if _same_host(u, url) and u not in seen_pages:
                    queue.append((u, depth + 1))
    if tasks:
        await asyncio.gather(*tasks)
    res.stats = {"pages": len(res.pages), "media": len(res.media),
                 "media_ok": sum(1 for m in res.media if m.error is None), "requests": fetcher.requests}
    return res
