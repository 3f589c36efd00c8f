"""A benign website held in memory, for the crawler's tests, its benchmark and `vigie demo site`.

It serves only what it is given (generated pictures, pages that link them) and is meant to
listen on 127.0.0.1. Routes can be changed while it runs (a picture removed, a page
rewritten), which is how the tests play a host that complies with a takedown notice.
Behaviours a hostile or broken host shows are routes too: redirects (and loops), slow
answers, endless bodies, wrong content types.

It is a bare ASGI app (no framework): `uvicorn.run(site, ...)` or `tests/servers.serving(site)`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass


@dataclass
class Route:
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    body: bytes = b""
    location: str | None = None
    delay: float = 0.0  # seconds before the answer starts
    endless: int = 0  # when > 0: stream this many bytes in 64 KiB chunks, without a Content-Length
    headers: tuple[tuple[str, str], ...] = ()
    #: The first `fail_times` requests answer `fail_status` with `fail_headers` (a busy host: 429, 503).
    fail_times: int = 0
    fail_status: int = 503
    fail_headers: tuple[tuple[str, str], ...] = ()
    #: The repeated chunk of an endless body (a 50 MB page: markup, then filler).
    endless_chunk: bytes = b"\xff" * 65536
    #: (User-Agent substring, Route): what a cloaking host shows that agent instead (first match wins).
    by_agent: tuple[tuple[str, Route], ...] = ()


class Site:
    """Path -> Route. `hits` counts requests per path (for politeness and re-check assertions)."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.host_headers: list[str] = []
        #: (monotonic time, path) of every request, in arrival order (fairness assertions).
        self.times: list[tuple[float, str]] = []
        #: User-Agent of every request.
        self.agents: list[str] = []
        #: (path, Cookie header or None) of every request.
        self.cookies: list[tuple[str, str | None]] = []

    # building
    def page(self, path: str, html: str, status: int = 200) -> Site:
        self.routes[path] = Route(status, "text/html; charset=utf-8", html.encode())
        return self

    def file(self, path: str, data: bytes, content_type: str = "image/jpeg", **kw) -> Site:
        self.routes[path] = Route(200, content_type, data, **kw)
        return self

    def redirect(self, path: str, to: str, status: int = 302) -> Site:
        self.routes[path] = Route(status, "text/plain", b"", location=to)
        return self

    def remove(self, path: str, status: int = 404) -> Site:
        """What a host does after a notice: the path now answers 404 (or `status`)."""
        self.routes[path] = Route(status, "text/plain", b"not found")
        return self

    # serving
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
        self.hits[scope["path"]] += 1
        self.times.append((time.monotonic(), scope["path"]))
        self.host_headers += [v.decode() for k, v in scope.get("headers", []) if k == b"host"]
        agent = next((v.decode() for k, v in scope.get("headers", []) if k == b"user-agent"), "")
        self.agents.append(agent)
        self.cookies.append((scope["path"], next((v.decode() for k, v in scope.get("headers", [])
                                                  if k == b"cookie"), None)))
        r = self.routes.get(path) or self.routes.get(scope["path"]) or Route(404, "text/plain", b"not found")
        r = next((alt for sub, alt in r.by_agent if sub in agent), r)
        if r.fail_times and self.hits[scope["path"]] <= r.fail_times:
            r = Route(r.fail_status, "text/plain", b"busy", headers=r.fail_headers)
        if r.delay:
            await asyncio.sleep(r.delay)
        headers = [(b"content-type", r.content_type.encode())] + [(k.encode(), v.encode()) for k, v in r.headers]
        if r.location is not None:
            headers.append((b"location", r.location.encode()))
        if r.endless:
            await send({"type": "http.response.start", "status": r.status, "headers": headers})
            chunk = r.endless_chunk
            sent = 0
            while sent < r.endless:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
            await send({"type": "http.response.body", "body": b""})
            return
        headers.append((b"content-length", str(len(r.body)).encode()))
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        await send({"type": "http.response.body", "body": r.body})


def gallery(count: int, *, per_page: int = 10, seed: int = 0, size: tuple[int, int] = (480, 360)) -> Site:
    """A site of `count` generated JPEGs on pages of `per_page`, each page linking the next (demo, bench)."""
    from vigie.demo import encode, photo_like

    site = Site()
    pages = max(1, -(-count // per_page))
    for p in range(pages):
        imgs = []
        for i in range(p * per_page, min(count, (p + 1) * per_page)):
            site.file(f"/img/{i}.jpg", encode(photo_like(seed + i, *size), "JPEG", quality=90))
            imgs.append(f'<img src="/img/{i}.jpg" alt="picture {i}">')
        nxt = f'<a href="/page/{p + 1}.html">next</a>' if p + 1 < pages else ""
        site.page(f"/page/{p}.html", f"<html><body><h1>Page {p}</h1>{''.join(imgs)}{nxt}</body></html>")
    site.redirect("/", "/page/0.html")
    return site


def serve_in_thread(site, host: str = "127.0.0.1") -> str:
    """Serve `site` with uvicorn in a daemon thread on a free loopback port; returns its base URL (demo)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(site, host=host, port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=srv.run, name="vigie-demo-site", daemon=True).start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"http://{host}:{port}"
