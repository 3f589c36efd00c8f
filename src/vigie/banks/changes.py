"""Changes to what the banks know, noted in the transaction that makes them.

Every function that can make a bank know more (an import, an added entry or picture, a partner's
sync, a restored or re-enabled entry, a released quarantine, a bank switched on, a wider threshold,
a review decision) calls `note()` with its session. The note commits or rolls back with the change,
so a change can never be committed without its note: `vigie.rematch` then re-matches everything
that waits (the review queue, unknown crawl sightings, past scans' unknown rows) for every noted
change not yet done, at once in the same process and again in the worker and at start after a crash.
"""

from __future__ import annotations

from sqlalchemy import func, select

from vigie.store.models import BankChange, utcnow


def note(session, reason: str, bank: str | None = None) -> None:
    """Note a change in the caller's transaction (see the module docstring)."""
    session.add(BankChange(reason=reason[:64], bank=bank, at=utcnow()))


def pending(store) -> int:
    """How many noted changes still wait for their re-match."""
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(BankChange).where(BankChange.done_at.is_(None))) or 0


def latest(store) -> int:
    """The id of the latest noted change (0: none)."""
    with store.sessions() as s:
        return s.scalar(select(func.max(BankChange.id))) or 0
