"""Wellbeing in the web app: the page's heartbeat and polls do not keep a session alive, steps out of order are
refused, a supervisor ends a lock from the exposure page or the API, and the personal page says what applies.
TestClient with the injected clock; SQLite and PostgreSQL. Every picture is generated."""
# ruff: noqa: F811  (the `kit` fixture is imported, and named by each test)

from __future__ import annotations

import re

from test_web_review import UNKNOWN_SEEDS, client, form, image, item_ids, jpeg, kit, sha  # noqa: F401

from vigie import audit
from vigie.review import wellbeing


def test_the_heartbeat_does_not_defeat_the_idle_logout(kit):
    app, clock, store, _ = kit
    c, _ = client(app, store, "analyst", clock)
    for _ in range(29):  # the review page left open: heartbeat and poll, no action of the person's
        clock.advance(minutes=1)
        assert c.post("/api/v1/review/heartbeat").status_code == 200
        assert c.get("/api/v1/review/me").status_code == 200
    clock.advance(minutes=1, seconds=1)  # 30 minutes since the last action
    assert c.post("/api/v1/review/heartbeat").status_code == 401
    assert c.get("/review", follow_redirects=False).status_code in (302, 303)  # to the login page


def test_actions_keep_the_session_alive(kit):
    app, clock, store, _ = kit
    c, _ = client(app, store, "analyst", clock)
    for _ in range(4):  # a page every 20 minutes: two hours of work
        clock.advance(minutes=20)
        assert c.get("/review").status_code == 200
        assert c.post("/api/v1/review/heartbeat").status_code == 200


def test_steps_out_of_order_are_refused_with_a_clear_code(kit):
    app, clock, store, _ = kit
    iid, _ = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    c, _ = client(app, store, "analyst", clock)
    for steps in ("full", "colour,sharp,full", "sharp"):
        r = c.get(f"/review/items/{iid}/media?steps={steps}")
        assert r.status_code == 400 and 'data-code="reveal_out_of_order"' in r.text
    for steps in ("colour", "colour,sharp", "colour,sharp,full"):
        image(c.get(f"/review/items/{iid}/media?steps={steps}"))


def lock_analyst(app, store, clock):
    sup, sup_csrf = client(app, store, "supervisor", clock)
    sup.post("/api/v1/review/policy/team", json={"daily_limit_min": 5})
    iid, _ = item_ids(store)[sha(jpeg(UNKNOWN_SEEDS[0]))]
    ana, _ = client(app, store, "analyst", clock)
    image(ana.get(f"/review/items/{iid}/media?steps=colour"))
    for _ in range(12):
        clock.advance(seconds=30)
        ana.post("/api/v1/review/heartbeat")
    assert ana.get("/api/v1/review/me").json()["locked"]
    return sup, sup_csrf, ana


def test_a_supervisor_ends_a_lock_through_the_api(kit):
    app, clock, store, _ = kit
    sup, _, ana = lock_analyst(app, store, clock)
    assert ana.post("/api/v1/review/locks/analyst/end", json={"reason": "x"}).status_code == 403
    r = sup.post("/api/v1/review/locks/analyst/end", json={"reason": ""})
    assert r.status_code == 422
    r = sup.post("/api/v1/review/locks/analyst/end", json={"reason": "an urgent case, checked in with them"})
    assert r.status_code == 200 and r.json()["lock_reason"] == "daily" and r.json()["by"] == "supervisor"
    assert not ana.get("/api/v1/review/me").json()["locked"]
    r = sup.post("/api/v1/review/locks/analyst/end", json={"reason": "again"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_locked"
    recs = [x for x in audit.iter_records(store) if x.action == "review.unlock"]
    assert [(x.actor, x.detail["reason"]) for x in recs] == [("supervisor", "an urgent case, checked in with them")]


def test_a_supervisor_ends_a_lock_on_the_exposure_page(kit):
    app, clock, store, _ = kit
    sup, sup_csrf, ana = lock_analyst(app, store, clock)
    page = sup.get("/review/exposure").text
    assert 'id="end-lock"' in page and '<li data-user="analyst">analyst: daily limit until' in page
    r = form(sup, "/review/exposure/end-lock", sup_csrf, {"user": "analyst", "reason": ""})
    assert r.status_code == 400 and "give the reason" in r.text
    r = form(sup, "/review/exposure/end-lock", sup_csrf, {"user": "analyst", "reason": "short-staffed today"})
    assert r.status_code == 200 and "The lock of analyst was ended" in r.text
    assert "Nobody is locked out of review now." in r.text
    assert not ana.get("/api/v1/review/me").json()["locked"]


def test_the_personal_page_does_not_say_saved_when_harsher_values_have_no_effect(kit):
    app, clock, store, _ = kit
    c, csrf = client(app, store, "analyst", clock)
    team = wellbeing.get_team_policy(store)
    fields = {"form": "policy", "thumb_px": "512", "blur_px": "0", "daily_limit_min": str(team.daily_limit_min),
              "session_limit_min": str(team.session_limit_min), "break_min": str(team.break_min),
              "warning_min": str(team.warning_min), "grayscale": "on", "video_muted": "on", "video_paused": "on",
              "keyframes_first": "on", **{f"step_{s}": "on" for s in team.reveal_steps}}
    r = form(c, "/review/policy", csrf, fields)
    text = re.sub(r"\s+", " ", r.text)
    assert "Your wellbeing settings were saved." not in text
    assert "Saved, but not all of it applies" in text and f"blur px: you asked for 0, {team.blur_px} applies" in text
    r = form(c, "/review/policy", csrf, {**fields, "thumb_px": "96", "blur_px": "30"})
    assert "were saved and apply now" in r.text
