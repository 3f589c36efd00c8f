"""Statistics (vigie.stats): exact figures on a small generated history, on SQLite and PostgreSQL, and the
page, the CSV, the API and the command that show them. All data is invented: example.org URLs and counts."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest

from vigie import stats
from vigie.errors import InvalidInput
from vigie.store.intake_models import Notice, Provider, Report, Sighting
from vigie.web import charts

from test_cli_hash import vigie
from test_web_kit import make_kit, session_client


def at(y, m, d, h=0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


REPORTS = [(at(2024, 3, 5), "founded"), (at(2024, 3, 25), "unfounded"),
           (at(2025, 1, 3), "founded"), (at(2025, 1, 9), "founded"), (at(2025, 1, 30), "unfounded"),
           (at(2025, 2, 10), "in_review"), (at(2025, 2, 20), "received"),
           (at(2025, 3, 1), "founded"), (at(2025, 3, 2), "founded"), (at(2025, 3, 5), "unfounded"),
           (at(2025, 3, 20), "crawling")]
# found_at, outcome, state, provider, first_notice_at, removed_at
SIGHTINGS = [
    (at(2025, 1, 10), "known", "removed", "Alpha", at(2025, 1, 10), at(2025, 1, 11)),      # 24 h
    (at(2025, 1, 12), "known", "removed", "Alpha", at(2025, 1, 12), at(2025, 1, 12, 12)),  # 12 h
    (at(2025, 1, 15), "unknown", "online", None, None, None),
    (at(2025, 1, 20), "known", "removed", "Alpha", None, at(2025, 1, 21)),                 # a removal, no time
    (at(2025, 2, 1), "known", "changed", "Beta", at(2025, 2, 1), at(2025, 2, 5)),          # 96 h
    (at(2025, 2, 2), "known", "online", "Beta", at(2025, 2, 2), None),
    (at(2025, 3, 3), "known", "removed", None, at(2025, 3, 3), at(2025, 3, 4, 6)),         # 30 h
    (at(2025, 3, 4), "error", "online", None, None, None),
    (at(2025, 3, 5), "unknown", "online", None, None, None),
    (at(2025, 3, 6), "known", "online", "Gamma", None, None),
]
# provider, status, sent_at (created_at the same day), kind
NOTICES = [("Alpha", "sent", at(2025, 1, 10), "first"), ("Alpha", "sent", at(2025, 1, 12), "first"),
           ("Alpha", "failed", None, "first"), ("Beta", "sent", at(2025, 2, 1), "first"),
           ("Beta", "sent", at(2025, 3, 1), "renotice"), (None, "sent", at(2025, 3, 3), "first")]
NOW = at(2025, 3, 31, 12)


def fill(store) -> None:
    with store.session() as s:
        provs = {n: Provider(name=f"{n} Hosting", contact_email=f"abuse@{n.lower()}.example", country=c)
                 for n, c in (("Alpha", "FR"), ("Beta", "DE"), ("Gamma", None))}
        s.add_all(provs.values())
        s.flush()
        for i, (when, status) in enumerate(REPORTS):
            s.add(Report(reference=f"R{i:04d}", received_at=when, status=status))
        for i, (found, outcome, state, prov, notice, removed) in enumerate(SIGHTINGS):
            s.add(Sighting(media_url=f"https://media.example.org/{i}.png", media_url_key=f"{i:064d}",
                           host="media.example.org", found_at=found, outcome=outcome, state=state,
                           provider_id=provs[prov].id if prov else None, first_notice_at=notice, removed_at=removed))
        for i, (prov, status, sent, kind) in enumerate(NOTICES):
            s.add(Notice(reference=f"N{i:04d}", provider_id=provs[prov].id if prov else None,
                         recipient="abuse@example.org", kind=kind, created_at=sent or at(2025, 1, 13),
                         sent_at=sent, status=status, subject="notice", body_text="benign", body_json={}))


def by_month(data) -> dict:
    return {m["month"]: m for m in data["months"]}


def test_percentile_interpolates_like_numpy():
    assert stats.percentile([], 50) is None
    assert stats.percentile([5.0], 90) == 5.0
    assert stats.percentile([12, 24], 50) == 18
    assert stats.percentile([12, 24, 30, 96], 90) == pytest.approx(76.2)


def test_all_time(store):
    fill(store)
    d = stats.compute(store, now=NOW)
    months = by_month(d)
    assert list(months) == [f"2024-{m:02d}" for m in range(3, 13)] + ["2025-01", "2025-02", "2025-03"]
    assert d["totals"] == {"reports": 11, "founded": 5, "unfounded": 3, "in_review": 1, "pending": 2,
                           "media_seen": 10, "known": 7, "new": 2, "share_known_pct": 77.8, "notices_sent": 5,
                           "removals": 5, "median_hours": 27.0, "p90_hours": 76.2}
    jan, feb, mar = months["2025-01"], months["2025-02"], months["2025-03"]
    assert (jan["reports"], jan["founded"], jan["unfounded"], jan["reports_yoy_pct"]) == (3, 2, 1, None)
    assert (feb["in_review"], feb["pending"]) == (1, 1)
    assert (mar["reports"], mar["reports_yoy_pct"]) == (4, 100.0)
    assert (jan["media_seen"], jan["known"], jan["new"], jan["share_known_pct"]) == (4, 3, 1, 75.0)
    assert (mar["media_seen"], mar["known"], mar["new"], mar["share_known_pct"]) == (4, 2, 1, 66.7)
    assert (jan["notices_sent"], feb["notices_sent"], mar["notices_sent"]) == (2, 1, 2)
    assert (jan["removals"], jan["median_hours"], jan["p90_hours"]) == (3, 18.0, 22.8)
    assert (feb["removals"], feb["median_hours"], mar["median_hours"]) == (1, 96.0, 30.0)
    empty = months["2024-06"]
    assert empty["reports"] == 0 and empty["share_known_pct"] is None and empty["median_hours"] is None
    assert months["2024-03"]["reports"] == 2

    assert d["providers"] == [
        {"provider": "Alpha Hosting", "country": "FR", "notices": 2, "removed": 3, "still_online": 0,
         "median_hours": 18.0, "p90_hours": 22.8},
        {"provider": "Beta Hosting", "country": "DE", "notices": 2, "removed": 1, "still_online": 1,
         "median_hours": 96.0, "p90_hours": 96.0},
        {"provider": "unknown", "country": "unknown", "notices": 1, "removed": 1, "still_online": 0,
         "median_hours": 30.0, "p90_hours": 30.0},
        {"provider": "Gamma Hosting", "country": "unknown", "notices": 0, "removed": 0, "still_online": 1,
         "median_hours": None, "p90_hours": None}]
    countries = {c["country"]: c for c in d["countries"]}
    assert countries["unknown"] == {"country": "unknown", "notices": 1, "removed": 1, "still_online": 1,
                                    "median_hours": 30.0, "p90_hours": 30.0}
    assert (countries["FR"]["removed"], countries["DE"]["still_online"]) == (3, 1)


def test_window_cuts_months_but_growth_compares_whole_months(store):
    fill(store)
    d = stats.compute(store, since=date(2025, 2, 15), until=date(2025, 3, 3), now=NOW)
    feb, mar = by_month(d)["2025-02"], by_month(d)["2025-03"]
    assert list(by_month(d)) == ["2025-02", "2025-03"]
    assert (feb["reports"], feb["pending"], feb["in_review"]) == (1, 1, 0)
    assert (mar["reports"], mar["founded"], mar["reports_yoy_pct"]) == (2, 2, 100.0)
    assert (mar["media_seen"], mar["known"], mar["notices_sent"]) == (1, 1, 2)
    assert d["totals"]["removals"] == 0 and d["totals"]["median_hours"] is None
    assert (d["since"], d["until"]) == ("2025-02-15", "2025-03-03")
    one = stats.compute(store, since=date(2025, 1, 1), until=date(2025, 1, 31), now=NOW)
    assert [m["month"] for m in one["months"]] == ["2025-01"] and one["totals"]["removals"] == 3


def test_empty_store_and_bad_dates(store):
    d = stats.compute(store, now=NOW)
    assert d["months"] == [] and d["totals"]["reports"] == 0 and d["providers"] == []
    assert stats.to_csv(d).splitlines() == [",".join(stats.MONTH_FIELDS)]
    assert stats.parse_date("2025-02-03") == date(2025, 2, 3) and stats.parse_date(None) is None
    for bad in ("2025-2-3", "yesterday", "2025-02-30"):
        with pytest.raises(InvalidInput) as e:
            stats.parse_date(bad, "since")
        assert e.value.code == "bad_date"
    with pytest.raises(InvalidInput):
        stats.compute(store, since=date(2025, 3, 1), until=date(2025, 2, 1))


def test_csv_rows_and_formula_guard(store):
    fill(store)
    rows = list(csv.DictReader(io.StringIO(stats.to_csv(stats.compute(store, now=NOW)))))
    assert len(rows) == 13
    mar = rows[-1]
    assert (mar["month"], mar["reports"], mar["reports_yoy_pct"], mar["median_hours"]) == ("2025-03", "4", "100.0",
                                                                                        "30.0")
    assert rows[0]["reports_yoy_pct"] == "" and rows[0]["share_known_pct"] == ""
    text = stats.providers_csv({"providers": [{"provider": "=cmd()", "country": "FR", "notices": -1}]})
    assert "'=cmd()" in text and ",-1," in text


def test_charts_are_escaped_svg():
    svg = charts.bar_chart(["2025-01", "<b>"], {"a<script>": [1, 2], "b": [3, None]}, title="T & <x>", stacked=True)
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title>T &amp; &lt;x&gt;</title>" in svg
    assert "<script>" not in svg and "<b>" not in svg and "style=" not in svg
    line = charts.line_chart(["a", "b", "c"], {"m": [1.5, None, 3]}, title="L")
    assert "<circle" in line and "polyline" not in line  # a gap splits the line: single points only
    assert "No data" in charts.line_chart(["a"], {"m": [None]}, title="L")
    assert charts.nice_max(0) == 1 and charts.nice_max(76.2) == 100 and charts.nice_max(3) == 5


def test_web_page_csv_and_api(store, monkeypatch):
    fill(store)
    app, clock, _ = make_kit(store, monkeypatch)
    from fastapi.testclient import TestClient

    anon = TestClient(app)
    r = anon.get("/stats", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert anon.get("/api/v1/stats").status_code == 401
    c, _ = session_client(app, store, "analyst", clock)
    page = c.get("/stats")
    assert page.status_code == 200 and page.text.count("<svg") == 3 and "Alpha Hosting" in page.text
    assert 'href="/stats.csv"' in page.text and "style=" not in page.text
    r = c.get("/stats.csv?since=2025-01-01&until=2025-03-31")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    lines = r.text.splitlines()
    assert lines[0].startswith("month,reports,founded") and lines[1].startswith("2025-01,3,2,1,")
    assert len(lines) == 4
    prov = c.get("/stats.csv?table=providers").text.splitlines()
    assert prov[1] == "Alpha Hosting,FR,2,3,0,18.0,22.8"
    j = c.get("/api/v1/stats").json()
    assert j["totals"]["reports"] == 11 and j["totals"]["p90_hours"] == 76.2
    assert j["months"][-1]["month"] == "2026-11"  # up to the app clock's month
    bad = c.get("/api/v1/stats?since=2025-13-01")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_date"
    assert c.get("/stats?since=nope").status_code == 422


def test_cli_stats(tmp_path):
    from vigie.settings import Settings
    from vigie.store import Store

    dd = tmp_path / "d"
    s = Store.open(Settings(data_dir=dd, workers=1))
    fill(s)
    s.close()
    r = vigie("stats", "--json", "--since", "2025-01-01", "--csv", str(tmp_path / "s.csv"), "--data-dir", str(dd))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["totals"]["reports"] == 9 and d["totals"]["median_hours"] == 27.0
    assert (tmp_path / "s.csv").read_text().startswith("month,reports,")
    r = vigie("stats", "--data-dir", str(dd))
    assert r.returncode == 0 and "Alpha Hosting" in r.stdout
    r = vigie("stats", "--since", "soon", "--data-dir", str(dd))
    assert r.returncode == 1 and "bad_date" in r.stderr and "Traceback" not in r.stderr
