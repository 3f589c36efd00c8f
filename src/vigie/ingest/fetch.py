"""One HTTP fetch, safely, and the scheduler that decides when it may start.

* **Addresses**: see `vigie.ingest.addresses`. The request goes to the address that was checked
  (the Host header and TLS name stay the host's), so a DNS answer that changes between check and
  connect cannot steer it. Redirects are followed by hand, each target checked again, at most
  `crawl_max_redirects`, loops refused.
* **Scheduling** (`Gate`): a request first waits its turn in the queue of the address it goes to
  (politeness is per resolved address, so one server under many names gets no more than its share:
  `crawl_per_host_concurrency` at once, starts spaced by `crawl_per_host_delay`), and only then for
  one of the `crawl_concurrency` slots of the whole crawler. The slots are handed out in arrival
  order and each address holds at most its own share of waiters, so hosts take turns: a gallery of
  thousands of pictures cannot starve a second host, and a host's slow pictures only slow that host.
* **Time**: the limits count only the request's own connect and transfer, never a wait for a turn:
  `crawl_timeout` to connect and between two reads, `crawl_fetch_seconds` for the whole answer of one
  request. A request that was never sent is never a `timeout`.
* **Content by bytes**: the first bytes are sniffed. With `page_bytes`, an answer that is a picture
  or a video is read to the media limit whatever its Content-Type says, and anything else to the
  page limit; past it, `too_large` with what was read so far (`FetchError.partial`).
* **Encodings**: decoded here in streaming (`vigie.ingest.decode`), the limit counting decoded bytes.
* **Cookies**: one jar per site (registrable domain, `vigie.ingest.addresses.site_of`), kept by the real
  URL's host, never by the address: two sites on one server never see each other's cookies, and one
  site under several addresses keeps its own. A caller that sends its own Cookie header (the rendering
  browser, which keeps its own jar) is not given the jar's.
* **Connections** (`Pools`): pooled per (scheme, address, port, host name): a connection opened with
  the TLS name (SNI) and Host of one site is never reused for another site on the same address.
* **Deadlines**: `fetch(deadline=...)` (a `time.monotonic()` time): a request whose turn comes after it
  is not sent (FetchError `carried`: the report's time budget is spent; the worker carries it over).
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import select
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from vigie.ingest.addresses import AddressPolicy, ascii_host, site_of
from vigie.ingest.decode import Decoder
from vigie.ingest.fetch_errors import TRANSIENT_STATUS, FetchError
from vigie.media.sniff import is_media, sniff
from vigie.settings import Settings

CHUNK = 64 * 1024
SNIFF_AT = 512
REDIRECTS = (301, 302, 303, 307, 308)
ACCEPT_ENCODING = "gzip, deflate, br"
#: Connection pools kept at once (one per scheme, address, port and host name); past it, idle ones are closed.
MAX_POOLS = 256


def _skip_sniffio_lookups() -> None:
    """httpcore runs `import sniffio` at every request and falls back to asyncio when it is missing; a failed
    import is not remembered, so without sniffio each request searched the whole of sys.path again (about
    a millisecond of CPU per request, the largest part of the crawler's own network cost). Marking it
    missing once makes the same import fail at once: the same behaviour, without the search."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


_skip_sniffio_lookups()


def looks_like_markup(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    return head[:1] == b"<"


@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    content_type: str
    data: bytes
    ip: str
    redirects: list[str] = field(default_factory=list)
    #: Seconds of the request itself (connect and transfer of every hop), never the wait for a turn.
    seconds: float = 0.0
    #: Seconds spent waiting for a turn (politeness and the crawler's slots).
    waited: float = 0.0
    #: When the (last) request was sent.
    at: datetime | None = None
    #: The `Refresh` response header, when there was one.
    refresh: str | None = None
    #: The headers of the (last) answer, repeated ones joined by a new line, less those of the transfer
    #: (encoding, length): what the rendering browser is given with the decoded body.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def sniffed(self) -> str | None:
        return sniff(self.data[:64])

    @property
    def is_media(self) -> bool:
        return is_media(self.sniffed)

    @property
    def is_html(self) -> bool:
        """A page to read for links: by its bytes first (a picture served as text/html is a picture)."""
        if self.is_media:
            return False
        ct = self.content_type.lower()
        if "html" in ct or ct.endswith("+xml"):
            return True
        if not ct or ct.startswith(("text/plain", "application/octet-stream")):
            return self.sniffed is None and looks_like_markup(self.data)
        return False


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


_TRANSFER = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"})


def _kept_headers(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.multi_items():
        k = k.lower()
        if k not in _TRANSFER:
            out[k] = f"{out[k]}\n{v}" if k in out else v
    return out


class _Headers:
    """What `CookieJar.extract_cookies` reads from an answer: its headers, by name."""

    def __init__(self, headers: httpx.Headers):
        self.headers = headers

    def info(self):
        return self

    def get_all(self, name: str, default=None):
        return self.headers.get_list(name) or default


class Jars:
    """A cookie jar per site (see the module docstring)."""

    def __init__(self):
        self.jars: dict[str, CookieJar] = {}
        #: The site of each host met (a gallery's media share one host: its site is worked out once).
        self._sites: dict[str, str] = {}

    def jar(self, url: str) -> CookieJar:
        host = urlsplit(url).hostname or ""
        key = self._sites.get(host)
        if key is None:
            key = self._sites[host] = site_of(host) if host else ""
        if key not in self.jars:  # host-only cookies stay on their host, as in browsers
            self.jars[key] = CookieJar(DefaultCookiePolicy(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain))
        return self.jars[key]

    def header(self, url: str) -> str | None:
        jar = self.jar(url)
        if not len(jar):  # nothing kept for this site: no Cookie header (without building a request to ask)
            return None
        req = urllib.request.Request(url)
        jar.add_cookie_header(req)
        return req.get_header("Cookie")

    def keep(self, url: str, headers: httpx.Headers) -> None:
        if "set-cookie" in headers:
            self.jar(url).extract_cookies(_Headers(headers), urllib.request.Request(url))


class _NoCookies(httpx.Cookies):
    """httpx's own cookie store, which the Fetcher never uses (cookies are kept per site in `Jars`; httpx's jar
    keys them by address): its jar refused every cookie, so reading each answer's cookies into it was work
    for nothing (a request object built per answer). Now nothing is read into it, and it stays empty."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _Client(httpx.AsyncClient):
    """The Fetcher's httpx client: its cookie store is `_NoCookies` (always empty)."""

    _never_cookies: _NoCookies | None = None

    @property
    def cookies(self) -> httpx.Cookies:
        if self._never_cookies is None:
            self._never_cookies = _NoCookies()
        return self._never_cookies

    @cookies.setter
    def cookies(self, cookies) -> None:  # whatever is given, httpx's store stays unused
        self._never_cookies = _NoCookies()


def _readable(sock) -> bool:
    """Whether a socket has something to read (httpcore's test of an idle connection the server closed: it then
    reads b""); a closed socket counts as readable, as in httpcore."""
    fd = sock.fileno()
    if fd < 0:
        return True
    if getattr(select, "poll", None) is None:  # pragma: no cover - not on Linux
        return bool(select.select([fd], [], [], 0)[0])
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """A connection's stream (httpcore's own, wrapped) that keeps its socket once found: the pool asks every
    idle connection whether its socket is readable (a server that closed it) each time it hands out
    connections, and httpcore found the socket anew each time through anyio's attributes (a dict of lookups
    and a getpeername per question). The same socket, the same poll: only found once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream):
        self.inner = inner
        self._sock = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.inner.start_tls(ssl_context, server_hostname, timeout))

    def _socket(self):
        if self._sock is None:
            self._sock = self.inner.get_extra_info("socket")
        return self._sock

    def get_extra_info(self, info: str):
        if info == "is_readable":
            sock = self._socket()
            if sock is not None:
                return _readable(sock)
        elif info == "socket":
            return self._socket()
        return self.inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, its streams wrapped in `_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend):
        self.inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options=None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                    socket_options=socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None
                                  ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool of HTTP/1.1 connections, handing each idle connection to one waiting request at a time.

    httpcore hands a waiting request the first idle connection, even one already handed to another request
    that has not started on it yet: when several requests come at once (the Gate lets a host's requests go
    together), they pile on one connection, all but one find it taken (`ConnectionNotAvailable`) and ask
    again, each time going over every connection and request of the pool: two to three rounds per request.
    Here a connection handed to a request is not handed to another until that request is over, so each
    request gets its own at once: the same connections as after httpcore's retries, without them. (HTTP/2,
    where one connection serves several requests, is never used by the Fetcher.)"""

    def _assign_requests_to_connections(self) -> list:
        closing = []
        # Closed, expired, and surplus idle connections go first (as in httpcore).
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif connection.has_expired() or (connection.is_idle()
                                              and len(self._connections) > self._max_keepalive_connections):
                self._connections.remove(connection)
                closing.append(connection)
        queued = [r for r in self._requests if r.is_queued()]
        if not queued:
            return closing
        taken = {id(r.connection) for r in self._requests if r.connection is not None}
        for pool_request in queued:
            origin = pool_request.request.url.origin
            connection = next((c for c in self._connections if id(c) not in taken and c.can_handle_request(origin)
                               and c.is_available()), None)
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    idle = next((c for c in self._connections if id(c) not in taken and c.is_idle()), None)
                    if idle is None:
                        continue  # waits for a connection to come free
                    self._connections.remove(idle)  # another origin's idle connection makes room
                    closing.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
            pool_request.assign_to_connection(connection)
            taken.add(id(connection))
        return closing


def _transport(verify: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """One pool's httpx transport: HTTP/1.1 over `_Pool`, its connections' streams wrapped in `_Stream`."""
    t = httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    # `_Pool` rewrites a method of httpcore 1.0's pool: on another httpcore, or where httpx keeps its pool
    # elsewhere, httpcore's own pool stays.
    if httpcore.__version__.startswith("1.0.") and isinstance(getattr(t, "_pool", None), httpcore.AsyncConnectionPool):
        t._pool = _Pool(ssl_context=verify, max_connections=limits.max_connections,
                        max_keepalive_connections=limits.max_keepalive_connections,
                        keepalive_expiry=limits.keepalive_expiry, http1=True, http2=False,
                        network_backend=_Backend(httpcore.AnyIOBackend()))
    return t


class _Tracked(httpx.AsyncByteStream):
    """An answer's body that tells its pool when it is closed (the pool is then idle, and may be closed)."""

    def __init__(self, inner: httpx.AsyncByteStream, done):
        self.inner, self.done = inner, done

    async def __aiter__(self):
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.done()


class Pools(httpx.AsyncBaseTransport):
    """Connections pooled per (scheme, address, port, host name for SNI and Host).

    Requests go to the checked address (`Fetcher._one`), so httpx alone would pool them by address: a
    connection opened with the TLS name of site A (its certificate checked for A) would then carry
    requests of site B on the same address, B's page read over A's session. Here each key has a pool
    of its own; past `MAX_POOLS`, pools with nothing in flight are closed."""

    def __init__(self, limits: httpx.Limits, verify: ssl.SSLContext | bool = True):
        # One TLS context for every pool: building one costs milliseconds.
        self.verify = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self.limits = limits
        self.pools: dict[tuple, httpx.AsyncHTTPTransport] = {}
        self.active: dict[tuple, int] = {}

    @staticmethod
    def key(request: httpx.Request) -> tuple:
        u = request.url
        name = request.extensions.get("sni_hostname") or u.host
        return (u.scheme, u.host, u.port, str(name).lower(), request.headers.get("host", "").lower())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        k = self.key(request)
        pool = self.pools.get(k)
        if pool is None:
            if len(self.pools) >= MAX_POOLS:
                await self._close_idle()
            pool = self.pools[k] = _transport(self.verify, self.limits)
        self.active[k] = self.active.get(k, 0) + 1
        try:
            resp = await pool.handle_async_request(request)
        except BaseException:
            self._done(k)
            raise
        resp.stream = _Tracked(resp.stream, lambda: self._done(k))
        return resp

    def _done(self, k: tuple) -> None:
        self.active[k] -= 1

    async def _close_idle(self) -> None:
        for k in [k for k, n in self.active.items() if n <= 0]:
            del self.active[k]
            await self.pools.pop(k).aclose()

    async def aclose(self) -> None:
        pools, self.pools, self.active = list(self.pools.values()), {}, {}
        for p in pools:
            await p.aclose()


class Hold:
    """A place among the media in hand: being downloaded, or downloaded and not yet hashed and judged.

    Taken at a media's turn (`Gate.turn`, after its address's queue: hosts keep taking turns) and kept until
    its owner is done with the bytes (`release`); given back while the media waits to be tried again. The
    places are few (`Fetcher.media_in_hand`), so downloads run ahead of hashing by that many media and no
    more: memory stays bounded, and hashing always has downloaded media waiting."""

    def __init__(self, sem: asyncio.Semaphore):
        self.sem, self.held = sem, False

    async def take(self) -> None:
        if not self.held:
            await self.sem.acquire()
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.sem.release()


class Gate:
    """Turns to send a request: per address (concurrency and spacing), then one of the crawler's slots."""

    def __init__(self, per_host: int, delay: float, total: int):
        self.per_host, self.delay, self.total = per_host, delay, total
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._next: dict[str, float] = {}
        self._slots: asyncio.Semaphore | None = None

    def _slots_sem(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.total)
        return self._slots

    def waiting(self, key: str) -> int:
        s = self._sems.get(key)
        return len(s._waiters or ()) if s is not None else 0

    def turn(self, key: str, hold: Hold | None = None) -> _Turn:
        """An async context manager: inside it, this request may go. `hold` is taken first when given (and
        kept on leaving: its owner releases it)."""
        return _Turn(self, key, hold)


class _Turn:
    def __init__(self, gate: Gate, key: str, hold: Hold | None = None):
        self.gate, self.key, self.hold = gate, key, hold
        self.sem = gate._sems.setdefault(key, asyncio.Semaphore(gate.per_host))
        self.slots = gate._slots_sem()

    async def __aenter__(self):
        await self.sem.acquire()
        try:
            if self.gate.delay:
                now = time.monotonic()
                start = max(now, self.gate._next.get(self.key, now))
                self.gate._next[self.key] = start + self.gate.delay
                if start > now:
                    await asyncio.sleep(start - now)
            if self.hold is not None:
                await self.hold.take()
            await self.slots.acquire()
        except BaseException:
            self.sem.release()
            raise
        return self

    async def __aexit__(self, *exc):
        self.slots.release()
        self.sem.release()


@dataclass
class _Request:
    method: str
    body: bytes | None
    headers: dict[str, str]
    deadline: float | None
    hold: Hold | None = None


class Fetcher:
    """An httpx client with the address, size, time and scheduling rules of the module docstring."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                 user_agent: str | None = None, verify: ssl.SSLContext | bool = True):
        self.settings = settings
        self.policy = AddressPolicy(settings.crawl_allowed_networks)
        self.gate = Gate(settings.crawl_per_host_concurrency, settings.crawl_per_host_delay,
                         settings.crawl_concurrency)
        t = settings.crawl_timeout
        self.user_agent = user_agent or settings.crawl_user_agent
        self.jars = Jars()
        if transport is None:  # `verify`: what TLS certificates are checked against (tests: their own CA)
            transport = Pools(httpx.Limits(max_connections=settings.crawl_concurrency * 2,
                                           max_keepalive_connections=settings.crawl_per_host_concurrency * 2),
                              verify)
        #: Places among the media in hand (see `Hold`); None: no bound. Set by the caller that hashes.
        self.media_in_hand: int | None = None
        self._in_hand: tuple[object, asyncio.Semaphore] | None = None
        self.client = _Client(
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # never httpx's jar: it keys by address
            timeout=httpx.Timeout(t, connect=t, read=t, write=t, pool=None), follow_redirects=False,
            headers={"User-Agent": self.user_agent, "Accept": "*/*", "Accept-Encoding": ACCEPT_ENCODING},
            transport=transport, trust_env=False)
        self.requests = 0

    def hold(self) -> Hold | None:
        """A place among the media in hand to pass to `fetch(hold=...)`, or None when there is no bound."""
        if self.media_in_hand is None:
            return None
        loop = asyncio.get_running_loop()
        if self._in_hand is None or self._in_hand[0] is not loop:
            self._in_hand = (loop, asyncio.Semaphore(self.media_in_hand))
        return Hold(self._in_hand[1])

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, max_bytes: int, *, page_bytes: int | None = None,
                    trace: dict | None = None, method: str = "GET", body: bytes | None = None,
                    headers: dict[str, str] | None = None, deadline: float | None = None,
                    hold: Hold | None = None) -> Fetched:
        """GET `url` (or `method` with `body`) following redirects by hand; raises FetchError (never anything
        else) on failure. `page_bytes`: read what is not a picture or video only to this many bytes (see the
        module docstring). `headers` are added to the request (a User-Agent there replaces the crawler's).
        `trace` receives ``seconds``, ``waited``, ``at``, ``ip`` and ``redirects``, failure or not. `hold`
        (`Fetcher.hold`) is taken at the request's turn and left taken."""
        trace = {} if trace is None else trace
        trace.update(seconds=0.0, waited=0.0, at=None, redirects=[], bytes=0)
        seen: list[str] = []
        current = url
        req = _Request(method.upper(), body, dict(headers or {}), deadline, hold)
        while True:
            if current in seen and req.method == "GET":
                raise FetchError("redirect_loop", f"redirect loop back to {current}")
            seen.append(current)
            location, fetched, status = await self._one(current, max_bytes, page_bytes, trace, req)
            if location is None:
                fetched.redirects = seen[:-1]
                fetched.seconds, fetched.waited, fetched.at = trace["seconds"], trace["waited"], trace["at"]
                return fetched
            if len(seen) > self.settings.crawl_max_redirects:
                raise FetchError("too_many_redirects",
                                 f"more than {self.settings.crawl_max_redirects} redirects from {url}")
            current = urljoin(current, location)
            trace["redirects"].append(current)
            if status not in (307, 308):  # as browsers do: the next request is a GET without a body
                req = _Request("GET", None, req.headers, req.deadline, req.hold)

    async def _one(self, url: str, max_bytes: int, page_bytes: int | None, trace: dict, req: _Request
                   ) -> tuple[str | None, Fetched | None, int]:
        p = urlsplit(url)
        if p.scheme not in ("http", "https"):
            raise FetchError("bad_scheme", f"only http and https are fetched, not {p.scheme or 'none'}:")
        try:
            raw_host, port = p.hostname, p.port or (443 if p.scheme == "https" else 80)
        except ValueError:
            raise FetchError("bad_url", f"not a valid URL: {url}") from None
        if not raw_host:
            raise FetchError("bad_url", f"no host in {url}")
        host = ascii_host(raw_host)
        ip = (await self.policy.resolve(host, port))[0]
        trace["ip"] = ip
        netloc_ip = f"[{ip}]" if ":" in ip else ip
        target = urlunsplit((p.scheme, f"{netloc_ip}:{port}", p.path or "/", p.query, ""))
        default_port = p.port is None or p.port == (443 if p.scheme == "https" else 80)
        host_header = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
        queued = time.monotonic()
        async with self.gate.turn(ip, req.hold):
            if req.deadline is not None and time.monotonic() > req.deadline:
                raise FetchError("carried", f"{url}: the report's time budget was spent before its turn came; "
                                 "carried over to the next round")
            started = time.monotonic()
            trace["waited"] += started - queued
            trace["at"] = datetime.now(UTC)
            self.requests += 1
            try:
                async with asyncio.timeout(self.settings.crawl_fetch_seconds):
                    return await self._exchange(url, target, host, host_header, ip, max_bytes, page_bytes, trace,
                                                req)
            except TimeoutError:
                raise FetchError("timeout", f"{url}: the answer took longer than "
                                 f"{self.settings.crawl_fetch_seconds:g} s", ip=ip) from None
            finally:
                trace["seconds"] += time.monotonic() - started

    async def _exchange(self, url: str, target: str, host: str, host_header: str, ip: str, max_bytes: int,
                        page_bytes: int | None, trace: dict, req: _Request) -> tuple[str | None, Fetched | None, int]:
        headers = {"Host": host_header}
        own = {k.lower(): v for k, v in req.headers.items()}
        if "cookie" not in own:
            jar = self.jars.header(url)
            if jar:
                headers["Cookie"] = jar
        headers.update(req.headers)
        try:
            async with self.client.stream(req.method, target, headers=headers, content=req.body,
                                          extensions={"sni_hostname": host}) as resp:
                self.jars.keep(url, resp.headers)
                location, fetched = await self._read(url, resp, ip, max_bytes, page_bytes, trace)
                return location, fetched, resp.status_code
        except httpx.TimeoutException:
            raise FetchError("timeout", f"{url} did not answer within {self.settings.crawl_timeout:g} s",
                             ip=ip) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                httpx.ProxyError) as exc:
            raise FetchError("connect_failed", f"{url}: {type(exc).__name__}: {exc}", ip=ip) from None
        except httpx.HTTPError as exc:
            raise FetchError("bad_response", f"{url}: {type(exc).__name__}: {exc}", ip=ip) from None

    async def _read(self, url: str, resp: httpx.Response, ip: str, max_bytes: int, page_bytes: int | None,
                    trace: dict) -> tuple[str | None, Fetched | None]:
        status = resp.status_code
        if status in REDIRECTS and resp.headers.get("location"):
            return resp.headers["location"], None
        if status >= 400:
            transient = status in TRANSIENT_STATUS
            raise FetchError("http_transient" if transient else "http_error", f"HTTP {status} from {url}",
                             status=status, ip=ip,
                             retry_after=retry_after_seconds(resp.headers.get("retry-after")) if transient else None)
        most = max(max_bytes, page_bytes or 0)
        encoding = resp.headers.get("content-encoding")
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > most and not encoding:
            raise FetchError("too_large", f"{url} declares {int(declared):,} bytes, more than the limit of "
                             f"{most:,}", status=status, ip=ip)
        decoder = Decoder(encoding, most)
        limit = max_bytes if page_bytes is None else None  # decided by the first bytes
        buf = bytearray()

        def take(piece: bytes) -> None:
            nonlocal limit
            buf.extend(piece)
            trace["bytes"] = len(buf)  # decoded bytes read: a too_large answer says how far it was read
            if limit is None and len(buf) >= SNIFF_AT:
                limit = self._limit_for(bytes(buf[:64]), max_bytes, page_bytes)
            if limit is not None and len(buf) > limit:
                err = self._too_large(url, limit, page_bytes, status, ip)
                if limit == page_bytes:
                    err.partial = bytes(buf[:limit])
                raise err

        async for raw in resp.aiter_raw(CHUNK):
            for piece in decoder.feed(raw):
                take(piece)
        for piece in decoder.finish():
            take(piece)
        if limit is None:
            limit = self._limit_for(bytes(buf[:64]), max_bytes, page_bytes)
            if len(buf) > limit:
                take(b"")
        ctype = resp.headers.get("content-type", "").split(";")[0].strip()
        return None, Fetched(url, status, ctype, bytes(buf), ip, refresh=resp.headers.get("refresh"),
                             headers=_kept_headers(resp.headers))

    @staticmethod
    def _limit_for(head: bytes, max_bytes: int, page_bytes: int | None) -> int:
        if page_bytes is None:
            return max_bytes
        return max_bytes if is_media(sniff(head)) else page_bytes

    @staticmethod
    def _too_large(url: str, limit: int, page_bytes: int | None, status: int, ip: str) -> FetchError:
        if page_bytes is not None and limit == page_bytes:
            return FetchError("too_large", f"{url} is a page larger than the page limit of {limit:,} bytes: only "
                              "its beginning was read (pictures and videos are read to their own limit)",
                              status=status, ip=ip)
        return FetchError("too_large", f"{url} sends more than the limit of {limit:,} bytes", status=status, ip=ip)
