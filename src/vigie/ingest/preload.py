"""Imported once by the forkserver that starts a scan's hashing workers, so that each worker forks ready.

A worker started from a bare forkserver imports the hashing code (PIL, numpy, numba, SQLAlchemy: about
two seconds) and loads every numba kernel from its on-disk cache on first use (about a second more, and
a full JIT compile of tens of seconds, per worker, after the code changed). Done here, in the forkserver,
it is paid once per scan, and the workers inherit the loaded modules and compiled kernels by fork.

Nothing here may raise: the forkserver tolerates only ImportError from a preloaded module.
"""

from __future__ import annotations

from vigie.ingest.warming import warm

try:
    warm()
except Exception:  # noqa: BLE001 - a worker that was not warmed still works: it loads what it needs
    pass
