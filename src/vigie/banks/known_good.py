"""The digests of a store's known-good banks (NIST NSRL and the like), loaded once per scan for a fast check.

A scan computes every file's MD5, SHA-1 and SHA-256 anyway; a file whose digest is in an enabled bank of
kind `known_good` is an operating-system or application file, so the scan records it as skipped (flag
`known_good`) and never decodes it (docs/scanning.md). The set travels to the worker processes once (it is
a few numpy arrays, pickled at the pool's start), so the check costs one binary search per digest and
no store round trip. Per digest it holds the digest plus 17 bytes (`vigie.index.exact`), not a Python
object: a million SHA-1s take about 37 MB.

Only live entries count: a removed, disabled or quarantined entry, or a disabled bank, skips nothing.
A known-good entry is never a match (`vigie.matching`), so a digest that is both known-good and in a
match bank still matches: the scan's matcher sees the file's digests whatever this check says.
"""

from __future__ import annotations

import sys

import numpy as np
from sqlalchemy import select

from vigie.index import ExactIndex
from vigie.signals import get_signal
from vigie.store.db import Store
from vigie.store.models import Bank, Entry

SIGNALS = ("sha1", "md5", "sha256")
BATCH = 200_000


class KnownGood:
    """Known-good digests per signal; `hit(digests)` says which signal (if any) of a file's digests is one."""

    def __init__(self) -> None:
        self._idx: dict[str, ExactIndex] = {}

    def __len__(self) -> int:
        return sum(len(i) for i in self._idx.values())

    @property
    def nbytes(self) -> int:
        return sum(i.nbytes for i in self._idx.values())

    def __bool__(self) -> bool:
        return bool(self._idx)

    def add(self, signal: str, values: list[str]) -> None:
        if not values:
            return
        idx = self._idx.get(signal)
        if idx is None:
            # No merge while loading (one sort at `seal`), rather than one insertion pass per 65,536 digests.
            idx = self._idx[signal] = ExactIndex(get_signal(signal).hex_length // 2, delta_max=sys.maxsize)
        idx.add(np.zeros(len(values), np.int64), [bytes.fromhex(v) for v in values])

    def seal(self) -> KnownGood:
        """Merge what was added into sorted arrays (done once, before the set goes to the workers)."""
        for idx in self._idx.values():
            idx.merge()
        return self

    def hit(self, digests: dict[str, str | None]) -> str | None:
        for sig in SIGNALS:
            idx, value = self._idx.get(sig), digests.get(sig)
            if idx is None or not value:
                continue
            try:
                if idx.lookup([bytes.fromhex(value)])[0]:
                    return sig
            except ValueError:
                continue
        return None


def load(store: Store) -> KnownGood:
    """The live digests of the store's enabled known-good banks, read in batches."""
    kg = KnownGood()
    with store.sessions() as s:
        bank_ids = list(s.scalars(select(Bank.id).where(Bank.kind == "known_good", Bank.enabled.is_(True))))
        if not bank_ids:
            return kg
        last = 0
        while True:
            rows = s.execute(select(Entry.id, Entry.signal, Entry.value)
                             .where(Entry.bank_id.in_(bank_ids), Entry.id > last, Entry.signal.in_(SIGNALS),
                                    Entry.removed_at.is_(None), Entry.disabled.is_(False),
                                    Entry.quarantined_at.is_(None))
                             .order_by(Entry.id).limit(BATCH)).all()
            if not rows:
                break
            for sig in SIGNALS:
                kg.add(sig, [v for _, sg, v in rows if sg == sig])
            last = rows[-1][0]
    return kg.seal()
