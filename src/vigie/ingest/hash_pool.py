"""The crawler's hashing of downloaded media, in worker processes (or threads): `HashPool`.

Split from `vigie.ingest.worker`, which hands each downloaded media to it; what the processes themselves
run is `vigie.ingest.crawl_hash` (a module that imports little, so a process starts fast).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from vigie.ingest import crawl_hash
from vigie.settings import Settings

log = logging.getLogger("vigie.crawl")


class HashPool:
    """Hashing of downloaded media in worker processes: on every core, and a decoder that crashes on a
    hostile file costs that file (error `decoder_crash`), never the crawl or the server.

    After a crash the pool is replaced and the files that were in flight are tried again one at a time,
    so only the culprit fails. `workers=0` hashes in threads of this process instead (PDQ releases the GIL).

    At most `workers + 1` files are handed to the pool at once (the rest wait here, holding nothing of the
    pool), so `crawl_hash_seconds` counts a file's own hashing, not a queue. A file that takes longer gets
    `hash_timeout`, except while the pool has not yet returned anything (its processes are starting and
    compiling: a cold start), when it is given the time once more."""

    def __init__(self, settings: Settings, workers: int, fn=None):
        self.settings, self.workers = settings, workers
        self.fn = fn or crawl_hash.hash_media  # module level: it travels to the worker processes
        self._pool = None
        self._lock = threading.Lock()
        self._warm = False
        self._gate: tuple[object, asyncio.Semaphore] | None = None

    def _get(self):
        with self._lock:
            if self._pool is None:
                self._pool = crawl_hash.new_pool(self.settings, self.workers) if self.workers > 0 else \
                    ThreadPoolExecutor(max(1, self.settings.effective_workers), thread_name_prefix="vigie-hash")
                self._warm = False
            return self._pool

    def start(self) -> None:
        """Start the hashing processes now, in a thread of their own (a process start waits for the forkserver's
        imports), so they come up while the index loads and the first pages download, not on the first picture."""
        if self.workers <= 0 or self._pool is not None:
            return
        pool = self._get()

        def spawn() -> None:
            try:
                for i in range(self.workers):
                    pool.submit(crawl_hash.warm, i)
            except RuntimeError:  # shut down meanwhile: the first file starts it again
                pass

        threading.Thread(target=spawn, name="vigie-hash-start", daemon=True).start()

    def _drop(self, pool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def _retire(self, pool) -> None:
        """Replace a pool one of whose processes is stuck on a file given up (a decoder stuck in C code does
        not return): its processes are killed (their forkserver reaps them), the next files get a fresh pool,
        and the files it still held fail with it and are hashed again one by one (`_process`). Left running,
        each stuck process would hold a slot for good, and with all of them stuck every file would time out."""
        from vigie.ingest.stopping import kill_processes, pool_processes

        procs = pool_processes(pool)  # before the shutdown, which forgets them
        self._drop(pool)
        kill_processes(procs)

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()  # one per event loop: a kept pool outlives the rounds' loops
        if self._gate is None or self._gate[0] is not loop:
            n = (self.workers if self.workers > 0 else max(1, self.settings.effective_workers)) + 1
            self._gate = (loop, asyncio.Semaphore(n))
        return self._gate[1]

    async def _wait(self, fut, url: str, data: bytes):
        """The result of a submitted file, within crawl_hash_seconds (twice that on a cold start)."""
        limit = self.settings.crawl_hash_seconds
        w = asyncio.wrap_future(fut)
        for cold_retry in (False, True):
            done, _ = await asyncio.wait({w}, timeout=limit)
            if done:
                self._warm = True
                return w.result()
            if self._warm or cold_retry:
                break
            log.warning("hashing %s took over %g s while the hashing processes start; waiting once more", url, limit)
        log.warning("hashing %s took over %g s: given up", url, limit)
        return _failed(url, data, ("hash_timeout", f"hashing took longer than {limit:g} s (crawl_hash_seconds)"))

    async def process(self, url: str, data: bytes):
        async with self._slots():
            return await self._process(url, data)

    async def _process(self, url: str, data: bytes):
        from concurrent.futures.process import BrokenProcessPool

        pool = self._get()
        if self.workers <= 0:
            return await self._wait(pool.submit(crawl_hash.hash_item, url, data, self.settings), url, data)
        try:
            fut = pool.submit(self.fn, url, data)
            r = await self._wait(fut, url, data)
            if not fut.done():  # given up (hash_timeout), its process still on the file: never to be used again
                self._retire(pool)
            return r
        except BrokenProcessPool:
            self._drop(pool)
        solo = crawl_hash.new_pool(self.settings, 1)  # alone, so that a crash is pinned on the file that caused it
        try:
            return await asyncio.wrap_future(solo.submit(self.fn, url, data))
        except BrokenProcessPool:
            log.warning("the decoder crashed on %s", url)
            return _failed(url, data, ("decoder_crash", "the decoder crashed on this file; the crawl went on"))
        finally:
            solo.shutdown(wait=False, cancel_futures=True)

    def close(self, *, kill: bool = False) -> None:
        """Shut the pool down: after the files in hand (default), or at once, ending its processes (`kill`:
        the crawler was told to stop)."""
        from concurrent.futures import ProcessPoolExecutor

        from vigie.ingest.stopping import kill_pool

        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill and isinstance(pool, ProcessPoolExecutor):
            kill_pool(pool)
        else:
            pool.shutdown(wait=not kill, cancel_futures=True)


def make_hasher(settings: Settings) -> HashPool:
    """Worker processes when `crawl_hash_processes` (the default) and there is more than one core to use;
    else threads of this process (faster to start; a decoder crash then stops this process)."""
    n = settings.effective_workers
    return HashPool(settings, max(1, n) if settings.crawl_hash_processes else 0)


def _failed(url: str, data: bytes, error: tuple[str, str]):
    """The result of a file whose hashing process died or hung on it, with its digests (computed here, nothing
    decoded): a known file that kills or hangs a decoder is still known by them (`vigie.ingest.process`)."""
    from vigie.ingest.members import Item
    from vigie.ingest.process import failed_result

    return failed_result(Item(url, size=len(data), data=data), error)
