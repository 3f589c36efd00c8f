"""Imported by the forkserver before it forks the crawler's hashing processes (`crawl_hash.new_pool`): the
imports and the JIT's loaded machine code are then in every process it forks, paid for once.

Importing it hashes a small generated picture; a failure only leaves the processes to warm themselves.
"""

from __future__ import annotations

try:
    import vigie.batch  # noqa: F401 - the pool's initializer
    import vigie.ingest.members  # noqa: F401
    import vigie.ingest.process  # noqa: F401
    from vigie.ingest import crawl_hash

    try:
        import vigie.media.provenance  # noqa: F401
    except ImportError:
        pass
    crawl_hash.warm_up()
except Exception:  # noqa: BLE001 - a warm-up that fails costs speed, never a crawl
    pass
