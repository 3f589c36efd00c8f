"""The dashboard of the work (TestClient, both stores): waiting clusters and the age of the oldest, disputes,
reports in crawl and received, sightings due a notice, removals in 7 days, the scans running, and for supervisors
the team's exposure today; each number a link to its page; read only. And where an analyst stands on every review
page: the exposure panel, lock times in the deployment's time zone (setting `timezone`). Generated, benign
pictures only; sightings are rows, nothing is fetched."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import test_web_review
from sqlalchemy import select, update
from test_web_review import UNKNOWN_SEEDS, client, image, item_ids, jpeg, sha

from vigie import audit
from vigie.ingest import reports
from vigie.review import decisions, queue, summary
from vigie.settings import Settings
from vigie.store.intake_models import Report, Sighting
from vigie.store.models import Scan
from vigie.store.review_models import ReviewCluster

kit = test_web_review.kit  # the fixture: an app, a bank that knows one picture, two unknown ones queued


def sighting(n: int, *, verdict: dict, removed_at=None, state: str = "online") -> Sighting:
    return Sighting(media_url=f"https://example.invalid/{n}.jpg", media_url_key=f"k{n}", host="example.invalid",
                    outcome="known", verdict=verdict, state=state, removed_at=removed_at)


def fill_work(store, now) -> None:
    """Two reports (one being crawled), four sightings of known material (one due a notice, one never noticed by
    policy, one removed 2 days ago, one 10 days ago), the kit's scan marked running again, the clusters queued
    5 hours before `now`."""
    reports.submit(store, ["https://example.invalid/a"], now=now)
    crawling = reports.submit(store, ["https://example.invalid/b"], now=now)["reference"]
    with store.sessions() as s, s.begin():
        s.execute(update(Report).where(Report.reference == crawling).values(status="crawling"))
        s.add_all([sighting(1, verdict={"legality": "baseline"}),
                   sighting(2, verdict={"legality": "not_illegal"}),
                   sighting(3, verdict={"legality": "baseline"}, state="removed", removed_at=now - timedelta(days=2)),
                   sighting(4, verdict={"legality": "baseline"}, state="removed",
                            removed_at=now - timedelta(days=10))])
        sc = s.scalars(select(Scan)).one()
        sc.status, sc.case_id = "running", "CASE-7"
        s.execute(update(ReviewCluster).values(created_at=now - timedelta(hours=5)))  # queued 5 h before "now"


def test_the_dashboard_counts_the_work_and_each_number_links_to_its_page(kit):
    app, clock, store, _ = kit
    fill_work(store, clock())
    (iid, cid), (_, other) = (item_ids(store)[sha(jpeg(s))] for s in UNKNOWN_SEEDS)
    decisions.decide(store, store.settings, cid, "analyst", "illegal_national", None)
    decisions.decide(store, store.settings, cid, "bob", "not_illegal", None)  # disputed
    ana, _ = client(app, store, "analyst", clock)
    image(ana.get(f"/review/items/{iid}/media?steps=colour"))
    for _ in range(3):  # 3 minutes revealed, the page's heartbeat keeping the reveal alive
        clock.advance(minutes=1)
        ana.post("/api/v1/review/heartbeat")

    w = ana.get("/api/v1/dashboard").json()["work"]
    assert (w["waiting_clusters"], w["waiting_items"], w["disputed"]) == (1, 1, 1)
    assert w["oldest_age_s"] == pytest.approx(5 * 3600 + 180, abs=1)
    assert (w["reports_received"], w["reports_crawling"]) == (1, 1)
    assert (w["notices_due"], w["removed_week"]) == (1, 1)
    assert [(x["case_id"], x["files"]) for x in w["scans_running"]] == [("CASE-7", 3)]
    assert w["team_exposed_today_s"] is None and w["team_analysts_today"] is None  # supervisors only

    page = ana.get("/").text
    for tile, href, n in (("w-waiting", "/review", 1), ("w-crawling", "/intake?status=crawling", 1),
                          ("w-received", "/intake?status=received", 1), ("w-notices", "/takedown", 1),
                          ("w-removed", "/takedown", 1)):
        tag = rf'<a class="tile" href="{re.escape(href)}" id="{tile}"><span class="n">{n}</span>'
        assert re.search(tag, page), tile
    assert "cluster waiting for you" in page and "the oldest for 5 h" in page
    assert 'id="w-disputed"' not in page and 'id="w-team"' not in page
    assert "Scan 1 is running (case CASE-7): <strong>3</strong> locations so far" in page
    for href in re.findall(r'href="([^"#]+)"', page.split('id="work-title"')[1].split("Take breaks")[0]):
        assert ana.get(href).status_code == 200, href  # every link opens for an analyst

    sup, _ = client(app, store, "supervisor", clock)
    w = sup.get("/api/v1/dashboard").json()["work"]
    assert w["waiting_clusters"] == 1 and w["disputed"] == 1  # the disputed one waits for a supervisor's resolve
    assert w["team_exposed_today_s"] == pytest.approx(180, abs=1) and w["team_analysts_today"] == 1
    page = sup.get("/").text
    assert re.search(r'href="/review/disputed" id="w-disputed"><span class="n">1</span>', page)
    assert re.search(r'href="/review/exposure" id="w-team"><span class="n">3 min</span>', page)
    assert "1 analyst, the most 3 min" in page
    for href in re.findall(r'href="([^"#]+)"', page.split('id="work-title"')[1].split("Take breaks")[0]):
        assert sup.get(href).status_code == 200, href
    assert other != cid


def test_work_counts_reads_only(kit):
    app, clock, store, _ = kit
    fill_work(store, clock())
    queue.list_queue(store)  # the queue's own catch-up: bank changes not yet re-matched are applied first
    before = audit.count(store)
    with store.sessions() as s:
        rows = [(r.id, r.status) for r in s.scalars(select(Report))]
    for _ in range(2):
        w = summary.work_counts(store, now=clock(), settings=store.settings, supervisor=True)
    assert w["notices_due"] == 1 and w["team_today"] == {"exposed_s": 0.0, "analysts": 0, "most_s": 0.0}
    assert audit.count(store) == before
    with store.sessions() as s:
        assert [(r.id, r.status) for r in s.scalars(select(Report))] == rows
    assert summary.work_counts(store, now=clock())["notices_due"] is None  # without settings: not counted


def test_every_review_page_shows_the_exposure_panel_once(kit):
    app, clock, store, _ = kit
    _iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    for who, paths in (("analyst", ["/review", f"/review/clusters/{cid}", "/review/upload", "/review/policy"]),
                       ("supervisor", ["/review/disputed", "/review/exposure"])):
        c, _ = client(app, store, who, clock)
        for p in paths:
            text = c.get(p).text
            assert text.count('id="exposure"') == 1, (who, p)
            assert 'data-k="exposed_today_s"' in text and 'data-k="remaining_s"' in text, (who, p)
    c, _ = client(app, store, "analyst", clock)
    assert 'id="exposure"' not in c.get("/").text  # the dashboard is not a review page


def test_lock_times_in_the_deployments_time_zone(kit):
    app, clock, store, _ = kit
    iid, cid = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    sup, _ = client(app, store, "supervisor", clock)
    sup.post("/api/v1/review/policy/team", json={"daily_limit_min": 10})
    c, _ = client(app, store, "analyst", clock)
    image(c.get(f"/review/items/{iid}/media?steps=colour"))
    for _ in range(11):  # past the daily limit, the page's heartbeat keeping the reveal alive
        clock.advance(minutes=1)
        c.post("/api/v1/review/heartbeat")
    until = datetime.fromisoformat(c.get("/api/v1/review/me").json()["locked_until"])

    def lock_time(text: str) -> tuple[datetime, str]:
        at, shown = re.search(r'It opens again at <time datetime="([^"]+)">([^<]+)</time>', text).groups()
        return datetime.fromisoformat(at), shown

    assert lock_time(c.get("/review").text) == (until, f"{until.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    app.state.settings.timezone = "Europe/Paris"
    paris = until.astimezone(ZoneInfo("Europe/Paris"))
    assert paris.strftime("%H:%M") != until.astimezone(UTC).strftime("%H:%M")
    try:
        for p in ("/review", f"/review/clusters/{cid}", "/review/policy"):
            text = c.get(p).text
            assert lock_time(text) == (until, f"{paris:%Y-%m-%d %H:%M} Europe/Paris"), p
            assert 'data-tz="Europe/Paris"' in text
    finally:
        app.state.settings.timezone = "UTC"


def test_the_timezone_setting_takes_iana_names_only():
    assert Settings(timezone="America/Sao_Paulo").timezone == "America/Sao_Paulo"
    assert Settings().timezone == "UTC"
    for bad in ("Mars/Olympus", "../etc/passwd", "CET+1"):
        with pytest.raises(ValueError, match="IANA"):
            Settings(timezone=bad)
