"""The crawler's plan for a reported URL (vigie.ingest.crawl_plans): whether its pages are opened in the
browser, and the part of its crawl that a round's time budget left for the next round.

Kept apart from `ReportedUrl` so that a URL without a plan (most of them) costs nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vigie.store.models import Base, BigId, utcnow

TS = DateTime(timezone=True)


class CrawlPlan(Base):
    __tablename__ = "crawl_plans"

    url_id: Mapped[int] = mapped_column(BigId, ForeignKey("reported_urls.id", ondelete="CASCADE"), primary_key=True)
    #: Open its pages in the browser (asked by the report or by staff).
    render: Mapped[bool] = mapped_column(Boolean, default=False)
    #: What is left to crawl (`CrawlResult.carry`), None when nothing is.
    carry: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: Rounds its crawl was carried over so far.
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    #: The strongest outcome of the rounds so far (known > unknown > nothing): a later round that finds
    #: less never lowers it.
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
