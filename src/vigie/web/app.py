"""`create_app(store, settings)`: the FastAPI app over the library. Nothing is built at import time.

Routers register through one list, `ROUTERS` (module paths, each with a `router` and a
`NAV` list of (label, path, lowest role) for the menu); modules in `OPTIONAL_ROUTERS`
are included when they exist (the review pages, `vigie.web.routers.review`), and
`create_app(..., routers=[...])` adds more. Every route declares who may call it with an
`Access` dependency (`vigie.web.access`); `tests/test_web_roles.py` walks them all.

Errors: one JSON shape for the API, ``{"error": {"code", "message"}}``, for every
VigieError, 401/403/404/405/422/429 and 500 alike; pages show the same code and message
on an error page, and a page asked for without a session redirects to /login (303).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigie import __version__
from vigie.accounts import RateLimited
from vigie.errors import VigieError
from vigie.settings import Settings
from vigie.store.db import Store
from vigie.web import guards
from vigie.web.access import NotLoggedIn
from vigie.web.schemas import ErrorOut

HERE = Path(__file__).parent
ROUTERS: list[str] = [
    "vigie.web.routers.auth",
    "vigie.web.routers.home",
    "vigie.web.routers.admin",
    "vigie.web.routers.audit_log",
    "vigie.web.routers.match",
    "vigie.web.routers.intake",
]
OPTIONAL_ROUTERS: list[str] = ["vigie.web.routers.review", "vigie.web.routers.sharing", "vigie.web.routers.stats",
                                 "vigie.web.routers.takedown"]
PUBLIC_PATHS = ("/openapi.json", "/static")
ERROR_RESPONSES = {s: {"model": ErrorOut} for s in (401, 403, 404, 409, 422, 429)}
HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited"}
CSP = guards.CSP

log = logging.getLogger("vigie.web")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(store: Store, settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None,
               routers: Iterable[str] = ()) -> FastAPI:
    """The web app over `store`. `clock` (returning an aware datetime) replaces the wall clock in tests."""
    settings = settings or store.settings
    app = FastAPI(title="Vigie", version=__version__, docs_url=None, redoc_url=None,
                  description="Hotline triage: known material is recognised by its hashes and never shown. "
                              "Errors: `{\"error\": {\"code\", \"message\"}}`. See docs/web.md.")
    from vigie.matching import Matcher

    app.state.store = store
    app.state.settings = settings
    app.state.clock = clock or (lambda: datetime.now(UTC))
    app.state.matcher = Matcher(store, settings)
    from vigie.ratelimit import limiter_for

    app.state.rate_limiter = limiter_for(store, settings)  # shared by every server process
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.globals["version"] = __version__
    app.state.nav = []
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    names = [*ROUTERS, *[m for m in OPTIONAL_ROUTERS if _exists(m)], *routers]
    for name in dict.fromkeys(names):
        mod = importlib.import_module(name)
        app.include_router(mod.router, responses=ERROR_RESPONSES)
        app.state.nav.extend(getattr(mod, "NAV", []))

    _register_errors(app)
    # outermost last: headers on every answer (the 413 too), then the body limit around the app
    app.add_middleware(guards.BodyLimit, limit_for=lambda m, p, ct: guards.route_limit(settings, m, p, ct))
    app.add_middleware(guards.SecurityHeaders)
    guards.allow_in_memory(guards.route_limit(settings, "POST", guards.UPLOAD_ROUTES[0], b""))
    return app


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def error_json(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _error_page(request: Request, status: int, code: str, message: str, headers: dict | None = None):
    from vigie.web.views import render

    resp = render(request, "error.html", None, status_code=status, status=status, code=code, message=message)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _answer(request: Request, status: int, code: str, message: str, headers: dict | None = None):
    if _is_api(request):
        return error_json(status, code, message, headers)
    return _error_page(request, status, code, message, headers)


def _register_errors(app: FastAPI) -> None:
    @app.exception_handler(VigieError)
    async def vigie_error(request: Request, exc: VigieError):
        if isinstance(exc, NotLoggedIn) and not _is_api(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if exc.http_status == 401 and _is_api(request):
            headers = {"WWW-Authenticate": "Bearer"}
        return _answer(request, exc.http_status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return _answer(request, 422, "invalid_input", "; ".join(parts) or "invalid input")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return _answer(request, exc.status_code, code, message, getattr(exc, "headers", None))

    from sqlalchemy.exc import StatementError

    async def out_of_range(request: Request, exc: Exception):
        if _out_of_range(exc):  # an id past its column's range (a 2**70 in a path): bad input, not a crash
            return _answer(request, 422, "invalid_input", "a number out of its range")
        raise exc  # a real crash: answered by `crash` below

    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(StatementError, out_of_range)  # DataError and the wrapped OverflowError

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette answers this one outside every middleware: the security headers are added here
        return error_json(500, "internal_error", "an internal error: it was logged",
                          {**guards.SECURITY_HEADERS, "cache-control": "no-store"})


def _out_of_range(exc: BaseException) -> bool:
    """An integer too large for the store (SQLite: OverflowError; PostgreSQL: NumericValueOutOfRange)."""
    from sqlalchemy.exc import DataError, StatementError

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OverflowError):
            return True
        if isinstance(exc, DataError) and "out of range" in str(exc.orig).lower():
            return True
        if isinstance(exc, StatementError) and isinstance(exc.orig, OverflowError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
