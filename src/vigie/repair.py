"""Repair after a crash: finish every durable step that a SIGKILL may have cut short.

Each transition of Vigie is either one transaction or a durable first step that this pass
completes; it runs when `vigie serve` starts, in every round of the intake worker, and as
`vigie repair`. Every part is idempotent, so running it twice, or in two processes, is harmless.

* decided clusters whose entry variants were not yet added (`variants_at`), and clusters decided
  before banking joined the decision's transaction: banked now (vigie.review.decisions.bank_pending);
* bank changes whose re-match did not run: run now (vigie.rematch);
* takedown notices left `sending` by a sender that died: failed, so they are sent again
  (vigie.actions.takedown.repair_notices);
* reports still `received` or `crawling` whose URLs are all crawled (a crawl round killed between writing
  its URLs and deriving their reports' statuses): derived now (vigie.ingest.reports.refresh_settled);
* media files: an encrypted file with no live row (written just before a crash, never committed)
  or with a purged row (purged just before a crash, not yet unlinked) is deleted, after a grace
  period that keeps a write still in progress in another process safe;
* an audit checkpoint when one is due (vigie.audit.checkpoint_if_due).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import select

from vigie.store.db import Store

log = logging.getLogger(__name__)
#: Files younger than this are left alone: another process may be about to commit their row.
GRACE_SECONDS = 600


def media_files(store: Store, settings, *, grace: float = GRACE_SECONDS) -> int:
    """Delete encrypted media files that no live row points to (see the module docstring). Returns how many."""
    from vigie.review.media import _unlink
    from vigie.store.review_models import MediaBlob

    root = Path(settings.data_dir) / "media"
    if not root.exists():
        return 0
    with store.sessions() as s:
        live = {p for (p,) in s.execute(select(MediaBlob.path).where(MediaBlob.purged_at.is_(None)))}
    n, now = 0, time.time()
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(settings.data_dir).as_posix()
        if rel in live:
            continue
        try:
            if now - p.stat().st_mtime < grace:
                continue
        except FileNotFoundError:
            continue

        class _Row:
            path = rel

        _unlink(settings, _Row)
        n += 1
    return n


#: The media folder is walked at most this often by the worker's rounds (at start, and by `vigie repair`, always).
MEDIA_SWEEP_SECONDS = 3600.0
_last_sweep: dict[str, float] = {}


def _media_files_due(store: Store, settings, always: bool) -> int | None:
    key = str(settings.data_dir)
    if not always and time.monotonic() - _last_sweep.get(key, float("-inf")) < MEDIA_SWEEP_SECONDS:
        return None
    _last_sweep[key] = time.monotonic()
    return media_files(store, settings)


def run(store: Store, settings, *, by: str = "system", sweep_media: bool = True) -> dict:
    """One repair pass (see the module docstring); each part's failure is logged and the others go on.
    `sweep_media=False` (the worker's rounds) walks the media folder only once an hour."""
    from vigie import audit, rematch
    from vigie.actions.takedown import repair_notices
    from vigie.ingest.reports import refresh_settled
    from vigie.review.decisions import bank_pending

    out: dict = {}
    steps = (("clusters", lambda: len(bank_pending(store, settings, by=by))),
             ("rematch", lambda: rematch.run(store, settings, by=by)),  # past scans' rows too
             ("notices", lambda: repair_notices(store, by=by)),
             ("report_statuses", lambda: refresh_settled(store)),  # a round killed before its statuses
             ("media_files", lambda: _media_files_due(store, settings, sweep_media)),
             ("checkpoint", lambda: (audit.checkpoint_if_due(store, settings) or {}).get("seq")))
    for name, fn in steps:
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001 - one part's failure never stops the others
            log.exception("repair step %s failed", name)
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
