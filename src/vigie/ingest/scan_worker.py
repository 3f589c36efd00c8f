"""The worker side of a scan's process pool: what each hashing process holds and runs.

Kept apart from `vigie.ingest.scan` so that a worker (and the forkserver it forks from) imports only the
hashing code: the look-up of earlier content runs on a DB-API connection with SQL compiled in the scan's
process (`vigie.store.lookup`), so SQLAlchemy, the store's models, the matcher, the index and the report code
are never imported here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vigie.ingest.heap import keep_heap
from vigie.ingest.process import PDQ_REDUCED, ItemResult, RecentContent, process_item
from vigie.lifeline import watch_parent
from vigie.store.lookup import Query, Reader

if TYPE_CHECKING:  # pragma: no cover
    from vigie.banks.known_good import KnownGood
    from vigie.ingest.members import Item
    from vigie.settings import Settings

_settings: Settings | None = None
_scan: int | None = None
_known_good: KnownGood | None = None
_miniatures = False
_reader: Reader | None = None
_recent = RecentContent()


def init(settings: Settings, scan_id: int, parent: int | None = None, known_good: KnownGood | None = None,
         miniatures: bool = False, lookup: Query | None = None) -> None:
    """The pool's initializer: this scan's settings and id, its known-good digests, the store look-up compiled
    in the scan's process (`vigie.store.lookup.earlier_content`); leave with the scan."""
    global _settings, _scan, _known_good, _miniatures, _reader
    _settings, _scan, _known_good, _miniatures = settings, scan_id, known_good, miniatures
    _reader = Reader(lookup) if lookup is not None else None
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    keep_heap(settings.scan_heap_keep_mb)
    if parent is not None:
        watch_parent(parent)
    from vigie.ingest.warming import ensure_warm
    from vigie.procs import variants_on

    ensure_warm(variants_on(settings))  # a forkserver that preloaded other kernels, or none: not in a file's time


def known_in_store(sha256: str) -> ItemResult | None:
    """An earlier location of this scan with the same content, already committed."""
    if _reader is None:  # started without the look-up (`start_pool` always gives it): hashed anyway
        return None
    row = _reader.first(scan=_scan, sha=sha256)
    if row is None:
        return None
    d = row["detail"] or {}
    return ItemResult(row["location"], media_type=row["media_type"], pdq=row["pdq"], pdq_quality=row["pdq_quality"],
                      pdq_variants=d.get("pdq_variants", []),
                      flags=[f for f in (row["flags"] or []) if f == PDQ_REDUCED],
                      error=(row["error_code"], row["error_message"]) if row["error_code"] else None,
                      detail={k: v for k, v in d.items() if k != "pdq_variants"},
                      video_frames=[tuple(x) for x in d.get("video_frames", [])])


def known(sha256: str) -> ItemResult | None:
    """The same content hashed before: by this worker lately, or at an earlier location already in the store."""
    return _recent.get(sha256) or known_in_store(sha256)


def work(item: Item, like: ItemResult | None = None) -> ItemResult:
    """Hash one item of the scan (the pool's task); `like`: the result of an item of the same size that was in
    flight with it (`vigie.ingest.scan._size_key`), reused if the content is the same."""
    if like is not None:
        _recent.add(like)
    kg = _known_good
    r = process_item(item, _settings, known, kg.hit if kg else None, miniatures=_miniatures)
    _recent.add(r)
    return r


def work_many(items: list[Item], like: ItemResult | None = None) -> list[ItemResult]:
    """Hash several items in one task (`vigie.ingest.scan._shares_task`: small files), or one with `like`."""
    if like is not None:
        _recent.add(like)
    return [work(item) for item in items]
