"""`POST /api/v1/match`: hashes in, known matches out (bank, category, distance); for people and API clients."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, UploadFile

from vigie import audit
from vigie.accounts import key_banks
from vigie.banks.service import list_banks
from vigie.errors import ErrorRecord, VigieError
from vigie.matching import Query
from vigie.web.access import MatchClient
from vigie.web.schemas import ErrorBody, HashResult, ImageMatchOut, MatchHit, MatchIn, MatchOut

router = APIRouter()
NAV: list = []


@router.post("/api/v1/match", response_model=MatchOut, tags=["match"])
def api_match(request: Request, body: MatchIn, me: MatchClient) -> MatchOut:
    """Match up to 1,000 hashes against the enabled banks (an API key narrowed by `banks:NAME` scopes: those).

    A bad hash is an error in its own result, not a failed request. The answer names the bank, the
    category and the distance of each match, nothing of the known material itself.
    """
    st = request.app.state
    results: list[HashResult | None] = [None] * len(body.hashes)
    queries, where = [], []
    for i, h in enumerate(body.hashes):
        try:
            queries.append(Query.from_hash(h.value, h.signal))
            where.append(i)
        except VigieError as exc:
            err = ErrorRecord.from_exc(exc)
            results[i] = HashResult(signal=h.signal, value=h.value, error=ErrorBody(code=err.code,
                                                                                      message=err.message))
    banks = key_banks(me.api_key) if me.api_key is not None else None
    if banks is not None:  # a key narrowed to banks that no longer exist matches nothing (never everything)
        existing = {b.name for b in list_banks(st.store)}
        banks = [b for b in banks if b in existing]
    matched = 0
    if queries and banks == []:
        for i in where:
            results[i] = HashResult(signal=body.hashes[i].signal, value=body.hashes[i].value)
    elif queries:
        matcher = st.matcher
        matcher.refresh(save=False, max_age=1.0)
        for i, res in zip(where, matcher.match(queries, banks=banks)):
            h = body.hashes[i]
            hits = [MatchHit(bank=m.bank, category=m.category, distance=m.distance) for m in res.matches]
            matched += bool(hits)
            results[i] = HashResult(signal=h.signal, value=h.value, matches=hits)
    audit.record(st.store, me.actor, "api.match", "match", None,
                 {"hashes": len(body.hashes), "matched": matched, "errors": len(body.hashes) - len(queries),
                  "banks": banks})
    return MatchOut(results=results)


#: Pictures decoded at once by /match/image in one process: each may take up to api_max_image_pixels x 3 bytes.
DECODES_AT_ONCE = 2
_decodes = threading.BoundedSemaphore(DECODES_AT_ONCE)


def _hash_upload(data: bytes, settings):
    """Hash in memory with the API's pixel limit, checked on the header before any pixel is decoded."""
    from vigie.hashing import hash_bytes

    limited = settings.model_copy(update={"max_pixels": min(settings.max_pixels, settings.api_max_image_pixels)})
    with _decodes:
        return hash_bytes(data, limited, path="<upload>", variants=settings.dihedral)


@router.post("/api/v1/match/image", response_model=ImageMatchOut, tags=["match"])
async def api_match_image(request: Request, file: UploadFile, me: MatchClient) -> ImageMatchOut:
    """Match one picture: hashed in memory (MD5, SHA-1, SHA-256, PDQ and its rotations and mirrors) and never
    stored, logged or written to disk; the answer names bank, category and distance of each match, nothing else.
    At most `max_upload_bytes` (413 beyond) and `api_max_image_pixels` (422 `too_large`, read from the header)."""
    from fastapi.concurrency import run_in_threadpool

    from vigie.errors import InvalidInput
    from vigie.matching import Query as Q

    st = request.app.state
    limit = int(st.settings.max_upload_bytes)
    data = await file.read(limit + 1)
    await file.close()
    if len(data) > limit:
        raise InvalidInput(f"a picture of at most {limit // 2**20} MiB", code="too_large")
    rec = await run_in_threadpool(_hash_upload, data, st.settings)
    del data
    if rec.pdq is None and rec.error is not None:
        raise InvalidInput(rec.error.message, code=rec.error.code)
    banks = key_banks(me.api_key) if me.api_key is not None else None
    if banks is not None:
        existing = {b.name for b in list_banks(st.store)}
        banks = [b for b in banks if b in existing]
    hits: list[MatchHit] = []
    if banks != []:
        st.matcher.refresh(save=False, max_age=1.0)
        res = st.matcher.match([Q.from_record(rec)], banks=banks)[0]
        hits = [MatchHit(bank=m.bank, category=m.category, distance=m.distance) for m in res.matches]
    audit.record(st.store, me.actor, "api.match_image", "match", None,
                 {"matched": bool(hits), "media_type": rec.media_type, "banks": banks})
    return ImageMatchOut(media_type=rec.media_type, pdq_quality=rec.pdq_quality, matches=hits)
