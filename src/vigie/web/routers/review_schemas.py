"""Request and answer bodies of the review API (vigie.web.routers.review): kept apart so the router stays a list
of routes. Field descriptions go into the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ExposureOut(BaseModel):
    """Where the analyst stands: revealed seconds today, this session, time left, warning and lock."""

    exposed_today_s: float
    session_s: float
    remaining_s: float
    warning: bool
    locked: bool
    locked_until: datetime | None = None
    lock_reason: str | None = None
    daily_limit_s: float
    session_limit_s: float


class ClusterSummaryOut(BaseModel):
    id: int
    state: str
    size: int
    source: str
    ai_likely: bool
    priority_override: int | None = None
    created_at: datetime
    age_s: float = Field(description="Seconds since the cluster was queued.")
    decided_at: datetime | None = None
    category: str | None = None
    bank: str | None = None


class DecisionRecordOut(BaseModel):
    user: str
    role: str
    category: str
    note: str | None = None
    bank: str | None = None
    at: datetime
    superseded: bool


class DisputedOut(BaseModel):
    cluster: int
    decisions: list[DecisionRecordOut]


class QueueTotalsOut(BaseModel):
    clusters: int
    items: int
    by_source: dict[str, dict[str, int]] = Field(description="Clusters and items per source, most urgent first.")
    by_priority: dict[str, int] = Field(description="Clusters whose priority was raised, left alone, lowered.")
    oldest_age_s: float | None = None


class QueueOut(BaseModel):
    clusters: list[ClusterSummaryOut] = Field(description="Waiting clusters in priority order; never any media.")
    totals: QueueTotalsOut
    exposure: ExposureOut
    disputed: list[DisputedOut] | None = Field(None, description="Supervisors only.")


class ItemOut(BaseModel):
    id: int
    description: str
    media_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    hashes: dict[str, Any]
    source: str
    locations: list[str] = Field(description="Distinct locations (at most the first 50).")
    location_count: int
    notes: list[str] = Field([], description="Notes that came with the item (an uploader's, a report's).")
    near: dict | None = Field(None, description="When the item is an altered copy of another item here.")
    flags: list[str]
    ai_likely: bool
    provenance: dict | None = None
    media: list[str] = Field(description="Which media are kept (original, preview, strip); never the media.")
    media_url: str | None = Field(None, description="The blurred, greyscale, small preview; steps reveal more.")
    is_video: bool = False
    state: str


class CategoryOut(BaseModel):
    name: str
    label: str
    classifies: bool


class ClusterOut(ClusterSummaryOut):
    items: list[ItemOut]
    decisions_so_far: int | None = Field(None, description="Analysts: how many people decided (not what).")
    decisions: list[DecisionRecordOut] | None = Field(None, description="Supervisors only.")
    categories: list[CategoryOut]
    banks: list[str]
    default_bank: str
    reveal_steps: list[str]
    needed: int = Field(description="Distinct analysts who must agree.")
    position: int | None = Field(None, description="Place of this cluster in one's queue (1 = next); None: not "
                                                   "waiting for this person.")
    queue_size: int = Field(0, description="Clusters waiting for this person (supervisors: all waiting).")


class NextOut(BaseModel):
    cluster: ClusterOut | None = None
    message: str | None = None


class DecisionIn(BaseModel):
    category: str = Field(max_length=100)
    note: str | None = Field(None, max_length=4000)
    bank: str | None = Field(None, max_length=200)
    item_categories: dict[int, str] | None = Field(
        None, description="Item id -> category, for the items whose label differs from `category` (the default).")
    item_annotations: dict[int, list[str]] | None = Field(
        None, description="Item id -> annotations (self_production, ai_generated, infant, viral).")


class SplitOut(BaseModel):
    item: int
    from_: int = Field(alias="from", description="The cluster the item left (its votes stay there).")
    cluster: int = Field(description="The new open cluster of the item alone.")

    model_config = {"populate_by_name": True}


class BulkDecisionIn(BaseModel):
    clusters: list[int] = Field(min_length=1, max_length=500)
    category: str = Field(max_length=100)
    note: str | None = Field(None, max_length=4000)
    bank: str | None = Field(None, max_length=200)


class BulkResultOut(BaseModel):
    cluster: int
    ok: bool
    state: str | None = None
    category: str | None = None
    error: str | None = None
    message: str | None = None


class BulkDecisionOut(BaseModel):
    results: list[BulkResultOut]
    decided: int


class DecisionOut(BaseModel):
    cluster: int
    state: str
    category: str | None = None
    bank: str | None = None
    waiting_for: int = Field(0, description="Further analysts needed before the decision takes effect.")
    message: str
    banked: dict | None = None


class PriorityIn(BaseModel):
    priority: int | None = Field(None, ge=-1_000_000, le=1_000_000)


class UploadOut(BaseModel):
    sha256: str
    item: int
    cluster: int | None = None
    items_added: int
    items_existing: int


class ExposureRowOut(BaseModel):
    user: str
    exposed_s: float
    reveals: int
    by_kind: dict[str, float]
    by_day: dict[str, float]
    sessions: int
    locks: int


class TeamExposureOut(BaseModel):
    period: str
    from_: str = Field(alias="from")
    to: str
    users: list[ExposureRowOut]

    model_config = {"populate_by_name": True}


class TeamExposurePageOut(BaseModel):
    day: TeamExposureOut
    week: TeamExposureOut


class PolicyOut(BaseModel):
    team: dict
    personal: dict
    effective: dict
    steps: list[str]


class RevealStopIn(BaseModel):
    item_id: int | None = None


class RevealStopOut(BaseModel):
    seconds: float
    exposure: ExposureOut
