"""Tables of the review queue (vigie.review): items, clusters, decisions, encrypted media, exposure.

Media bytes are never in the database: `media_blobs` holds where the encrypted file
lies, its nonce and the id of the key (never the key). After the purge only hashes,
decisions and exposure records remain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigie.store.models import Base, BigId, utcnow


class ReviewCluster(Base):
    """Near-duplicate items reviewed together: one decision per cluster."""

    __tablename__ = "review_clusters"
    __table_args__ = (Index("ix_review_clusters_state", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: open | pending_consensus | disputed | decided | known (every item found in a bank after queueing)
    state: Mapped[str] = mapped_column(String(20), default="open")
    #: Most urgent source among the items (0 police ... 4 scan; see vigie.review.queue.SOURCE_RANK).
    source_rank: Mapped[int] = mapped_column(Integer, default=4)
    size: Mapped[int] = mapped_column(Integer, default=0)
    ai_likely: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Supervisor's override: positive comes sooner than every cluster without one, negative later.
    priority_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    priority_set_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[list | None] = mapped_column(JSON, nullable=True)
    category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    verdict: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    bank: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: When the hashes went into the bank (None: decided but not yet banked; `bank_pending` retries).
    banked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: When the entry variants (crops, de-bordered) made from the kept media were added (None: still to do;
    #: `vigie.repair` does it after a crash).
    variants_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReviewItem(Base):
    """One distinct content (by SHA-256) waiting for or past review, with every place it was found."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_cluster", "cluster_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sha1: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pdq: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    size: Mapped[int | None] = mapped_column(BigId, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: scan | report | crawl | upload | police: the most urgent source it came from.
    source: Mapped[str] = mapped_column(String(16))
    source_rank: Mapped[int] = mapped_column(Integer, default=4)
    #: Where it came from: [{"kind": "scan", "scan_id": 3, "locations": [...]}, {"kind": "upload", "by": ...}]
    source_refs: Mapped[list] = mapped_column(JSON, default=list)
    ai_likely: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list] = mapped_column(JSON, default=list)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("review_clusters.id", ondelete="SET NULL"),
                                                   nullable=True)
    #: queued | decided | known
    state: Mapped[str] = mapped_column(String(16), default="queued")
    #: This item's own decided outcome once its cluster is confirmed: {"category", "verdict", "annotations"}
    #: (vigie.review.decisions: per-item labels; None where the cluster's category applies unchanged).
    decision: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ReviewDecision(Base):
    """One analyst's (or a supervisor's) decision on a cluster. A later decision of the same person
    supersedes the earlier one, so no one is ever counted twice."""

    __tablename__ = "review_decisions"
    __table_args__ = (Index("ix_review_decisions_cluster", "cluster_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("review_clusters.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="analyst")
    category: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    bank: Mapped[str | None] = mapped_column(String(200), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Labels per item, where they differ from the cluster's category, and annotations per item:
    #: {"categories": {"<item id>": category}, "annotations": {"<item id>": [facet, ...]}}; None: none given.
    per_item: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class MediaBlob(Base):
    """An encrypted copy of an item's media on disk (AES-GCM); the key itself is never stored here."""

    __tablename__ = "media_blobs"
    __table_args__ = (UniqueConstraint("sha256", "kind", name="uq_media_blob_sha_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    #: original | preview (downscaled picture) | strip (keyframes of a video)
    kind: Mapped[str] = mapped_column(String(16))
    #: Relative to data_dir: media/<sha[:2]>/<sha>.bin (original), <sha>.<kind>.bin (others).
    path: Mapped[str] = mapped_column(String(300))
    nonce: Mapped[str] = mapped_column(String(24))
    key_id: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigId, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExposureEvent(Base):
    """Seconds one analyst had one item revealed (colour, sharp, full size, or a video playing)."""

    __tablename__ = "exposure_events"
    __table_args__ = (Index("ix_exposure_user_started", "user", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(200))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id", ondelete="SET NULL"), nullable=True)
    cluster_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: reveal_colour | reveal_sharp | reveal_full | video_play
    kind: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class ReviewSession(Base):
    """A continuous stretch of review work; it locks for a break when the session limit is reached."""

    __tablename__ = "review_sessions"
    __table_args__ = (Index("ix_review_sessions_user", "user", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lock_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)


class ReviewPolicy(Base):
    """Wellbeing policy: the team default (key "team", set by a supervisor) and personal ones ("user:<id>")."""

    __tablename__ = "review_policies"

    key: Mapped[str] = mapped_column(String(220), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
