"""ExactIndex: cryptographic digests (MD5, SHA-1, SHA-256) to entry ids, without a Python object per hash.

A dict of 100M `bytes` keys costs ~10 GB of Python objects; here a hash costs its digest
plus 8 + 8 bytes: a sorted uint64 array of each digest's first 8 bytes (searched with
`np.searchsorted`, one vectorised call per batch), the full digests in a fixed-width
uint8 array in the same order (a first-8-bytes collision never yields a false match:
candidates are verified against the whole digest), the int64 ids and a 1-byte tombstone. MD5: 33 bytes
per hash, SHA-256: 49.

Changes: `add` appends to a small unsorted delta segment, looked up through a sorted
copy made lazily; when it passes `delta_max` it is merged into the main arrays with a
linear insertion (no full re-sort). `remove` sets a tombstone per row (a removed id never
matches again); tombstoned rows are dropped at the next merge. `save` writes `.npy` files
(atomic renames, so a mapped older copy stays readable); `load(mmap=True)` maps them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vigie.index.base import load_array, read_meta, save_array, write_meta

DEFAULT_DELTA_MAX = 65_536


def _keys(digests: np.ndarray) -> np.ndarray:
    # Big-endian so that key order is byte order; any consistent order would do.
    return np.ascontiguousarray(digests[:, :8]).view(">u8").reshape(-1).astype(np.uint64)


class ExactIndex:
    """Exact lookup of fixed-width digests. `width`: 16 (MD5), 20 (SHA-1) or 32 (SHA-256)."""

    kind = "exact"

    def __init__(self, width: int, delta_max: int = DEFAULT_DELTA_MAX) -> None:
        if width < 8:
            raise ValueError("ExactIndex needs digests of at least 8 bytes")
        self.width = int(width)
        self.delta_max = int(delta_max)
        self._keys = np.zeros(0, np.uint64)
        self._digests = np.zeros((0, self.width), np.uint8)
        self._ids = np.zeros(0, np.int64)
        self._dead = np.zeros(0, bool)
        self._d_digests: list[np.ndarray] = []
        self._d_ids: list[np.ndarray] = []
        self._delta: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._d_dead = np.zeros(0, bool)

    # ------------------------------------------------------------------ input

    def _as_digests(self, values) -> np.ndarray:
        if isinstance(values, np.ndarray):
            a = values
        else:
            values = list(values)
            bad = [v for v in values if not isinstance(v, bytes | bytearray) or len(v) != self.width]
            if bad:
                raise ValueError(f"expected {self.width}-byte digests, got {bad[0]!r}")
            a = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), self.width)
        if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != self.width:
            raise ValueError(f"expected a (n, {self.width}) uint8 array, got {a.dtype} {a.shape}")
        return np.ascontiguousarray(a)

    # ------------------------------------------------------------------ delta

    def _delta_sorted(self):
        """(keys, digests, ids, positions) of the delta, sorted by key; cached until the next add."""
        if self._delta is None:
            dig = np.concatenate(self._d_digests) if self._d_digests else np.zeros((0, self.width), np.uint8)
            ids = np.concatenate(self._d_ids) if self._d_ids else np.zeros(0, np.int64)
            self._d_digests, self._d_ids = [dig], [ids]
            keys = _keys(dig)
            order = np.argsort(keys, kind="stable")
            self._delta = (keys[order], dig[order], ids[order], order)
        return self._delta

    @property
    def _d_n(self) -> int:
        return sum(a.shape[0] for a in self._d_ids)

    def add(self, ids, digests) -> None:
        digests = self._as_digests(digests)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != digests.shape[0]:
            raise ValueError(f"{ids.shape[0]} ids for {digests.shape[0]} digests")
        if ids.shape[0] == 0:
            return
        self._d_digests.append(digests.copy())
        self._d_ids.append(ids.copy())
        self._d_dead = np.concatenate([self._d_dead, np.zeros(ids.shape[0], bool)])
        self._delta = None
        if self._d_n > self.delta_max:
            self.merge()

    def merge(self) -> None:
        """Fold the live delta into the sorted main arrays and drop tombstoned rows: O(N + k log k)."""
        keys, dig, ids, order = self._delta_sorted()
        live = ~self._d_dead[order]
        keys, dig, ids = keys[live], dig[live], ids[live]
        mlive = ~self._dead
        mkeys, mdig, mids = self._keys[mlive], self._digests[mlive], self._ids[mlive]
        at = np.searchsorted(mkeys, keys, side="right")
        self._keys = np.insert(mkeys, at, keys)
        self._digests = np.insert(mdig, at, dig, axis=0)
        self._ids = np.insert(mids, at, ids)
        self._dead = np.zeros(self._ids.shape[0], bool)
        self._d_digests, self._d_ids, self._delta = [], [], None
        self._d_dead = np.zeros(0, bool)

    # ------------------------------------------------------------------ queries

    @staticmethod
    def _find(skeys, sdig, q, qkeys):
        """(query index, position) pairs whose full digest equals the query's."""
        lo = np.searchsorted(skeys, qkeys, side="left")
        hi = np.searchsorted(skeys, qkeys, side="right")
        counts = hi - lo
        qi = np.repeat(np.arange(q.shape[0]), counts)
        pos = np.repeat(lo, counts) + (np.arange(qi.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts))
        same = np.all(sdig[pos] == q[qi], axis=1) if pos.size else np.zeros(0, bool)
        return qi[same], pos[same]

    def lookup(self, values: Sequence[bytes] | np.ndarray) -> list[list[int]]:
        """For each digest, the ids of every live entry holding it (ascending, may be empty)."""
        q = self._as_digests(values)
        out: list[list[int]] = [[] for _ in range(q.shape[0])]
        if q.shape[0] == 0:
            return out
        qkeys = _keys(q)
        qi, pos = self._find(self._keys, self._digests, q, qkeys)
        keep = ~self._dead[pos]
        qis, hits = [qi[keep]], [self._ids[pos[keep]]]
        if self._d_n:
            dkeys, ddig, dids, order = self._delta_sorted()
            qi, pos = self._find(dkeys, ddig, q, qkeys)
            keep = ~self._d_dead[order[pos]]
            qis.append(qi[keep])
            hits.append(dids[pos[keep]])
        qi, hit = np.concatenate(qis), np.concatenate(hits)
        order = np.lexsort((hit, qi))
        for i, e in zip(qi[order].tolist(), hit[order].tolist(), strict=True):
            if not out[i] or out[i][-1] != e:
                out[i].append(e)
        return out

    def remove(self, ids) -> int:
        """Tombstone every digest of these ids; returns how many were newly removed."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        hit = np.isin(self._ids, ids) & ~self._dead
        if hit.any():
            if not self._dead.flags.writeable:
                self._dead = self._dead.copy()
            self._dead |= hit
        n = int(hit.sum())
        if self._d_n:
            dids = np.concatenate(self._d_ids)
            dhit = np.isin(dids, ids) & ~self._d_dead
            self._d_dead |= dhit
            n += int(dhit.sum())
        return n

    def __len__(self) -> int:
        return int((~self._dead).sum()) + int((~self._d_dead).sum())

    @property
    def nbytes(self) -> int:
        main = self._keys.nbytes + self._digests.nbytes + self._ids.nbytes + self._dead.nbytes
        return main + sum(a.nbytes for a in self._d_digests) + sum(a.nbytes for a in self._d_ids)

    def verify(self, samples: int = 4096) -> None:
        """Raise ValueError unless the arrays agree in length and, at `samples` rows spread over the index, each
        key is its digest's first 8 bytes in ascending order: a truncated or overwritten file is caught without
        reading every page of a large mapped index."""
        n = self._keys.shape[0]
        if self._digests.shape != (n, self.width) or self._ids.shape != (n,):
            raise ValueError(f"index arrays disagree: {n} keys, digests {self._digests.shape}, ids {self._ids.shape}")
        if n == 0:
            return
        at = np.unique(np.linspace(0, n - 1, min(n, samples)).astype(np.int64))
        keys = self._keys[at]
        if not np.array_equal(_keys(np.ascontiguousarray(self._digests[at])), keys) or np.any(keys[1:] < keys[:-1]):
            raise ValueError("index keys do not match their digests or are out of order")

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write the index (delta merged first) to a directory of .npy files."""
        if self._d_n or self._dead.any():
            self.merge()
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        save_array(directory, "keys", self._keys)
        save_array(directory, "digests", self._digests)
        save_array(directory, "ids", self._ids)
        write_meta(directory, {"kind": self.kind, "version": 1, "width": self.width, "n": len(self)})

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = True) -> ExactIndex:
        directory = Path(path)
        meta = read_meta(directory)
        if meta.get("kind") != cls.kind:
            raise ValueError(f"{directory}: not an exact index")
        index = cls(meta["width"])
        index._keys = load_array(directory, "keys", mmap)
        index._digests = load_array(directory, "digests", mmap)
        index._ids = load_array(directory, "ids", mmap)
        index._dead = np.zeros(index._ids.shape[0], bool)
        return index
