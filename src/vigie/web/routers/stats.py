"""Statistics for analysts: the page with its charts, the same figures as CSV and as JSON (vigie.stats).

`since` and `until` are optional inclusive dates (YYYY-MM-DD, UTC); anything else is a
`bad_date` (422). The figures are counts and durations only: nothing here names a URL or media.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from vigie import stats
from vigie.web import charts, views
from vigie.web.access import Analyst

router = APIRouter()
NAV = [("Statistics", "/stats", "analyst")]

Since = Annotated[str | None, Query(description="First day included, YYYY-MM-DD (UTC).")]
Until = Annotated[str | None, Query(description="Last day included, YYYY-MM-DD (UTC).")]
CSV_TABLES = {"months": stats.to_csv, "providers": stats.providers_csv, "countries": stats.countries_csv}


def _compute(request: Request, since: str | None, until: str | None) -> dict:
    st = request.app.state
    return stats.compute(st.store, since=stats.parse_date(since, "since"), until=stats.parse_date(until, "until"),
                         now=st.clock())


def page_charts(data: dict) -> dict:
    """The three charts of the page, as SVG markup."""
    months = data["months"]
    labels = [m["month"] for m in months]
    col = {k: [m[k] for m in months] for k in ("founded", "unfounded", "in_review", "known", "new", "median_hours",
                                               "p90_hours")}
    return {
        "reports": charts.bar_chart(labels, {"founded": col["founded"], "unfounded": col["unfounded"],
                                             "in review": col["in_review"]},
                                    title="Reports per month by outcome", stacked=True),
        "media": charts.bar_chart(labels, {"known": col["known"], "new": col["new"]},
                                  title="Media seen per month: known vs new"),
        "removal": charts.line_chart(labels, {"median": col["median_hours"], "90th percentile": col["p90_hours"]},
                                     title="Hours from first notice to removal"),
    }


@router.get("/stats", include_in_schema=False)
def stats_page(request: Request, me: Analyst, since: Since = None, until: Until = None):
    data = _compute(request, since, until)
    return views.render(request, "stats.html", me, data=data, charts=page_charts(data), since=since or "",
                        until=until or "")


@router.get("/stats.csv", include_in_schema=False)
def stats_csv(request: Request, me: Analyst, since: Since = None, until: Until = None,
              table: Literal["months", "providers", "countries"] = "months") -> Response:
    """One table as CSV (months by default), downloaded as an attachment."""
    body = CSV_TABLES[table](_compute(request, since, until))
    name = "-".join(["vigie-stats", table, *(x for x in (since, until) if x)])
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@router.get("/api/v1/stats", tags=["stats"])
def api_stats(request: Request, me: Analyst, since: Since = None, until: Until = None) -> dict:
    """Totals, months, providers and countries for the period; see docs/statistics.md for each figure."""
    return _compute(request, since, until)
