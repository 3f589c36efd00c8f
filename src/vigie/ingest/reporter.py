"""What a reporter is told about their report: received, being checked, closed; nothing else, and late.

The public form and status page must not be an oracle. A reporter (or anyone holding a
reference) never learns whether a URL was reported before, what the crawler found there, how
names resolved, whether a bank knew a picture, or whether the report was founded: all of that
would tell an offender what the hotline knows. So the status has three steps, and each moves
only after a delay counted from the report's receipt (`report_public_delay_hours`, default 24):

* ``received`` for the first delay, whatever happened meanwhile;
* ``being_checked`` after it, until the report is closed internally and twice the delay has
  passed;
* ``closed`` then, founded or not (the same words for both).

A report founded in seconds and one closed empty after a day's crawl therefore look the same,
at the same times. The internal statuses (`vigie.ingest.reports.STATUSES`) stay for staff.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigie.accounts import aware
from vigie.ingest import reports
from vigie.store.db import Store

STATUSES = ("received", "being_checked", "closed")
MEANING = {
    "received": "Your report was received and waits to be checked.",
    "being_checked": "Your report is being checked by the hotline.",
    "closed": "The hotline has finished handling your report. Thank you for making it.",
}
CLOSED = ("founded", "unfounded")


def public_step(internal: str, received_at: datetime, now: datetime, delay: timedelta) -> str:
    """The step shown for an internal status, from the report's age alone (never from when it changed)."""
    age = now - received_at
    if age < delay:
        return "received"
    if internal in CLOSED and age >= 2 * delay:
        return "closed"
    return "being_checked"


def reporter_status(store: Store, reference: str, *, now: datetime | None = None,
                    delay_hours: float | None = None) -> dict:
    """The reporter's view of one report: reference, step, its meaning, how many URLs, when received.
    Raises `report_not_found` (404) for an unknown reference."""
    now = now or datetime.now(UTC)
    hours = float(delay_hours if delay_hours is not None else getattr(store.settings, "report_public_delay_hours", 24))
    d = reports.public_status(store, reference)
    received = aware(d["received_at"]) or now
    step = public_step(d["status"], received, aware(now), timedelta(hours=hours))
    return {"reference": d["reference"], "status": step, "meaning": MEANING[step], "urls": d["urls"],
            "received_at": received}
