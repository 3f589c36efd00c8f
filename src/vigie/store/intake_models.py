"""Tables of hotline intake (vigie.ingest.reports, vigie.ingest.crawl) and takedown (vigie.actions.takedown).

The flow they hold: a public `Report` names one or more URLs; each distinct URL is one
`ReportedUrl` (the case: a URL reported again joins it, through `ReportUrl`). The crawler
fetches a reported URL and records every picture or video it finds as a `Sighting` (one per
media URL, with every page it was seen on in `SightingPage`). A known sighting goes to a
`Notice` to the hosting `Provider` and is re-checked until the media is gone (`removed_at`).

Nothing here holds media: known material is never kept; unknown media go to the review queue
(encrypted there). The reporter's IP address is never stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigie.store.models import Base, BigId, utcnow

TS = DateTime(timezone=True)


class Report(Base):
    """One report from the public (or typed in by staff). `reference` is what the reporter holds."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    received_at: Mapped[datetime] = mapped_column(TS, default=utcnow, index=True)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    seen: Mapped[list] = mapped_column(JSON, default=list)
    contact: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: received -> crawling -> founded | in_review | unfounded
    status: Mapped[str] = mapped_column(String(16), default="received", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class ReportedUrl(Base):
    """A distinct reported URL (the case) and the state of its crawl."""

    __tablename__ = "reported_urls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    first_reported_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_reported_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    #: pending -> running -> done | failed
    crawl_state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    crawl_attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    crawled_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    #: known | unknown | nothing (set when the crawl is done)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    media_found: Mapped[int] = mapped_column(Integer, default=0)
    log: Mapped[list | None] = mapped_column(JSON, nullable=True)


class ReportUrl(Base):
    __tablename__ = "report_urls"

    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("reported_urls.id", ondelete="CASCADE"), primary_key=True,
                                        index=True)


class Provider(Base):
    """A hosting provider: matched by domain (suffix) or by IP network; where notices go."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    domains: Mapped[list] = mapped_column(JSON, default=list)
    networks: Mapped[list] = mapped_column(JSON, default=list)
    asns: Mapped[list] = mapped_column(JSON, default=list)
    contact_email: Mapped[str] = mapped_column(String(320))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    partner_hotline: Mapped[str | None] = mapped_column(String(200), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class Sighting(Base):
    """One media URL where the crawler found a picture or video, what it is, and whether it is still served."""

    __tablename__ = "sightings"
    __table_args__ = (Index("ix_sightings_due", "outcome", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    media_url: Mapped[str] = mapped_column(Text)
    media_url_key: Mapped[str] = mapped_column(String(64), unique=True)
    url_id: Mapped[int | None] = mapped_column(ForeignKey("reported_urls.id", ondelete="SET NULL"), nullable=True,
                                               index=True)
    page_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    found_at: Mapped[datetime] = mapped_column(TS, default=utcnow, index=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pdq: Mapped[str | None] = mapped_column(String(64), nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    size: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: known | unknown | error
    outcome: Mapped[str] = mapped_column(String(16))
    bank: Mapped[str | None] = mapped_column(String(200), nullable=True)
    entry_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    labels: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    distance: Mapped[int | None] = mapped_column(Integer, nullable=True)
    match_detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    review_item_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: online | removed | changed (re-checks of known material)
    state: Mapped[str] = mapped_column(String(16), default="online")
    #: The verdict of the strongest match (vigie.policy) and what it triggers: notice | none.
    verdict: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"), nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_check_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    first_notice_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_notice_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    notices: Mapped[int] = mapped_column(Integer, default=0)


class SightingPage(Base):
    """Every reported URL and page a media URL was seen on (the same picture is often on many pages)."""

    __tablename__ = "sighting_pages"

    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("reported_urls.id", ondelete="CASCADE"), primary_key=True,
                                        index=True)
    page_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    seen_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class SightingEvent(Base):
    """The append-only history of a sighting: every crawl, re-check and re-match that saw it, with what it
    found. The sighting row holds the current state; this holds how it got there."""

    __tablename__ = "sighting_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    #: crawl | recheck | rematch
    kind: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Notice(Base):
    """One takedown notice sent (or tried) to a provider, covering one or more sightings."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"), nullable=True,
                                                    index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16), default="first")
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    #: sending (recorded before the SMTP exchange) | sent | failed
    status: Mapped[str] = mapped_column(String(16), default="sent")
    #: Tries of this notice: a failed one is tried again in the same row (same reference), never a new one.
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_attempt_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_json: Mapped[dict] = mapped_column(JSON)
    message_id: Mapped[str | None] = mapped_column(String(320), nullable=True)


class NoticeItem(Base):
    __tablename__ = "notice_items"

    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)
