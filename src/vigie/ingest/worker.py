"""The intake worker: crawl reported URLs, record what they hold, re-check known material, send notices.

`run_once` does one round of everything and is what `vigie crawl` and the worker thread of
`vigie serve` call. Each step is safe to run from several processes at once: a reported URL
is claimed with a conditional update before it is crawled, so two workers never crawl the
same one.

What becomes of each media found (`Outcome`):

* **known** (a bank matches it, exactly or by PDQ): recorded with its bank, category and
  distance, never shown to anyone and never kept; a takedown notice follows.
* **unknown**: queued for review (source ``crawl``; the bytes are kept encrypted there).
* **error**: could not be downloaded or decoded; recorded with the code, so an analyst can
  see what the crawler could not read.

Downloads, hashing and matching overlap: the crawler hands each media to a pool of worker
processes as soon as it is downloaded (every core; a decoder crash on a hostile file costs that
file, `decoder_crash`, not the crawl). Downloads run ahead of hashing by a bounded number of media
(`Fetcher.media_in_hand`: memory stays bounded, and the hashing processes always have downloaded
media waiting). Matching runs in a thread of this process, which holds the index, several media at
a time (`_MatchBatch`: one index refresh and one write of the match counts per batch); store
writes are serialised by one lock. The CPU time of each stage is counted in
`vigie.ingest.stages.CLOCK`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import or_, select, update

from vigie import audit, policy
from vigie.accounts import aware
from vigie.errors import VigieError
from vigie.ingest import crawl_hash, reports
from vigie.ingest.crawl import CrawlResult, Fetcher, FetchError, MediaFound, crawl
from vigie.ingest.hash_pool import HashPool, make_hasher  # noqa: F401 - known by these names here
from vigie.ingest.stages import CLOCK
from vigie.settings import Settings
from vigie.store.db import Store
from vigie.store.intake_models import ReportedUrl, ReportUrl, Sighting, SightingPage

log = logging.getLogger("vigie.crawl")
#: A claimed URL whose worker went silent this long is taken again.
STALE_CLAIM = timedelta(hours=1)
#: Wait before a URL whose crawl failed transiently is tried again (times the attempts so far).
RETRY_AFTER = timedelta(minutes=5)
#: Fetch errors of media that are recorded as sightings (others, like a broken <img> link, stay in the log).
RECORDED_ERRORS = frozenset({"too_large", "timeout", "connect_failed", "bad_response", "private_address"})
MAX_LOG = 200
#: Media matched together at most (and never more than half the media in hand), and how long the first of a
#: batch waits for others (seconds): one index refresh, one bank read and one write of the match counts serve
#: the whole batch (2.5 ms of CPU a media alone, 0.9 by 8, 0.65 by 40).
MATCH_BATCH = 32
MATCH_LINGER = 0.25


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


@dataclass
class Outcome:
    """What one media found came to, ready to be recorded."""

    media: MediaFound
    kind: str  # known | unknown | error | skip
    result: object | None = None  # ItemResult
    match: object | None = None  # best Match
    matches: list = field(default_factory=list)
    review_item_id: int | None = None
    error_code: str | None = None
    error: str | None = None


# ------------------------------------------------------------------------------------------------ claims


def claim(store: Store, limit: int, now: datetime | None = None, settings: Settings | None = None) -> list[int]:
    """Take up to `limit` reported URLs to crawl (pending ones due for a try, and stale claims)."""
    now = _now(now)
    with store.sessions() as s:
        cands = s.scalars(select(ReportedUrl).where(or_(ReportedUrl.crawl_state == "pending", _stale_claim(now)))
            .order_by(ReportedUrl.id).limit(limit * 4)).all()
        ids, abandoned = [], []
        max_attempts = settings.crawl_max_attempts if settings is not None else 3
        for ru in cands:
            if ru.crawl_state == "pending" and ru.crawl_attempts and ru.claimed_at is not None \
                    and aware(ru.claimed_at) > now - RETRY_AFTER * ru.crawl_attempts:
                continue  # failed recently: wait before the next try
            if ru.crawl_state == "running" and ru.crawl_attempts >= max_attempts:
                abandoned.append(ru.id)  # its crawls keep dying (a file that crashes the worker?): give up
                continue
            ids.append((ru.id, ru.crawl_state))
    if abandoned:
        _abandon(store, abandoned, now)
    return [uid for uid, state in ids[:limit] if _take(store, uid, state, now)]


def _take(store: Store, uid: int, state: str, now: datetime) -> bool:
    """Claim one URL seen `pending`, or `running` with a stale claim, if it still is: one conditional update,
    so that of two servers taking it at once one wins. A stale claim taken over stays `running`, so its
    claim time is what must still be stale: checking the state alone let two servers take it and crawl it
    twice."""
    cond = _stale_claim(now) if state == "running" else ReportedUrl.crawl_state == state
    with store.session() as s:
        return s.execute(update(ReportedUrl).where(ReportedUrl.id == uid, cond).values(
            crawl_state="running", claimed_at=now, crawl_attempts=ReportedUrl.crawl_attempts + 1)).rowcount == 1


def _stale_claim(now: datetime):
    """The condition of a claim that may be taken over: `running`, claimed more than `STALE_CLAIM` ago (its
    server died mid-crawl). One expression for the search and for the conditional update that takes it."""
    return (ReportedUrl.crawl_state == "running") & (ReportedUrl.claimed_at < now - STALE_CLAIM)


def _abandon(store: Store, url_ids: list[int], now: datetime) -> None:
    with store.session() as s:
        for uid in url_ids:
            n = s.execute(update(ReportedUrl).where(ReportedUrl.id == uid, ReportedUrl.crawl_state == "running")
                          .values(crawl_state="failed", outcome="nothing", crawled_at=now,
                                  error_code="crawl_abandoned",
                                  error="its crawl stopped several times without finishing (the worker crashed or "
                                        "was killed); given up")).rowcount
            if n:
                audit.record(store, "crawler", "crawl.abandoned", "reported_url", uid, {}, at=now, session=s)
    reports.refresh_statuses(store, _report_ids(store, url_ids), now=now)


# ---------------------------------------------------------------------------------------------- crawling


#: What the hashing processes run (kept under their former names here).
_hash_item, _hash_media = crawl_hash.hash_item, crawl_hash.hash_media


class _MatchBatch:
    """Matches hashed media several at a time in one thread of the crawler: the first to come waits up to
    `MATCH_LINGER` for others (at most `MATCH_BATCH`), then all are matched in one `Matcher.match` call.
    A batch that fails fails each of its media (`internal_error`), never the crawl."""

    def __init__(self, matcher, settings: Settings, pool: ThreadPoolExecutor, most: int = MATCH_BATCH):
        self.matcher, self.settings, self.pool = matcher, settings, pool
        self.most = max(1, min(MATCH_BATCH, most))
        self.pending: list[tuple[object, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()  # referenced until done (the loop keeps only weak ones)

    async def match(self, r):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((r, fut))
        if len(self.pending) >= self.most:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(MATCH_LINGER, self._flush)
        return await fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self.pending = self.pending, []
        if batch:
            t = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(t)
            t.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[object, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            got = await loop.run_in_executor(self.pool, self._match, [r for r, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to each media of the batch
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), res in zip(batch, got):
            if not fut.done():
                fut.set_result(res)

    def _match(self, results: list) -> list:
        from vigie.ingest.scan import _match

        with CLOCK.stage("match", len(results)):
            return _match(self.matcher, results, None, self.settings)


class _Recorder:
    """Hashes (in the HashPool) and matches media as the crawl brings them; enqueues the unknown ones."""

    def __init__(self, store: Store, settings: Settings, matcher, pool: ThreadPoolExecutor, url_id: int,
                 hasher: HashPool, batch: _MatchBatch | None = None):
        self.store, self.settings, self.matcher, self.pool = store, settings, matcher, pool
        self.url_id = url_id
        self.hasher = hasher
        self.batch = batch or _MatchBatch(matcher, settings, pool)
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()

    async def __call__(self, m: MediaFound) -> None:
        loop = asyncio.get_running_loop()
        try:
            out = self._failed(m)
            if out is None:
                r = await self.hasher.process(m.url, m.fetched.data)
                CLOCK.add("hash", getattr(r, "hash_cpu", 0.0))
                out = self._undecoded(m, r)
                if out is None:
                    mres = await self.batch.match(r)
                    out = self._verdict(m, r, mres)
                    if out is None:  # unknown: to the review queue (a store write: in a thread)
                        out = await loop.run_in_executor(self.pool, self._enqueue, m, r)
        except Exception as exc:  # noqa: BLE001 - one media never stops a crawl
            log.exception("judging %s failed", m.url)
            out = Outcome(m, "error", error_code="internal_error", error=f"{type(exc).__name__}: {exc}")
        if m.fetched is not None:
            m.fetched.data = b""  # the bytes are no longer needed: known ones are never kept
        self.outcomes.append(out)

    @staticmethod
    def _failed(m: MediaFound) -> Outcome | None:
        if m.error is None:
            return None
        kind = "error" if m.error.code in RECORDED_ERRORS else "skip"
        return Outcome(m, kind, error_code=m.error.code, error=m.error.message)

    @staticmethod
    def _undecoded(m: MediaFound, r) -> Outcome | None:
        if r.error is not None and not r.sha256:
            return Outcome(m, "error", r, error_code=r.error[0], error=r.error[1])
        return None

    def _verdict(self, m: MediaFound, r, mres) -> Outcome | None:
        """Known, an error, or None: unknown (to be queued)."""
        if mres.matches:  # the most severe verdict decides what follows (vigie.policy)
            best, _action = policy.strongest(mres.matches, self.settings)
            return Outcome(m, "known", r, best, mres.matches)
        if r.error is not None:  # undecodable picture, not known by its digests
            return Outcome(m, "error", r, error_code=r.error[0], error=r.error[1])
        return None

    def _enqueue(self, m: MediaFound, r) -> Outcome:
        from vigie.ingest.scan import _match
        from vigie.review.queue import enqueue_media

        try:
            with self.lock, CLOCK.stage("queue"):
                rep = enqueue_media(self.store, self.settings, m.fetched.data, source="crawl", location=m.url,
                                    ref={"media_url": m.url, "page_url": m.page_url, "reported_url_id": self.url_id},
                                    result=r)
            return Outcome(m, "unknown", r, review_item_id=rep.get("item"))
        except VigieError as exc:
            if exc.code == "known_material":  # a bank learnt it between our match and the queue's
                mres = _match(self.matcher, [r], None, self.settings)[0]
                best, _action = policy.strongest(mres.matches, self.settings)
                return Outcome(m, "known", r, best, mres.matches)
            return Outcome(m, "unknown", r, error_code=exc.code, error=exc.message)


async def _crawl_many(store, settings, url_rows: list[tuple[int, str]], matcher, transport, pool, hasher,
                      plans: dict[int, dict] | None = None, finish=None) -> list:
    """Crawl these URLs together (one Fetcher: turns shared fairly; one browser, started only when a page is
    rendered). `plans`: per URL id, rendering asked and the part of an earlier round carried over.

    Returns (uid, result, outcomes) per URL; with `finish`, what `finish(uid, result, outcomes)` returns,
    called for each URL as soon as its crawl is over, in one thread of its own (one URL written at a time),
    while the other URLs go on downloading and hashing: a round's recording no longer waits for its last
    download, and a round stopped half-way has written every URL it finished."""
    from vigie.ingest.render import Renderer

    plans = plans or {}
    renderer = Renderer(settings)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigie-record") if finish else None
    in_hand = media_in_hand(settings, hasher)
    batch = _MatchBatch(matcher, settings, pool, in_hand // 2)  # the other half keeps downloads and hashing busy
    t0 = time.thread_time()
    try:
        async with Fetcher(settings, transport=transport) as fetcher:
            fetcher.media_in_hand = in_hand

            async def one(uid: int, url: str):
                rec = _Recorder(store, settings, matcher, pool, uid, hasher, batch)
                plan = plans.get(uid) or {}
                try:
                    res = await crawl(url, fetcher, on_media=rec, render=bool(plan.get("render")),
                                      renderer=renderer, resume=plan.get("carry"))
                except Exception as exc:  # noqa: BLE001 - a crawl bug costs this URL, not the round
                    log.exception("crawl of %s failed", url)
                    res = CrawlResult(url, error=FetchError("internal_error", f"{type(exc).__name__}: {exc}"))
                if writer is not None:
                    return await asyncio.get_running_loop().run_in_executor(writer, finish, uid, res, rec.outcomes)
                return uid, res, rec.outcomes

            return await asyncio.gather(*(one(uid, url) for uid, url in url_rows))
    finally:
        if writer is not None:
            writer.shutdown(wait=True)  # what was handed over is written before the round goes on or stops
        await renderer.close()
        CLOCK.add("fetch", time.thread_time() - t0, 0)  # this loop: scheduling, downloads, pages, hand-offs


def media_in_hand(settings: Settings, hasher: HashPool) -> int:
    """How many media may be downloading or waiting to be hashed and judged at once: every download slot, and
    four times what the hashing takes at once, so it never waits for a download (memory: at most this many
    media of up to `crawl_max_media_bytes`)."""
    hashing = (hasher.workers if hasher.workers > 0 else max(1, settings.effective_workers)) + 1
    return settings.crawl_concurrency + 4 * hashing




def crawl_pending(store: Store, settings: Settings, *, limit: int = 20, now: datetime | None = None,
                  matcher=None, transport=None, hasher: HashPool | None = None) -> dict:
    """Crawl up to `limit` reported URLs that wait; record sightings; update their reports' statuses."""
    now = _now(now)
    ids = claim(store, limit, now, settings)
    summary = {"urls": len(ids), "pages": 0, "media": 0, "known": 0, "unknown": 0, "errors": 0, "failed_urls": 0,
               "carried_urls": 0}
    if not ids:
        return summary
    own = hasher is None
    hasher = hasher or make_hasher(settings)
    hasher.start()  # its processes start while the index loads and the first pages download
    matcher = matcher or _matcher(store, settings)
    with store.sessions() as s:
        rows = [(ru.id, ru.url) for ru in s.scalars(select(ReportedUrl).where(ReportedUrl.id.in_(ids))).all()]
    from vigie.ingest import crawl_plans

    plans = crawl_plans.plans_of(store, ids)
    from vigie.ingest.stopping import stop_on_signals

    def finish(uid: int, res: CrawlResult, outcomes: list[Outcome]):
        with CLOCK.stage("record", len(outcomes)):
            counts = record_crawl(store, settings, uid, res, outcomes, now=now)
            return res, counts, crawl_plans.after_round(store, settings, uid, res, now)

    try:
        with stop_on_signals(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="vigie-match") as pool:
            done = _run(_crawl_many(store, settings, rows, matcher, transport, pool, hasher, plans, finish=finish))
    except BaseException:  # SIGTERM, Ctrl-C: the hashing processes end with us (unfinished URLs are claimed again)
        if own:
            hasher.close(kill=True)
        raise
    if own:
        hasher.close()
    for res, counts, carried in done:
        summary["carried_urls"] += carried
        for k in ("known", "unknown", "errors"):
            summary[k] += counts[k]
        summary["pages"] += len(res.pages)
        summary["media"] += counts["media"]
        summary["failed_urls"] += counts["failed"]
    with CLOCK.stage("record", 0):
        reports.refresh_statuses(store, _report_ids(store, ids), now=now)
    return summary


def _run(coro):
    """asyncio.run, also from a thread that already runs an event loop (an async caller, a test driving a
    browser): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigie-crawl-loop") as ex:
        return ex.submit(asyncio.run, coro).result()


def _matcher(store: Store, settings: Settings):
    from vigie.matching import Matcher

    m = Matcher(store, settings)
    m.refresh()
    return m


def _report_ids(store: Store, url_ids: list[int]) -> list[int]:
    with store.sessions() as s:
        return list(s.scalars(select(ReportUrl.report_id).where(ReportUrl.url_id.in_(url_ids)).distinct()).all())


def record_crawl(store: Store, settings: Settings, url_id: int, res: CrawlResult, outcomes: list[Outcome], *,
                 now: datetime | None = None) -> dict:
    """Write what one crawl found, in one transaction: sightings, pages, the URL's outcome.

    Another server may record a sighting of the same media URL between our look and our insert (two reported
    pages showing one picture, crawled at once): the insert then fails on the media URL's unique key, the
    transaction is rolled back whole, and it is written again, where that sighting is now found and updated
    (three tries). Without this the error ended the round and its URLs waited an hour as `running`."""
    from sqlalchemy.exc import IntegrityError

    now = _now(now)
    kept = [o for o in outcomes if o.kind != "skip"]
    providers = _providers(store, [o for o in kept if o.kind == "known"])
    for attempt in range(3):
        try:
            return _record_once(store, settings, url_id, res, kept, providers, now)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("crawl of URL %s met a sighting written by another server meanwhile: written again", url_id)
    raise AssertionError("unreachable")


def _record_once(store: Store, settings: Settings, url_id: int, res: CrawlResult, kept: list[Outcome],
                 providers: dict[str, int | None], now: datetime) -> dict:
    counts = {"media": len(kept), "known": 0, "unknown": 0, "errors": 0, "failed": 0}
    with store.session() as s:
        ru = s.get(ReportedUrl, url_id)
        have = _Have(s, url_id, kept)
        after: list[tuple] = []
        for o in kept:
            counts["known" if o.kind == "known" else "unknown" if o.kind == "unknown" else "errors"] += 1
            _upsert_sighting(s, ru, o, now, providers.get(o.media.url), settings, have, after)
        _write_after(s, ru.id, now, have, after)
        transient = res.error is not None and res.error.transient
        if res.error is not None:
            ru.error_code, ru.error = res.error.code, res.error.message
        else:
            ru.error_code = ru.error = None
        if transient and not kept and ru.crawl_attempts < settings.crawl_max_attempts:
            ru.crawl_state = "pending"  # try again later (claim waits RETRY_AFTER x attempts)
            counts["failed"] = 1
        else:
            ru.crawl_state = "done"
            ru.outcome = ("known" if counts["known"] else "unknown" if counts["unknown"] else "nothing")
        ru.crawled_at = now
        ru.pages_fetched = len(res.pages)
        ru.media_found = len(kept)
        ru.log = (res.log or [])[:MAX_LOG] or None
        audit.record(store, "crawler", "crawl.done", "reported_url", url_id,
                     {"url": ru.url, "state": ru.crawl_state, "outcome": ru.outcome, "pages": len(res.pages),
                      "media": len(kept), "known": counts["known"], "unknown": counts["unknown"],
                      "error": res.error.code if res.error else None}, at=now, session=s)
    return counts


def _providers(store: Store, known: list[Outcome]) -> dict[str, int | None]:
    """The hosting provider of each known media URL (by host, then by address), looked up before writing."""
    try:
        from vigie.actions.takedown import find_provider
    except ImportError:  # no takedown module: sightings get no provider
        return {}
    from vigie.ingest.reports import host_of

    out: dict[str, int | None] = {}
    looked: dict[tuple, int | None] = {}  # a gallery's media share their host and address: one lookup
    for o in known:
        m = o.media
        ip = (m.fetched.ip if m.fetched else None) or (m.error.ip if m.error else None)
        key = (host_of(m.url), ip)
        if key not in looked:
            try:
                p = find_provider(store, *key)
            except Exception:  # noqa: BLE001 - no provider is not an error of the crawl
                log.exception("provider lookup failed for %s", m.url)
                p = None
            looked[key] = p.id if p is not None else None
        out[m.url] = looked[key]
    return out


class _Have:
    """The sightings of one crawl's media URLs and the pages of this reported URL already in the store, read
    in two queries instead of two per media (and kept up to date as the crawl's rows are added)."""

    def __init__(self, s, url_id: int, kept: list[Outcome]):
        from vigie.ingest.reports import url_key

        keys = sorted({url_key(o.media.url) for o in kept})
        self.sightings: dict[str, Sighting] = {}
        for i in range(0, len(keys), 500):
            for x in s.scalars(select(Sighting).where(Sighting.media_url_key.in_(keys[i:i + 500]))):
                self.sightings[x.media_url_key] = x
        ids = [x.id for x in self.sightings.values()]
        self.pages: set[int] = set()
        for i in range(0, len(ids), 500):
            self.pages |= set(s.scalars(select(SightingPage.sighting_id).where(
                SightingPage.url_id == url_id, SightingPage.sighting_id.in_(ids[i:i + 500]))))

    def page(self, s, x: Sighting, url_id: int, page_url: str | None, now: datetime) -> None:
        """The sighting's page for this reported URL, added once."""
        if x.id not in self.pages:
            self.pages.add(x.id)
            s.add(SightingPage(sighting_id=x.id, url_id=url_id, page_url=page_url, seen_at=now))


def _write_after(s, url_id: int, now: datetime, have: _Have, after: list[tuple]) -> None:
    """The history events and pages that `_upsert_sighting` left for later (`after`), written once the crawl's
    new sightings have their ids: one flush for all of them, instead of one per new sighting. Each event
    holds the sighting as it was when its media was recorded (the same as written at once)."""
    from vigie.rematch import record_event

    if not after:
        return
    s.flush()  # the new sightings' ids, all at once
    for x, snap, detail, page_url in after:
        snap.id = x.id
        record_event(s, snap, "crawl", detail)
        have.page(s, x, url_id, page_url, now)


def _upsert_sighting(s, ru: ReportedUrl, o: Outcome, now: datetime, provider_id: int | None,
                     settings: Settings | None = None, have: _Have | None = None,
                     after: list[tuple] | None = None) -> Sighting:
    """Record what a crawl saw at one media URL. A sighting's history is append-only (`SightingEvent`): once
    known, it stays known and under follow-up until a re-check shows it removed; a later crawl that times out
    or finds other bytes there adds an event and never erases the known sighting, its notices or its
    removal time. With `after`, the history event and the page are left there for `_write_after` (the
    sighting as it is now, for its event), so that a crawl's new sightings are flushed together."""
    from vigie.ingest.reports import host_of, url_key
    from vigie.rematch import apply_match, record_event

    def history(x: Sighting, detail: dict) -> None:
        if after is not None:
            snap = SimpleNamespace(id=None, outcome=x.outcome, state=x.state, http_status=x.http_status,
                                   sha256=x.sha256)
            after.append((x, snap, detail, m.page_url))
            return
        if x.id is None:
            s.flush()  # its id, for its history and its page
        record_event(s, x, "crawl", detail)
        have.page(s, x, ru.id, m.page_url, now)

    m = o.media
    key = url_key(m.url)
    have = have or _Have(s, ru.id, [o])
    x = have.sightings.get(key)
    seen = {"url_id": ru.id, "page_url": m.page_url, "outcome": o.kind, "error_code": o.error_code,
            "sha256": getattr(o.result, "sha256", None), "review_item_id": o.review_item_id}
    if x is not None and x.outcome == "known" and o.kind != "known":
        f = m.fetched
        status = (f.status if f else None) or (m.error.status if m.error else None)
        x.last_check_status = status if status is not None else x.last_check_status
        history(x, {**seen, "kept": "known"})
        return x
    if x is None:
        x = Sighting(media_url=m.url, media_url_key=key, url_id=ru.id, page_url=m.page_url, host=host_of(m.url),
                     found_at=now, state="online", checks=0, notices=0, outcome=o.kind)
        s.add(x)
        have.sightings[key] = x
    elif x.state != "online" and o.kind == "known":  # came back after its removal
        x.state, x.removed_at = "online", None
    f = m.fetched
    x.ip = (f.ip if f else None) or (m.error.ip if m.error else None) or x.ip
    x.http_status = (f.status if f else None) or (m.error.status if m.error else None)
    r = o.result
    if r is not None:
        x.sha256, x.md5, x.pdq = r.sha256, r.md5, r.pdq
        x.media_type, x.size = r.media_type, r.size
    x.outcome = o.kind
    x.error_code, x.error = o.error_code, o.error
    if o.kind == "known":
        best = o.match
        if best is not None:
            apply_match(x, best, policy.action_for(best.verdict, settings))
        x.last_checked_at = now
        x.last_check_status = x.http_status
    if o.review_item_id is not None:
        x.review_item_id = o.review_item_id
    if provider_id is not None and x.provider_id is None:
        x.provider_id = provider_id
    history(x, seen)
    return x


# -------------------------------------------------------------------------------------------- re-checks


def recheck_due(store: Store, settings: Settings, *, now: datetime | None = None, matcher=None, transport=None,
                limit: int = 500) -> dict:
    """Fetch again known material still marked online whose last check is older than the re-check interval.

    Gone (HTTP 4xx other than 408/425/429, or the name no longer resolves) or changed (it now serves
    something no bank knows): `removed_at` is set. Timeouts, 5xx and refused connections say nothing:
    the next round tries again."""
    now = _now(now)
    every = timedelta(minutes=settings.takedown_recheck_minutes)
    with store.sessions() as s:
        due = s.scalars(select(Sighting).where(
            Sighting.outcome == "known", Sighting.state == "online",
            or_(Sighting.last_checked_at.is_(None), Sighting.last_checked_at <= now - every))
            .order_by(Sighting.last_checked_at.nullsfirst(), Sighting.id).limit(limit)).all()
        items = [(x.id, x.media_url, x.sha256) for x in due]
    summary = {"checked": len(items), "online": 0, "removed": 0, "changed": 0, "unreachable": 0}
    if not items:
        return summary

    async def fetch_all():
        async with Fetcher(settings, transport=transport) as fetcher:
            async def one(url):
                try:
                    return await fetcher.fetch(url, settings.crawl_max_media_bytes)
                except FetchError as exc:
                    return exc
            return await asyncio.gather(*(one(u) for _, u, _ in items))

    got = _run(fetch_all())
    lazy = [matcher]

    def get_matcher():
        if lazy[0] is None:
            lazy[0] = _matcher(store, settings)
        return lazy[0]

    for (sid, url, sha), r in zip(items, got):
        verdict, status = _judge_recheck(settings, r, sha, get_matcher)
        summary[verdict] += 1
        with store.session() as s:
            x = s.get(Sighting, sid)
            x.checks += 1
            x.last_checked_at = now
            x.last_check_status = status
            from vigie.rematch import record_event

            record_event(s, x, "recheck", {"verdict": verdict})
            if verdict in ("removed", "changed"):
                x.state, x.removed_at = verdict, now
                audit.record(store, "crawler", f"takedown.{verdict}", "sighting", sid,
                             {"media_url": url, "status": status, "provider_id": x.provider_id,
                              "first_notice_at": x.first_notice_at}, at=now, session=s)
    return summary


def _judge_recheck(settings, r, sha: str | None, get_matcher) -> tuple[str, int | None]:
    import hashlib

    if isinstance(r, FetchError):
        if r.code == "http_error" or r.code == "dns_failed":
            return "removed", r.status
        if r.code == "not_media":
            return "removed", r.status
        return "unreachable", r.status
    from vigie.media.sniff import sniff

    mt = sniff(r.data[:64])
    if mt is None or mt.split("/")[0] not in ("image", "video"):
        return "removed", r.status  # a page saying it is gone, served with 200
    if sha and hashlib.sha256(r.data).hexdigest() == sha:
        return "online", r.status
    # Different bytes: still the known picture (re-encoded) or something else now?
    from vigie.ingest.containers import Item
    from vigie.ingest.scan import _match, process_item

    it = process_item(Item("<recheck>", size=len(r.data), data=r.data), settings)
    res = _match(get_matcher(), [it], None, settings)[0]
    return ("online" if res.matches else "changed"), r.status


# ----------------------------------------------------------------------------------------------- rounds


def run_once(store: Store, settings: Settings, *, now: datetime | None = None, transport=None, limit: int = 20,
             hasher: HashPool | None = None) -> dict:
    """One round of the worker: crawl what waits, re-check what is due, send due notices, refresh statuses.
    A long-running caller passes its `hasher` so the worker processes outlive the round."""
    given = now
    now = _now(now)
    from vigie import repair

    out = {"repair": repair.run(store, settings, by="crawler", sweep_media=False),  # half-done steps, re-matches
           "crawl": crawl_pending(store, settings, limit=limit, now=now, transport=transport, hasher=hasher),
           "recheck": recheck_due(store, settings, now=now, transport=transport)}
    try:
        from vigie.actions.takedown import send_notices
    except ImportError:
        send_notices = None
    if send_notices is not None:  # without a given time, each notice carries the time it really went out
        out["notices"] = send_notices(store, settings, now=given, by="crawler")
    out["statuses_changed"] = reports.refresh_statuses(store, now=now, statuses=("in_review",))
    return out


def _process_main(settings: Settings, parent: int | None = None) -> None:
    """The body of the worker process: its own store connection, one round every crawl_interval_seconds,
    until the process that started it is gone, or it is told to stop (SIGTERM from `start_worker`, SIGINT):
    then its hashing processes are ended with it."""
    from vigie.ingest.stopping import stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s vigie-intake %(levelname)s %(message)s")
    store = Store.open(settings)
    hasher = make_hasher(settings)  # kept across rounds: its processes start once
    stopped = False
    try:
        with stop_on_signals():
            _rounds(store, settings, hasher, parent)
    except (SystemExit, KeyboardInterrupt):
        stopped = True
    finally:
        hasher.close(kill=stopped)
        store.close()


def _rounds(store: Store, settings: Settings, hasher: HashPool, parent: int | None) -> None:
    """The rounds of `_process_main`, while the process that started it lives."""
    import time

    while parent is None or os.getppid() == parent:
        try:
            run_once(store, settings, hasher=hasher)
        except Exception:  # noqa: BLE001 - a failing round is logged; the next one tries again
            log.exception("intake worker round failed")
        deadline = time.monotonic() + settings.crawl_interval_seconds
        while time.monotonic() < deadline and (parent is None or os.getppid() == parent):
            time.sleep(min(1.0, settings.crawl_interval_seconds))


def start_worker(settings: Settings, *, restart_after: float = 10.0) -> threading.Event:
    """The intake worker of `vigie serve`, in a child process: crawled files come from anyone, and a decoder
    that crashes on one must not take the web server down. A supervising thread restarts the process when it
    dies (the URL it was on is retried, then given up: see `claim`). Set the returned event to stop both."""
    import multiprocessing

    stop = threading.Event()
    ctx = multiprocessing.get_context("spawn")

    def supervise() -> None:
        while not stop.is_set():
            # Not a daemon: it starts its own hashing processes, which a daemon may not. It leaves by itself
            # when this process is gone (see _process_main).
            proc = ctx.Process(target=_process_main, args=(settings, os.getpid()), name="vigie-intake")
            proc.start()
            while proc.is_alive() and not stop.wait(1.0):
                pass
            if stop.is_set():
                proc.terminate()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                return
            log.warning("intake worker process exited with %s; restarting in %g s", proc.exitcode, restart_after)
            stop.wait(restart_after)

    threading.Thread(target=supervise, name="vigie-intake-supervisor", daemon=True).start()
    return stop
