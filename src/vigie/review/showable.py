"""What may be shown to a person: the one choke point every route that sends media passes.

Known material is never shown to a person, at the moment of showing, whatever changed before:
a bank may have learnt an item since it was queued (an import, a partner's sync, a restored
entry, another cluster's decision), and the re-match that takes it out of the queue may not
have run yet, or may have crashed. So before any bytes of an item leave Vigie (preview, a
reveal step, a keyframe strip, a video, an escalation with media, an upload's echo), `check()`
matches the item's hashes against the banks *now*: exact digests, PDQ with the item's query
variants (rotations, mirrors, de-bordered, region) and a video's frames, through the process's
shared matcher (vigie.matching.shared_matcher: one query to pick up new entries, then
microseconds). Known content is refused with `known_material` (HTTP 410), taken out of the
queue at once, its media purged, and the refusal audited.

Who may see what, by the state of the item's cluster:

* open, pending_consensus: every analyst (the consensus needs their eyes);
* disputed: the analysts who voted on it and supervisors (who settle it);
* decided, known, or an item that is itself decided or known: nobody (`not_showable`, 403). A decided
  cluster's media are kept encrypted until the purge only to hash them into the bank.
"""

from __future__ import annotations

from sqlalchemy import select

from vigie import audit
from vigie.errors import Conflict, VigieError
from vigie.store.db import Store
from vigie.store.review_models import ReviewCluster, ReviewDecision, ReviewItem

#: Roles that settle disputes and may see a disputed cluster without having voted.
SUPERVISING = ("supervisor", "admin")
#: Most frames of a video an item keeps to be matched again (a long video's frames, sampled evenly).
MAX_FRAMES = 3600


class KnownMaterial(Conflict):
    """A bank knows this content: it is never shown."""

    code = "known_material"
    http_status = 410


class NotShowable(VigieError):
    """This person may not see this item now (decided, or disputed and not theirs to settle)."""

    code = "not_showable"
    http_status = 403


def query_of(item: ReviewItem):
    """The match query of a queued item: its digests, its PDQ and the PDQ of its variants."""
    from vigie.matching import Query

    q = Query(item.sha256, {k: getattr(item, k) for k in ("md5", "sha1", "sha256") if getattr(item, k)}, [],
              item.pdq_quality)
    if item.pdq:
        d = item.detail or {}
        q.pdq = [("original", item.pdq)] + [(v["kind"], v["pdq"]) for v in d.get("pdq_variants") or []
                                            if v.get("pdq")]
    return q


def known_now(store: Store, settings, items: list[ReviewItem]) -> list[bool]:
    """Whether a bank knows each item at this moment (any live match, videos by their frames too)."""
    from vigie.matching import shared_matcher

    if not items:
        return []
    m = shared_matcher(store, settings)
    out = []
    for it, res in zip(items, m.match([query_of(it) for it in items])):
        hit = bool(res.matches)
        frames = (it.detail or {}).get("video_frames")
        if not hit and frames:
            hit = bool(m.match_video([tuple(x) for x in frames]))
        out.append(hit)
    return out


def check(store: Store, settings, item_id: int, *, user: str, role: str = "analyst") -> ReviewItem:
    """The item, if `user` (with `role`) may be shown its media now; else KnownMaterial or NotShowable.

    Known content found here is taken out of the queue at once (see `vigie.review.queue.mark_known`)."""
    from vigie.errors import NotFound

    with store.sessions() as s:
        item = s.get(ReviewItem, item_id)
        if item is None:
            raise NotFound(f"no review item {item_id}", code="item_not_found")
        cluster = s.get(ReviewCluster, item.cluster_id) if item.cluster_id is not None else None
        voters = set(s.scalars(select(ReviewDecision.user).where(ReviewDecision.cluster_id == item.cluster_id))
                     ) if cluster is not None else set()
    if item.state == "known" or (cluster is not None and cluster.state == "known"):
        _refused(store, item, user, "known")
        raise KnownMaterial("a bank knows this content: it is never shown")
    if item.state == "decided" or cluster is None or cluster.state == "decided":
        raise NotShowable("this item is decided: its media are no longer shown")
    if cluster.state == "disputed" and role not in SUPERVISING and user not in voters:
        raise NotShowable("this cluster is disputed: only the analysts who voted and supervisors see it")
    if known_now(store, settings, [item])[0]:
        from vigie.review.queue import mark_known

        mark_known(store, settings, [item.sha256], by=user, reason="known when shown")
        _refused(store, item, user, "matched")
        raise KnownMaterial("a bank knows this content: it is never shown")
    return item


def _refused(store: Store, item: ReviewItem, user: str, why: str) -> None:
    audit.record(store, user, "review.refused_known", "review_item", item.id,
                 {"sha256": item.sha256, "why": why, "cluster": item.cluster_id})
