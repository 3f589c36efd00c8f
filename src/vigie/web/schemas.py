"""The shapes the API answers with (and the pages render): pydantic models, documented in the OpenAPI schema.

A page and its JSON twin are built from the same model (see `views`), so what a person
sees and what a client reads cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["analyst", "supervisor", "admin"]
MAX_HASHES = 1000


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code (docs/errors.md, docs/web.md).")
    message: str


class ErrorOut(BaseModel):
    """Every API error: `{"error": {"code": ..., "message": ...}}`."""

    error: ErrorBody


class MeOut(BaseModel):
    kind: Literal["user", "api_key"]
    name: str
    role: Role | None = None
    scopes: list[str] = []
    must_change_password: bool = False
    csrf_token: str | None = Field(None, description="Send as X-CSRF-Token with unsafe requests (cookie sessions).")


class LoginIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class PasswordIn(BaseModel):
    current: str = Field(max_length=1000)
    new: str = Field(max_length=1000)


class ScanRunningOut(BaseModel):
    id: int
    case_id: str | None = None
    operator: str | None = None
    started_at: datetime | None = None
    files: int = Field(description="Locations recorded so far.")


class WorkOut(BaseModel):
    """Where the work stands (vigie.review.summary.work_counts): counts only, never a URL, hash or media."""

    waiting_clusters: int = Field(description="Review clusters waiting for this person (supervisors: all).")
    waiting_items: int
    oldest_age_s: float | None = Field(None, description="Seconds since the oldest waiting cluster was queued.")
    disputed: int = Field(description="Disputed clusters, waiting for a supervisor.")
    decided_week: int = Field(description="Clusters decided in the last 7 days.")
    reports_received: int = Field(description="Reports not crawled yet.")
    reports_crawling: int = Field(description="Reports whose URLs are being crawled.")
    notices_due: int | None = Field(None, description="Sightings of known material due a takedown notice.")
    removed_week: int = Field(description="Sightings of known material found removed in the last 7 days.")
    scans_running: list[ScanRunningOut]
    team_exposed_today_s: float | None = Field(None, description="Supervisors: the team's revealed seconds today.")
    team_analysts_today: int | None = Field(None, description="Supervisors: analysts who revealed media today.")
    team_most_today_s: float | None = Field(None, description="Supervisors: the most one analyst revealed today.")


class DashboardOut(BaseModel):
    banks: int
    entries: int
    users: int | None = Field(None, description="Admins only.")
    audit_records: int | None = Field(None, description="Supervisors and admins only.")
    work: WorkOut | None = Field(None, description="Where the review, intake and takedown work stands.")


class BankOut(BaseModel):
    name: str
    kind: str
    enabled: bool
    description: str
    counts: dict[str, int] = Field(description="Live entries per signal type, and `removed` (tombstones).")


class BanksOut(BaseModel):
    banks: list[BankOut]


class UserOut(BaseModel):
    username: str
    role: Role
    active: bool
    locked_until: datetime | None = None
    must_change_password: bool
    created_at: datetime | None = None


class UsersOut(BaseModel):
    users: list[UserOut]


class UserIn(BaseModel):
    username: str = Field(max_length=64)
    role: Role = "analyst"
    password: str | None = Field(None, max_length=1000, description="Omit for a generated one-time password.")


class UserCreatedOut(BaseModel):
    user: UserOut
    one_time_password: str | None = Field(None, description="Shown this once; never stored in clear.")


class RoleIn(BaseModel):
    role: Role


class CountOut(BaseModel):
    sessions_ended: int


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rate_limit_per_minute: int | None = None


class ApiKeysOut(BaseModel):
    api_keys: list[ApiKeyOut]


class ApiKeyIn(BaseModel):
    name: str = Field(max_length=200)
    scopes: list[str] = Field(default=["match"], max_length=50)
    rate_limit_per_minute: int | None = Field(None, ge=1)


class ApiKeyCreatedOut(BaseModel):
    api_key: ApiKeyOut
    secret: str = Field(description="Shown this once; only its SHA-256 is stored.")


class AuditRecordOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str | None = None
    object_id: str | None = None
    detail: dict | None = None
    hash: str


class VerificationOut(BaseModel):
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None
    last_hash: str | None = None


class AuditOut(BaseModel):
    total: int
    records: list[AuditRecordOut]
    verification: VerificationOut | None = None


class HashIn(BaseModel):
    signal: Literal["pdq", "md5", "sha1", "sha256"] = "pdq"
    value: str = Field(min_length=1, max_length=200)


class MatchIn(BaseModel):
    hashes: list[HashIn] = Field(min_length=1, max_length=MAX_HASHES)


class MatchHit(BaseModel):
    bank: str
    category: str | None = None
    distance: int


class HashResult(BaseModel):
    signal: str
    value: str
    matches: list[MatchHit] = []
    error: ErrorBody | None = Field(None, description="This hash could not be matched (e.g. invalid_hash).")


class MatchOut(BaseModel):
    results: list[HashResult]


class ImageMatchOut(BaseModel):
    media_type: str | None = None
    pdq_quality: int | None = None
    matches: list[MatchHit] = []
