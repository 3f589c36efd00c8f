"""The dashboard and the list of banks (names and counts only: a bank's content is never shown)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vigie.accounts import key_banks
from vigie.web import views
from vigie.web.access import Analyst, MatchClient
from vigie.web.schemas import BanksOut, DashboardOut

router = APIRouter()
NAV = [("Dashboard", "/", "analyst"), ("Banks", "/banks", "analyst")]


@router.get("/", include_in_schema=False)
def dashboard_page(request: Request, me: Analyst):
    from vigie.web.routers.review import local_zone

    zone, zone_name = local_zone(request.app.state.settings)
    return views.render(request, "dashboard.html", me, data=_dashboard(request, me), tz=zone, tz_name=zone_name)


def _dashboard(request: Request, me) -> DashboardOut:
    """The counts, and where the work stands (each number on the page links to the page it counts)."""
    from vigie.web.routers.review import app_clock

    st = request.app.state
    return views.dashboard(st.store, me, settings=st.settings, clock=app_clock(request))


@router.get("/banks", include_in_schema=False)
def banks_page(request: Request, me: Analyst):
    return views.render(request, "banks.html", me, data=views.bank_list(request.app.state.store))


@router.get("/api/v1/dashboard", response_model=DashboardOut, tags=["pages"])
def api_dashboard(request: Request, me: Analyst) -> DashboardOut:
    """Counts of the dashboard and where the work stands; admin and supervisor counts only for those roles."""
    return _dashboard(request, me)


@router.get("/api/v1/banks", response_model=BanksOut, tags=["banks"])
def api_banks(request: Request, me: MatchClient) -> BanksOut:
    """Banks with their entry counts. An API key narrowed by `banks:NAME` scopes sees only those banks."""
    only = key_banks(me.api_key) if me.api_key is not None else None
    return views.bank_list(request.app.state.store, only)
