"""CPU time of the crawl per stage, in this process: what `bench/crawl_bench.py` prints so the next saving is
visible (fetch, hash, match, queue, record).

Each stage is timed with `time.thread_time()` in the thread that runs it, so stages that run at once in
different threads (downloads in the event loop, matching in a thread, hashing in threads or processes)
are each counted once. Hashing in worker processes is timed there and added here with the result
(`add`). Counting costs two clock reads per stage: it is always on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    """CPU seconds and counts per stage name, added from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cpu: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def add(self, name: str, seconds: float, n: int = 1) -> None:
        with self._lock:
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds
            self.count[name] = self.count.get(name, 0) + n

    @contextmanager
    def stage(self, name: str, n: int = 1) -> Iterator[None]:
        """Time the enclosed code (this thread's CPU) as `n` items of stage `name`."""
        t = time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.thread_time() - t, n)

    def snapshot(self) -> dict[str, dict]:
        """{stage: {"cpu_s": seconds, "count": items}}."""
        with self._lock:
            return {k: {"cpu_s": v, "count": self.count.get(k, 0)} for k, v in self.cpu.items()}

    def reset(self) -> None:
        with self._lock:
            self.cpu.clear()
            self.count.clear()


#: The process's clock (the crawler's rounds add to it; the bench reads and resets it).
CLOCK = StageClock()
