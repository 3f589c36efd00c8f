"""Near-duplicate clusters (vigie.report.clusters): single linkage over PDQ distance, joined in whole arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.index.flat import FlatIndex
from vigie.index.mih import MIHIndex
from vigie.report.clusters import _components, cluster, cluster_array, cluster_links


def flip(h: np.ndarray, bits: list[int]) -> np.ndarray:
    out = h.copy()
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return out


def one_by_one(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """The union-find the report used before: each pair joined in turn, the smaller index the root."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=150))))
def test_joining_pairs_in_arrays_gives_the_roots_of_joining_them_one_by_one(case):
    n, pairs = case
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    got = _components(np.arange(n, dtype=np.int64), a, b)
    assert got.tolist() == one_by_one(n, pairs)


def test_single_linkage_chains_and_numbers_clusters_by_first_appearance():
    rng = np.random.default_rng(71)
    a, far = rng.integers(0, 256, (2, 32), dtype=np.uint8)
    b = flip(a, list(range(0, 50, 2)))        # 25 bits from a
    c = flip(b, list(range(100, 150, 2)))     # 25 bits from b, 50 from a: joined through b
    hexes = [h.tobytes().hex() for h in (far, a, c, flip(far, [3]), b)]
    assert cluster(hexes) == [0, 1, 1, 0, 1]
    assert cluster_array(np.stack([far, a, c, flip(far, [3]), b])).tolist() == [0, 1, 1, 0, 1]
    assert cluster(hexes[:3]) == [0, 1, 2]  # without b, c is 50 bits from a: apart


def test_a_variant_links_a_mirrored_copy_and_says_why():
    rng = np.random.default_rng(72)
    a, other, mirrored_plain = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    hexes = [a.tobytes().hex(), other.tobytes().hex(), mirrored_plain.tobytes().hex()]
    variants = [[], [], [("flipy", flip(a, [1, 9]).tobytes().hex())]]
    labels, links = cluster_links(hexes, 31, variants)
    assert labels == [0, 1, 0] and links == {2: (0, "flipy", 2)}


def test_pairs_search_is_the_search_flattened_on_both_indexes():
    rng = np.random.default_rng(73)
    base = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    hashes = np.stack([flip(base[i % 40], rng.choice(256, int(rng.integers(0, 40)), replace=False).tolist())
                       for i in range(300)])
    for index in (FlatIndex(), MIHIndex()):
        index.add(np.arange(300, dtype=np.int64) * 3, hashes)
        qi, ids, dist = index.search_pairs(hashes[:120], 31)
        want = sorted((q, e, d) for q, ms in enumerate(index.search(hashes[:120], 31)) for e, d in ms)
        assert sorted(zip(qi.tolist(), ids.tolist(), dist.tolist())) == want, type(index).__name__
        assert qi.dtype == ids.dtype == dist.dtype == np.int64
