"""Tables of bank sharing (vigie.sharing): banks this instance publishes, their change feed, and the
subscriptions this instance pulls from partners.

`shared_changes` holds one row per shared entry: the sequence number of its last change (the
feed's cursor), the op (add or remove) and a fingerprint of what was last announced, so that
the feed notices additions, category changes and removals (tombstones) whatever wrote them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigie.store.models import Base, BigId, utcnow

BigInt = BigInteger().with_variant(Integer(), "sqlite")


class PublishedBank(Base):
    """A bank offered to partners; `last_seq` is the feed's newest change number."""

    __tablename__ = "published_banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"), unique=True)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_seq: Mapped[int] = mapped_column(BigInt, default=0)
    #: When the last feed refresh started: the next one rescans entries changed since (minus a margin).
    scanned_through: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SharedChange(Base):
    """The last announced state of one entry of a published bank."""

    __tablename__ = "shared_changes"
    __table_args__ = (Index("ix_shared_changes_seq", "published_bank_id", "seq"),)

    published_bank_id: Mapped[int] = mapped_column(ForeignKey("published_banks.id", ondelete="CASCADE"),
                                                   primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInt)
    op: Mapped[str] = mapped_column(String(8))
    signal: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))


class Subscription(Base):
    """A partner's published bank this instance pulls into one of its own banks.

    `api_key` is this instance's credential at the partner, stored in clear because `vigie sync`
    must send it: whoever reads the database can pull the partner's bank (see docs/sharing.md)."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    remote_bank: Mapped[str] = mapped_column(String(200))
    local_bank: Mapped[str] = mapped_column(String(200))
    api_key: Mapped[str] = mapped_column(Text)
    publisher_key: Mapped[str] = mapped_column(String(100))
    publisher: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cursor: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
