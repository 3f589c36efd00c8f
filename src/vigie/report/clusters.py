"""Group near-duplicate pictures so a series is reviewed once.

Single-linkage over PDQ distance (union-find over every pair within the threshold,
found with the same indexes as matching). Cluster names are stable: numbered in the
order of each cluster's first member.
"""

from __future__ import annotations

import numpy as np

from vigie.index import hex_to_hashes, make_pdq_index


def cluster(hashes: list[str], threshold: int = 31) -> list[int]:
    """Cluster number (0, 1, ...) of each hash, in order of first appearance."""
    n = len(hashes)
    if n == 0:
        return []
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    idx = make_pdq_index(n)
    arr = hex_to_hashes(hashes)
    idx.add(np.arange(n, dtype=np.int64), arr)
    for i, matches in enumerate(idx.search(arr, threshold)):
        for j, _ in matches:
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    names: dict[int, int] = {}
    return [names.setdefault(find(i), len(names)) for i in range(n)]
