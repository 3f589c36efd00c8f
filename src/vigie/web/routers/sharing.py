"""Bank sharing over HTTP: a partner pulls the signed change feed of a published bank, and anyone
may fetch this instance's public key (to check it against the one given out of band).

The bank is a query parameter, not a path segment: `GET /api/v1/sharing/changes?bank=NAME&cursor=N`.
An API client needs a key narrowed to that bank (scope `banks:NAME`); a key for all banks (no
`banks:` scope) cannot pull a feed. See docs/sharing.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from vigie import audit
from vigie.accounts import ScopeMissing, key_banks
from vigie.sharing import feed, keys
from vigie.web.access import ANY_KEY, Access, Principal, Public

router = APIRouter()
NAV: list = []

#: Admins (to look) and API clients holding `banks:<bank>` (checked in the route).
SharingClient = Annotated[Principal, Depends(Access("admin", scope=ANY_KEY))]


@router.get("/api/v1/sharing/key", tags=["sharing"])
def sharing_key(request: Request, me: Public) -> dict:
    """This instance's Ed25519 public key (base64 of 32 bytes), its id and its publisher name."""
    st = request.app.state
    pub = keys.public_key_b64(st.settings)
    return {"public_key": pub, "key_id": keys.key_id(pub), "publisher": feed.publisher_name(st.settings),
            "algorithm": "ed25519"}


@router.get("/api/v1/sharing/changes", tags=["sharing"])
async def sharing_changes(request: Request, me: SharingClient, bank: str = Query(..., min_length=1, max_length=200),
                          cursor: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=feed.MAX_LIMIT)) -> dict:
    """The changes of a published bank after `cursor`, as a signed batch: `{batch, signature, key_id}`."""
    st = request.app.state
    if me.api_key is not None and bank not in (key_banks(me.api_key) or []):
        raise ScopeMissing(f"this API key lacks the scope 'banks:{bank}'")
    doc = await run_in_threadpool(feed.signed_changes, st.store, bank, cursor, limit, settings=st.settings)
    if '"entries":[]' not in doc["batch"]:
        await run_in_threadpool(audit.record, st.store, me.actor, "sharing.pull", "bank", bank,
                                {"cursor": cursor, "limit": limit})
    return doc
