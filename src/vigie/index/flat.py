"""FlatIndex: exhaustive exact search with FAISS `IndexBinaryFlat` (the small-bank path and the baseline).

Every query reads every hash: cost grows with N (about 1.5-6 ms per query at 1M and
55-60 ms at 10M on a 2-core machine, design/PERFORMANCE.md), but there is no build,
no extra memory (32 bytes per hash + an 8-byte id) and nothing to get wrong, so it is
the reference the MIH index is tested against and the right choice for small banks.

FAISS's binary `range_search(x, r)` returns distances *strictly below* r, so we pass
threshold + 1. Removal compacts FAISS's code array (O(N)); fine at the sizes this
index is meant for. `load(mmap=True)` maps the saved arrays, but FAISS copies the codes
into its own memory when they are added back, so a loaded flat index is always in RAM.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from vigie.index.base import (
    HASH_BYTES,
    Matches,
    PdqIndex,
    as_hashes,
    as_ids,
    group_matches,
    load_array,
    save_array,
)


class FlatIndex(PdqIndex):
    kind = "flat"

    def __init__(self) -> None:
        self._index = faiss.IndexBinaryFlat(HASH_BYTES * 8)
        self._ids = np.zeros(0, dtype=np.int64)

    def add(self, ids, hashes) -> None:
        hashes = as_hashes(hashes)
        ids = as_ids(ids, hashes.shape[0])
        if hashes.shape[0] == 0:
            return
        self._index.add(hashes)
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, ids) -> int:
        ids = as_ids(ids)
        positions = np.flatnonzero(np.isin(self._ids, ids))
        if positions.size == 0:
            return 0
        self._index.remove_ids(faiss.IDSelectorBatch(positions.astype(np.int64)))
        self._ids = np.delete(self._ids, positions)
        return int(positions.size)

    def search(self, queries, threshold: int = 31) -> list[Matches]:
        queries = as_hashes(queries, "queries")
        m = queries.shape[0]
        if m == 0 or self._index.ntotal == 0:
            return [[] for _ in range(m)]
        lims, dist, pos = self._index.range_search(queries, int(threshold) + 1)
        qi = np.repeat(np.arange(m, dtype=np.int64), np.diff(lims).astype(np.int64))
        return group_matches(m, qi, self._ids[pos], dist.astype(np.int64))

    def search_pairs(self, queries, threshold: int = 31) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        queries = as_hashes(queries, "queries")
        if queries.shape[0] == 0 or self._index.ntotal == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty.copy(), empty.copy()
        lims, dist, pos = self._index.range_search(queries, int(threshold) + 1)
        qi = np.repeat(np.arange(queries.shape[0], dtype=np.int64), np.diff(lims).astype(np.int64))
        return qi, self._ids[pos].astype(np.int64), dist.astype(np.int64)

    def hashes(self) -> np.ndarray:
        """A copy of the stored hashes, in insertion order (aligned with `ids`)."""
        n = self._index.ntotal
        if n == 0:
            return np.zeros((0, HASH_BYTES), np.uint8)
        return faiss.rev_swig_ptr(self._index.xb.data(), n * HASH_BYTES).reshape(n, HASH_BYTES).copy()

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def nbytes(self) -> int:
        return int(self._index.ntotal) * HASH_BYTES + self._ids.nbytes

    def _save(self, directory: Path) -> dict:
        save_array(directory, "hashes", self.hashes())
        save_array(directory, "ids", self._ids)
        return {"n": len(self)}

    @classmethod
    def _load(cls, directory: Path, meta: dict, mmap: bool) -> FlatIndex:
        index = cls()
        index.add(np.array(load_array(directory, "ids", mmap)), load_array(directory, "hashes", mmap))
        return index
