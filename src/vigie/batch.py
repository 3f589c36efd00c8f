"""Hash many files on all cores, in order, surviving hostile files.

Results come back in input order through a bounded window, so memory stays flat on
millions of files. Work runs in worker processes: if a decoder crashes its process
(a hostile file can do that to C code), the files that were in flight are retried
one at a time in a fresh pool and the culprit gets the error code `decoder_crash`;
the batch goes on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from vigie.errors import ErrorRecord
from vigie.hashing import HashRecord, ReadError, digests_only, hash_file
from vigie.ingest.files import Skipped
from vigie.procs import forkserver_context  # noqa: F401 - known by this name here too
from vigie.settings import Settings

_worker_settings: Settings | None = None


def _init_worker(settings: Settings, parent: int | None = None) -> None:
    """A pool's initializer: the settings, and leave with `parent`, the process that made the pool."""
    global _worker_settings
    _worker_settings = settings
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if parent is not None:
        from vigie.lifeline import watch_parent

        watch_parent(parent)


HashFn = Callable[..., HashRecord]


def _work(fn: HashFn, path: str, variants: bool) -> HashRecord:
    assert _worker_settings is not None
    return fn(path, _worker_settings, variants=variants)


def _skipped(s: Skipped) -> HashRecord:
    return HashRecord(path=s.path, error=ErrorRecord(s.code, s.message))


def hash_many(items: Iterable[str | Skipped], settings: Settings, *, workers: int | None = None,
              variants: bool = False, on_done: Callable[[HashRecord], None] | None = None,
              fn: HashFn = hash_file) -> Iterator[HashRecord]:
    """Yield one HashRecord per item, in order. `fn(path, settings, variants=...)` hashes one file
    (a module-level function, since it travels to worker processes)."""
    n = workers if workers is not None else settings.effective_workers
    it = iter(items)
    if n <= 1:
        for item in it:
            rec = _skipped(item) if isinstance(item, Skipped) else fn(item, settings, variants=variants)
            if on_done:
                on_done(rec)
            yield rec
        return
    yield from _pooled(it, settings, n, variants, on_done, fn)


def _new_pool(settings: Settings, n: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=n, mp_context=forkserver_context(),
                               initializer=_init_worker, initargs=(settings, os.getpid()))


#: Seconds beyond twice `file_timeout` that a pool's user waits on the oldest item in flight before it kills
#: the pool: a worker's own limit is a SIGALRM, which stops Python code but not a decoder stuck in C.
STUCK_MARGIN = 10.0


class StuckWorker(Exception):
    """A worker held one item past the hard limit (`hard_limit`); its pool's processes were killed. The message
    is the `timeout` error's, for the item's record."""


def hard_limit(settings: Settings) -> float | None:
    """Seconds to wait on one item in a worker process: twice `file_timeout` plus `STUCK_MARGIN` (None: none)."""
    return 2 * settings.file_timeout + STUCK_MARGIN if settings.file_timeout else None


def submit(pool, fn, *args) -> Future:
    """`pool.submit(fn, *args)`; when the pool broke since its last result (a worker died: the executor then
    refuses new work, raising at once), a future already failed with that `BrokenProcessPool`. Callers keep a
    window of futures in flight and recover from a broken pool where they wait on one (`wait_result`); a submit
    that raised instead would end the whole batch or scan, whenever a crash landed between two submits."""
    try:
        return pool.submit(fn, *args)
    except BrokenProcessPool as exc:
        fut: Future = Future()
        fut.set_exception(exc)
        return fut


def wait_result(pool, fut: Future, limit: float | None):
    """`fut.result()`, or after `limit` seconds the pool's processes killed and `StuckWorker` raised. Callers
    wait on the oldest item in flight, so it has been running since at least when the wait began."""
    from vigie.ingest.stopping import kill_processes, pool_processes

    try:
        return fut.result(timeout=limit)
    except TimeoutError:
        kill_processes(pool_processes(pool))
        raise StuckWorker(f"its decoder did not return: the worker was stopped after {limit:g} s") from None


def _pooled(it: Iterator[str | Skipped], settings: Settings, n: int, variants: bool,
            on_done: Callable[[HashRecord], None] | None, fn: HashFn) -> Iterator[HashRecord]:
    window: deque[tuple[str | Skipped, Future | None]] = deque()
    pool = _new_pool(settings, n)
    limit = hard_limit(settings)
    try:
        exhausted = False
        while True:
            while not exhausted and len(window) < n * 8:
                try:
                    item = next(it)
                except StopIteration:
                    exhausted = True
                    break
                fut = None if isinstance(item, Skipped) else submit(pool, _work, fn, item, variants)
                window.append((item, fut))
            if not window:
                break
            item, fut = window.popleft()
            if fut is None:
                rec = _skipped(item)  # type: ignore[arg-type]
            else:
                try:
                    rec = wait_result(pool, fut, limit)
                except (BrokenProcessPool, StuckWorker):
                    pool.shutdown(wait=False, cancel_futures=True)
                    pending = [item] + [i for i, _ in window]
                    window.clear()
                    recs = list(_isolate(pending, settings, variants, fn))
                    pool = _new_pool(settings, n)
                    for r in recs:
                        if on_done:
                            on_done(r)
                        yield r
                    continue
            if on_done:
                on_done(rec)
            yield rec
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _isolate(items: list[str | Skipped], settings: Settings, variants: bool, fn: HashFn) -> Iterator[HashRecord]:
    """Run each item alone in a one-process pool, so a crash (or a hang) is pinned on its file."""
    pool = _new_pool(settings, 1)
    limit = hard_limit(settings)
    try:
        for item in items:
            if isinstance(item, Skipped):
                yield _skipped(item)
                continue
            try:
                yield wait_result(pool, pool.submit(_work, fn, item, variants), limit)
            except (BrokenProcessPool, StuckWorker) as exc:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _new_pool(settings, 1)
                yield _failed(item, ErrorRecord("timeout", str(exc)) if isinstance(exc, StuckWorker)
                              else ErrorRecord("decoder_crash",
                                               "the decoder crashed on this file; the rest of the batch went on"))
    finally:
        pool.shutdown(wait=True)


def _failed(path: str, error: ErrorRecord) -> HashRecord:
    """The record of a file whose worker died or hung on it, with its digests read here (never decoded here)."""
    rec = HashRecord(path=path, error=error)
    try:
        digests, rec.size, rec.media_type = digests_only(path)
    except (OSError, ReadError):
        return rec
    rec.md5, rec.sha1, rec.sha256 = digests["md5"], digests["sha1"], digests["sha256"]
    return rec
