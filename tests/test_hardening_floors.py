"""Wellbeing floors that cannot be lowered: the deployment sets the harshest policy allowed; a supervisor
asking for anything harsher is refused (not silently ignored), an analyst can only be gentler; a days-per-week
limit locks review until next Monday. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigie.review.clock import FixedClock
from vigie.review.wellbeing import (
    DEFAULT_FLOOR,
    BelowFloor,
    ExposureTracker,
    ReviewLocked,
    below_floor,
    floor_policy,
    get_team_policy,
    policy_for,
    set_personal_policy,
    set_team_policy,
)

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: One harsher-than-the-floor value per protection a supervisor might try to switch off.
HARSHER = {"daily_limit_min": 24 * 60, "session_limit_min": 24 * 60, "break_min": 0, "blur_px": 0,
           "video_muted": False, "thumb_px": 512, "grayscale": False, "days_per_week": 7}
FLOOR = {"daily_limit_min": 120, "session_limit_min": 60, "break_min": 15, "blur_px": 8, "video_muted": True,
         "thumb_px": 256, "grayscale": True, "days_per_week": 3}


@pytest.mark.parametrize("field", sorted(HARSHER))
def test_a_supervisor_cannot_go_below_the_floor(store, field):
    store.settings.wellbeing_floor = FLOOR
    with pytest.raises(BelowFloor) as exc:
        set_team_policy(store, {field: HARSHER[field]}, "sup")
    assert exc.value.code == "below_floor" and exc.value.http_status == 422 and field in exc.value.message
    assert below_floor(get_team_policy(store), floor_policy(store.settings)) == []
    assert getattr(get_team_policy(store), field) != HARSHER[field]


@pytest.mark.parametrize("field", sorted(HARSHER))
def test_an_analyst_cannot_go_below_the_floor_either(store, field):
    store.settings.wellbeing_floor = FLOOR
    eff = set_personal_policy(store, "ana", {field: HARSHER[field]})
    assert getattr(eff, field) == getattr(get_team_policy(store), field) != HARSHER[field]
    assert below_floor(policy_for(store, "ana"), floor_policy(store.settings)) == []


def test_gentler_than_the_floor_is_allowed_and_a_raised_floor_applies_at_once(store):
    set_team_policy(store, {"daily_limit_min": 200, "session_limit_min": 100}, "sup")
    assert get_team_policy(store).daily_limit_min == 200
    store.settings.wellbeing_floor = {"daily_limit_min": 90}
    assert get_team_policy(store).daily_limit_min == 90  # the stored 200 no longer applies
    set_team_policy(store, {"daily_limit_min": 60}, "sup")  # gentler than the floor: fine
    assert policy_for(store, "ana").daily_limit_min == 60


def test_the_default_floor_holds_without_settings(store):
    assert store.settings.wellbeing_floor is None
    with pytest.raises(BelowFloor):
        set_team_policy(store, {"daily_limit_min": 24 * 60, "break_min": 0, "blur_px": 0}, "sup")
    p = get_team_policy(store)
    assert p.daily_limit_min <= DEFAULT_FLOOR["daily_limit_min"] and p.video_muted and p.blur_px >= 4


def reveal_minutes(tr, user, clock, minutes: int) -> None:
    tr.start_reveal(user, None, "full", clock)
    for _ in range(minutes):
        clock.advance(minutes=1)
        tr.heartbeat(user, clock)
    tr.stop_reveal(user, clock)


def test_days_per_week_locks_until_next_monday(store):
    store.settings.wellbeing_floor = {"days_per_week": 3}
    tr = ExposureTracker(store)
    for day in range(3):  # Monday, Tuesday, Wednesday
        clock = FixedClock(MONDAY + timedelta(days=day))
        tr.check("ana", clock)
        reveal_minutes(tr, "ana", clock, 5)
        assert not tr.status("ana", clock)["locked"]
    thursday = FixedClock(MONDAY + timedelta(days=3))
    with pytest.raises(ReviewLocked) as exc:
        tr.check("ana", thursday)
    assert exc.value.reason == "week" and exc.value.locked_until == datetime(2026, 3, 9, tzinfo=UTC)
    assert tr.check("ana", FixedClock(datetime(2026, 3, 9, 0, 0, 1, tzinfo=UTC)))["locked"] is False
    # another analyst's week is their own
    assert tr.check("bob", thursday)["locked"] is False
