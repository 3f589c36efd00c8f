"""The time that wellbeing and retention logic read: injectable, so tests move it by hand.

Times are stored in UTC (SQLite keeps no time zone); a clock that answers in a local time
zone makes "today" (the daily exposure limit, the team page) follow that zone's midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: `advance(minutes=5)`, `set(dt)`."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, when: datetime) -> datetime:
        self._now = when if when.tzinfo else when.replace(tzinfo=UTC)
        return self._now


SYSTEM = SystemClock()


def aware(dt: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite gives naive ones back, stored in UTC)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def local_now(clock: Clock | None) -> datetime:
    """The clock's time in its own zone (naive answers are taken as UTC)."""
    t = (clock or SYSTEM).now()
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def now_utc(clock: Clock | None) -> datetime:
    return local_now(clock).astimezone(UTC)


def day_start(clock: Clock | None) -> datetime:
    """Midnight of the clock's current day (in the clock's zone), in UTC."""
    t = local_now(clock)
    return t.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
