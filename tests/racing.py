"""Calls started at the same moment on several threads: the races the invariant tests provoke."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def at_once(fn: Callable[[Any], object], n: int, ready: Callable[[int], Any] = lambda k: k) -> list[Exception]:
    """Run `fn(ready(k))` for k in 0..n-1 on n threads; each thread makes its `ready(k)` first (a matcher, a
    connection), then all are released together by a barrier. Returns the exceptions the calls raised."""
    start = threading.Barrier(n)
    errors: list[Exception] = []

    def run(k: int) -> None:
        arg = ready(k)
        start.wait()
        try:
            fn(arg)
        except Exception as exc:  # noqa: BLE001 - returned to the test, which says what is allowed
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
