"""Exposure on the server's clock, reveal steps in order, the day in the deployment's zone, a supervisor ending
a lock, what the personal page says, and videos served without their sound. On SQLite and PostgreSQL.

Time comes from a FixedClock moved by hand; every picture and video is generated (vigie.demo, a sine tone).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vigie import audit
from vigie.demo import encode, photo_like
from vigie.errors import Conflict, UsageError
from vigie.review import queue
from vigie.review.clock import FixedClock
from vigie.review.media import view_item
from vigie.review.video import AudioStripError, has_audio, strip_audio
from vigie.review.wellbeing import (
    MIN_REVEAL_S,
    REVEAL_TIMEOUT_S,
    ExposureTracker,
    ReviewLocked,
    StepsOutOfOrder,
    current_locks,
    end_lock,
    saved_message,
    set_personal_policy,
    set_team_policy,
    team_exposure,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
FULL = ("colour", "sharp", "full")

pytestmark = pytest.mark.usefixtures("media_key")


def picture(store, seed: int = 90) -> int:
    return queue.enqueue_media(store, store.settings, encode(photo_like(seed, 320, 240), "JPEG"),
                               source="report")["item"]


def reveal_in_order(store, item: int, clock, tr, upto: int = 3) -> None:
    for k in range(1, upto + 1):
        view_item(store, store.settings, item, "ana", steps=FULL[:k], clock=clock, tracker=tr)


# ---------------------------------------------------------------------------------------------- the measure


def test_a_reveal_without_heartbeat_counts_the_timeout_not_five_minutes(store):
    tr, clock = ExposureTracker(store), FixedClock(T0)
    tr.start_reveal("ana", None, "full", clock)
    clock.advance(minutes=10)  # no heartbeat, no stop: the tab was closed or the client never had a page
    assert tr.status("ana", clock)["exposed_today_s"] == REVEAL_TIMEOUT_S < 300
    tr.heartbeat("ana", clock)  # a late heartbeat does not bring the reveal back
    clock.advance(minutes=10)
    assert tr.status("ana", clock)["exposed_today_s"] == REVEAL_TIMEOUT_S


def test_twenty_full_size_reveals_in_22_s_count_22_s_not_1(store):
    tr, clock = ExposureTracker(store), FixedClock(T0)
    for _ in range(20):  # each "stopped" 50 ms after the pixels were served, the next one 1.1 s later
        tr.start_reveal("ana", None, "full", clock)
        clock.advance(milliseconds=50)
        tr.stop_reveal("ana", clock)
        clock.advance(milliseconds=1050)
    clock.advance(seconds=5)
    exposed = tr.status("ana", clock)["exposed_today_s"]
    # the union of the spans: 19 gaps of 1.1 s and the last reveal's MIN_REVEAL_S; never 20 x 2 s (overlaps once)
    assert exposed == pytest.approx(19 * 1.1 + MIN_REVEAL_S, abs=0.11)
    assert team_exposure(store, "day", clock)["users"][0]["exposed_s"] == pytest.approx(exposed, abs=0.11)


def test_hiding_the_item_ends_its_reveal_on_the_server(store):
    item, other = picture(store, 90), picture(store, 91)
    tr, clock = ExposureTracker(store), FixedClock(T0)
    view_item(store, store.settings, item, "ana", steps=["colour"], clock=clock, tracker=tr)
    clock.advance(seconds=10)
    view_item(store, store.settings, other, "ana", clock=clock, tracker=tr)  # another item's preview: no hide
    clock.advance(seconds=10)
    view_item(store, store.settings, item, "ana", clock=clock, tracker=tr)  # the plain preview: hidden again
    clock.advance(minutes=5)
    assert tr.status("ana", clock)["exposed_today_s"] == 20
    view_item(store, store.settings, item, "ana", steps=["colour"], clock=clock, tracker=tr)
    clock.advance(seconds=30)
    view_item(store, store.settings, other, "ana", steps=["colour"], clock=clock, tracker=tr)  # left for another
    clock.advance(seconds=40)
    tr.stop_reveal("ana", clock)
    assert tr.status("ana", clock)["exposed_today_s"] == 20 + 30 + 40


def test_the_page_heartbeat_keeps_an_open_reveal_counting(store):
    tr, clock = ExposureTracker(store), FixedClock(T0)
    tr.start_reveal("ana", None, "colour", clock)
    for _ in range(20):  # the page's heartbeat every 30 s for ten minutes
        clock.advance(seconds=30)
        tr.heartbeat("ana", clock)
    assert tr.status("ana", clock)["exposed_today_s"] == 600


# ---------------------------------------------------------------------------------------------- steps in order


def test_reveal_steps_come_in_order(store):
    item = picture(store)
    tr, clock = ExposureTracker(store), FixedClock(T0)
    for skipped in (["full"], ["sharp"], ["colour", "sharp", "full"], ["colour", "full"], ["video"]):
        with pytest.raises(StepsOutOfOrder) as exc:
            view_item(store, store.settings, item, "ana", steps=skipped, clock=clock, tracker=tr)
        assert exc.value.code == "reveal_out_of_order" and exc.value.http_status == 400
    assert tr.status("ana", clock)["exposed_today_s"] == 0  # nothing was served, nothing counted
    reveal_in_order(store, item, clock, tr)
    clock.advance(seconds=5)
    # back to an earlier step, or the last one again: fine in this session
    view_item(store, store.settings, item, "ana", steps=["colour"], clock=clock, tracker=tr)
    view_item(store, store.settings, item, "ana", steps=FULL, clock=clock, tracker=tr)
    # another item has its own steps
    with pytest.raises(StepsOutOfOrder):
        view_item(store, store.settings, picture(store, 92), "ana", steps=["colour", "sharp"], clock=clock,
                  tracker=tr)
    tr.stop_reveal("ana", clock)
    clock.advance(hours=1)  # a natural break: a new review session, the steps start again
    with pytest.raises(StepsOutOfOrder):
        view_item(store, store.settings, item, "ana", steps=["colour", "sharp"], clock=clock, tracker=tr)


def test_steps_follow_the_analysts_own_steps(store):
    item = picture(store)
    set_personal_policy(store, "ana", {"reveal_steps": ["colour", "full"]})  # no sharp step for ana
    tr, clock = ExposureTracker(store), FixedClock(T0)
    view_item(store, store.settings, item, "ana", steps=["colour"], clock=clock, tracker=tr)
    view_item(store, store.settings, item, "ana", steps=["colour", "full"], clock=clock, tracker=tr)
    with pytest.raises(UsageError):
        view_item(store, store.settings, item, "ana", steps=FULL, clock=clock, tracker=tr)


# ---------------------------------------------------------------------------------------------- the day


def heartbeats(tr, clock, minutes: int) -> None:
    for _ in range(minutes * 2):  # the page's heartbeat every 30 s
        clock.advance(seconds=30)
        tr.heartbeat("ana", clock)


def test_the_day_begins_at_midnight_in_the_deployments_zone(store):
    store.settings.timezone = "Pacific/Auckland"  # UTC+13 in March
    set_team_policy(store, {"daily_limit_min": 15, "session_limit_min": 120}, "sup")
    tr = ExposureTracker(store)
    clock = FixedClock(datetime(2026, 3, 2, 10, 50, tzinfo=UTC))  # 23:50 on March 2 in Auckland
    tr.start_reveal("ana", None, "full", clock)
    heartbeats(tr, clock, 20)  # across Auckland's midnight (11:00 UTC); in UTC all of it is March 2
    st = tr.status("ana", clock)
    assert st["exposed_today_s"] == 600 and not st["locked"]  # the ten minutes before midnight were yesterday
    week = team_exposure(store, "week", clock)
    assert week["from"] == "2026-03-02" and week["users"][0]["by_day"] == {"2026-03-02": 600.0, "2026-03-03": 600.0}
    assert team_exposure(store, "day", clock)["users"][0]["exposed_s"] == 600
    heartbeats(tr, clock, 5)
    with pytest.raises(ReviewLocked) as exc:
        tr.check("ana", clock)
    # until the next midnight in Auckland, and the message says it in Auckland's time
    assert exc.value.reason == "daily" and exc.value.locked_until == datetime(2026, 3, 3, 11, 0, tzinfo=UTC)
    assert "2026-03-04 00:00 Pacific/Auckland" in exc.value.message


def test_the_same_reveals_in_utc_lock_the_day(store):
    set_team_policy(store, {"daily_limit_min": 15, "session_limit_min": 120}, "sup")
    tr = ExposureTracker(store)
    clock = FixedClock(datetime(2026, 3, 2, 10, 50, tzinfo=UTC))
    tr.start_reveal("ana", None, "full", clock)
    heartbeats(tr, clock, 20)
    st = tr.status("ana", clock)
    assert st["locked"] and st["locked_until"] == datetime(2026, 3, 3, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- ending a lock


def test_a_supervisor_ends_a_daily_lock_with_a_recorded_reason(store):
    set_team_policy(store, {"daily_limit_min": 5, "session_limit_min": 120}, "sup")
    tr, clock = ExposureTracker(store), FixedClock(T0)
    tr.start_reveal("ana", None, "full", clock)
    heartbeats(tr, clock, 6)
    assert tr.status("ana", clock)["locked"]
    assert [x["user"] for x in current_locks(store, clock)] == ["ana"]
    with pytest.raises(UsageError) as exc:
        end_lock(store, "ana", "sup", "  ", clock)
    assert exc.value.code == "missing_value"
    with pytest.raises(UsageError) as exc:
        end_lock(store, "ana", "ana", "I feel fine", clock)
    assert exc.value.code == "own_lock" and exc.value.http_status == 403
    with pytest.raises(Conflict) as exc:
        end_lock(store, "bob", "sup", "urgent case", clock)
    assert exc.value.code == "not_locked"
    r = end_lock(store, "ana", "sup", "urgent case, talked with ana first", clock)
    assert r["lock_reason"] == "daily" and r["was_until"] == datetime(2026, 3, 3, tzinfo=UTC)
    st = tr.check("ana", clock)  # open again, and the daily limit counts from now
    assert not st["locked"] and st["remaining_s"] == 300 and st["exposed_today_s"] == 360
    assert current_locks(store, clock) == []
    rec = [x for x in audit.iter_records(store) if x.action == "review.unlock"]
    assert len(rec) == 1 and rec[0].actor == "sup"
    assert rec[0].detail["reason"] == "urgent case, talked with ana first" and rec[0].detail["user"] == "ana"
    tr.start_reveal("ana", None, "full", clock)  # a fresh allowance, and the limit still holds
    heartbeats(tr, clock, 6)
    assert tr.status("ana", clock)["lock_reason"] == "daily"


def test_a_supervisor_ends_a_break_and_a_weekly_lock(store):
    store.settings.wellbeing_floor = {"days_per_week": 1}
    tr = ExposureTracker(store)
    monday = FixedClock(T0)
    tr.start_reveal("ana", None, "colour", monday)
    heartbeats(tr, monday, 1)
    tr.stop_reveal("ana", monday)
    tuesday = FixedClock(T0 + timedelta(days=1))
    with pytest.raises(ReviewLocked) as exc:
        tr.check("ana", tuesday)
    assert exc.value.reason == "week"
    end_lock(store, "ana", "sup", "short-staffed this week", tuesday)
    assert not tr.check("ana", tuesday)["locked"]
    wednesday = FixedClock(T0 + timedelta(days=2))
    assert not tr.check("ana", wednesday)["locked"]  # Monday no longer counts after the lift
    # a session break ends early too
    set_team_policy(store, {"session_limit_min": 10, "break_min": 15}, "sup")
    tr.touch("bob", monday)
    heartbeats(tr, monday, 10)
    assert tr.status("bob", monday)["lock_reason"] == "session"
    end_lock(store, "bob", "sup", "the case needs bob now", monday)
    assert not tr.check("bob", monday)["locked"]


# ---------------------------------------------------------------------------------------------- the page says


def test_the_personal_page_says_what_applies_not_saved(store):
    set_personal_policy(store, "ana", {"blur_px": 30, "daily_limit_min": 60})
    assert saved_message(store, "ana") == "Your wellbeing settings were saved and apply now."
    set_personal_policy(store, "ana", {"blur_px": 0, "daily_limit_min": 600})
    msg = saved_message(store, "ana")
    assert "saved" not in msg.lower().split(",")[0] or msg.startswith("Saved, but not all of it applies")
    assert "blur px: you asked for 0, 12 applies" in msg and "daily limit min: you asked for 600, 120 applies" in msg


# ---------------------------------------------------------------------------------------------- video sound


def video_with_sound(seconds: float = 1.0) -> bytes:
    """A small MP4: benign generated frames and a 440 Hz sine tone."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = c.add_stream("aac", rate=44100)
        a.layout = "mono"
        base = np.asarray(photo_like(7, 96, 64))
        for i in range(int(seconds * 10)):
            fr = base.copy()
            fr[4:12, i * 4:i * 4 + 8] = 255
            for p in v.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        t = np.arange(int(44100 * seconds)) / 44100
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
            af.sample_rate = 44100
            for p in a.encode(af):
                c.mux(p)
        for s in (v, a):
            for p in s.encode():
                c.mux(p)
    return out.getvalue()


def video_packets(data: bytes) -> list[bytes]:
    import av

    with av.open(io.BytesIO(data)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def test_strip_audio_keeps_the_pictures_and_drops_the_sound():
    data = video_with_sound()
    assert has_audio(data)
    out = strip_audio(data, "video/mp4")
    assert not has_audio(out) and len(out) < len(data)
    assert video_packets(out) == video_packets(data)  # the same pictures, byte for byte
    assert strip_audio(out, "video/mp4") is out  # nothing to take out
    with pytest.raises(AudioStripError) as exc:
        strip_audio(b"not a video at all" * 100, "video/mp4")
    assert exc.value.code == "audio_strip_failed"
    with pytest.raises(AudioStripError):
        strip_audio(data, "video/mp4", max_bytes=100)


def test_the_served_video_has_no_sound_unless_the_policy_allows_it(store):
    data = video_with_sound()
    q = queue.enqueue_media(store, store.settings, data, source="crawl")
    tr, clock = ExposureTracker(store), FixedClock(T0)
    steps = ("colour", "sharp", "full", "video")
    for k in range(1, 5):
        got, mt = view_item(store, store.settings, q["item"], "ana", steps=steps[:k], clock=clock, tracker=tr)
    assert mt.startswith("video/") and not has_audio(got) and video_packets(got) == video_packets(data)
    store.settings.wellbeing_floor = {"video_muted": False}  # this deployment lets teams allow sound
    set_team_policy(store, {"video_muted": False}, "sup")
    got, _ = view_item(store, store.settings, q["item"], "ana", steps=steps, clock=clock, tracker=tr)
    assert got == data and has_audio(got)
    set_personal_policy(store, "ana", {"video_muted": True})  # ana keeps it muted for herself
    got, _ = view_item(store, store.settings, q["item"], "ana", steps=steps, clock=clock, tracker=tr)
    assert not has_audio(got)
