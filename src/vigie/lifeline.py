"""Worker processes leave with the process that started them.

A pool's workers are children of its forkserver, not of the process that uses the pool, and each holds its
task queue's both ends: when that process is SIGKILLed (or killed by the kernel for memory) nothing tells
them, and they wait for work for ever, hundreds of MB each with the hashing code loaded. So each pool's
initializer watches the process that made the pool (`watch_parent`): the scan's, the crawler's and
`vigie hash`'s pools.
"""

from __future__ import annotations

import os


def watch_parent(parent: int, every: float = 1.0) -> None:
    """Leave (`os._exit(0)`, from a thread) when process `parent`, the one that made this worker's pool, has
    ended; this process's own parent is the forkserver, which says nothing of it.

    The end is seen when `parent` exits, not when it is reaped: a scan whose own parent has not collected it
    yet (a zombie: `subprocess.run` waiting for the pipes these workers hold open) still lets its workers go,
    or both would wait on each other for ever. Linux's pidfd says so at once; elsewhere the pid is polled
    every `every` seconds."""
    import threading

    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # not Linux 5.3+: poll
        fd = None

    def wait() -> None:
        import select

        select.select([fd], [], [])  # readable once the process has exited
        os._exit(0)

    def poll() -> None:
        import time as _time

        while True:
            _time.sleep(every)
            if not _alive(parent):
                os._exit(0)

    threading.Thread(target=poll if fd is None else wait, name="vigie-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether `pid` runs: it exists and is no zombie (one that has exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else (ours reused after it ended would be rare)
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: it exists
