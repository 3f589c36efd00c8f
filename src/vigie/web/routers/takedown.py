"""Takedown pages and API: what known material is still online, where, and which notices went out.

Reading is for analysts; changing the provider registry is for admins; the police export of a
report (it holds the reporter's contact) is for supervisors. The work itself is in
`vigie.actions`: these routes only call it.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from vigie.actions import escalation, takedown
from vigie.web.access import Admin, Analyst, Supervisor
from vigie.web.views import render

router = APIRouter()
NAV = [("Takedown", "/takedown", "analyst")]
STATES = "^(online|removed|changed)$"


class ProviderIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=200)
    contact_email: str = Field(..., min_length=3, max_length=320)
    domains: list[str] = Field(default_factory=list, max_length=1000)
    networks: list[str] = Field(default_factory=list, max_length=1000)
    asns: list[int | str] = Field(default_factory=list, max_length=1000)
    country: str | None = Field(None, max_length=2)
    partner_hotline: str | None = Field(None, max_length=200)
    language: str | None = Field(None, max_length=16)


@router.get("/takedown", include_in_schema=False)
async def takedown_page(request: Request, me: Analyst):
    st = request.app.state
    now = st.clock()
    data = {"sightings": await run_in_threadpool(takedown.sighting_rows, st.store, now, limit=500),
            "notices": await run_in_threadpool(takedown.notice_rows, st.store, limit=100),
            "renotice_hours": f"{st.settings.takedown_renotice_hours:g}"}
    return render(request, "takedown.html", me, data=data)


@router.get("/api/v1/takedown/sightings", tags=["takedown"])
async def api_sightings(request: Request, me: Analyst, state: str | None = Query(None, pattern=STATES),
                        limit: int = Query(500, ge=1, le=5000)) -> dict:
    """Sightings of known material, newest first: state, provider, notices and hours online."""
    st = request.app.state
    return {"sightings": await run_in_threadpool(takedown.sighting_rows, st.store, st.clock(), state=state,
                                                 limit=limit)}


@router.get("/api/v1/notices", tags=["takedown"])
async def api_notices(request: Request, me: Analyst, limit: int = Query(200, ge=1, le=5000)) -> dict:
    """Takedown notices, newest first (sent and failed), with the sightings each covered."""
    return {"notices": await run_in_threadpool(takedown.notice_rows, request.app.state.store, limit=limit)}


@router.get("/api/v1/providers", tags=["takedown"])
async def api_providers(request: Request, me: Analyst) -> dict:
    """The provider registry (inactive ones included, marked)."""
    return {"providers": await run_in_threadpool(takedown.list_providers, request.app.state.store)}


@router.post("/api/v1/providers", tags=["takedown"], status_code=201)
async def api_add_provider(request: Request, body: ProviderIn, me: Admin) -> dict:
    """Register a hosting provider: where notices for its domains and networks go."""
    return await run_in_threadpool(lambda: takedown.add_provider(
        request.app.state.store, body.name, body.contact_email, domains=body.domains, networks=body.networks,
        asns=body.asns, country=body.country, partner_hotline=body.partner_hotline, language=body.language,
        by=me.actor))


@router.get("/api/v1/reports/{reference}/escalation.zip", tags=["takedown"],
            responses={200: {"content": {"application/zip": {}}}})
async def api_escalation(request: Request, reference: str, me: Supervisor,
                         include_media: bool = Query(False)) -> Response:
    """The police export of one report (zip with manifest); the download is recorded in the audit trail."""
    st = request.app.state

    def build() -> bytes:  # in memory: the zip may hold review media in clear, never put in a temp folder
        return escalation.escalation_zip(st.store, st.settings, reference, include_media=include_media,
                                         by=me.actor)[0]

    data = await run_in_threadpool(build)
    safe = "".join(c for c in reference if c.isalnum() or c in "-_") or "report"
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="escalation-{safe}.zip"',
                             "Cache-Control": "no-store"})
