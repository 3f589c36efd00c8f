"""The data of each page, built once and used twice: rendered by a template, and returned as its JSON twin."""

from __future__ import annotations

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select

from vigie import audit
from vigie.accounts import aware
from vigie.banks import service as banks
from vigie.store.account_models import ApiKey, User
from vigie.store.audit_models import AuditRecord
from vigie.store.db import Store
from vigie.store.models import Entry
from vigie.web.access import Principal
from vigie.web.schemas import (
    ApiKeyOut,
    ApiKeysOut,
    AuditOut,
    AuditRecordOut,
    BankOut,
    BanksOut,
    DashboardOut,
    UserOut,
    UsersOut,
    VerificationOut,
)


def user_out(u: User) -> UserOut:
    return UserOut(username=u.username, role=u.role, active=u.active, locked_until=aware(u.locked_until),
                   must_change_password=u.must_change_password, created_at=aware(u.created_at))


def key_out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(id=k.id, name=k.name, prefix=k.prefix, scopes=list(k.scopes or []), created_by=k.created_by,
                     created_at=aware(k.created_at), revoked_at=aware(k.revoked_at),
                     last_used_at=aware(k.last_used_at), rate_limit_per_minute=k.rate_limit_per_minute)


def dashboard(store: Store, me: Principal, *, settings=None, clock=None) -> DashboardOut:
    """Banks and counts, and where the work stands (`clock`: the review Clock of the app, `.now()`)."""
    from vigie.review import summary
    from vigie.web.schemas import WorkOut

    with store.sessions() as s:
        nbanks = len(banks.list_banks(store))
        entries = s.scalar(select(func.count()).select_from(Entry).where(Entry.removed_at.is_(None))) or 0
        users = s.scalar(select(func.count()).select_from(User)) if me.at_least("admin") else None
    work = None
    if clock is not None and me.at_least("analyst"):
        sup = me.at_least("supervisor")
        w = summary.work_counts(store, now=clock.now(), user=None if sup else me.actor, settings=settings,
                                clock=clock, supervisor=sup)
        team = w["team_today"] or {}
        work = WorkOut(waiting_clusters=w["waiting"]["clusters"], waiting_items=w["waiting"]["items"],
                       oldest_age_s=w["waiting"]["oldest_age_s"], disputed=w["disputed"],
                       decided_week=w["decided_week"], reports_received=w["reports"]["received"],
                       reports_crawling=w["reports"]["crawling"], notices_due=w["notices_due"],
                       removed_week=w["removed_week"], scans_running=w["scans_running"],
                       team_exposed_today_s=team.get("exposed_s"), team_analysts_today=team.get("analysts"),
                       team_most_today_s=team.get("most_s"))
    return DashboardOut(banks=nbanks, entries=entries, users=users,
                        audit_records=audit.count(store) if me.at_least("supervisor") else None, work=work)


def bank_list(store: Store, only: list[str] | None = None) -> BanksOut:
    """Names and counts, never media or hashes; `only` narrows to the banks an API key may see."""
    out = [BankOut(name=b.name, kind=b.kind, enabled=b.enabled, description=b.description, counts=b.counts)
           for b in banks.list_banks(store) if only is None or b.name in only]
    return BanksOut(banks=out)


def user_list(store: Store) -> UsersOut:
    from vigie import accounts

    return UsersOut(users=[user_out(u) for u in accounts.list_users(store)])


def key_list(store: Store) -> ApiKeysOut:
    from vigie import accounts

    return ApiKeysOut(api_keys=[key_out(k) for k in accounts.list_api_keys(store)])


def audit_page(store: Store, *, limit: int = 100, before: int | None = None, verify: bool = False) -> AuditOut:
    """The latest records, newest first (`before`: older than this seq), and the chain check on request."""
    with store.sessions() as s:
        q = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
        if before is not None:
            q = q.where(AuditRecord.seq < before)
        recs = [AuditRecordOut(seq=r.seq, at=aware(r.at), actor=r.actor, action=r.action, object_type=r.object_type,
                               object_id=r.object_id, detail=r.detail, hash=r.hash) for r in s.scalars(q)]
    v = VerificationOut(**audit.verify(store).as_dict()) if verify else None
    return AuditOut(total=audit.count(store), records=recs, verification=v)


# ---- rendering ------------------------------------------------------------------------------------


def render(request: Request, name: str, me: Principal | None, *, status_code: int = 200, **context):
    templates: Jinja2Templates = request.app.state.templates
    nav = [item for item in request.app.state.nav if me is not None and me.at_least(item[2])]
    ctx = {"me": me, "csrf_token": me.csrf_token if me else None, "nav": nav, "path": request.url.path, **context}
    resp = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    return resp
