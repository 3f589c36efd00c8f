"""Triage of seized media: find every picture and video in a source, hash each once, match, classify.

`run_scan` walks the sources (folders, archives inside them, disk images) in a fixed
order, hashes items on worker processes, matches them in the main process and writes
one row per location to the store, in order. That order is what makes a scan
resumable: after a kill, the same command finds the rows already written, skips that
many items without hashing them, and goes on. Identical content is hashed once: a
worker first computes the cheap digests, and reuses the PDQ of any earlier location
of this scan with the same SHA-256.

Classes: `exact` (a cryptographic hash is in a bank), `near` (PDQ or vPDQ within the
threshold), `unknown` (a picture or video no bank knows: it goes to review), `error`
(it could not be read; see the error code), `skipped` (not media, or a container whose
members are listed after it, or a known-good file: flag `known_good`, a digest in a `known_good` bank such
as NIST's NSRL, checked on the worker before any decoding; an exact match in a match bank still wins).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from vigie import __version__
from vigie.banks import known_good as _known_good
from vigie.banks.known_good import KnownGood
from vigie.batch import StuckWorker, hard_limit, submit, wait_result
from vigie.errors import ErrorRecord
from vigie.hashing import DIGESTS
from vigie.ingest import scan_worker
from vigie.ingest.containers import Item, iter_items
from vigie.ingest.early import Early, InProcess, wait_for_workers, while_cluster_starts, while_starting
from vigie.ingest.members import SEP
from vigie.ingest.names import DUP, clean, escape
from vigie.ingest.process import (  # noqa: F401 - known by these names here
    NOT_ERRORS,
    PDQ_REDUCED,
    THUMB_SIDE,
    ItemResult,
    RecentContent,
    failed_result,
    process_item,
)
from vigie.ingest.resume import Diverged, note_change, resumed_items
from vigie.ingest.runs import Run
from vigie.matching import Matcher, MatchResult, Query
from vigie.media.sniff import is_media
from vigie.procs import early_scan_forkserver
from vigie.settings import Settings
from vigie.store.db import Held, LockLost, Store
from vigie.store.models import Scan, ScanFile, utcnow

log = logging.getLogger(__name__)

CLASSES = ("exact", "near", "unknown", "error", "skipped")


#: Tasks in flight per worker process, and the most bytes of archive members among them: enough that a
#: slow camera photo at the head of the window does not leave the other workers idle.
WINDOW_PER_WORKER = 16
WINDOW_BYTES = 256 * 1024 * 1024


# ---------------------------------------------------------------------------------------------- main side


def scan_key(sources: list[str], case: str | None) -> str:
    return hashlib.sha256(json.dumps([[os.path.abspath(s) for s in sources], case]).encode()).hexdigest()


@dataclass
class ScanProgress:
    files: int = 0
    bytes: int = 0
    skipped_resume: int = 0
    #: Bytes of the files on disk (members of archives and disk images count with their container),
    #: from a metadata-only walk before the scan: what a progress bar needs for a rate and an ETA.
    total_bytes: int = 0
    disk_bytes_done: int = 0


def disk_bytes(sources: list[str]) -> int:
    total = 0
    for src in sources:
        if os.path.isfile(src):
            total += os.path.getsize(src)
            continue
        for dirpath, _, names in os.walk(src):
            for n in names:
                try:
                    st = os.lstat(os.path.join(dirpath, n))
                except OSError:
                    continue
                if st.st_mode & 0o170000 == 0o100000:
                    total += st.st_size
    return total


def run_scan(store: Store, settings: Settings, sources: list[str], out_dir: str, **kw) -> dict:
    """Scan `sources`, write the report to `out_dir`, and return the summary (`_run_scan`), with the objects
    that exist when it starts left out of the garbage collector's passes while it runs (`vigie.ingest.heap`).

    One run of a scan at a time (`Store.exclusive`: an advisory lock on PostgreSQL, an flock beside the SQLite
    database; a killed run's lock goes with its process): a second run of the same command while the first
    runs raises `Conflict` (`scan_running`). Both would otherwise take up the walk at the same row and store
    every item twice (the second copy as ``#dup2``), with the same sequence numbers."""
    from vigie.ingest.heap import frozen_gc

    key = scan_key(sources, kw.get("case"))
    with store.exclusive(f"scan-{key}") as mine:  # one run of a scan at a time, across processes and machines
        if not mine:
            from vigie.errors import Conflict

            shown = ", ".join(escape(x)[0] for x in sources)
            raise Conflict(f"this scan ({shown}, case {kw.get('case') or '-'}) is being run by another process: "
                           "wait for it to end, or stop it, then run the command again to resume", code="scan_running")
        with frozen_gc():
            return _run_scan(store, settings, sources, out_dir, lock=mine, **kw)


def _run_scan(store: Store, settings: Settings, sources: list[str], out_dir: str, *, banks: list[str] | None = None,
              workers: int | None = None, case: str | None = None, operator: str | None = None,
              on_item: Callable[[ScanProgress], None] | None = None, stop_after: int | None = None,
              cluster: str | None = None, thumbnails: bool = False, lock: Held | None = None) -> dict:
    """Scan `sources`, write the report to `out_dir`, and return the summary.

    `lock`: the scan's lock (`run_scan`), checked before each batch of rows is written: on PostgreSQL it goes
    with its database session, and a run that lost it stops (`lock_lost`) rather than write beside another.

    `thumbnails`: keep blurred grey miniatures of unknown media, sealed with the media key
    (`vigie.report.thumbs`; no_media_key without one); by default no picture is written.

    `stop_after` ends the run after that many new items (tests use it to stand for a kill).
    `cluster` (`local:N` or `tcp://HOST:8786`) hashes on Dask instead of local processes
    (see `vigie.ingest.distributed`).
    """
    from vigie.report.scan_report import write_report

    for s in sources:
        if not os.path.lexists(s):
            from vigie.errors import NotFound

            raise NotFound(f"no such source: {s}", code="source_not_found")
    n_workers = workers if workers is not None else settings.effective_workers
    early_scan_forkserver(settings, n_workers, cluster)  # unless the command started it: preloads meanwhile
    from vigie.report import thumbs

    thumbs.prepare_folder(out_dir)  # 0700, its files 0600
    writer = thumbs.ThumbWriter(out_dir, settings) if thumbnails else None
    key = scan_key(sources, case)
    with store.session() as s:
        scan = s.scalar(select(Scan).where(Scan.key == key))
        # A scan run before, even one killed before it wrote a row, may have been killed by a decoder crash in
        # this process: its pictures go to worker processes, which pin such a crash on the file.
        fresh = scan is None
        if scan is None:
            scan = Scan(key=key, sources=[escape(os.path.abspath(x))[0] for x in sources], case_id=case,
                        operator=operator, meta={"banks": banks, "tool_version": __version__})
            s.add(scan)
            s.flush()
        scan.status = "running"
        if (scan.meta or {}).get("source_locations") is None:  # the sources as given: rows are located by them
            scan.meta = {**(scan.meta or {}), "source_locations": [escape(x)[0] for x in sources]}
        scan_id = scan.id
        done = s.scalar(select(func.count()).select_from(ScanFile).where(ScanFile.scan_id == scan_id)) or 0
        run = Run(done)  # this run's entry in the scan's record (vigie.ingest.runs): written now, ended below
        run.begin(scan)
    kg = _known_good.load(store) or None  # known-good digests (NSRL), checked on the workers before decoding
    try:
        t0 = time.perf_counter()
        in_process = n_workers <= 1 and settings.hash_in_process and fresh  # else worker processes decode
        # The workers (a local pool, or a Dask cluster: a local one takes seconds to start) start now, while the
        # matcher loads its banks and the sources are walked.
        ready = _ClientOpener(cluster) if cluster else \
            None if in_process else start_pool(max(n_workers, 1), settings, scan_id, kg, thumbnails)
        try:
            matcher = Matcher(store, settings)  # while the workers start
            matcher.refresh()
            prog = ScanProgress(skipped_resume=done, total_bytes=disk_bytes(sources) if on_item else 0)
            items = _resumed(store, scan_id, sources, settings, done, run) if done else iter_items(sources, settings)
            if done:  # how the walk was taken up, kept even if this run is killed
                with store.session() as s:
                    run.save(s.get(Scan, scan_id))
        except BaseException:
            if isinstance(ready, _ClientOpener):
                ready.close()
            elif ready is not None:
                ready.shutdown(wait=False, cancel_futures=True)
            raise
        pending: list[tuple[Item, ItemResult]] = []
        seq = done

        def flush() -> None:
            nonlocal seq
            if not pending:
                return
            if lock is not None:
                lock.check()
            results = _match(matcher, [r for _, r in pending], banks, settings)
            rows = []
            for (item, r), mres in zip(pending, results):
                seq += 1
                rows.append(_row(scan_id, seq, item, r, mres, writer))
            _insert_rows(store, rows)
            pending.clear()

        try:
            for new, (item, r) in enumerate(_hashed(items, settings, scan_id, n_workers, cluster=cluster,
                                                    known_good=kg, miniatures=thumbnails, ready=ready,
                                                    early=fresh), start=1):
                pending.append((item, r))
                prog.files += 1
                prog.bytes += r.size or 0
                if item.path is not None:  # a file on disk (members count with their container)
                    prog.disk_bytes_done += r.size or 0
                if on_item:
                    on_item(prog)
                if len(pending) >= 64:
                    flush()
                if stop_after is not None and new >= stop_after:
                    flush()
                    with store.session() as s:
                        sc = s.get(Scan, scan_id)
                        sc.hashing_seconds += time.perf_counter() - t0
                        sc.status = "interrupted"
                        run.end(sc, "interrupted", seq)
                    return {"status": "interrupted", "files_done": seq}
            flush()
        except LockLost:
            raise  # another run may hold the scan now: its record is that run's to write
        except Exception:
            with store.session() as s:  # never left "running" by a crash: the same command resumes it
                sc = s.get(Scan, scan_id)
                sc.status = "failed"
                run.end(sc, "failed", seq)
            raise
        with store.session() as s:
            sc = s.get(Scan, scan_id)
            sc.hashing_seconds += time.perf_counter() - t0
            sc.status = "done"
            sc.finished_at = utcnow()
            run.end(sc, "done", seq)
        return write_report(store, settings, scan_id, out_dir)
    finally:
        if kg:
            kg.release()  # a newer known-good set may now replace this one (vigie.banks.known_good)


#: The most suffixes tried for one location that another item of the scan holds already (`_insert_rows`).
MAX_SAME_LOCATION = 1000


def _insert_rows(store: Store, rows: list[dict]) -> None:
    """Insert a batch of rows; when a row's location is another row's already, give it a suffix.

    Names may hold ``!``, the separator of locations, so two different items can have the same location: a
    container ``a`` with a member ``b.jpg`` beside a file named ``a!b.jpg``, or a member ``x!y`` beside a member
    ``x`` that is an archive holding ``y``. Hostile evidence can be built that way, and the scan's unique
    location (what resume and the report key on) refused the batch and ended the scan. The database's unique
    index finds the collision (no set of every location is held in memory); the batch is then inserted row by
    row, and the later item gets ``#dupN`` after its location, the flag `duplicate_location` and its location
    as walked in `detail.walked_location` (`vigie.ingest.reopen` reads such a location without the suffix)."""
    from sqlalchemy.exc import IntegrityError

    try:
        with store.session() as s:
            s.execute(insert(ScanFile), rows)
        return
    except IntegrityError:
        pass
    for row in rows:
        walked = row["location"]
        for k in range(1, MAX_SAME_LOCATION + 1):
            if k > 1:
                row = {**row, "location": f"{walked}{DUP}{k}", "flags": [*row["flags"], "duplicate_location"],
                       "detail": {**(row["detail"] or {}), "walked_location": walked}}
            try:
                with store.session() as s:
                    s.execute(insert(ScanFile), [row])
                break
            except IntegrityError:
                if k == MAX_SAME_LOCATION:
                    raise


def _resumed(store: Store, scan_id: int, sources: list[str], settings: Settings, done: int, run: Run
             ) -> Iterator[Item]:
    """The items after the `done` stored rows of a resumed scan: the containers wholly before them are not
    opened again (`vigie.ingest.resume`). When the evidence no longer gives the stored locations, every item is
    walked again and those already stored are skipped by location (`_not_stored`). Either way `run` records
    how, and the stored pictures and videos whose size the walk now finds otherwise (`vigie.ingest.runs`)."""
    def locations() -> Iterator[tuple]:
        last = 0
        while True:
            with store.sessions() as s:
                batch = s.execute(select(ScanFile.seq, ScanFile.location, ScanFile.size, ScanFile.media_type,
                                         STORED_MTIME)
                                  .where(ScanFile.scan_id == scan_id, ScanFile.seq > last)
                                  .order_by(ScanFile.seq).limit(10_000)).all()
            if not batch:
                return
            for _, loc, size, mt, mtime in batch:  # a container's row may hold its media's size (E01): not compared
                yield (loc, size, mtime) if is_media(mt) else (loc, None, None)
            last = batch[-1][0]

    try:
        return resumed_items(sources, settings, done, locations(), run.item_changed)
    except Diverged as exc:
        log.warning("resuming scan %s by walking every item again: %s", scan_id, exc)
        run.walked_again(str(exc))
        return _not_stored(store, scan_id, iter_items(sources, settings), run)


#: A stored row's modification time, as its walk recorded it (`detail.source.mtime`), for a resume to compare.
STORED_MTIME = ScanFile.detail[("source", "mtime")]

#: Locations holding ``!`` met stored by a walk taken again (`_not_stored`), kept to tell their occurrences apart.
MAX_SEEN_AGAIN = 100_000


def _not_stored(store: Store, scan_id: int, items: Iterator[Item], run: Run | None = None, batch: int = 500
                ) -> Iterator[Item]:
    """The items whose location the scan has not stored yet, asked of the store a batch at a time: evidence that
    changed since the scan stopped (a file gone, a file added) is neither skipped short nor stored twice, as
    skipping the first `done` items of the new walk would. A stored picture or video whose size is not the
    walked item's is told to `run`.

    Two items may be walked to one location (names holding ``!``, `_insert_rows`): the second occurrence is
    stored as ``#dup2`` and so on, so the walk's occurrences of such a location are counted (the last
    `MAX_SEEN_AGAIN` locations) and each is looked up under its own row: the second is not skipped because
    the first was stored."""
    from collections import OrderedDict

    def stored(locs: set[str]) -> dict[str, tuple]:
        if not locs:
            return {}
        with store.sessions() as s:
            return {loc: (size, mt, mtime) for loc, size, mt, mtime in s.execute(
                select(ScanFile.location, ScanFile.size, ScanFile.media_type, STORED_MTIME).where(
                    ScanFile.scan_id == scan_id, ScanFile.location.in_(locs)))}

    seen: OrderedDict[str, int] = OrderedDict()
    while chunk := list(itertools.islice(items, batch)):
        have = stored({it.location for it in chunk})
        keys, again = [], set()
        for it in chunk:
            key = it.location
            if key in have and SEP in key:
                k = seen.pop(key, 0) + 1
                seen[key] = k
                if len(seen) > MAX_SEEN_AGAIN:
                    seen.popitem(last=False)
                if k > 1:
                    key = f"{key}{DUP}{k}"
                    again.add(key)
            keys.append(key)
        have |= stored(again)  # the later occurrences' own rows (none asked for in most chunks)
        for it, key in zip(chunk, keys):
            if key not in have:
                yield it
                continue
            size, mt, mtime = have[key]
            if run is not None and is_media(mt):
                note_change(run.item_changed, key, (size, mtime), it)


def _hashed(items: Iterator[Item], settings: Settings, scan_id: int, n: int, cluster: str | None = None,
            known_good: KnownGood | None = None, miniatures: bool = False, ready=None, early: bool = False
            ) -> Iterator[tuple[Item, ItemResult]]:
    """Results in input order; on a Dask cluster when `cluster` is given (`ready`: its `_ClientOpener`, or a
    new one), else a process pool (`ready`, from `start_pool`, or a new one; one worker process for `n` <= 1
    too, so that a decoder crash costs its file, not the scan) with a window bounded in tasks and bytes; small
    files go several to a task (`_shares_task`).
    In this process only for one worker with the setting `hash_in_process`, on a fresh scan (`early`).

    `early`: hash the first small pictures in this process while the pool starts (`vigie.ingest.early`). Not on
    a resumed scan: a picture that crashed its decoder there would crash the scan again, where the pool pins
    the crash on the file."""
    if cluster:
        from vigie.ingest.distributed import hash_on_cluster

        opening = ready if ready is not None else _ClientOpener(cluster)  # seconds to start: hash here meanwhile
        try:
            it, pending = iter(items), None
            if early and while_cluster_starts(cluster):
                pending, it = yield from while_starting(it, opening.done, settings, known_good, miniatures)
            client = opening.client()
            results = hash_on_cluster(client, it, settings, miniatures=miniatures)
            if pending is not None:  # still hashed here: the cluster takes the items after it meanwhile
                first = next(results, None)
                r = pending.result(hard_limit(settings))
                if r is None:  # its decoder hangs here: the cluster's hard limit ends it
                    r = next(hash_on_cluster(client, iter([pending.item]), settings, miniatures=miniatures))[1]
                    _known_good_flag(known_good, pending.item, r)
                yield pending.item, r
                results = itertools.chain([first] if first is not None else [], results)
            for item, r in results:
                _known_good_flag(known_good, item, r)
                yield item, r
        finally:
            opening.close()
        return
    if n <= 1 and settings.hash_in_process and early:
        # Only on a fresh scan: a resumed one may be resuming after the file that crashed this process.
        local = InProcess(settings, known_good, miniatures)
        for item in items:
            yield item, local.hash(item)
        return
    n = max(n, 1)
    from collections import deque
    from concurrent.futures.process import BrokenProcessPool

    def pool(size: int = n):
        return start_pool(size, settings, scan_id, known_good, miniatures)

    ex = ready if ready is not None else pool()
    limit = hard_limit(settings)
    # The window holds one entry per item, in input order: [item, task, index in the task, followers, size key].
    window: deque = deque()
    tasks = 0  # tasks sent, and copies waiting for their original: the window's bound (`WINDOW_PER_WORKER` a worker)
    inflight_bytes = 0
    group: _Task | None = None  # small items gathered for one task, not sent yet (`_shares_task`)

    def send(task: _Task, like: ItemResult | None = None) -> None:
        task.fut = submit(ex, scan_worker.work_many, task.items, like)  # a broken pool: met at the wait below

    try:
        # While the workers start (the forkserver imports the hashing code and loads its kernels: about a
        # second, on one core), this process hashes the first pictures itself on the core left idle.
        it = iter(items)
        if early and not wait_for_workers(lambda: _started(ex, n), n):  # no core of its own once they are up
            pending, it = yield from while_starting(it, lambda: _started(ex, n), settings, known_good, miniatures)
            if pending is not None:  # still hashed here: first in the window, the workers take the items after it
                window.append([pending.item, _Task([pending.item], pending), 0, [], None])
                tasks += 1
                inflight_bytes += len(pending.item.data) if pending.item.data is not None else 0
        exhausted = False
        leaders: dict[int, list] = {}  # size -> the window entry in flight that later ones of that size wait for
        while True:
            while not exhausted and tasks < n * WINDOW_PER_WORKER and inflight_bytes < WINDOW_BYTES:
                item = next(it, None)
                if item is None:
                    exhausted = True
                    break
                inflight_bytes += len(item.data) if item.data is not None else 0
                key = _size_key(item)
                lead = leaders.get(key) if key is not None else None
                if lead is not None:  # maybe a copy of an item in flight: sent with its result (`_size_key`)
                    entry = [item, _Task([item]), 0, [], key]
                    tasks += 1
                    lead[3].append(entry)
                elif _shares_task(item):
                    if group is None:
                        group = _Task([])
                    entry = [item, group, len(group.items), [], key]
                    group.add(item)
                    if group.full():
                        send(group)
                        tasks += 1
                        group = None
                else:
                    if group is not None:  # sent first: the items reach the workers in input order
                        send(group)
                        tasks += 1
                        group = None
                    entry = [item, _Task([item]), 0, [], key]
                    tasks += 1
                    send(entry[1])
                if key is not None and lead is None:
                    leaders[key] = entry
                window.append(entry)
            if group is not None and (exhausted or window[0][1] is group):
                send(group)  # nothing more to add, or the next result awaited is in it: sent part-filled
                tasks += 1
                group = None
            if not window:
                return
            entry = window.popleft()
            item, task, index, followers, key = entry
            inflight_bytes -= len(item.data) if item.data is not None else 0
            try:
                if isinstance(task.fut, Early):
                    r = task.fut.result(limit)
                    task.fut = task.fut.future
                    if r is not None:
                        task.results = [r]
                    else:  # its decoder hangs in this process: a worker's hard limit ends it
                        send(task)
                if task.results is None:
                    task.results = wait_result(ex, task.fut, limit)
            except (BrokenProcessPool, StuckWorker):
                # Every task in flight that had not finished failed with the pool. Their items are run one by
                # one in a pool of one until one crashes (or hangs) again, which pins it on its file; the items
                # after it go back to a fresh pool (most of a window of small files is merely queued: run one
                # by one, it would hold the scan up on one core for each crash). Another culprit among them
                # costs another round. Tasks that finished before the pool broke keep their results.
                ex.shutdown(wait=False, cancel_futures=True)
                rest = [entry, *window]
                window.clear()
                leaders.clear()
                inflight_bytes = tasks = 0
                group = None
                solo = None
                for k, e in enumerate(rest):
                    i, t = e[0], e[1]
                    if t.results is None and _succeeded(t.fut):
                        t.results = t.fut.result()
                    if t.results is not None:
                        yield i, t.results[e[2]]
                        continue
                    if solo is None:
                        solo = pool(1)
                    try:
                        yield i, wait_result(solo, solo.submit(scan_worker.work, i), limit)
                    except (BrokenProcessPool, StuckWorker) as exc:
                        solo.shutdown(wait=False, cancel_futures=True)
                        solo = None
                        yield i, failed_result(i, ("timeout", str(exc)) if isinstance(exc, StuckWorker)
                                               else ("decoder_crash", "the decoder crashed on this file"))
                        it = itertools.chain([x[0] for x in rest[k + 1:]], it)
                        exhausted = False
                        break
                if solo is not None:
                    solo.shutdown(wait=True)
                ex = pool()
                continue
            r = task.results[index]
            if index == len(task.items) - 1:
                tasks -= 1
            if leaders.get(key) is entry:
                del leaders[key]
            for f in followers:
                send(f[1], r)
            yield item, r
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _known_good_flag(known_good: KnownGood | None, item: Item, r: ItemResult) -> None:
    """Flag a Dask worker's result `known_good` when a known-good bank has its digest: Dask workers decode before
    this check; the row is still known-good, never queued."""
    if known_good and not item.container and "known_good" not in r.flags and known_good.hit(vars(r)):
        r.flags.append("known_good")


def _succeeded(fut) -> bool:
    """Whether a pool's future holds a result (it finished before its pool broke)."""
    return fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None


#: Small files travel to the workers several to a task: each task costs the scan's threads and a worker about
#: half a millisecond of CPU (pickling both ways, the queues, waking threads), as much as hashing a small
#: thumbnail; a task of up to `TASK_ITEMS` files of at most `TASK_SMALL_BYTES` each (`_shares_task`) pays it
#: once. Few and small enough that the last tasks still spread over the workers.
TASK_ITEMS = 8
TASK_SMALL_BYTES = 256 * 1024


class _Task:
    """Items hashed by one call in a worker (`scan_worker.work_many`), their future and, once in, their results.
    `fut` may also be an `Early`: the picture hashed in this process when the workers came up."""

    __slots__ = ("items", "fut", "results")

    def __init__(self, items: list[Item], fut=None) -> None:
        self.items, self.fut, self.results = items, fut, None

    def add(self, item: Item) -> None:
        self.items.append(item)

    def full(self) -> bool:
        return len(self.items) >= TASK_ITEMS


def _shares_task(item: Item) -> bool:
    """Whether `item` may share its task with other small files: a file or member of at most
    `TASK_SMALL_BYTES`, not a container (its members come after it) and not already failed."""
    if item.container or item.error is not None:
        return False
    size = len(item.data) if item.data is not None else item.size
    return size is not None and size <= TASK_SMALL_BYTES


#: Smallest file that waits for an item of its size in flight (`_size_key`): smaller ones cost little to hash.
FOLLOW_MIN_BYTES = 16 * 1024


def _size_key(item: Item) -> int | None:
    """The size by which an item may be a copy of one in flight, or None.

    Copies often sit next to their original (`IMG_1.jpg`, `IMG_1 (1).jpg`), so both are in flight at once,
    on two workers, and neither finds the other in the store. An item of the same size as one in flight is
    sent to a worker only with that one's result, which the worker reuses if the SHA-256 is the same: a copy
    is hashed once. Same size, other content costs only the wait, while the workers hash the rest of the
    window."""
    if item.container or item.error is not None:
        return None
    size = len(item.data) if item.data is not None else item.size
    return size if size is not None and size >= FOLLOW_MIN_BYTES else None


class _ClientOpener:
    """`vigie.ingest.distributed.open_client(spec)` on a thread of its own, so that the scan can hash its first
    pictures while a local cluster starts (its scheduler and workers import Dask and the hashing code)."""

    def __init__(self, spec: str) -> None:
        import threading

        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._open, args=(spec,), name="vigie-dask-start", daemon=True)
        self.thread.start()

    def _open(self, spec: str) -> None:
        from vigie.ingest.distributed import open_client

        try:
            self.result = open_client(spec)
        except BaseException as exc:  # noqa: BLE001 - raised again in the scan's thread by `client`
            self.error = exc

    def done(self) -> bool:
        return not self.thread.is_alive()

    def client(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.result

    def close(self) -> None:
        """Wait for the opening to end and close the client (and the local cluster it started), if one opened."""
        from vigie.ingest.distributed import close_client

        self.thread.join()
        if self.result is not None:
            result, self.result = self.result, None
            close_client(result)


def _started(ex, n: int) -> bool:
    """Whether the `n` workers of a pool made by `start_pool` have all answered (or failed to start)."""
    probes = getattr(ex, "vigie_probes", None)
    return probes is None or (len(probes) >= n and all(p.done() for p in probes))


def start_forkserver(settings: Settings):
    """This process's forkserver for a scan's workers (`vigie.procs.scan_forkserver`), started now if the command
    did not start it already (`vigie.procs.early_scan_forkserver`): its preload (the hashing code imported, the
    kernels loaded: about a second of one core) then runs while the scan reads the store, its known-good digests
    first (seconds for an NSRL bank of millions of digests), rather than after them. `start_pool` gets the
    running one."""
    from vigie.procs import scan_forkserver

    return scan_forkserver(settings)


def start_pool(n: int, settings: Settings, scan_id: int, known_good: KnownGood | None = None,
               miniatures: bool = False):
    """A process pool of `n` hashing workers, started now (not at the first item) from a thread, so that their
    start-up overlaps the scan's own (banks loaded, the sources' sizes walked, resumed items skipped).

    The workers come from a forkserver that has imported the hashing code and loaded the numba kernels
    once (`vigie.ingest.preload`; `preload_plain` for a scan without query variants, `--fast`): each worker forks
    ready instead of importing and loading them itself
    (seconds per worker, and a JIT compile per worker after the code changed)."""
    from concurrent.futures import ProcessPoolExecutor

    ctx = start_forkserver(settings)
    from vigie.store.lookup import earlier_content

    lookup = earlier_content(settings.effective_database_url)  # compiled here: workers need no SQLAlchemy
    ex = ProcessPoolExecutor(n, mp_context=ctx, initializer=scan_worker.init,
                             initargs=(settings, scan_id, os.getpid(), known_good, miniatures, lookup))

    ex.vigie_probes = []  # one answer per worker: `_started`

    def spawn() -> None:  # the workers start on demand otherwise; starting one waits for the forkserver
        try:
            for _ in range(n):
                ex.vigie_probes.append(ex.submit(os.getpid))
        except Exception:  # noqa: BLE001 - the pool was shut down meanwhile: the scan reports why
            ex.vigie_probes = None  # nothing more to wait for: `_started`

    import threading

    threading.Thread(target=spawn, name="vigie-pool-start", daemon=True).start()
    return ex


def _match(matcher: Matcher, results: list[ItemResult], banks: list[str] | None, settings: Settings
           ) -> list[MatchResult]:
    queries = []
    for r in results:
        q = Query(r.location, {s: getattr(r, s) for s in DIGESTS if getattr(r, s)}, [], r.pdq_quality)
        if r.pdq:
            q.pdq = [("original", r.pdq)] + [(v["kind"], v["pdq"]) for v in r.pdq_variants]
        queries.append(q)
    out = matcher.match(queries, banks=banks, record=True)
    for r, res in zip(results, out):
        if r.video_frames and not any(m.signal != "pdq" for m in res.matches):
            res.matches += matcher.match_video(r.video_frames, banks=banks)
    return out


def _row(scan_id: int, seq: int, item: Item, r: ItemResult, mres: MatchResult, writer=None) -> dict:
    """The `scan_files` row of one location, as the values of one bulk insert (no ORM object per row)."""
    exact = [m for m in mres.matches if m.signal in DIGESTS]
    near = [m for m in mres.matches if m.signal not in DIGESTS]
    media = is_media(r.media_type)
    if exact:
        klass = "exact"
    elif "known_good" in r.flags:
        klass = "skipped"  # a known-good file (NSRL): not decoded, never queued
    elif near:
        klass = "near"
    elif r.error is not None and r.error[0] not in NOT_ERRORS:
        klass = "error"
    elif item.container or not media:
        klass = "skipped"
    else:
        klass = "unknown"
    flags = list(r.flags)
    if not media and not item.container and r.error is None and klass == "skipped":
        flags.append("not_media")
    # Every text is UTF-8 by now (the walkers escape names); `clean` is the last guard before the store, for
    # what holds names and metadata text (not the variants' kinds and hashes, which Vigie writes itself).
    detail = clean(r.detail) if r.detail else {}
    if r.pdq_variants:
        detail["pdq_variants"] = r.pdq_variants
    if r.video_frames:
        detail["video_frames"] = [list(x) for x in r.video_frames]
    if item.meta:
        detail["source"] = clean({k: v for k, v in item.meta.items() if isinstance(v, (str, int, float, bool))})
    if klass == "unknown" and r.sha256 and writer is not None:
        writer.add(r)  # sealed, blurred grey miniatures, only when asked (vigie.report.thumbs)
    return dict(scan_id=scan_id, seq=seq, location=clean(r.location), size=r.size, media_type=r.media_type,
                md5=r.md5, sha1=r.sha1, sha256=r.sha256, pdq=r.pdq, pdq_quality=r.pdq_quality, klass=klass,
                matches=[m.as_dict() | _when(m) for m in mres.matches] or None, flags=sorted(set(flags)),
                error_code=r.error[0] if r.error else None, error_message=clean(r.error[1]) if r.error else None,
                detail=detail or None)


def _when(m) -> dict:
    span = getattr(m, "span", None)
    return {"start": span[0], "end": span[1]} if span else {}


__all__ = ["CLASSES", "ItemResult", "process_item", "run_scan", "scan_key", "ErrorRecord"]
