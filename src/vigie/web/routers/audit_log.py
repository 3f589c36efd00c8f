"""The audit trail for supervisors and admins: latest records, chain verification, export as JSON lines."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from vigie import audit
from vigie.web import views
from vigie.web.access import Supervisor
from vigie.web.schemas import AuditOut, VerificationOut

router = APIRouter()
NAV = [("Audit", "/audit", "supervisor")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _export(request: Request, me) -> Response:
    store = request.app.state.store
    buf = io.StringIO()
    n = audit.export(store, buf)
    audit.record(store, me.actor, "audit.export", "audit_log", None, {"records": n})
    stamp = request.app.state.clock().strftime("%Y%m%dT%H%M%SZ")
    return Response(buf.getvalue(), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="vigie-audit-{stamp}.jsonl"', "Cache-Control": "no-store"})


@router.get("/audit", include_in_schema=False)
def audit_page(request: Request, me: Supervisor, limit: Limit = 100, before: int | None = None, verify: int = 0):
    data = views.audit_page(request.app.state.store, limit=limit, before=before, verify=bool(verify))
    return views.render(request, "audit.html", me, data=data, limit=limit)


@router.get("/audit/export", include_in_schema=False)
def audit_export_page(request: Request, me: Supervisor):
    return _export(request, me)


@router.get("/api/v1/audit", response_model=AuditOut, tags=["audit"])
def api_audit(request: Request, me: Supervisor, limit: Limit = 100, before: int | None = None) -> AuditOut:
    """The latest records, newest first; page with `before` (the smallest seq seen)."""
    return views.audit_page(request.app.state.store, limit=limit, before=before)


@router.get("/api/v1/audit/verify", response_model=VerificationOut, tags=["audit"])
def api_audit_verify(request: Request, me: Supervisor) -> VerificationOut:
    """Recompute the hash chain: `ok`, or the first record that was changed, removed or inserted."""
    return VerificationOut(**audit.verify(request.app.state.store).as_dict())


@router.get("/api/v1/audit/export", tags=["audit"],
            responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}})
def api_audit_export(request: Request, me: Supervisor) -> Response:
    """Every record with its hashes, one JSON object a line (what an auditor or a court receives)."""
    return _export(request, me)
