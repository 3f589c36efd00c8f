"""The public side tells nothing: a reporter sees received / being checked / closed, each after a delay from
receipt, never whether a URL was reported before, what was found there, or why a report closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from vigie.store.intake_models import Report

from test_web_kit import make_kit


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def close(store, reference: str, status: str, reason: str | None, at) -> None:
    with store.session() as s:
        s.execute(update(Report).where(Report.reference == reference).values(status=status, reason=reason,
                                                                             closed_at=at))


def test_a_url_reported_again_gives_the_same_answer(kit):
    app, clock, store = kit
    c = TestClient(app)
    first = c.post("/api/v1/reports", json={"urls": ["http://example.com/a"]}).json()
    again = c.post("/api/v1/reports", json={"urls": ["http://example.com/a"]}).json()
    strip = lambda d: {k: v for k, v in d.items() if k not in ("reference", "status_url")}  # noqa: E731
    assert strip(first) == strip(again) and "joined_existing" not in again
    page = c.get("/report")
    import re

    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/report", data={"urls": "http://example.com/a", "csrf_token": tok})
    assert r.status_code == 201 and "reported before" not in r.text and "joins" not in r.text


@pytest.mark.parametrize("internal,reason", [("founded", None),
                                             ("unfounded", "http://example.com/b: could not be checked "
                                                           "(dns_error: no address for intranet.local)")])
def test_status_moves_only_with_the_delay_and_says_the_same_for_founded_and_unfounded(kit, internal, reason):
    app, clock, store = kit
    store.settings.report_public_delay_hours = 24
    c = TestClient(app)
    ref = c.post("/api/v1/reports", json={"urls": ["http://example.com/b"]}).json()["reference"]
    t0 = clock()
    close(store, ref, internal, reason, t0 + timedelta(seconds=5))  # closed within seconds, internally
    seen = []
    for hours in (0, 23.9, 24, 47.9, 48, 100):
        clock.t = t0 + timedelta(hours=hours)
        body = c.get(f"/api/v1/reports/{ref}").json()
        page = c.get("/report/status", params={"reference": ref}).text
        assert set(body) == {"reference", "status", "meaning", "urls", "received_at"}
        for leak in ("example.com", "intranet", "dns_error", "founded", "confirmed", "illegal", "reason"):
            assert leak not in str(body) and leak not in page.split("<main", 1)[-1].split("</main>")[0]
        seen.append(body["status"])
    assert seen == ["received", "received", "being_checked", "being_checked", "closed", "closed"]


def test_a_report_still_open_stays_being_checked(kit):
    app, clock, store = kit
    c = TestClient(app)
    ref = c.post("/api/v1/reports", json={"urls": ["http://example.com/c"]}).json()["reference"]
    clock.advance(hours=1000)
    assert c.get(f"/api/v1/reports/{ref}").json()["status"] == "being_checked"
    assert c.get("/api/v1/reports/VR-0000-0000-0000").status_code == 404
