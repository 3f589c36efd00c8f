"""Bank sharing between Vigie instances: a publisher offers chosen banks as a signed change feed, a
subscriber pulls it incrementally, verifies every batch with the publisher's Ed25519 key and applies
additions, category changes and removals, so a false positive withdrawn at the source disappears
everywhere. See docs/sharing.md.

* `vigie.sharing.keys`: this instance's signing key, canonical JSON, sign and verify.
* `vigie.sharing.feed`: `publish`, `unpublish`, `changes` (the publisher's side).
* `vigie.sharing.subscriber`: `subscribe`, `sync`, `sync_all` (the subscriber's side).
* `vigie.sharing.exchanges`: hash exchanges (NCMEC, StopNCII, TAT, ThreatExchange) read through
  python-threatexchange's own clients (`pytx_driver.py`, run in its environment), with their checkpoints.
"""

from vigie.errors import VigieError


class SharingError(VigieError):
    """A batch refused (bad_signature, bad_batch) or a partner that could not be reached (sync_failed)."""

    code = "sharing_error"
    http_status = 502
