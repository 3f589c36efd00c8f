"""Keep freed memory for the next picture: glibc's allocator set up for a process that hashes pictures.

A 12 MP photo needs ~36 MB for its decoded pixels, as much again for Pillow's copy and ~48 MB for its luma
plane. glibc serves blocks that large with a fresh `mmap` and gives them back with `munmap` when they are
freed, so the next photo's buffers fault in page by page again, zeroed by the kernel: on camera photos that
was a quarter of decode-and-hash time (0.8 s of system time per 24 decodes) and the part that slows most
when two workers share the memory bus. Raising the thresholds under which glibc serves from (and keeps) its
heap makes those buffers come back from the heap, already mapped.

The cost is memory held between pictures: at most `keep_mb` of free heap per process (a worker that decoded
one huge picture keeps its buffers until the next one reuses them). Only scanning processes call this
(pool and Dask workers, the scan's own process when it hashes in-process); a server keeps glibc's defaults.
`settings.scan_heap_keep_mb = 0` keeps them everywhere. Elsewhere than glibc (musl, macOS) it does nothing.

Python's own collector is the other cost of a large heap: each full pass of its cyclic garbage collector walks
every tracked object, the 220,000 or so that the imports and the loaded kernels leave in a scanning process
(a scan of the bench's 1,300 locations made 2 or 3 such passes and 300 smaller ones: 0.2 s, 5 % of a `--fast`
scan), and in a forked worker that walk writes to every inherited page. `freeze_gc` moves what exists to
the collector's permanent generation: the forkserver calls it once warm (its workers inherit it), a scan for
the time it runs.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
from contextlib import contextmanager

#: mallopt's parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

_applied: int | None = None


def keep_heap(keep_mb: int) -> bool:
    """Serve blocks of up to `keep_mb` MB from the heap and keep up to `keep_mb` MB of it free; True when glibc
    took the settings. Idempotent: a second call with the same value does nothing."""
    global _applied
    if keep_mb <= 0 or not sys.platform.startswith("linux"):
        return False
    if _applied == keep_mb:
        return True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    size = min(keep_mb, 1024) * 1024 * 1024  # mallopt takes an int
    ok = bool(mallopt(M_MMAP_THRESHOLD, size)) and bool(mallopt(M_TRIM_THRESHOLD, size))
    if ok:
        _applied = keep_mb
    return ok


_frozen = 0
_frozen_lock = threading.Lock()


@contextmanager
def frozen_gc():
    """Keep the objects that exist on entry out of the garbage collector's passes until the block ends (then they
    are collected as before: nothing is kept for good). Nested and concurrent blocks share one freeze, lifted
    when the last one ends."""
    global _frozen
    with _frozen_lock:
        _frozen += 1
        if _frozen == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen -= 1
            if _frozen == 0:
                gc.unfreeze()


def freeze_gc() -> None:
    """Collect once, then move every object to the permanent generation for the rest of the process (a
    forkserver or a worker, whose objects on entry live as long as it does)."""
    gc.collect()
    gc.freeze()
