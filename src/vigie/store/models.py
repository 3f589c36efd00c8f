"""SQLAlchemy models: banks and their entries, match counts for flood detection.

Hashes are stored as lower-case hex text: portable between SQLite and PostgreSQL,
readable in SQL, and the index keeps its own binary copy for speed. A removed entry
stays as a tombstone (`removed_at`), so a false positive withdrawn today is not
brought back by tomorrow's re-import of the same list.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Bank(Base):
    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(500), default="")
    default_verdict: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: "match" banks produce matches; "suppression" banks cancel other banks' matches.
    kind: Mapped[str] = mapped_column(String(20), default="match")
    #: PDQ distance for this bank; None: the query's threshold.
    pdq_threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Whether analysts' review decisions may go into this bank (imported, partner and published banks: no,
    #: unless an admin opens one; see vigie.banks.service.set_review_target).
    review_target: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    #: Raised by the database's triggers whenever an entry of this bank is inserted, updated or deleted
    #: (migration 0019; on PostgreSQL for known-good banks only). Never written by Vigie's code; read by
    #: `vigie.banks.known_good.fingerprint`.
    entries_revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    entries: Mapped[list[Entry]] = relationship(back_populates="bank", cascade="all, delete-orphan",
                                                passive_deletes=True)


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("bank_id", "signal", "value", name="uq_entry_bank_signal_value"),
        Index("ix_entries_signal_value", "signal", "value"),
        Index("ix_entries_media_key", "bank_id", "media_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    signal: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    #: The full value where `value` holds only its key (vPDQ frame lists; see SignalType.key).
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    verdict: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    extra: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    added_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    removed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    quarantined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    quarantine_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    bank: Mapped[Bank] = relationship(back_populates="entries")

    @property
    def live(self) -> bool:
        return self.removed_at is None and not self.disabled and self.quarantined_at is None


class EntryVariant(Base):
    """Extra PDQ hashes of an entry whose media Vigie holds (de-bordered, central crops), so that
    altered copies of a known picture match it. Entries that arrive as hashes only have none."""

    __tablename__ = "entry_variants"

    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class BankChange(Base):
    """A change to what the banks know (import, add, sync, restore, release, threshold, decision), written in
    the same transaction as the change. `vigie.rematch` re-matches what waits (queue, crawl sightings, scan
    rows) for every change not yet done, so a crash between the change and the re-match loses nothing."""

    __tablename__ = "bank_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    bank: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    #: When past scans' rows were re-matched for it (a separate, slower pass: the queue never waits for it).
    scans_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MatchCount(Base):
    """Matches per entry per day: the history a flood is measured against."""

    __tablename__ = "match_counts"

    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Scan(Base):
    """One triage run over evidence; the key makes the same command resume the same scan."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    sources: Mapped[list] = mapped_column(JSON, default=list)
    case_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hashing_seconds: Mapped[float] = mapped_column(default=0.0)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)


class ScanFile(Base):
    """One location found by a scan, with its hashes and outcome; the state a resumed scan skips."""

    __tablename__ = "scan_files"
    __table_args__ = (UniqueConstraint("scan_id", "location", name="uq_scan_location"),
                      Index("ix_scan_files_sha256", "scan_id", "sha256"),
                      Index("ix_scan_files_seq", "scan_id", "seq"),  # read in scan order, in chunks
                      Index("ix_scan_files_md5", "scan_id", "md5", "seq"))  # the report's VICS export, by MD5

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    location: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sha1: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdq: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    klass: Mapped[str] = mapped_column(String(16))
    matches: Mapped[list | None] = mapped_column(JSON, nullable=True)
    flags: Mapped[list] = mapped_column(JSON, default=list)
    error_code: Mapped[str | None] = mapped_column(String(50), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
