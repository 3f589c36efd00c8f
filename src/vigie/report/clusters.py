"""Group near-duplicate pictures so a series is reviewed once.

Single-linkage over PDQ distance (union-find over every pair within the threshold,
found with the same indexes as matching); the PDQ variants of a picture (rotations, mirrors,
de-bordered, region) link it too, so altered copies of one picture are reviewed together.
Cluster names are stable: numbered in the order of each cluster's first member.
"""

from __future__ import annotations

import numpy as np

from vigie.index import hex_to_hashes, make_pdq_index


def cluster(hashes: list[str], threshold: int = 31) -> list[int]:
    """Cluster number (0, 1, ...) of each hash, in order of first appearance."""
    return cluster_links(hashes, threshold)[0]


def cluster_links(hashes: list[str], threshold: int = 31, variants: list[list[tuple[str, str]]] | None = None
                  ) -> tuple[list[int], dict[int, tuple[int, str, int]]]:
    """Clusters as `cluster`, where `variants[i]` (kind, PDQ) of picture i also link it to any picture whose
    plain hash is near (a mirrored, rotated or framed copy joins its original's cluster).

    Also returns how each picture linked through a variant: {i: (j, kind, distance)}, the nearest such link,
    kept only when i has no plain-hash neighbour (then the variant is the reason it is in the cluster)."""
    n = len(hashes)
    if n == 0:
        return [], {}
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    idx = make_pdq_index(n)
    arr = hex_to_hashes(hashes)
    idx.add(np.arange(n, dtype=np.int64), arr)
    plain_linked: set[int] = set()
    for i, matches in enumerate(idx.search(arr, threshold)):
        for j, _ in matches:
            if int(j) != i:
                plain_linked.add(i)
            union(i, int(j))
    links: dict[int, tuple[int, str, int]] = {}
    flat = [(i, kind, h) for i, vs in enumerate(variants or []) for kind, h in vs]
    if flat:
        for (i, kind, _), matches in zip(flat, idx.search(hex_to_hashes([h for _, _, h in flat]), threshold)):
            for j, dist in matches:
                j = int(j)
                if j == i:
                    continue
                union(i, j)
                if i not in plain_linked and (i not in links or dist < links[i][2]):
                    links[i] = (j, kind, int(dist))
    names: dict[int, int] = {}
    return [names.setdefault(find(i), len(names)) for i in range(n)], links
