"""The review queue: unknown media from scans, reports, crawls and analysts' uploads, in near-duplicate clusters.

Known material never enters the queue: a scan's `exact` and `near` rows are never taken,
and every candidate is matched against the banks again when it is queued (a bank may
have learnt it since the scan). An upload that a bank knows is refused.

One item per distinct content (SHA-256), with every location it was found at; the same
content found again later only adds its location. Items are clustered by PDQ (single
linkage within `review_cluster_threshold`, default the PDQ threshold 31; pictures whose
PDQ quality is under 50 and videos stay on their own): a new item joins an *open*
cluster (one that no one has decided on yet) when it is near one of its items, so every
decision covers exactly the items its author saw.

Priority (`priority_key`, most urgent first):

1. a supervisor's override (`reprioritise`): positive comes before everything else, negative after;
2. the source: police request > public report > analyst upload > crawl > scan. Material
   somebody asked about, and material publicly reachable now, come before bulk triage;
   an analyst's upload usually follows up a report;
3. age: older first (by day, so that size still counts within a day);
4. cluster size: larger first (one decision settles more);
5. likely AI-generated last (a real child is the more urgent case);
6. then first come, first served.

Media for review: `enqueue_scan` reads each unknown item's bytes again by its location with
`media_reader(location) -> bytes | None` (default: `vigie.ingest.reopen.read_location`, which
opens plain files and re-opens archives, nested archives and disk images to the member, so an
unknown picture found only inside a seized image is reviewable too). The bytes must have the
item's SHA-256, else they are ignored. Vigie keeps them encrypted (`vigie.review.media`): the original (for the
"full size" step and the bank's crop variants) and a downscaled preview, or a keyframe
strip for a video. An item without media can still be decided on its hashes and metadata.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from sqlalchemy import and_, func, select

from vigie import audit
from vigie.errors import Conflict, InvalidInput, NotFound, UsageError
from vigie.review.clock import Clock, aware
from vigie.review.wellbeing import ExposureTracker
from vigie.store.db import Store
from vigie.store.models import ScanFile
from vigie.store.review_models import MediaBlob, ReviewCluster, ReviewDecision, ReviewItem

SOURCES = ("police", "report", "upload", "crawl", "scan")
SOURCE_RANK = {s: i for i, s in enumerate(SOURCES)}
#: Pictures with a PDQ quality under this are not clustered (flat pictures look alike to PDQ).
MIN_CLUSTER_QUALITY = 50
#: Most bytes of an original kept for review (larger ones: preview or keyframes only).
MAX_ORIGINAL_BYTES = 512 * 1024 * 1024
OPEN_STATES = ("open", "pending_consensus")


def read_location(location: str) -> bytes | None:
    """The bytes of a plain file on disk; None for anything else (archive members, missing files)."""
    try:
        if os.path.isfile(location) and not os.path.islink(location):
            with open(location, "rb") as f:
                return f.read()
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------------------- matching


def _matcher(store: Store, settings):
    from vigie.matching import shared_matcher

    return shared_matcher(store, settings)


def _known(matcher, cands: list[dict]) -> list[bool]:
    """Whether a bank knows each candidate now (any exact or near match, videos by their frames)."""
    from vigie.matching import Query

    if not cands:
        return []
    queries = []
    for c in cands:
        q = Query(c["sha256"], {k: c[k] for k in ("md5", "sha1", "sha256") if c.get(k)}, [], c.get("pdq_quality"))
        if c.get("pdq"):
            q.pdq = [("original", c["pdq"])] + [(v["kind"], v["pdq"]) for v in c.get("pdq_variants") or []]
        queries.append(q)
    out = []
    for c, res in zip(cands, matcher.match(queries)):
        hit = bool(res.matches)
        if not hit and c.get("video_frames"):
            hit = bool(matcher.match_video([tuple(x) for x in c["video_frames"]]))
        out.append(hit)
    return out


# ---------------------------------------------------------------------------------------------- enqueue


#: Distinct contents of a scan queued per transaction (`enqueue_scan`): a seized drive may hold tens of millions
#: of unknown pictures, and neither their rows nor their media may be held at once, in memory or in one transaction.
ENQUEUE_BATCH = 500


def enqueue_scan(store: Store, settings, scan_id: int, *, source: str = "scan",
                 media_reader: Callable[[str], bytes | None] | None = None, by: str = "system",
                 batch: int = ENQUEUE_BATCH) -> dict:
    """Queue the `unknown` rows of a scan (never `exact` or `near`); see the module docstring.

    The scan's distinct contents are queued `batch` at a time, each batch in a transaction of its own (each with
    its `review.enqueue` audit record), so memory stays bounded whatever the scan's size, and a run stopped
    half-way is completed by running it again. Running it again on the same scan adds nothing new. Returns
    counts, summed over the batches.
    """
    if source not in SOURCE_RANK:
        raise UsageError(f"source is one of {', '.join(SOURCES)}", code="bad_value")
    if media_reader is None:
        from vigie.ingest.reopen import read_location as reopen

        def first(c: dict) -> bytes | None:  # every reading of each location, until one has the content
            return next((d for loc in c["locations"] if (d := reopen(loc, settings, c["sha256"])) is not None), None)
    else:
        def first(c: dict) -> bytes | None:
            return _first_media(c, media_reader)
    ref = {"kind": "scan", "scan_id": scan_id}
    report, rows = None, 0
    for cands, n in _scan_contents(store, scan_id, max(1, batch)):
        part = _enqueue(store, settings, cands, source, ref, by, first)
        report = part if report is None else {k: report[k] + part[k] for k in report}
        rows += n
    if report is None:
        with store.sessions() as s:
            from vigie.store.models import Scan

            if s.get(Scan, scan_id) is None:
                raise NotFound(f"no scan {scan_id}", code="scan_not_found")
        report = _enqueue(store, settings, [], source, ref, by, None)
    report["scan"] = scan_id
    report["unknown_rows"] = rows
    return report


def _scan_contents(store: Store, scan_id: int, batch: int):
    """`(contents, rows)` for the `unknown` rows of a scan, `batch` distinct contents at a time in SHA-256 order
    (through the scan's (scan_id, sha256) index), each content with all its locations in scan order."""
    unknown = (ScanFile.scan_id == scan_id, ScanFile.klass == "unknown")
    last = ""  # every SHA-256 sorts after it; a row without one (not read) is never queued
    while True:
        with store.sessions() as s:
            shas = list(s.scalars(select(ScanFile.sha256).where(*unknown, ScanFile.sha256 > last).distinct()
                                  .order_by(ScanFile.sha256).limit(batch)))
            if not shas:
                return
            rows = s.execute(select(ScanFile.sha256, ScanFile.md5, ScanFile.sha1, ScanFile.pdq,
                                    ScanFile.pdq_quality, ScanFile.media_type, ScanFile.size, ScanFile.location,
                                    ScanFile.flags, ScanFile.detail)
                             .where(*unknown, ScanFile.sha256.in_(shas)).order_by(ScanFile.seq)).all()
        by_sha: dict[str, dict] = {}
        for r in rows:
            c = by_sha.get(r.sha256)
            if c is None:
                d = r.detail or {}
                c = by_sha[r.sha256] = {
                    "sha256": r.sha256, "md5": r.md5, "sha1": r.sha1, "pdq": r.pdq, "pdq_quality": r.pdq_quality,
                    "media_type": r.media_type, "size": r.size, "flags": set(), "locations": [],
                    "pdq_variants": d.get("pdq_variants") or [], "video_frames": d.get("video_frames") or [],
                    "detail": {k: v for k, v in d.items() if k in ("provenance", "video", "source")}}
            c["locations"].append(r.location)
            c["flags"] |= set(r.flags or [])
        yield list(by_sha.values()), len(rows)
        last = shas[-1]


def _first_media(c: dict, reader) -> bytes | None:
    if reader is None:
        return None
    for loc in c["locations"]:
        data = reader(loc)
        if data is not None and hashlib.sha256(data).hexdigest() == c["sha256"]:
            return data
    return None


def enqueue_media(store: Store, settings, data: bytes, *, source: str, ref: dict | None = None,
                  by: str = "system", location: str = "<bytes>", result=None) -> dict:
    """Queue one file that came as bytes (a report, a crawl, an upload); hashed here like a scan would.

    `result`: the file's `ItemResult` when the caller hashed these very bytes already (the crawler, in its
    hashing processes): used as it is instead of hashing the file a second time, once its SHA-256 is checked
    against the bytes. Whoever hashed it, the banks are asked again here, at the moment of queueing.

    Raises Conflict `known_material` when a bank knows it (nothing is kept), InvalidInput `not_media`
    when it is not a picture or video.
    """
    from vigie.ingest.containers import Item
    from vigie.ingest.scan import process_item

    if source not in SOURCE_RANK:
        raise UsageError(f"source is one of {', '.join(SOURCES)}", code="bad_value")
    r = result
    if r is None or r.error is not None or r.sha256 != hashlib.sha256(data).hexdigest():
        r = process_item(Item(location, size=len(data), data=data), settings)
    if r.error is not None or not r.media_type or r.media_type.split("/")[0] not in ("image", "video"):
        why = r.error[1] if r.error else "not a picture or video"
        raise InvalidInput(f"cannot queue this file: {why}", code="not_media")
    c = {"sha256": r.sha256, "md5": r.md5, "sha1": r.sha1, "pdq": r.pdq, "pdq_quality": r.pdq_quality,
         "media_type": r.media_type, "size": r.size, "flags": set(r.flags), "locations": [location],
         "pdq_variants": r.pdq_variants, "video_frames": [list(x) for x in r.video_frames],
         "detail": {k: v for k, v in r.detail.items() if k in ("provenance", "video")}}
    report = _enqueue(store, settings, [c], source, dict(ref or {}, kind=source), by, lambda _c: data)
    if report["known_now"]:
        audit.record(store, by, "review.refused_known", "review_item", None,
                     {"source": source, "sha256": r.sha256, "md5": r.md5})
        raise Conflict("a bank knows this file: known material is never queued for review",
                       code="known_material")
    report["sha256"] = r.sha256
    with store.sessions() as s:
        item = s.scalar(select(ReviewItem).where(ReviewItem.sha256 == r.sha256))
        report["item"], report["cluster"] = item.id, item.cluster_id
    return report


def enqueue_upload(store: Store, settings, data: bytes, user: str, note: str | None = None) -> dict:
    """An analyst's upload: matched against the banks first (known: refused, never queued)."""
    return enqueue_media(store, settings, data, source="upload", ref={"by": user, "note": note}, by=user,
                         location=f"upload:{user}")


def _enqueue(store: Store, settings, cands: list[dict], source: str, ref: dict, by: str, media_of,
             tries: int = 3) -> dict:
    """Queue `cands`. Another process may queue the same content between our look and our insert (two
    crawlers finding one picture): the insert then fails on the unique content key, and the content that
    was new is queued again, where it is now found and only its location added (`tries` times at most)."""
    from sqlalchemy.exc import IntegrityError

    from vigie.review import media as rmedia

    report = {"items_added": 0, "items_existing": 0, "known_now": 0, "clusters_new": 0, "clusters_joined": 0,
              "media_stored": 0, "media_missing": 0}
    if not cands:
        return report
    # Known to a bank now (it may have learnt it since the scan): never queued, not even as a location.
    from vigie.banks import changes

    seen_change = changes.latest(store)
    known = _known(_matcher(store, settings), cands)
    report["known_now"] = sum(known)
    cands = [c for c, k in zip(cands, known) if not k]
    # Content queued before: only its location is added (a decided one is never re-opened).
    with store.session() as s:
        existing = {}
        shas = [c["sha256"] for c in cands]
        for i in range(0, len(shas), 500):
            for it in s.scalars(select(ReviewItem).where(ReviewItem.sha256.in_(shas[i:i + 500]))):
                existing[it.sha256] = it
        fresh = []
        for c in cands:
            it = existing.get(c["sha256"])
            if it is None:
                fresh.append(c)
                continue
            report["items_existing"] += 1
            refs = list(it.source_refs or [])
            if ref.get("kind") == "scan" and any(x.get("scan_id") == ref.get("scan_id") for x in refs):
                continue
            refs.append(dict(ref, locations=c["locations"][:1000], count=len(c["locations"])))
            it.source_refs = refs
            if SOURCE_RANK[source] < it.source_rank:
                it.source, it.source_rank = source, SOURCE_RANK[source]
                if it.cluster_id is not None:
                    cl = s.get(ReviewCluster, it.cluster_id)
                    cl.source_rank = min(cl.source_rank, it.source_rank)
    if not fresh:
        return report
    rmedia.media_key(settings)  # no key: refuse before anything is written
    try:
        _insert_fresh(store, settings, fresh, source, ref, by, media_of, report)
    except IntegrityError:
        if tries <= 1:
            raise
        again = _enqueue(store, settings, fresh, source, ref, by, media_of, tries - 1)
        for k in ("items_added", "items_existing", "known_now", "clusters_new", "clusters_joined", "media_stored",
                  "media_missing"):
            report[k] = report[k] + again[k] if k in ("items_existing", "known_now") else again[k]
        return report
    if changes.latest(store) != seen_change:  # a bank changed while we matched: check what we just queued
        report["known_now"] += drop_known(store, settings, by=by, sha256s=[c["sha256"] for c in fresh])
    return report


def _insert_fresh(store: Store, settings, fresh: list[dict], source: str, ref: dict, by: str, media_of,
                  report: dict) -> None:
    """Insert the content not queued before, its media and its clusters, in one transaction."""
    with store.session() as s:
        items = []
        for c in fresh:
            it = ReviewItem(sha256=c["sha256"], md5=c["md5"], sha1=c["sha1"], pdq=c["pdq"],
                            pdq_quality=c["pdq_quality"], media_type=c["media_type"], size=c["size"],
                            source=source, source_rank=SOURCE_RANK[source],
                            source_refs=[dict(ref, locations=c["locations"][:1000], count=len(c["locations"]))],
                            ai_likely="ai_likely" in c["flags"], flags=sorted(c["flags"]),
                            detail=_item_detail(c), state="queued")
            data = media_of(c)
            if data is not None:
                _keep_media(store, settings, s, it, data)
                report["media_stored"] += 1
            else:
                report["media_missing"] += 1
            s.add(it)
            items.append(it)
        s.flush()
        new, joined = _cluster_into(s, settings, items)
        report["items_added"] = len(items)
        report["clusters_new"], report["clusters_joined"] = new, joined
        audit.record(store, by, "review.enqueue", "review_queue", None,
                     {**ref, "source": source, **{k: v for k, v in report.items()}}, session=s)


def _item_detail(c: dict) -> dict | None:
    """What an item keeps beside its hashes: provenance, video facts, and its PDQ variants (kind and hash) so
    that later altered copies of it join its cluster."""
    d = dict(c.get("detail") or {})
    vs = [{"kind": v["kind"], "pdq": v["pdq"]} for v in c.get("pdq_variants") or [] if v.get("pdq")]
    if vs:
        d["pdq_variants"] = vs
    frames = [list(x) for x in c.get("video_frames") or []]
    if frames:  # kept (hashes only) so that the item is matched again whenever a bank changes
        from vigie.review.showable import MAX_FRAMES

        step = max(1, -(-len(frames) // MAX_FRAMES))
        d["video_frames"] = frames[::step]
    return d or None


def _variants_of(detail: dict | None) -> list[tuple[str, str]]:
    return [(v["kind"], v["pdq"]) for v in (detail or {}).get("pdq_variants") or []]


def _keep_media(store, settings, s, it: ReviewItem, data: bytes) -> None:
    from vigie.review import media as rmedia

    kind = (it.media_type or "").split("/")[0]
    if len(data) <= int(getattr(settings, "review_max_original_bytes", MAX_ORIGINAL_BYTES)):
        rmedia.store_media(store, settings, it.sha256, data, kind="original", session=s)
    try:
        if kind == "image":
            preview, it.width, it.height = rmedia.make_preview(data, settings)
            rmedia.store_media(store, settings, it.sha256, preview, kind="preview", session=s)
        elif kind == "video":
            rmedia.store_media(store, settings, it.sha256, rmedia.make_strip(data), kind="strip", session=s)
    except Exception as exc:  # noqa: BLE001 - no preview: the item is still reviewable on its hashes
        it.detail = {**(it.detail or {}), "preview_error": f"{type(exc).__name__}: {exc}"[:300]}


def _cluster_into(s, settings, items: list[ReviewItem]) -> tuple[int, int]:
    """Put new items into open clusters or new ones; returns (new clusters, items that joined open ones)."""
    from vigie.report.clusters import cluster_links

    thr = getattr(settings, "review_cluster_threshold", None)
    thr = int(settings.pdq_threshold if thr is None else thr)
    clusterable = [it for it in items if it.pdq and (it.pdq_quality or 0) >= MIN_CLUSTER_QUALITY
                   and (it.media_type or "").startswith("image/")]
    alone = [it for it in items if it not in clusterable]
    old = s.execute(select(ReviewItem.id, ReviewItem.pdq, ReviewItem.cluster_id, ReviewItem.detail)
                    .join(ReviewCluster, ReviewItem.cluster_id == ReviewCluster.id)
                    .where(ReviewCluster.state == "open", ReviewItem.state == "queued", ReviewItem.pdq.is_not(None),
                           ReviewItem.pdq_quality >= MIN_CLUSTER_QUALITY)).all()
    labels: list[int] = []
    if clusterable:
        ids = [r[0] for r in old] + [it.id for it in clusterable]
        labels, links = cluster_links([r[1] for r in old] + [it.pdq for it in clusterable], thr,
                                      [_variants_of(r[3]) for r in old] + [_variants_of(it.detail)
                                                                          for it in clusterable])
        for i, it in enumerate(clusterable, start=len(old)):
            if i in links:  # in its cluster because of a variant: say which, for the analyst
                j, kind, dist = links[i]
                it.detail = {**(it.detail or {}), "near": {"item": ids[j], "variant": kind, "distance": dist}}
    groups: dict[int, tuple[set[int], list[ReviewItem]]] = {}
    for i, lab in enumerate(labels):
        g = groups.setdefault(lab, (set(), []))
        if i < len(old):
            g[0].add(old[i][2])
        else:
            g[1].append(clusterable[i - len(old)])
    new = joined = 0
    touched: set[int] = set()
    for cids, members in groups.values():
        if not members:
            continue
        if cids:
            target = min(cids)
            for other in cids - {target}:  # the new item links two open clusters: one cluster now
                for it in s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == other)):
                    it.cluster_id = target
                s.flush()
                s.delete(s.get(ReviewCluster, other))
            joined += len(members)
        else:
            c = ReviewCluster(state="open")
            s.add(c)
            s.flush()
            target = c.id
            new += 1
        for it in members:
            it.cluster_id = target
        touched.add(target)
    for it in alone:
        c = ReviewCluster(state="open")
        s.add(c)
        s.flush()
        it.cluster_id = c.id
        touched.add(c.id)
        new += 1
    s.flush()
    for cid in touched:
        _refresh_cluster(s, cid)
    return new, joined


def _refresh_cluster(s, cid: int) -> None:
    c = s.get(ReviewCluster, cid)
    members = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cid, ReviewItem.state != "known")))
    c.size = len(members)
    if members:
        c.source_rank = min(m.source_rank for m in members)
        c.ai_likely = all(m.ai_likely for m in members)


def drop_known(store: Store, settings, *, by: str = "system", sha256s: list[str] | None = None,
               batch: int = 2000) -> int:
    """Take out of the queue every waiting item a bank now knows (its media purged at once); a cluster
    left with no item is closed as `known`. `sha256s` narrows the check to these items. Returns how many
    items left the queue."""
    from vigie.review.showable import known_now

    q = (select(ReviewItem).join(ReviewCluster, ReviewItem.cluster_id == ReviewCluster.id)
         .where(ReviewCluster.state.in_(OPEN_STATES + ("disputed",)), ReviewItem.state == "queued")
         .order_by(ReviewItem.id))
    total, last = 0, 0
    while True:
        with store.sessions() as s:
            qq = q.where(ReviewItem.id > last).limit(batch)
            if sha256s is not None:
                qq = qq.where(ReviewItem.sha256.in_(list(sha256s)[:10000]))
            rows = list(s.scalars(qq))
        if not rows:
            return total
        last = rows[-1].id
        known = [r.sha256 for r, k in zip(rows, known_now(store, settings, rows)) if k]
        if known:
            total += mark_known(store, settings, known, by=by, reason="known material")
        if sha256s is not None:
            return total


def mark_known(store: Store, settings, sha256s: list[str], *, by: str, reason: str) -> int:
    """These items are known material now: out of the queue, their media purged at once, in one transaction;
    a cluster left with no item is closed as `known`. Returns how many items changed."""
    from vigie.review import media as rmedia

    with store.session() as s:
        clusters, n = set(), 0
        for it in s.scalars(select(ReviewItem).where(ReviewItem.sha256.in_(sha256s),
                                                     ReviewItem.state == "queued")):
            it.state = "known"
            clusters.add(it.cluster_id)
            n += 1
        s.flush()
        for cid in clusters:
            if cid is None:
                continue
            _refresh_cluster(s, cid)
            c = s.get(ReviewCluster, cid)
            if c.size == 0 and c.state in OPEN_STATES + ("disputed",):
                c.state = "known"
        rmedia.purge_media(store, settings, list(sha256s), by=by, reason=reason, session=s)
        if n:
            audit.record(store, by, "review.known_dropped", "review_queue", None,
                         {"items": n, "clusters": sorted(c for c in clusters if c is not None), "reason": reason},
                         session=s)
    return n


# ---------------------------------------------------------------------------------------------- order


def priority_key(c: ReviewCluster) -> tuple:
    """Sort key of a cluster, most urgent first (see the module docstring)."""
    created = aware(c.created_at)
    return (-(c.priority_override or 0), c.source_rank, created.date(), -c.size, bool(c.ai_likely), created, c.id)


def list_queue(store: Store, *, user: str | None = None, states: tuple[str, ...] = OPEN_STATES,
               limit: int | None = None) -> list[dict]:
    """Waiting clusters in priority order (a supervisor's view: text only); with `user`, those they have not
    decided on yet."""
    from vigie import rematch

    rematch.ensure(store, store.settings)  # nothing is listed from the queue before pending re-matches ran
    with store.sessions() as s:
        q = select(ReviewCluster).where(ReviewCluster.state.in_(states), ReviewCluster.size > 0)
        if user is not None:
            voted = select(ReviewDecision.cluster_id).where(ReviewDecision.user == user,
                                                            ReviewDecision.superseded.is_(False))
            q = q.where(ReviewCluster.id.not_in(voted))
        cs = sorted(s.scalars(q), key=priority_key)
        if limit is not None:
            cs = cs[:limit]
        return [_cluster_summary(c) for c in cs]


def _cluster_summary(c: ReviewCluster) -> dict:
    return {"id": c.id, "state": c.state, "size": c.size, "source": SOURCES[c.source_rank],
            "ai_likely": c.ai_likely, "priority_override": c.priority_override,
            "created_at": aware(c.created_at).isoformat(),
            "decided_at": aware(c.decided_at).isoformat() if c.decided_at else None,
            "category": c.category, "bank": c.bank}


def next_cluster(store: Store, user: str, clock: Clock | None = None, *, tracker: ExposureTracker | None = None,
                 skip: tuple[int, ...] | list[int] = ()) -> dict | None:
    """The most urgent cluster this analyst has not decided on yet, as text and hashes (no media), or None.
    `skip`: clusters the analyst passed over for now; when every waiting one was skipped, the most urgent again.

    Raises ReviewLocked when review is locked for a break."""
    tracker = tracker or ExposureTracker(store)
    tracker.check(user, clock)
    waiting = list_queue(store, user=user, limit=None if skip else 1)
    found = [c for c in waiting if c["id"] not in set(skip)][:1] or waiting[:1]
    tracker.touch(user, clock)
    if not found:
        return None
    audit.record(store, user, "review.assign", "review_cluster", found[0]["id"], {"source": found[0]["source"]})
    return cluster_view(store, found[0]["id"], user=user)


def reprioritise(store: Store, cluster_id: int, priority: int | None, by: str) -> dict:
    """A supervisor's override (the caller checks the role): positive comes sooner than any cluster without one,
    negative later, None goes back to the documented order."""
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)
                                 or abs(priority) > 1_000_000):
        raise UsageError("priority is a whole number (positive: sooner, negative: later) or None", code="bad_value")
    with store.session() as s:
        c = s.get(ReviewCluster, cluster_id)
        if c is None:
            raise NotFound(f"no review cluster {cluster_id}", code="cluster_not_found")
        before = c.priority_override
        c.priority_override, c.priority_set_by = priority, by
        audit.record(store, by, "review.reprioritise", "review_cluster", cluster_id,
                     {"from": before, "to": priority}, session=s)
        return _cluster_summary(c)


# ---------------------------------------------------------------------------------------------- views


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def describe(it: ReviewItem) -> str:
    """A text description of an item, for deciding or preparing without seeing it."""
    kind = (it.media_type or "file").split("/")
    what = f"{'Video' if kind[0] == 'video' else 'Picture'} ({kind[-1].upper()})"
    parts = [what]
    if it.width and it.height:
        parts.append(f"{it.width}x{it.height} px")
    parts.append(_size(it.size))
    d = it.detail or {}
    if "video" in d:
        dur = d["video"].get("duration")
        if dur:
            parts.append(f"{dur:.0f} s long")
    n_loc = sum(r.get("count", len(r.get("locations", []))) for r in it.source_refs or [])
    srcs = sorted({r.get("kind", "?") for r in it.source_refs or []})
    parts.append(f"found at {n_loc} location(s) via {', '.join(srcs)}")
    p = d.get("provenance") or {}
    if p.get("camera_make") or p.get("camera_model"):
        parts.append("camera: " + " ".join(x for x in (p.get("camera_make"), p.get("camera_model")) if x))
    if p.get("software"):
        parts.append(f"software: {p['software']}")
    if it.ai_likely:
        parts.append("likely AI-generated (" + "; ".join(p.get("evidence", [])[:3]) + ")"
                     if p.get("evidence") else "likely AI-generated")
    if "gps" in (it.flags or []):
        parts.append("carries GPS coordinates")
    if it.pdq_quality is not None and it.pdq_quality < MIN_CLUSTER_QUALITY:
        parts.append(f"low PDQ quality ({it.pdq_quality}): a flat or featureless picture")
    return "; ".join(parts) + "."


def cluster_view(store: Store, cluster_id: int, *, user: str | None = None, supervisor: bool = False,
                 max_locations: int = 20) -> dict:
    """A cluster as text and hash details, without any media. Analysts review blind: the votes are shown only
    to a supervisor. Known items (found in a bank after queueing) are left out. Audited when `user` is given."""
    with store.sessions() as s:
        c = s.get(ReviewCluster, cluster_id)
        if c is None:
            raise NotFound(f"no review cluster {cluster_id}", code="cluster_not_found")
        items = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cluster_id,
                                                        ReviewItem.state != "known").order_by(ReviewItem.id)))
        shas = [it.sha256 for it in items]
        blobs: dict[str, list[str]] = {}
        if shas:
            for b in s.scalars(select(MediaBlob).where(MediaBlob.sha256.in_(shas), MediaBlob.purged_at.is_(None))):
                blobs.setdefault(b.sha256, []).append(b.kind)
        out = _cluster_summary(c)
        out["items"] = []
        for it in items:
            locs = [loc for r in it.source_refs or [] for loc in r.get("locations", [])]
            out["items"].append({
                "id": it.id, "description": describe(it), "media_type": it.media_type, "size": it.size,
                "width": it.width, "height": it.height,
                "hashes": {"sha256": it.sha256, "sha1": it.sha1, "md5": it.md5, "pdq": it.pdq,
                           "pdq_quality": it.pdq_quality},
                "source": it.source, "locations": locs[:max_locations], "location_count": len(locs),
                "refs": [{k: v for k, v in r.items() if k != "locations"} for r in it.source_refs or []],
                "flags": list(it.flags or []), "ai_likely": it.ai_likely,
                "provenance": (it.detail or {}).get("provenance"),
                "near": (it.detail or {}).get("near"),
                "media": sorted(blobs.get(it.sha256, [])), "state": it.state})
        if supervisor:
            out["decisions"] = [{"user": d.user, "role": d.role, "category": d.category, "note": d.note,
                                 "bank": d.bank, "at": aware(d.at).isoformat(), "superseded": d.superseded}
                                for d in s.scalars(select(ReviewDecision).where(ReviewDecision.cluster_id == cluster_id)
                                                   .order_by(ReviewDecision.id))]
        else:
            n = s.scalar(select(func.count(func.distinct(ReviewDecision.user))).where(
                and_(ReviewDecision.cluster_id == cluster_id, ReviewDecision.superseded.is_(False)))) or 0
            out["decisions_so_far"] = n
    if user is not None:
        audit.record(store, user, "review.view", "review_cluster", cluster_id,
                     {"items": len(out["items"]), "supervisor": supervisor})
    return out


def item_of(store: Store, item_id: int) -> ReviewItem:
    with store.sessions() as s:
        it = s.get(ReviewItem, item_id)
        if it is None:
            raise NotFound(f"no review item {item_id}", code="item_not_found")
        return it
