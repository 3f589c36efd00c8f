"""Stopping the crawler cleanly: SIGTERM and SIGINT end the hashing processes too.

Python's default answer to SIGTERM ends the process at once, without running `finally` blocks,
so a `vigie crawl` stopped by a service manager left its hashing processes (and the forkserver
that starts them) running. `stop_on_signals` makes SIGTERM raise SystemExit in the main thread,
as SIGINT raises KeyboardInterrupt, so the crawler's `finally` blocks run; `kill_pool` then
ends the processes of a pool at once instead of waiting for the files they are on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _raise_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within this block, SIGTERM raises SystemExit (main thread only: signals are delivered there; in another
    thread this does nothing). The previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pool_processes(pool) -> list:
    """A ProcessPoolExecutor's processes (none once it is shut down, which forgets them)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def kill_processes(procs: list) -> None:
    """SIGKILL each process, without waiting: one stuck in C code answers nothing gentler; their parent, the
    forkserver, reaps them."""
    for p in procs:
        try:
            p.kill()
        except (OSError, AttributeError, ValueError):
            pass  # gone already


def kill_pool(pool) -> None:
    """End a ProcessPoolExecutor's processes now (terminate, then kill those that stay), then shut it down."""
    procs = pool_processes(pool)
    for p in procs:
        try:
            p.terminate()
        except (OSError, AttributeError, ValueError):
            pass
    for p in procs:
        try:
            p.join(2)
            if p.is_alive():
                p.kill()
                p.join(1)
        except (OSError, AttributeError, ValueError, AssertionError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
