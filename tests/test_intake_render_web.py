"""Asking for the crawler's browser from the web: the reporter's "only appeared after..." box on the public form
and its API field, and the analysts' button and API on a report's page. Only the plan kept in the store is
checked here (the browser itself: tests/test_crawl_render.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from vigie.ingest import reports
from vigie.store.audit_models import AuditRecord
from vigie.store.crawl_models import CrawlPlan

from test_web_kit import make_kit, session_client


@pytest.fixture
def kit(store, monkeypatch):
    return make_kit(store, monkeypatch)


def _render_flags(store) -> list[bool]:
    with store.sessions() as s:
        return sorted(p.render for p in s.scalars(select(CrawlPlan)))


def _token(page: str) -> str:
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def test_a_reporter_can_say_the_pictures_need_a_browser(kit):
    app, _, store = kit
    c = TestClient(app)
    form = c.get("/report")
    assert 'name="needs_browser"' in form.text
    r = c.post("/report", data={"csrf_token": _token(form.text), "urls": "http://example.com/spa\nexample.org/b",
                                "needs_browser": "1"})
    assert r.status_code == 201
    assert _render_flags(store) == [True, True]
    plain = c.post("/report", data={"csrf_token": _token(c.get("/report").text), "urls": "http://example.net/x"})
    assert plain.status_code == 201 and _render_flags(store) == [True, True]  # no box: no plan at all
    api = c.post("/api/v1/reports", json={"urls": ["http://example.com/app"], "needs_browser": True})
    assert api.status_code == 201 and _render_flags(store) == [True, True, True]
    assert c.post("/api/v1/reports", json={"urls": ["http://x.example/"], "needs_browser": "maybe"}).status_code == 422


def test_analysts_turn_rendering_on_and_off_from_the_report_page(kit):
    app, _, store = kit
    ref = reports.submit(store, ["http://example.com/a", "http://example.com/b"])["reference"]
    c, _ = session_client(app, store, "analyst")
    page = c.get(f"/intake/{ref}")
    assert page.status_code == 200 and "Open its pages in the browser" in page.text
    r = c.post(f"/intake/{ref}/render", data={"csrf_token": _token(page.text), "render": "on"},
               follow_redirects=False)
    assert r.status_code == 303 and _render_flags(store) == [True, True]
    page = c.get(f"/intake/{ref}")
    assert "Stop opening them in the browser" in page.text and page.text.count("· in the browser") == 2
    assert c.get(f"/api/v1/intake/reports/{ref}").json()["render"] is True
    # without the page's token the change is refused
    assert c.post(f"/intake/{ref}/render", data={"render": "off"}).status_code == 403
    assert _render_flags(store) == [True, True]
    r = c.post(f"/intake/{ref}/render", data={"csrf_token": _token(page.text), "render": "off"},
               follow_redirects=False)
    assert r.status_code == 303 and _render_flags(store) == [False, False]
    with store.sessions() as s:
        events = [e.detail for e in s.scalars(select(AuditRecord).where(AuditRecord.action == "report.render")
                                               .order_by(AuditRecord.id))]
    assert [e["render"] for e in events] == [True, False] and all(e["urls"] == 2 for e in events)


def test_the_render_api_needs_an_analyst_and_a_real_report(kit):
    app, _, store = kit
    ref = reports.submit(store, ["http://example.com/a"])["reference"]
    assert TestClient(app).post(f"/api/v1/intake/reports/{ref}/render", json={"render": True}).status_code in (401, 403)
    c, token = session_client(app, store, "analyst")
    headers = {"x-csrf-token": token}
    r = c.post(f"/api/v1/intake/reports/{ref}/render", json={"render": True}, headers=headers)
    assert r.status_code == 200 and r.json() == {"reference": ref, "render": True, "urls": 1}
    missing = c.post("/api/v1/intake/reports/VR-0000-0000-0000/render", json={"render": True}, headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "report_not_found"
    assert _render_flags(store) == [True]
