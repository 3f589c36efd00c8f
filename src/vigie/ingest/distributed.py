"""Hash the items of a scan on a Dask cluster, results in input order.

The main process still walks the sources (`iter_items`), matches and writes the rows;
only `process_item` runs on the workers. Each task carries one `Item`:

* a plain file travels as its path, so every worker must see the same file at the same
  path (shared storage mounted identically on every worker);
* archive members and disk-image files travel as bytes inside the task: archives and
  disk images are read centrally, by the process that runs the scan.

A task carries a batch of items (up to `BATCH_ITEMS`, or `BATCH_BYTES` of content): one
task per file cost more in scheduling, serialisation and round trips than a small web
picture costs to hash. The settings (3 KB pickled) travel with each task: data scattered to the workers dies with the
worker that holds it, and every task that needs it with it (a decoder that killed the only worker of a
cluster ended the whole scan so). A bounded window of batches is in flight (3 per
worker thread by default), so memory stays flat however large the source. An item whose
hashing raises becomes an `ItemResult` with the error `internal_error`; a batch whose
worker died (more than the scheduler allows) is run again one item per task, so the
crash is pinned on its file (`decoder_crash`) and the others are hashed: the scan goes on.
Workers import the hashing code and load its kernels when they start (`vigie.ingest.preload`),
while the scan walks its first folders.

Time: the per-file limit (`file_timeout`) is a SIGALRM in a process's main thread, and Dask runs tasks
on worker threads, so on a cluster the scan bounds time itself: a task it waits on for longer than
`vigie.batch.hard_limit` (twice `file_timeout` plus a margin: 130 s by default) is given up, the worker
holding it is killed through its nanny, which starts a fresh one (a thread stuck in a decoder cannot be
stopped otherwise), and its items are hashed again one per task, so the one that hangs is recorded
`timeout` and the others are hashed. A worker without a nanny cannot be restarted: its stuck thread
stays busy (logged), the scan goes on.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator

from vigie.batch import StuckWorker, hard_limit
from vigie.ingest.heap import keep_heap
from vigie.ingest.members import Item
from vigie.ingest.process import ItemResult, RecentContent, failed_result, process_item
from vigie.settings import Settings

log = logging.getLogger(__name__)

#: How long a local cluster waits for a lost worker to come back before closing its nanny: for ever, in effect.
LOST_WORKER_TIMEOUT = "3650 days"
#: Worker deaths a task of a local cluster may cause before it fails (Dask's default: 3): a batch whose worker
#: died twice is run again one item per task, and an item that killed it twice is a `decoder_crash`. Each death
#: costs a worker's restart (imports and kernels: 1.5-2.5 s on a 2-core machine).
ALLOWED_FAILURES = 1
#: Dask's own monitoring, which on a cluster of a scan's two cores takes CPU from the hashing: the workers'
#: statistical profiler (a stack sample every 10 ms), the event loops' 20 ms tick and the 0.5 s system monitor
#: (the scheduler, nannies and client share the scan's process). Nobody looks at a local cluster's dashboard.
QUIET = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "500ms",
         "distributed.admin.system-monitor.interval": "5s", "distributed.admin.system-monitor.gil.enabled": False}
#: Environment of the worker processes this module starts: one thread each for numeric libraries.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Per worker process: content already hashed, per scan (token), so a duplicate is hashed once per worker.
_SEEN: OrderedDict[str, RecentContent] = OrderedDict()
_SEEN_PER_SCAN = 10_000
_SEEN_SCANS = 4
#: Most items, and most bytes of content, in one task.
BATCH_ITEMS = 64
BATCH_BYTES = 32 * 1024 * 1024


def parse_cluster(spec: str) -> tuple[str, int] | tuple[str, str]:
    """`local:N` (`local`: one worker per CPU) -> ("local", N); `tcp://host:8786` or `host:8786` -> ("address", url)."""
    s = (spec or "").strip()
    if not s:
        raise ValueError("empty cluster spec; use local:N or tcp://HOST:8786")
    if s == "local" or s.startswith("local:"):
        n_txt = s.partition(":")[2]
        try:
            n = int(n_txt) if n_txt else (os.cpu_count() or 1)
        except ValueError:
            raise ValueError(f"bad worker count in {spec!r}; use local:N") from None
        if n < 1:
            raise ValueError(f"local cluster needs at least one worker, not {n}")
        return "local", n
    if "://" in s:
        return "address", s
    host, sep, port = s.rpartition(":")
    if sep and host and port.isdigit():
        return "address", f"tcp://{s}"
    raise ValueError(f"bad cluster spec {spec!r}; use local:N or tcp://HOST:8786")


def open_client(spec: str):
    """A `distributed.Client` for `spec`; for `local:N` it owns a fresh `LocalCluster` (closed with the client)."""
    kind, arg = parse_cluster(spec)
    if kind == "local":
        from vigie.procs import forkserver_context

        # Workers forked from this process's forkserver, which imported Dask and the hashing code and loaded
        # the kernels once, rather than each spawned bare and importing them (seconds each). Started before
        # this process imports Dask itself (0.4 s of one core), so that both imports run at once.
        forkserver_context("vigie.ingest.preload", "distributed")
    from distributed import Client, LocalCluster

    if kind == "local":
        # No dashboard; the scheduler's bare HTTP server (health, metrics) on a free local port, not 8787.
        # Workers spill into a folder of this scan's own, removed with the cluster (Dask would leave
        # dask-scratch-space/ in the temp folder).
        scratch = tempfile.mkdtemp(prefix="vigie-dask-")
        try:
            import dask

            # A worker that decoders kill again and again is mostly restarting; when the cluster's lost-worker
            # timer (15 s after each loss) fired during a restart, the cluster closed its nanny for good and
            # every later task waited for a worker that never came (ordinary pictures recorded `timeout`).
            # This process owns the cluster and its workers: never given up. Read when the loss happens, so
            # set for the process, not only while the cluster starts.
            dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_WORKER_TIMEOUT})
            with dask.config.set({"temporary-directory": scratch,  # the nannies make their own too
                                  "distributed.worker.multiprocessing-method": "forkserver",
                                  "distributed.scheduler.allowed-failures": ALLOWED_FAILURES, **QUIET}):
                cluster = LocalCluster(n_workers=arg, threads_per_worker=1, processes=True, dashboard_address=None,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                       env=dict(WORKER_ENV), local_directory=scratch,
                                       preload=["vigie.ingest.preload"])
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        cluster._vigie_scratch = scratch
        try:
            return Client(cluster, set_as_default=False)
        except BaseException:
            close_client_cluster(cluster)
            raise
    return Client(arg, set_as_default=False)


def close_client(client) -> None:
    """Close the client and, when it started one, its local cluster."""
    cluster = getattr(client, "cluster", None)
    try:
        client.close()
    finally:
        if cluster is not None:
            close_client_cluster(cluster)


def close_client_cluster(cluster) -> None:
    """Close a local cluster this module started and remove its scratch folder."""
    try:
        cluster.close()
    finally:
        scratch = getattr(cluster, "_vigie_scratch", None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _task(item: Item, settings: Settings, token: str, miniatures: bool = False) -> ItemResult:
    """Runs on a worker: `process_item` with this worker's cache of content hashed earlier in the same scan."""
    keep_heap(settings.scan_heap_keep_mb)  # once per worker; also undoes the nanny's MALLOC_TRIM_THRESHOLD_
    seen = _SEEN.get(token)
    if seen is None:
        seen = _SEEN[token] = RecentContent(_SEEN_PER_SCAN)
        while len(_SEEN) > _SEEN_SCANS:
            _SEEN.popitem(last=False)
    r = process_item(item, settings, seen.get, miniatures=miniatures)
    seen.add(r)
    return r


def _batch(items: list[Item], settings: Settings, token: str, miniatures: bool = False) -> list[ItemResult]:
    """Runs on a worker: `_task` for each item of a batch; one item that raises does not fail the others."""
    out = []
    for item in items:
        try:
            out.append(_task(item, settings, token, miniatures))
        except Exception as exc:  # noqa: BLE001 - one bad file never stops a scan
            out.append(_failed(item, exc))
    return out


def _batches(items: Iterable[Item], size: int = BATCH_ITEMS, nbytes: int = BATCH_BYTES) -> Iterator[list[Item]]:
    batch: list[Item] = []
    total = 0
    for item in items:
        batch.append(item)
        total += len(item.data) if item.data is not None else (item.size or 0)
        if len(batch) >= size or total >= nbytes:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def _threads(client) -> int:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # older distributed: no n_workers argument
        workers = client.scheduler_info()["workers"]
    return max(1, sum(w.get("nthreads", 1) for w in workers.values()))


def _failed(item: Item, exc: BaseException) -> ItemResult:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return failed_result(item, ("decoder_crash",
                                    "the worker process died on this file (decoder crash or out of memory)"))
    r = ItemResult(item.location, size=item.size)
    r.error = ("internal_error", f"{type(exc).__name__}: {exc}")
    return r


def _kill_worker_process(dask_worker) -> int | None:
    """Runs on a nanny (`Client.run(..., nanny=True)`): SIGKILL its worker process, which the nanny then starts
    again as after a crash. The nanny's own loop answers even when a decoder holds the worker's GIL."""
    import signal

    proc = getattr(getattr(dask_worker, "process", None), "process", None)
    pid = getattr(proc, "pid", None)
    if pid:
        os.kill(pid, signal.SIGKILL)
    return pid


def wait_task(client, fut, limit: float | None):
    """`fut.result()`, or after `limit` seconds the task cancelled, the worker process running it killed
    through its nanny (a thread stuck in C stops with its process only; the nanny starts a fresh one) and
    `StuckWorker` raised. The caller waits on the oldest task in flight: it has been running, or first in
    line, since at least when the wait began."""
    try:
        return fut.result(timeout=limit)
    except TimeoutError:
        pass
    holders = []
    try:
        holders = [addr for addr, keys in client.processing().items() if fut.key in keys]
    except Exception as exc:  # noqa: BLE001 - the scheduler did not answer: the item is given up all the same
        log.warning("could not ask the scheduler which worker holds a stuck task: %s", exc)
    fut.cancel()
    if holders:
        try:
            client.run(_kill_worker_process, workers=holders, nanny=True)
        except Exception as exc:  # noqa: BLE001 - no nanny: the stuck thread stays busy, the scan goes on
            log.warning("could not restart Dask worker %s, stuck on a file: %s", holders, exc)
    raise StuckWorker(f"its decoder did not return: the task was given up and its Dask worker restarted "
                      f"after {limit:g} s")


def hash_on_cluster(client, items: Iterable[Item], settings: Settings, window: int | None = None,
                    miniatures: bool = False, batch: int = BATCH_ITEMS) -> Iterator[tuple[Item, ItemResult]]:
    """`(item, result)` in input order, with at most `window` tasks of up to `batch` items in flight (default
    3 per worker thread). A task waited on for longer than `hard_limit(settings)` is given up (`wait_task`)
    and its items hashed again one per task; an item alone past it is recorded `timeout`."""
    if window is None:
        window = 3 * _threads(client)
    window = max(1, window)
    limit = hard_limit(settings)
    token = uuid.uuid4().hex
    inflight: deque = deque()
    it = _batches(items, max(1, batch))
    exhausted = False

    def submit(group: list[Item]):
        # Archive members travel in their task (a batch holds up to BATCH_BYTES): Dask's warning of a "large
        # graph" past 10 MB says what is meant here, and only cluttered the scan's output.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            return client.submit(_batch, group, settings, token, miniatures, pure=False)

    try:
        while True:
            while not exhausted and len(inflight) < window:
                group = next(it, None)
                if group is None:
                    exhausted = True
                    break
                inflight.append((group, submit(group)))
            if not inflight:
                return
            group, fut = inflight.popleft()
            try:
                results = wait_task(client, fut, limit)
            except StuckWorker as exc:
                if len(group) == 1:
                    results = [failed_result(group[0], ("timeout", str(exc)))]
                else:  # which of them hangs: again one by one, each with the limit
                    results = [r for one in group for _, r in hash_on_cluster(client, [one], settings, 1,
                                                                              miniatures, 1)]
            except Exception as exc:
                if fut.status != "error":  # cancelled, or the cluster is gone: stop (the scan is resumable)
                    raise
                if len(group) == 1:
                    results = [_failed(group[0], exc)]  # the task itself failed: one bad file never stops a scan
                else:  # a worker died on one of them: again one by one, so the crash is pinned on its file
                    results = [r for one in group for _, r in hash_on_cluster(client, [one], settings, 1,
                                                                              miniatures, 1)]
            finally:
                fut.release()
            yield from zip(group, results)
    finally:
        for _, fut in inflight:
            fut.cancel()
        inflight.clear()


__all__ = ["close_client", "hash_on_cluster", "open_client", "parse_cluster"]
