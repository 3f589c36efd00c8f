"""The PDQ index interface and what every implementation shares.

An index holds (entry id, 256-bit hash) pairs as flat numpy arrays (no Python object
per hash) and answers range queries: every live entry within `threshold` bits of a
query, nearest first. Ids are int64 entry ids chosen by the caller; one id may carry
several hashes (an entry's dihedral variants) and one hash several ids (the same
picture in two banks): both are returned.

On disk an index is a directory of `.npy` files plus `meta.json` naming its kind, so
`PdqIndex.load(path)` reopens any kind and `load(path, mmap=True)` maps the big arrays
read-only instead of reading them (start-up in milliseconds, pages shared between
processes). Files are written under a temporary name and renamed into place, so saving
over an index that is currently mapped never truncates pages under a reader.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

HASH_BYTES = 32
META = "meta.json"

#: One query's matches: (entry id, Hamming distance), nearest first.
Matches = list[tuple[int, int]]


def as_hashes(hashes, name: str = "hashes") -> np.ndarray:
    """A C-contiguous (n, 32) uint8 array, or ValueError. Accepts one hash of shape (32,)."""
    a = np.asarray(hashes)
    if a.ndim == 1 and a.shape[0] == HASH_BYTES:
        a = a.reshape(1, HASH_BYTES)
    if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != HASH_BYTES:
        raise ValueError(f"{name}: expected a (n, 32) uint8 array, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def as_ids(ids, n: int | None = None) -> np.ndarray:
    a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if n is not None and a.shape[0] != n:
        raise ValueError(f"ids: expected {n} ids, got {a.shape[0]}")
    return a


def hex_to_hashes(values: Sequence[str]) -> np.ndarray:
    """64-hex-character PDQ strings (python-threatexchange layout) to a (n, 32) uint8 array."""
    if not values:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, HASH_BYTES).copy()


def best_per_id(results_per_query: Sequence[Matches]) -> list[tuple[int, int, int]]:
    """Merge the results of several queries for the same picture (e.g. its 8 dihedral hashes).

    Keeps, for every id, its smallest distance and the index of the (first) query that
    reached it. Returns (id, distance, query index), nearest first, ties by id.
    """
    best: dict[int, tuple[int, int]] = {}
    for qi, matches in enumerate(results_per_query):
        for eid, dist in matches:
            cur = best.get(eid)
            if cur is None or dist < cur[0]:
                best[eid] = (dist, qi)
    return sorted(((eid, d, qi) for eid, (d, qi) in best.items()), key=lambda x: (x[1], x[0]))


def group_matches(m: int, qi: np.ndarray, ids: np.ndarray, dist: np.ndarray) -> list[Matches]:
    """Flat (query index, id, distance) arrays to per-query lists, nearest first, one per id."""
    out: list[Matches] = [[] for _ in range(m)]
    if qi.shape[0] == 0:
        return out
    order = np.lexsort((ids, dist, qi))
    last_q, seen = -1, set()
    for q, e, d in zip(qi[order].tolist(), ids[order].tolist(), dist[order].tolist(), strict=True):
        if q != last_q:
            last_q, seen = q, set()
        if e in seen:  # one id with several hashes: keep its nearest
            continue
        seen.add(e)
        out[q].append((e, d))
    return out


def save_array(directory: Path, name: str, arr: np.ndarray) -> None:
    """np.save under a temporary name, then rename: a mapped older file stays valid for its readers."""
    tmp = directory / f".{name}.npy.tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
    os.replace(tmp, directory / f"{name}.npy")


def load_array(directory: Path, name: str, mmap: bool) -> np.ndarray:
    a = np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    # np.asarray drops the np.memmap subclass (numba wants plain ndarrays); still no copy.
    return np.asarray(a)


def write_meta(directory: Path, meta: dict) -> None:
    tmp = directory / f".{META}.tmp"
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, directory / META)


def read_meta(directory: Path) -> dict:
    return json.loads((Path(directory) / META).read_text())


class PdqIndex(ABC):
    """Range search over 256-bit PDQ hashes. See the module docstring."""

    #: Name written in meta.json; `PdqIndex.load` dispatches on it.
    kind: ClassVar[str]
    _registry: ClassVar[dict[str, type[PdqIndex]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            PdqIndex._registry[cls.kind] = cls

    @abstractmethod
    def add(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """Add (id, hash) pairs; ids need not be unique or sorted."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove every hash carried by these ids; returns how many hashes were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, threshold: int = 31) -> list[Matches]:
        """For each query, every live (id, distance <= threshold), nearest first (ties by id)."""

    @abstractmethod
    def __len__(self) -> int:
        """Live (not removed) hashes."""

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes held by the index's arrays (mapped ones included)."""

    @abstractmethod
    def _save(self, directory: Path) -> dict:
        """Write arrays; return the meta fields to record."""

    @classmethod
    @abstractmethod
    def _load(cls, directory: Path, meta: dict, mmap: bool) -> PdqIndex: ...

    def save(self, path: str | os.PathLike) -> None:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        meta = self._save(directory)
        write_meta(directory, {"kind": self.kind, "version": 1, **meta})

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = True) -> PdqIndex:
        """Reopen a saved index. On the base class, any kind; on a subclass, only that kind."""
        directory = Path(path)
        meta = read_meta(directory)
        kind = meta.get("kind")
        impl = PdqIndex._registry.get(kind)
        if impl is None:
            raise ValueError(f"{directory}: unknown index kind {kind!r}")
        if cls is not PdqIndex and not issubclass(impl, cls):
            raise ValueError(f"{directory}: holds a {kind!r} index, not {cls.kind!r}")
        return impl._load(directory, meta, mmap)

    def search_pairs(self, queries: np.ndarray, threshold: int = 31) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`search` as three flat int64 arrays (query index, id, distance), in no particular order, an id possibly
        more than once per query: for callers that only need the pairs (clustering), without building a
        Python list of tuples per query. Indexes that get their matches as arrays override it."""
        res = self.search(queries, threshold)
        counts = np.fromiter((len(m) for m in res), np.int64, len(res))
        total = int(counts.sum())
        flat = np.fromiter((x for m in res for pair in m for x in pair), np.int64, 2 * total).reshape(total, 2)
        return np.repeat(np.arange(len(res), dtype=np.int64), counts), flat[:, 0].copy(), flat[:, 1].copy()

    def search_multi(self, query_groups: Sequence[np.ndarray], threshold: int = 31) -> list[list[tuple]]:
        """One search for several pictures each given by several hashes (e.g. 8 dihedral variants).

        Returns, per group, `best_per_id` of its queries: (id, distance, index within group).
        """
        groups = [as_hashes(g, "query group") for g in query_groups]
        if not groups:
            return []
        flat = self.search(np.concatenate(groups), threshold)
        out, start = [], 0
        for g in groups:
            out.append(best_per_id(flat[start : start + g.shape[0]]))
            start += g.shape[0]
        return out
