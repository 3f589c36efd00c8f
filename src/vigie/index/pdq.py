"""PDQ range search: which index for which bank, and the numbers behind the choice.

`make_pdq_index(n_expected)` returns a `FlatIndex` (FAISS exhaustive search) below
`FLAT_MAX` hashes and a `MIHIndex` (multi-index hashing, exact up to distance 31) from
there on. Both are exact at PDQ's threshold 31; they differ in cost.

Single-query latency, threshold 31, random hashes, 2-core development machine
(medians; noisy machine, read +-30 %):

====== ============ ============= =========================================
N      FlatIndex    MIHIndex      MIH bytes/hash (Flat: 40)
====== ============ ============= =========================================
5k     0.015 ms     0.016 ms      943 (the 4 MB of bucket offsets dominate)
20k    0.022 ms     0.016 ms      308
50k    0.040 ms     0.018 ms      181
100k   0.062 ms     0.018 ms      139
1M     1.07 ms      0.08 ms       100.3
10M    49 ms        0.56 ms       96.5
====== ============ ============= =========================================

Below ~50k both answer in tens of microseconds (Python call overhead included), so the
flat index wins on what matters there: 40 instead of 180+ bytes per hash, nothing to
build, the simplest code. Past 50k flat search grows linearly (0.17 ms at 300k, ~1 ms
at 1M, ~50 ms at 10M) while MIH grows slowly (0.08 ms at 1M, 0.56 ms at 10M, where its
buckets hold ~150 rows each). `bench/match_bench.py` measures both in the same run
(1M and 10M rows above; MIH's full numbers are in `vigie.index.mih`).

Note a MIHIndex smaller than its `delta_max` (65,536) lives entirely in its delta
segment and is searched by brute force, like a flat index; it is built on the first
add that passes delta_max.

Dihedral queries: search the 8 variants of a picture together with
`index.search_multi([variants, ...])`, or search them as one batch and merge each
picture's lists with `best_per_id`.
"""

from __future__ import annotations

from vigie.index.base import PdqIndex, best_per_id
from vigie.index.flat import FlatIndex
from vigie.index.mih import MIHIndex

#: Banks expected to hold fewer hashes than this get a FlatIndex (see the table above).
FLAT_MAX = 50_000

__all__ = ["FLAT_MAX", "FlatIndex", "MIHIndex", "PdqIndex", "best_per_id", "make_pdq_index"]


def make_pdq_index(n_expected: int) -> PdqIndex:
    """The PDQ index for a bank expected to hold `n_expected` hashes."""
    return FlatIndex() if n_expected < FLAT_MAX else MIHIndex()
