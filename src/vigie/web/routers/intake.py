"""Hotline intake over HTTP: the public report form (no login), its API twin, the reporter's status page,
and the analysts' list of reports with what the crawler found.

Anonymous by default: the reporter's IP address is never stored. Rate limiting counts on an
HMAC of the address under a key that lives in memory and changes every hour, so the counts
cannot be turned back into addresses, even by whoever reads the server's memory an hour later.
The public form carries a double-submit CSRF token (a cookie and a form field), like the login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from vigie import audit
from vigie.accounts import CsrfError, RateLimited
from vigie.errors import VigieError
from vigie.ingest import reports
from vigie.web.access import Analyst, Public, Supervisor
from vigie.web.views import render

router = APIRouter()
NAV = [("Reports", "/intake", "analyst")]
REPORT_CSRF_COOKIE = "vigie_report_csrf"


class ReportIn(BaseModel):
    urls: list[Annotated[str, Field(max_length=reports.MAX_URL)]] = Field(
        ..., min_length=1, max_length=100, description="The addresses where the material was seen.")
    description: str | None = Field(None, max_length=reports.MAX_DESCRIPTION)
    seen: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=4,
                                                             description="image, video, text, other")
    contact: str | None = Field(None, max_length=reports.MAX_CONTACT,
                                description="Optional: how the hotline may contact you.")


class ReportOut(BaseModel):
    reference: str
    status: str
    meaning: str
    status_url: str
    urls: int
    joined_existing: int


class ReportStatusOut(BaseModel):
    reference: str
    status: str
    meaning: str
    reason: str | None = None
    urls: int
    received_at: str | None = None
    closed_at: str | None = None


class ReporterLimiter:
    """At most `limit` reports an hour per address, counted on HMAC(hourly key, address), in memory."""

    def __init__(self):
        self._lock = threading.Lock()
        self._hour = -1
        self._key = b""
        self._counts: dict[str, int] = {}

    def check(self, address: str, limit: int, now: float | None = None) -> None:
        hour = int((now if now is not None else time.time()) // 3600)
        with self._lock:
            if hour != self._hour:  # new hour: new key, old counts forgotten
                self._hour, self._key, self._counts = hour, secrets.token_bytes(32), {}
            tag = hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()[:32]
            n = self._counts.get(tag, 0)
            if n >= limit:
                wait = 3600 - int((now if now is not None else time.time()) % 3600)
                raise RateLimited(f"more than {limit} reports an hour from one address: try again later",
                                  retry_after=max(1, wait))
            self._counts[tag] = n + 1


def _limiter(request: Request) -> ReporterLimiter:
    st = request.app.state
    if not hasattr(st, "reporter_limiter"):
        st.reporter_limiter = ReporterLimiter()
    return st.reporter_limiter


def _limit(request: Request) -> None:
    address = request.client.host if request.client else "-"
    _limiter(request).check(address, request.app.state.settings.report_rate_limit_per_hour,
                            request.app.state.clock().timestamp())


def _submit(request: Request, body: ReportIn, channel: str) -> dict:
    st = request.app.state
    return reports.submit(st.store, body.urls, description=body.description, seen=body.seen, contact=body.contact,
                          channel=channel, max_urls=st.settings.report_max_urls, now=st.clock())


def _status_out(d: dict) -> ReportStatusOut:
    iso = {k: (d[k].isoformat() if d.get(k) else None) for k in ("received_at", "closed_at")}
    return ReportStatusOut(reference=d["reference"], status=d["status"], meaning=d["meaning"], reason=d["reason"],
                           urls=d["urls"], **iso)


# -------------------------------------------------------------------------------------------- public


def _form_page(request: Request, *, error: str | None = None, values: dict | None = None, status_code: int = 200):
    token = secrets.token_urlsafe(32)
    resp = render(request, "report_form.html", None, status_code=status_code, error=error, values=values or {},
                  report_csrf=token, hotline=request.app.state.settings.hotline_name, seen_kinds=reports.SEEN,
                  max_urls=request.app.state.settings.report_max_urls)
    resp.set_cookie(REPORT_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/report",
                    secure=request.url.scheme == "https")
    return resp


@router.get("/report", include_in_schema=False)
def report_form(request: Request, me: Public):
    return _form_page(request)


@router.post("/report", include_in_schema=False)
async def report_form_submit(request: Request, me: Public, urls: Annotated[str, Form(max_length=50_000)],
                             csrf_token: Annotated[str, Form(max_length=200)],
                             description: Annotated[str, Form(max_length=reports.MAX_DESCRIPTION)] = "",
                             contact: Annotated[str, Form(max_length=reports.MAX_CONTACT)] = ""):
    cookie = request.cookies.get(REPORT_CSRF_COOKIE) or ""
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        raise CsrfError("the form expired: reload the page and try again")
    form = await request.form()
    seen = [s[:20] for s in form.getlist("seen") if isinstance(s, str)][:4]
    values = {"urls": urls, "description": description, "contact": contact, "seen": seen}
    lines = [u.strip() for u in urls.splitlines() if u.strip()]
    try:
        _limit(request)
        body = ReportIn(urls=lines or [""], description=description or None, seen=seen, contact=contact or None)
        got = await run_in_threadpool(_submit, request, body, "web")
    except VigieError as exc:
        if exc.http_status == 429:
            raise
        return _form_page(request, error=exc.message, values=values, status_code=exc.http_status)
    except ValueError as exc:  # pydantic: too many URLs or too long
        return _form_page(request, error=str(exc).splitlines()[0], values=values, status_code=422)
    return render(request, "report_received.html", None, status_code=201, report=got,
                  hotline=request.app.state.settings.hotline_name)


@router.get("/report/status", include_in_schema=False)
def report_status_page(request: Request, me: Public, reference: str = Query("", max_length=40)):
    found, error = None, None
    if reference.strip():
        try:
            found = reports.public_status(request.app.state.store, reference)
        except VigieError as exc:
            error = exc.message
    return render(request, "report_status.html", None, status_code=404 if error else 200, found=found, error=error,
                  reference=reference, hotline=request.app.state.settings.hotline_name)


@router.post("/api/v1/reports", status_code=201, response_model=ReportOut, tags=["reports"])
async def api_report(request: Request, me: Public, body: ReportIn) -> JSONResponse:
    """Report URLs (no login). The report is stored before this answers; keep the `reference` to follow it.
    At most `report_rate_limit_per_hour` reports an hour from one address (429 beyond)."""
    _limit(request)
    got = await run_in_threadpool(_submit, request, body, "api")
    out = ReportOut(reference=got["reference"], status=got["status"], meaning=got["meaning"],
                    status_url=f"/api/v1/reports/{got['reference']}", urls=got["urls"],
                    joined_existing=got["joined_existing"])
    return JSONResponse(out.model_dump(), status_code=201, headers={"Location": out.status_url})


@router.get("/api/v1/reports/{reference}", response_model=ReportStatusOut, tags=["reports"])
def api_report_status(request: Request, me: Public, reference: str) -> ReportStatusOut:
    """The status of a report, for its reporter: no URL and nothing about what was found."""
    return _status_out(reports.public_status(request.app.state.store, reference[:40]))


# ------------------------------------------------------------------------------------------ analysts


@router.get("/intake", include_in_schema=False)
def intake_page(request: Request, me: Analyst, status: str | None = Query(None, max_length=20)):
    rows = reports.list_reports(request.app.state.store, status=status or None)
    return render(request, "intake.html", me, reports=rows, status=status, statuses=reports.STATUSES)


@router.get("/intake/{reference}", include_in_schema=False)
def intake_report_page(request: Request, me: Analyst, reference: str):
    d = reports.report_detail(request.app.state.store, reference[:40])
    audit.record(request.app.state.store, me.actor, "report.viewed", "report", d["reference"])
    return render(request, "intake_report.html", me, report=d)


@router.get("/api/v1/intake/reports", tags=["reports"])
def api_reports(request: Request, me: Analyst, status: str | None = Query(None, max_length=20),
                limit: int = Query(200, ge=1, le=1000)) -> dict:
    """Reports, newest first, with their status."""
    return {"reports": reports.list_reports(request.app.state.store, status=status or None, limit=limit)}


@router.get("/api/v1/intake/reports/{reference}", tags=["reports"])
def api_report_detail(request: Request, me: Analyst, reference: str) -> dict:
    """One report with its URLs, their crawl and every media found (hashes and outcomes; never the media)."""
    d = reports.report_detail(request.app.state.store, reference[:40])
    audit.record(request.app.state.store, me.actor, "report.viewed", "report", d["reference"])
    return d


@router.post("/api/v1/intake/run", tags=["reports"])
async def api_run_worker(request: Request, me: Supervisor) -> dict:
    """Run one round of the intake worker now (crawl, re-check, notices) instead of waiting for the next."""
    from vigie.ingest import worker

    st = request.app.state
    audit.record(st.store, me.actor, "intake.run", None, None, {})
    return await run_in_threadpool(worker.run_once, st.store, st.settings)
