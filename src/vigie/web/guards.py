"""Two pure ASGI middlewares that wrap the whole app: a body size limit per route, and security headers.

**Body limit.** Every request body is bounded before the app sees it: the declared
`Content-Length` is checked first (413 at once, nothing read), and a body without one
(chunked) is counted as it streams; the first byte past the limit ends the request with
413 `too_large`, whatever the app was doing with it (its own answer is dropped). The limit
depends on the route: file uploads (`max_upload_bytes`), forms (`max_form_bytes`), all
else (`max_json_bytes`). These are plain ASGI wrappers, not `BaseHTTPMiddleware`, so they
never buffer a body themselves, and they run in every server process alike.

Uploads within the limit stay in memory: Starlette spools a multipart file to a temporary
file on disk past `MultiPartParser.spool_max_size` (1 MiB by default); `allow_in_memory`
raises that threshold above the largest body the limit lets through, so an upload is never
written to /tmp (unknown material must not be left in clear on disk).

**Security headers** go on every answer, error pages, 413 and redirects included; the 500
answer (made outside any middleware by Starlette) adds them itself (`SECURITY_HEADERS`).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'")
SECURITY_HEADERS: dict[str, str] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": CSP,
}
#: Routes that take a file (multipart), with the upload limit; the review router's uploads included.
UPLOAD_ROUTES = ("/api/v1/match/image", "/review/upload", "/api/v1/review/upload")
MULTIPART_OVERHEAD = 64 * 1024
FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class BodyTooLarge(Exception):  # noqa: N818 (not a VigieError: no handler of the app may answer it)
    """Raised from `receive` once the body passes the limit; the middleware answers 413."""


def route_limit(settings, method: str, path: str, content_type: bytes) -> int:
    """The largest body accepted for this request, in bytes."""
    if path in UPLOAD_ROUTES:
        return int(settings.max_upload_bytes) + MULTIPART_OVERHEAD
    if content_type.split(b";", 1)[0].strip().lower() in FORM_TYPES:
        return int(settings.max_form_bytes)
    return int(settings.max_json_bytes)


def allow_in_memory(limit: int) -> None:
    """Keep multipart files in memory up to `limit` (the body limit makes sure none is larger)."""
    from starlette.formparsers import MultiPartParser

    if MultiPartParser.spool_max_size < limit:
        MultiPartParser.spool_max_size = limit


def _too_large_message(limit: int) -> bytes:
    size = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit // 1024} KiB"
    return orjson.dumps({"error": {"code": "too_large", "message": f"the request body is over {size} for this "
                                   "address"}})


async def _send_413(send, limit: int) -> None:
    body = _too_large_message(limit)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), (b"cache-control", b"no-store")]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """See the module. `limit_for(method, path, content_type)` gives the limit of one request."""

    def __init__(self, app, limit_for: Callable[[str, str, bytes], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        limit = self.limit_for(scope.get("method", "GET"), scope.get("path", ""), headers.get(b"content-type", b""))
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:  # refused before one byte of it is read
                return await _send_413(send, limit)
        received = 0
        over = False
        started = False

        async def limited_receive():
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            nonlocal started
            if over:  # whatever the app answers to a cut body is replaced by the 413
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            await _send_413(send, limit)


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` (and `Cache-Control: no-store` outside /static) to every answer that lacks them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                raw = list(message.get("headers") or [])
                have = {k.lower() for k, _ in raw}
                for k, v in SECURITY_HEADERS.items():
                    if k.encode() not in have:
                        raw.append((k.encode(), v.encode()))
                if not static and b"cache-control" not in have:
                    raw.append((b"cache-control", b"no-store"))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
