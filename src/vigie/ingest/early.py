"""Hashing in the scan's own process: on one worker with `hash_in_process`, and while the workers start.

A fresh scan's workers come from a forkserver that imports the hashing code and loads the kernels (about a
second of one core); a local Dask cluster takes longer. Meanwhile the scan hashes the first small pictures
itself, on the core left idle (`while_starting`).

When the workers come up while a picture is being hashed here, that picture is not hashed a second time: it
stays in flight here, as the first item of the window, and the workers take the items after it
(`Early`). Until 2026-12-07 it was left to its thread and sent to the workers too, so its hashing here went
on for nothing: on the scan bench, the first camera photo was given up 0.05-0.11 s after it started, and its
0.35-0.54 s of CPU was spent anyway, while two workers had both cores to use.

Hashing here is not waited for at any price: a hostile picture whose decoder hangs in C code, where no signal
reaches it, is waited for at most the workers' hard limit (`vigie.batch.hard_limit`), then given to a worker,
whose hard limit ends it (`Early.result`).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

from vigie.banks.known_good import KnownGood
from vigie.ingest.heap import keep_heap
from vigie.ingest.members import Item
from vigie.ingest.process import ItemResult, RecentContent, process_item
from vigie.media.sniff import SNIFF_BYTES, sniff
from vigie.settings import Settings

#: Largest item the scan's own process hashes while its workers start: a picture, not a video or an
#: archive, which could hold the ready workers up.
EARLY_MAX_BYTES = 16 * 1024 * 1024

#: How often the scan looks whether its workers are up while a picture is hashed here (seconds).
EARLY_POLL = 0.05

#: How long a scan with a worker for every core waits for its workers before it hashes here (seconds). A
#: forkserver whose preload has finished forks them in 0.04-0.06 s (measured); one still preloading takes
#: about a second, which the scan uses.
EARLY_GRACE = 0.25


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def wait_for_workers(started: Callable[[], bool], workers: int, grace: float | None = None) -> bool:
    """With a worker for every core, wait up to `grace` seconds (`EARLY_GRACE`) for them to come up; whether
    they did.

    Hashing here pays only on a core the workers leave idle. With fewer workers than cores there is one all
    along (the scan hashes its first pictures at once). With as many, there is one only while the forkserver
    still preloads: when it is warm (the command's imports and the store's opening took longer than its
    preload, as on every `vigie scan` measured), the workers are up within a tenth of a second, and the first
    picture hashed here cost this process the loading of every numba kernel (0.5-1 s of CPU) taken from the
    workers' two cores: on the scan bench's 2-worker run, 0.66 s more CPU (three paired runs, 2026-12-07)."""
    if workers < cores():
        return started()
    deadline = time.monotonic() + (EARLY_GRACE if grace is None else grace)
    while not started():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def while_cluster_starts(cluster: str) -> bool:
    """Whether the scan hashes its first pictures itself while its Dask cluster (`cluster`, as `--cluster`
    reads it) starts: not for a local cluster with a worker for every core. Starting one is this process's own
    work (importing Dask, the scheduler, the nannies: Python threads under one lock), which the kernels loaded
    and the picture hashed here slowed down; once it is up the workers fill every core. In three paired runs of
    the scan bench (`local:2` on 2 cores, 2026-12-07) the scan took 12.35-13.66 s without that hashing and
    13.44-14.33 s with it, every pair faster without. A remote cluster leaves this machine's cores to the scan."""
    from vigie.ingest.distributed import parse_cluster

    try:
        kind, arg = parse_cluster(cluster)
    except ValueError:
        return True  # the cluster's own start reports it
    return not (kind == "local" and isinstance(arg, int) and arg >= cores())


class InProcess:
    """Hashing in this process (one worker, or while the workers start), with a bounded cache of recent
    content so that a duplicate is hashed once."""

    def __init__(self, settings: Settings, known_good: KnownGood | None, miniatures: bool) -> None:
        keep_heap(settings.scan_heap_keep_mb)  # this process hashes: reuse its picture buffers (vigie.ingest.heap)
        self.settings, self.miniatures = settings, miniatures
        self.known_good = known_good.hit if known_good else None
        self.seen = RecentContent(10_000)

    def hash(self, item: Item) -> ItemResult:
        r = process_item(item, self.settings, self.seen.get, self.known_good, miniatures=self.miniatures)
        self.seen.add(r)
        return r


def early_ok(item: Item) -> bool:
    """Whether `item` is a picture small enough to hash in this process while the workers start."""
    if item.container or item.error is not None:
        return False
    if item.data is not None:
        head = item.data[:SNIFF_BYTES]
        size = len(item.data)
    elif item.path is not None and item.size is not None:
        size = item.size
        try:
            with open(item.path, "rb") as f:
                head = f.read(SNIFF_BYTES)
        except OSError:
            return False
    else:
        return False
    mtype = sniff(head) if 0 < size <= EARLY_MAX_BYTES else None
    return mtype is not None and mtype.startswith("image/")


class Early:
    """A picture whose hashing here was under way when the workers came up: `item`, and `future`, which its
    thread completes (a daemon thread: it does not hold the exit if its decoder never returns)."""

    __slots__ = ("item", "future")

    def __init__(self, item: Item, future: Future) -> None:
        self.item, self.future = item, future

    def result(self, limit: float | None) -> ItemResult | None:
        """The result, waited for at most `limit` seconds (None: as long as it takes); None if it is not in
        by then: the caller gives the item to a worker. An exception of the hashing is raised here (a bug:
        `process_item` reports what it could not read in its result)."""
        try:
            return self.future.result(timeout=limit)
        except TimeoutError:
            return None


def hash_on_thread(hash_item: Callable[[Item], ItemResult], item: Item) -> Future:
    """`hash_item(item)` on a daemon thread of its own; the future its result (or exception) goes to."""
    fut: Future = Future()

    def run() -> None:
        try:
            fut.set_result(hash_item(item))
        except BaseException as exc:  # noqa: BLE001 - raised again by whoever waits for the result
            fut.set_exception(exc)

    threading.Thread(target=run, name="vigie-early-hash", daemon=True).start()
    return fut


def while_starting(it: Iterator[Item], started: Callable[[], bool], settings: Settings,
                   known_good: KnownGood | None, miniatures: bool):
    """Yield `(item, result)` for the first items, hashed in this process, until `started()` or an item that is
    not a small picture; return `(early, rest)`: the `Early` picture still being hashed here when the
    workers came up (or None), and the iterator of the items after the ones yielded and after it."""
    local: InProcess | None = None
    for item in it:
        if started() or not early_ok(item):
            return None, itertools.chain([item], it)
        if local is None:
            local = InProcess(settings, known_good, miniatures)
        fut = hash_on_thread(local.hash, item)
        while True:
            try:
                r = fut.result(timeout=EARLY_POLL)
                break
            except TimeoutError:
                if started():
                    return Early(item, fut), it
        yield item, r
    return None, iter(())
