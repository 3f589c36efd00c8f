"""Hotline intake over HTTP: the public report form (no login), its API twin, the reporter's status page,
and the analysts' list of reports with what the crawler found.

Anonymous by default: the reporter's IP address is never stored. Rate limiting counts on an
HMAC of the address under a key that changes every hour and is never stored (`vigie.ratelimit`),
so the shared counts cannot be turned back into addresses.
The public form carries a double-submit CSRF token (a cookie and a form field), like the login.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from vigie import audit
from vigie.accounts import CsrfError
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
    needs_browser: bool = Field(False, description="The pictures showed only after the page ran its scripts or "
                                                   "after a click: the crawler opens these pages in its browser.")


class ReportOut(BaseModel):
    """What a reporter gets back: never whether an address was reported before."""

    reference: str
    status: str
    meaning: str
    status_url: str
    urls: int


class ReportStatusOut(BaseModel):
    """received, being_checked or closed (see `vigie.ingest.reporter`): nothing about what was found."""

    reference: str
    status: str
    meaning: str
    urls: int
    received_at: str | None = None


def _limit(request: Request) -> None:
    """At most `report_rate_limit_per_hour` reports an hour from one address, counted under a keyed hash of
    the address that changes every hour (`vigie.ratelimit`), in the limiter shared by all server processes."""
    from vigie.ratelimit import address_tag

    st = request.app.state
    address = request.client.host if request.client else "-"
    now = st.clock().timestamp()
    limit = st.settings.report_rate_limit_per_hour
    st.rate_limiter.hit(address_tag(st.settings, "report", address, now=now), limit, 3600, now=now,
                        message=f"more than {limit} reports an hour from one address: try again later")


def _submit(request: Request, body: ReportIn, channel: str) -> dict:
    """Store the report (committed before the answer), then, when the reporter said the pictures need a
    browser, ask rendering for its URLs. The second step is its own transaction: lost in a crash between the
    two, the URLs are still crawled, and rendered anyway when a page has scripts and no picture."""
    st = request.app.state
    got = reports.submit(st.store, body.urls, description=body.description, seen=body.seen, contact=body.contact,
                         channel=channel, max_urls=st.settings.report_max_urls, now=st.clock())
    if body.needs_browser:
        from vigie.ingest.crawl_plans import ask_render_report

        ask_render_report(st.store, got["reference"])
    return got


def _reporter_status(request: Request, reference: str) -> dict:
    from vigie.ingest.reporter import reporter_status

    st = request.app.state
    return reporter_status(st.store, reference, now=st.clock(), delay_hours=st.settings.report_public_delay_hours)


def _status_out(d: dict) -> ReportStatusOut:
    return ReportStatusOut(reference=d["reference"], status=d["status"], meaning=d["meaning"], urls=d["urls"],
                           received_at=d["received_at"].isoformat() if d.get("received_at") else None)


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
                             contact: Annotated[str, Form(max_length=reports.MAX_CONTACT)] = "",
                             needs_browser: Annotated[str, Form(max_length=10)] = ""):
    cookie = request.cookies.get(REPORT_CSRF_COOKIE) or ""
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        raise CsrfError("the form expired: reload the page and try again")
    form = await request.form()
    seen = [s[:20] for s in form.getlist("seen") if isinstance(s, str)][:4]
    values = {"urls": urls, "description": description, "contact": contact, "seen": seen,
              "needs_browser": bool(needs_browser)}
    lines = [u.strip() for u in urls.splitlines() if u.strip()]
    try:
        await run_in_threadpool(_limit, request)
        body = ReportIn(urls=lines or [""], description=description or None, seen=seen, contact=contact or None,
                        needs_browser=bool(needs_browser))
        got = await run_in_threadpool(_submit, request, body, "web")
    except VigieError as exc:
        if exc.http_status == 429:
            raise
        return _form_page(request, error=exc.message, values=values, status_code=exc.http_status)
    except ValueError as exc:  # pydantic: too many URLs or too long
        return _form_page(request, error=str(exc).splitlines()[0], values=values, status_code=422)
    public = {"reference": got["reference"], "meaning": got["meaning"]}  # not joined_existing: it tells too much
    return render(request, "report_received.html", None, status_code=201, report=public,
                  hotline=request.app.state.settings.hotline_name)


@router.get("/report/status", include_in_schema=False)
def report_status_page(request: Request, me: Public, reference: str = Query("", max_length=40)):
    found, error = None, None
    if reference.strip():
        try:
            found = _reporter_status(request, reference)
        except VigieError as exc:
            error = exc.message
    return render(request, "report_status.html", None, status_code=404 if error else 200, found=found, error=error,
                  reference=reference, hotline=request.app.state.settings.hotline_name)


@router.post("/api/v1/reports", status_code=201, response_model=ReportOut, tags=["reports"])
async def api_report(request: Request, me: Public, body: ReportIn) -> JSONResponse:
    """Report URLs (no login). The report is stored before this answers; keep the `reference` to follow it.
    At most `report_rate_limit_per_hour` reports an hour from one address (429 beyond)."""
    await run_in_threadpool(_limit, request)
    got = await run_in_threadpool(_submit, request, body, "api")
    out = ReportOut(reference=got["reference"], status=got["status"], meaning=got["meaning"],
                    status_url=f"/api/v1/reports/{got['reference']}", urls=got["urls"])
    return JSONResponse(out.model_dump(), status_code=201, headers={"Location": out.status_url})


@router.get("/api/v1/reports/{reference}", response_model=ReportStatusOut, tags=["reports"])
def api_report_status(request: Request, me: Public, reference: str) -> ReportStatusOut:
    """The status of a report, for its reporter: received, being_checked or closed, each after a delay counted
    from its receipt; no URL, nothing about what was found or whether it was reported before."""
    return _status_out(_reporter_status(request, reference[:40]))


# ------------------------------------------------------------------------------------------ analysts


@router.get("/intake", include_in_schema=False)
def intake_page(request: Request, me: Analyst, status: str | None = Query(None, max_length=20)):
    rows = reports.list_reports(request.app.state.store, status=status or None)
    return render(request, "intake.html", me, reports=rows, status=status, statuses=reports.STATUSES)


def _detail(request: Request, reference: str) -> dict:
    """A report's detail with, per URL, whether its pages are to be opened in the crawler's browser."""
    from vigie.ingest.crawl_plans import plans_of

    d = reports.report_detail(request.app.state.store, reference[:40])
    plans = plans_of(request.app.state.store, [u["id"] for u in d["urls"]])
    for u in d["urls"]:
        u["render"] = bool(plans.get(u["id"], {}).get("render"))
    d["render"] = bool(d["urls"]) and all(u["render"] for u in d["urls"])
    return d


def _ask_render(request: Request, me, reference: str, on: bool) -> dict:
    from vigie.ingest.crawl_plans import ask_render_report

    st = request.app.state
    ids = ask_render_report(st.store, reference[:40], render=on)
    ref = reference[:40].strip().upper()
    audit.record(st.store, me.actor, "report.render", "report", ref, {"render": on, "urls": len(ids)})
    return {"reference": ref, "render": on, "urls": len(ids)}


@router.get("/intake/{reference}", include_in_schema=False)
def intake_report_page(request: Request, me: Analyst, reference: str):
    d = _detail(request, reference)
    audit.record(request.app.state.store, me.actor, "report.viewed", "report", d["reference"])
    return render(request, "intake_report.html", me, report=d)


@router.post("/intake/{reference}/render", include_in_schema=False)
async def intake_report_render(request: Request, me: Analyst, reference: str,
                               render_pages: Annotated[str, Form(alias="render", max_length=5)] = "on"):
    """Open (or stop opening) the report's pages in the crawler's browser at their next crawl."""
    got = await run_in_threadpool(_ask_render, request, me, reference, render_pages == "on")
    return RedirectResponse(f"/intake/{got['reference']}", 303)


class RenderIn(BaseModel):
    render: bool = Field(True, description="true: open the pages in the crawler's browser; false: stop doing so")


@router.post("/api/v1/intake/reports/{reference}/render", tags=["reports"])
def api_report_render(request: Request, me: Analyst, reference: str, body: RenderIn) -> dict:
    """Open every URL of this report in the crawler's browser (Chromium, the same SSRF rules and budgets) at
    its next crawl, for pictures that only show with scripts; `render: false` goes back to the default
    (rendered only when a page has scripts and no picture). Audited."""
    return _ask_render(request, me, reference, body.render)


@router.get("/api/v1/intake/reports", tags=["reports"])
def api_reports(request: Request, me: Analyst, status: str | None = Query(None, max_length=20),
                limit: int = Query(200, ge=1, le=1000)) -> dict:
    """Reports, newest first, with their status."""
    return {"reports": reports.list_reports(request.app.state.store, status=status or None, limit=limit)}


@router.get("/api/v1/intake/reports/{reference}", tags=["reports"])
def api_report_detail(request: Request, me: Analyst, reference: str) -> dict:
    """One report with its URLs, their crawl and every media found (hashes and outcomes; never the media)."""
    d = _detail(request, reference)
    audit.record(request.app.state.store, me.actor, "report.viewed", "report", d["reference"])
    return d


@router.post("/api/v1/intake/run", tags=["reports"])
async def api_run_worker(request: Request, me: Supervisor) -> dict:
    """Run one round of the intake worker now (crawl, re-check, notices) instead of waiting for the next."""
    from vigie.ingest import worker

    st = request.app.state
    audit.record(st.store, me.actor, "intake.run", None, None, {})
    return await run_in_threadpool(worker.run_once, st.store, st.settings)
