"""Figures a hotline reports to its funders and partners: reports, media, notices, removals and how fast.

Counts are grouped by month in SQL (one GROUP BY per table, the same on SQLite and
PostgreSQL: only the month expression differs), so a year of reports never crosses into
Python. Removal times are the exception: medians and percentiles need the values, and only
removed sightings have one, so those few rows are read and ranked here.

Each figure is bucketed by the moment that makes it happen: a report by when it was received,
a sighting by when the crawler found it, a notice by when it was sent, a removal by when the
re-check found the media gone. `since` and `until` are inclusive dates (UTC). See docs/statistics.md.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from vigie.accounts import aware
from vigie.errors import InvalidInput
from vigie.store.db import Store
from vigie.store.intake_models import Notice, Provider, Report, Sighting

UNKNOWN = "unknown"
#: The per-month columns, in CSV order.
MONTH_FIELDS = ("month", "reports", "founded", "unfounded", "in_review", "pending", "media_seen", "known", "new",
                "share_known_pct", "notices_sent", "removals", "median_hours", "p90_hours", "reports_yoy_pct")
PROVIDER_FIELDS = ("provider", "country", "notices", "removed", "still_online", "median_hours", "p90_hours")
COUNTRY_FIELDS = ("country", "notices", "removed", "still_online", "median_hours", "p90_hours")
_REPORT_STATUSES = {"founded": "founded", "unfounded": "unfounded", "in_review": "in_review"}


def parse_date(text: str | None, name: str = "date") -> date | None:
    """A YYYY-MM-DD date from a query string or option; anything else is a `bad_date` (422, exit 1)."""
    if text is None or text == "":
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a date as YYYY-MM-DD, not {text[:40]!r}", code="bad_date") from None


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default); None if empty.

    Interpolated so that the median of an even count is the mean of the two middle values, as people expect."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _month_expr(store: Store, col):
    """'YYYY-MM' of a UTC timestamp column, in the dialect's own words."""
    if store.dialect == "postgresql":
        return func.to_char(func.timezone("UTC", col), "YYYY-MM")
    return func.strftime("%Y-%m", col)


def _bounds(col, lo: datetime | None, hi: datetime | None) -> list:
    out = []
    if lo is not None:
        out.append(col >= lo)
    if hi is not None:
        out.append(col < hi)
    return out


def _month(d: date | datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _shift_month(m: str, years: int = 0, months: int = 0) -> str:
    y, mo = int(m[:4]) + years, int(m[5:7]) - 1 + months
    return f"{y + mo // 12:04d}-{mo % 12 + 1:02d}"


def _month_range(first: str, last: str) -> list[str]:
    out, m = [], first
    while m <= last:
        out.append(m)
        m = _shift_month(m, months=1)
    return out


def _hours(removed_at: datetime, first_notice_at: datetime) -> float:
    """Hours from the first notice to the removal; a removal found before the notice went out counts as 0."""
    return max(0.0, (aware(removed_at) - aware(first_notice_at)).total_seconds() / 3600)


def compute(store: Store, *, since: date | None = None, until: date | None = None,
            now: datetime | None = None) -> dict:
    """Totals, months, providers and countries for [since, until] (inclusive dates, UTC); see the module.

    Months run without gaps from `since` (or the first month with data) to `until` (or the
    later of now and the last month with data). `reports_yoy_pct` compares a month's reports
    with the same month a year earlier, even when that month lies before `since`."""
    now = aware(now) if now is not None else datetime.now(UTC)
    if since is not None and until is not None and since > until:
        raise InvalidInput(f"since ({since}) is after until ({until})", code="bad_date")
    lo = datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None
    hi = datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1) if until else None
    rows: dict[str, dict] = defaultdict(lambda: dict.fromkeys(MONTH_FIELDS[1:], 0))
    earlier: dict[str, int] = {}  # reports per month, a year before the window included, for year over year
    per_provider: dict[int | None, dict] = defaultdict(lambda: {"notices": 0, "removed": 0, "still_online": 0,
                                                                "hours": []})
    hours_by_month: dict[str, list[float]] = defaultdict(list)

    with store.sessions() as s:
        # Reports by whole calendar months, from a year before the window: year over year compares whole
        # months. A month cut by `since` or `until` is then recounted within the bounds.
        first_day = lo.replace(day=1) if lo is not None else None
        full_hi = _next_month_start(hi - timedelta(days=1)) if hi is not None else None
        full = _report_counts(s, store, _add_months(first_day, -12) if first_day else None, full_hi)
        earlier.update({k: v["reports"] for k, v in full.items()})
        window = {k: v for k, v in full.items() if (lo is None or k >= _month(lo)) and (hi is None or k <= _month(
            hi - timedelta(days=1)))}
        if lo is not None and lo != first_day:
            window.pop(_month(lo), None)
            window.update(_report_counts(s, store, lo, min(_next_month_start(lo), hi) if hi else _next_month_start(lo)))
        if hi is not None and hi != full_hi:
            last_start = (hi - timedelta(days=1)).replace(day=1)
            window.pop(_month(last_start), None)
            window.update(_report_counts(s, store, max(lo, last_start) if lo else last_start, hi))
        for month, counts in window.items():
            rows[month].update(counts)

        m = _month_expr(store, Sighting.found_at)
        q = select(m, Sighting.outcome, func.count()).where(*_bounds(Sighting.found_at, lo, hi)).group_by(
            m, Sighting.outcome)
        for month, outcome, n in s.execute(q):
            row = rows[month]
            row["media_seen"] += n
            if outcome == "known":
                row["known"] += n
            elif outcome == "unknown":
                row["new"] += n

        sent = func.coalesce(Notice.sent_at, Notice.created_at)
        m = _month_expr(store, sent)
        q = select(m, func.count()).where(Notice.status == "sent", *_bounds(sent, lo, hi)).group_by(m)
        for month, n in s.execute(q):
            rows[month]["notices_sent"] += n
        q = select(Notice.provider_id, func.count()).where(Notice.status == "sent", *_bounds(sent, lo, hi)).group_by(
            Notice.provider_id)
        for pid, n in s.execute(q):
            per_provider[pid]["notices"] += n

        m = _month_expr(store, Sighting.removed_at)
        q = select(m, Sighting.provider_id, Sighting.removed_at, Sighting.first_notice_at).where(
            Sighting.removed_at.is_not(None), *_bounds(Sighting.removed_at, lo, hi))
        for month, pid, removed_at, first_notice_at in s.execute(q):
            rows[month]["removals"] += 1
            per_provider[pid]["removed"] += 1
            if first_notice_at is not None:
                h = _hours(removed_at, first_notice_at)
                hours_by_month[month].append(h)
                per_provider[pid]["hours"].append(h)

        q = select(Sighting.provider_id, func.count()).where(
            Sighting.outcome == "known", Sighting.state == "online", *_bounds(Sighting.found_at, lo, hi)).group_by(
            Sighting.provider_id)
        for pid, n in s.execute(q):
            per_provider[pid]["still_online"] += n

        providers = {p.id: (p.name, p.country) for p in s.scalars(select(Provider))}

    months = _months(rows, since, until, now)
    out_months = []
    for month in months:
        row = {"month": month, **(rows.get(month) or dict.fromkeys(MONTH_FIELDS[1:], 0))}
        _finish(row, hours_by_month.get(month, []))
        prev = earlier.get(_shift_month(month, years=-1), 0)
        this = earlier.get(month, 0)  # the whole month, even where since or until cut it
        row["reports_yoy_pct"] = _r((this - prev) / prev * 100, 1) if prev else None
        out_months.append(row)

    totals = {k: sum(r[k] for r in out_months) for k in MONTH_FIELDS[1:] if k not in (
        "share_known_pct", "median_hours", "p90_hours", "reports_yoy_pct")}
    _finish(totals, [h for hs in hours_by_month.values() for h in hs])

    prov_rows, by_country = [], defaultdict(lambda: {"notices": 0, "removed": 0, "still_online": 0, "hours": []})
    for pid, agg in per_provider.items():
        name, country = providers.get(pid, (None, None)) if pid is not None else (None, None)
        country = (country or UNKNOWN).upper() if country else UNKNOWN
        prov_rows.append({"provider": name or UNKNOWN, "country": country, **_table_row(agg)})
        c = by_country[country]
        for k in ("notices", "removed", "still_online"):
            c[k] += agg[k]
        c["hours"].extend(agg["hours"])
    prov_rows.sort(key=lambda r: (-r["notices"], -r["removed"], r["provider"]))
    country_rows = sorted(({"country": k, **_table_row(v)} for k, v in by_country.items()),
                          key=lambda r: (-r["notices"], -r["removed"], r["country"]))
    return {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "generated_at": now.isoformat(), "totals": totals, "months": out_months, "providers": prov_rows,
            "countries": country_rows}


def _report_counts(s, store: Store, lo: datetime | None, hi: datetime | None) -> dict[str, dict]:
    """Reports received in [lo, hi) per month, split by status."""
    m = _month_expr(store, Report.received_at)
    q = select(m, Report.status, func.count()).where(*_bounds(Report.received_at, lo, hi)).group_by(m, Report.status)
    out: dict[str, dict] = {}
    for month, status, n in s.execute(q):
        row = out.setdefault(month, dict.fromkeys(("reports", "founded", "unfounded", "in_review", "pending"), 0))
        row["reports"] += n
        row[_REPORT_STATUSES.get(status, "pending")] += n
    return out


def _next_month_start(d: datetime) -> datetime:
    return _add_months(d.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1)


def _add_months(d: datetime, n: int) -> datetime:
    y, m = divmod(d.month - 1 + n, 12)
    return d.replace(year=d.year + y, month=m + 1)


def _finish(row: dict, hours: list[float]) -> None:
    classified = row["known"] + row["new"]
    row["share_known_pct"] = _r(row["known"] / classified * 100, 1) if classified else None
    row["median_hours"] = _r(percentile(hours, 50))
    row["p90_hours"] = _r(percentile(hours, 90))


def _table_row(agg: dict) -> dict:
    return {"notices": agg["notices"], "removed": agg["removed"], "still_online": agg["still_online"],
            "median_hours": _r(percentile(agg["hours"], 50)), "p90_hours": _r(percentile(agg["hours"], 90))}


def _months(rows: dict, since: date | None, until: date | None, now: datetime) -> list[str]:
    have = [m for m, r in rows.items() if any(r.values())]
    if since is None and not have:
        return []
    first = _month(since) if since else min(have)
    last = _month(until) if until else max([_month(now), *have])
    return _month_range(first, last) if first <= last else []


# ---- CSV ------------------------------------------------------------------------------------------


def _cell(v) -> str | int | float:
    """None as an empty cell; text that a spreadsheet would run as a formula is quoted with an apostrophe."""
    if v is None:
        return ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def _csv(fields: tuple[str, ...], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([_cell(r.get(f)) for f in fields])
    return buf.getvalue()


def to_csv(stats: dict) -> str:
    """One row per month (MONTH_FIELDS), a header first; empty cells where a figure is undefined."""
    return _csv(MONTH_FIELDS, stats["months"])


def providers_csv(stats: dict) -> str:
    return _csv(PROVIDER_FIELDS, stats["providers"])


def countries_csv(stats: dict) -> str:
    return _csv(COUNTRY_FIELDS, stats["countries"])
