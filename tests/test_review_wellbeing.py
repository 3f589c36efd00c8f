"""Wellbeing: policies only get gentler, exposure counted per revealed second, limits lock review for a break.

Time comes from a FixedClock moved by hand. Every picture is generated (vigie.demo).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from vigie import audit
from vigie.demo import encode, photo_like
from vigie.errors import UsageError
from vigie.review import queue
from vigie.review.clock import FixedClock
from vigie.review.media import view_item
from vigie.review.wellbeing import (
    REVEAL_TIMEOUT_S,
    ExposureTracker,
    ReviewLocked,
    WellbeingPolicy,
    effective_policy,
    get_team_policy,
    policy_for,
    set_personal_policy,
    set_team_policy,
    team_exposure,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


pytestmark = pytest.mark.usefixtures("media_key")


def test_defaults():
    p = WellbeingPolicy()
    assert (p.daily_limit_min, p.session_limit_min, p.break_min, p.warning_min) == (120, 45, 15, 5)
    assert p.grayscale and p.blur_px > 0 and p.video_muted and p.video_paused and p.keyframes_first
    assert p.reveal_steps == ("colour", "sharp", "full", "video")


def test_personal_policy_only_gentler():
    team = WellbeingPolicy()
    harsher = {"daily_limit_min": 300, "session_limit_min": 90, "break_min": 5, "blur_px": 0, "grayscale": False,
               "thumb_px": 512, "video_muted": False, "warning_min": 0, "reveal_steps": ["colour", "sharp", "full",
                                                                                       "video"]}
    assert effective_policy(team, harsher) == team
    gentler = {"daily_limit_min": 60, "session_limit_min": 30, "break_min": 20, "blur_px": 24, "thumb_px": 96,
               "warning_min": 10, "reveal_steps": ["colour"]}
    p = effective_policy(team, gentler)
    assert (p.daily_limit_min, p.session_limit_min, p.break_min, p.blur_px, p.thumb_px, p.warning_min) == \
        (60, 30, 20, 24, 96, 10)
    assert p.reveal_steps == ("colour",)
    # a team that shows colour by default: an analyst may still choose greyscale
    assert effective_policy(WellbeingPolicy(grayscale=False), {"grayscale": True}).grayscale
    with pytest.raises(UsageError):
        WellbeingPolicy(daily_limit_min=0)
    with pytest.raises(UsageError):
        WellbeingPolicy(reveal_steps=("x-ray",))


def test_policies_stored(store):
    assert get_team_policy(store) == WellbeingPolicy()
    set_team_policy(store, {"daily_limit_min": 90}, "sup")
    assert get_team_policy(store).daily_limit_min == 90
    p = set_personal_policy(store, "ana", {"daily_limit_min": 200, "blur_px": 20})
    assert p.daily_limit_min == 90 and p.blur_px == 20  # the higher limit has no effect
    set_team_policy(store, {"daily_limit_min": 60}, "sup")
    assert policy_for(store, "ana").daily_limit_min == 60 and policy_for(store, "ana").blur_px == 20
    assert policy_for(store, "bob").blur_px == WellbeingPolicy().blur_px
    acts = [r.action for r in audit.iter_records(store)]
    assert acts.count("review.policy_team") == 2 and "review.policy_personal" in acts


def test_exposure_counts_revealed_seconds(store):
    tr = ExposureTracker(store)
    clock = FixedClock(T0)
    tr.start_reveal("ana", None, "colour", clock)
    clock.advance(seconds=30)
    tr.start_reveal("ana", None, "sharp", clock)  # next step, same item: the first event ends here
    clock.advance(seconds=30)
    tr.start_reveal("bob", None, "colour", clock)
    clock.advance(seconds=60)
    assert tr.stop_reveal("ana", clock) == 90.0  # sharp from 30 s to 120 s
    st = tr.status("ana", clock)
    assert st["exposed_today_s"] == 120.0 and not st["locked"] and not st["warning"]
    assert tr.status("bob", clock)["exposed_today_s"] == 60.0  # still open: counted up to now
    # a reveal whose heartbeat stopped (a closed tab) counts REVEAL_TIMEOUT_S after the last heartbeat, no more
    clock.advance(seconds=30)
    tr.heartbeat("bob", clock)  # 90 s after bob's reveal: still alive
    clock.advance(hours=2)
    assert tr.status("bob", clock)["exposed_today_s"] == 90.0 + REVEAL_TIMEOUT_S
    with pytest.raises(UsageError):
        tr.start_reveal("ana", None, "x-ray", clock)
    day = team_exposure(store, "day", clock)
    assert [(u["user"], u["exposed_s"]) for u in day["users"]] == [("bob", 90.0 + REVEAL_TIMEOUT_S), ("ana", 120.0)]
    assert day["users"][1]["by_kind"] == {"reveal_colour": 30.0, "reveal_sharp": 90.0}
    week = team_exposure(store, "week", clock, day=(T0 + timedelta(days=3)).date())
    assert week["from"] == "2026-03-02" and week["to"] == "2026-03-08"
    assert week["users"][1]["by_day"] == {"2026-03-02": 120.0}
    assert team_exposure(store, "day", clock, day=(T0 + timedelta(days=1)).date())["users"] == []


def test_session_limit_locks_for_a_break_with_a_warning(store):
    tr = ExposureTracker(store)
    clock = FixedClock(T0)
    tr.touch("ana", clock)  # the session starts with the first review action
    for _ in range(13):  # the review page's heartbeat every 3 minutes while it is open
        clock.advance(minutes=3)
        tr.heartbeat("ana", clock)
    st = tr.status("ana", clock)
    assert st["session_s"] == 39 * 60 and not st["warning"] and not st["locked"]
    clock.advance(minutes=1)
    st = tr.status("ana", clock)
    assert st["warning"] and st["remaining_s"] == 300  # five minutes before the limit
    clock.advance(minutes=5)
    st = tr.status("ana", clock)
    assert st["locked"] and st["lock_reason"] == "session" and st["locked_until"] == T0 + timedelta(minutes=60)
    with pytest.raises(ReviewLocked) as e:
        queue.next_cluster(store, "ana", clock)
    assert e.value.code == "review_locked" and e.value.http_status == 423
    with pytest.raises(ReviewLocked):
        tr.start_reveal("ana", None, "colour", clock)
    clock.advance(minutes=14)
    tr.heartbeat("ana", clock)  # the page still open during the break starts no session
    assert tr.status("ana", clock)["locked"]
    clock.advance(minutes=1)  # the break is over
    st = tr.status("ana", clock)
    assert not st["locked"] and st["session_s"] == 0
    assert queue.next_cluster(store, "ana", clock) is None  # allowed again (the queue is empty)
    assert tr.status("ana", clock)["session_s"] == 0  # a new session started now
    assert [r.action for r in audit.iter_records(store)].count("review.lock") == 1
    assert team_exposure(store, "day", clock)["users"][0]["locks"] == 1


def test_a_natural_break_starts_a_new_session(store):
    tr = ExposureTracker(store)
    clock = FixedClock(T0)
    tr.touch("ana", clock)
    clock.advance(minutes=30)
    tr.touch("ana", clock)
    clock.advance(minutes=20)  # away longer than the break
    tr.touch("ana", clock)
    st = tr.status("ana", clock)
    assert st["session_s"] == 0 and not st["locked"]


def test_daily_exposure_limit_locks_until_tomorrow(store):
    set_team_policy(store, {"daily_limit_min": 10, "session_limit_min": 120, "warning_min": 2}, "sup")
    tr = ExposureTracker(store)
    clock = FixedClock(T0)
    tr.start_reveal("ana", None, "full", clock)
    for _ in range(8):
        clock.advance(minutes=1)
        tr.heartbeat("ana", clock)
    st = tr.status("ana", clock)
    assert st["exposed_today_s"] == 480 and st["warning"] and not st["locked"]
    for _ in range(2):
        clock.advance(minutes=1)
        tr.heartbeat("ana", clock)
    st = tr.status("ana", clock)
    assert st["locked"] and st["lock_reason"] == "daily"
    assert st["locked_until"] == datetime(2026, 3, 3, tzinfo=UTC)
    assert tr.stop_reveal("ana", clock) == 0.0  # the lock closed the reveal at the limit
    with pytest.raises(ReviewLocked):
        tr.check("ana", clock)
    clock.set(datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC))
    st = tr.status("ana", clock)
    assert not st["locked"] and st["exposed_today_s"] == 0


def test_the_screen_gets_small_blurred_grey_pictures_until_a_reveal(store):
    st = store.settings
    q = queue.enqueue_media(store, st, encode(photo_like(90, 640, 480), "JPEG"), source="report")
    clock = FixedClock(T0)
    tr = ExposureTracker(store)
    data, mt = view_item(store, st, q["item"], "ana", clock=clock, tracker=tr)
    img = Image.open(io.BytesIO(data))
    assert mt == "image/jpeg" and img.mode == "L" and max(img.size) <= WellbeingPolicy().thumb_px
    assert tr.status("ana", clock)["exposed_today_s"] == 0  # nothing revealed yet
    data, _ = view_item(store, st, q["item"], "ana", steps=["colour"], clock=clock, tracker=tr)
    img = Image.open(io.BytesIO(data))
    assert img.mode == "RGB" and max(img.size) <= WellbeingPolicy().thumb_px
    clock.advance(seconds=10)
    view_item(store, st, q["item"], "ana", steps=["colour", "sharp"], clock=clock, tracker=tr)  # steps in order
    clock.advance(seconds=10)
    data, _ = view_item(store, st, q["item"], "ana", steps=["colour", "sharp", "full"], clock=clock, tracker=tr)
    assert Image.open(io.BytesIO(data)).size == (640, 480)
    clock.advance(seconds=10)
    tr.stop_reveal("ana", clock)  # the item was left: everything falls back, the count stops
    assert tr.status("ana", clock)["exposed_today_s"] == 30
    acts = [(r.action, (r.detail or {}).get("step")) for r in audit.iter_records(store)]
    assert ("review.reveal", "colour") in acts and ("review.reveal", "full") in acts
    set_personal_policy(store, "ana", {"reveal_steps": ["colour"]})
    with pytest.raises(UsageError):
        view_item(store, st, q["item"], "ana", steps=["full"], clock=clock)
