"""What the crawler's hashing processes run: one downloaded file hashed the way a scan hashes it.

A module of its own, importing little, because each hashing process imports the module of the
function it runs: from `vigie.ingest.worker` (the store, the web client, accounts) that was
about two seconds of CPU per process at every start, more than hashing a hundred pictures.
"""

from __future__ import annotations

import os
import time


def hash_item(url: str, data: bytes, settings):
    """Hash one downloaded file (`vigie.ingest.process.process_item`); `hash_cpu` on the result is the CPU
    seconds it took (counted in the crawler's stages, `vigie.ingest.stages`)."""
    from vigie.ingest.members import Item
    from vigie.ingest.process import process_item

    t = time.thread_time()
    r = process_item(Item(url, size=len(data), data=data), settings)
    r.thumb, r.keyframes = None, []  # not needed here: do not carry them around
    r.hash_cpu = time.thread_time() - t
    return r


def hash_media(url: str, data: bytes):
    """`hash_item` in a worker process, with the settings its pool started it with (module level: pickled)."""
    from vigie.batch import _worker_settings

    return hash_item(url, data, _worker_settings)


def warm_up(settings=None) -> None:
    """Load what hashing needs (imports, the JIT's cached machine code): `vigie.signals.variants.warm_up`, which
    reaches every kernel a query picture may call (`settings` is kept for the callers; the kernels are the
    same whatever the settings)."""
    from vigie.signals.variants import warm_up as warm_variants

    warm_variants()


def warm(_n: int = 0) -> float:
    """`warm_up` in a hashing process, before the first download comes (returns its CPU seconds so far)."""
    from vigie.batch import _worker_settings

    warm_up(_worker_settings)
    return time.process_time()


def new_pool(settings, n: int):
    """A pool of `n` hashing processes, forked by the forkserver from a process that has already imported and
    warmed what hashing needs (`vigie.ingest.hash_preload`): each process then starts in milliseconds, not
    the second of CPU that its own imports and JIT loading cost (and a pool replaced after a decoder crash
    starts as fast). The preload only applies when this process's forkserver is not running yet; otherwise
    the processes warm themselves (`warm`)."""
    from concurrent.futures import ProcessPoolExecutor

    from vigie.batch import _init_worker
    from vigie.procs import forkserver_context

    ctx = forkserver_context("vigie.ingest.hash_preload")
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                               initargs=(settings, os.getpid()))  # its workers leave with this process
