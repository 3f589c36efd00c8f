"""PDQ indexes against brute-force numpy popcount, with planted neighbours at every distance 0..31."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.index import FLAT_MAX, FlatIndex, MIHIndex, PdqIndex, best_per_id, hex_to_hashes, make_pdq_index
from vigie.index.mih import exact_radius

N = 4000


def brute(bank: np.ndarray, ids: np.ndarray, queries: np.ndarray, threshold: int) -> list[list[tuple[int, int]]]:
    """Ground truth: every (id, distance <= threshold), nearest first, ties by id, best per id."""
    out = []
    for q in queries:
        d = np.bitwise_count(np.bitwise_xor(bank, q)).sum(axis=1)
        best: dict[int, int] = {}
        for i in np.flatnonzero(d <= threshold):
            e, dist = int(ids[i]), int(d[i])
            best[e] = min(dist, best.get(e, dist))
        out.append(sorted(best.items(), key=lambda x: (x[1], x[0])))
    return out


def flip(rng, h: np.ndarray, d: int) -> np.ndarray:
    """A copy of h with exactly d distinct random bits flipped."""
    bits = np.unpackbits(h.copy())
    bits[rng.choice(256, size=d, replace=False)] ^= 1
    return np.packbits(bits)


def planted(rng, bank: np.ndarray, per_distance: int = 3):
    """Queries at every distance 0..31 from a random bank row, and that row."""
    qs, src, dist = [], [], []
    for d in range(32):
        for _ in range(per_distance):
            r = int(rng.integers(bank.shape[0]))
            qs.append(flip(rng, bank[r], d))
            src.append(r)
            dist.append(d)
    return np.array(qs), np.array(src), np.array(dist)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261101)
    bank = rng.integers(0, 256, size=(N, 32), dtype=np.uint8)
    ids = rng.permutation(N).astype(np.int64) * 7 + 10**12  # sparse, large, unordered ids
    q, src, dist = planted(rng, bank)
    noise = rng.integers(0, 256, size=(64, 32), dtype=np.uint8)
    return bank, ids, np.concatenate([q, noise]), src, dist


FACTORIES = {
    "flat": FlatIndex,
    "mih-built": lambda: MIHIndex(delta_max=0),  # every add rebuilds: all rows in the tables
    "mih-delta": lambda: MIHIndex(delta_max=10**9),  # all rows in the brute-force delta
    "mih-r1": lambda: MIHIndex(radius=1, delta_max=0),
}


@pytest.fixture(params=list(FACTORIES))
def make(request):
    return FACTORIES[request.param]


@pytest.mark.parametrize("threshold", [0, 7, 15, 16, 24, 31])
def test_matches_brute_force(make, data, threshold):
    bank, ids, queries, src, dist = data
    index = make()
    index.add(ids, bank)
    got = index.search(queries, threshold)
    assert got == brute(bank, ids, queries, threshold)
    # every planted neighbour within the threshold is found, at its planted distance (or closer)
    for i, (r, d) in enumerate(zip(src, dist, strict=True)):
        found = dict(got[i])
        if d <= threshold:
            assert ids[r] in found and found[ids[r]] <= d


def test_results_within_threshold_and_nearest_first(make, data):
    bank, ids, queries, _, _ = data
    index = make()
    index.add(ids, bank)
    for res in index.search(queries, 20):
        assert all(d <= 20 for _, d in res)
        assert res == sorted(res, key=lambda x: (x[1], x[0]))
        assert len({e for e, _ in res}) == len(res)


def _adversarial(rng, h: np.ndarray, per_substring: list[int]) -> np.ndarray:
    """Flip per_substring[t] bits inside substring t (bytes 2t, 2t+1) of h."""
    bits = np.unpackbits(h.copy())
    for t, k in enumerate(per_substring):
        bits[16 * t + rng.choice(16, size=k, replace=False)] ^= 1
    return np.packbits(bits)


def test_pigeonhole_worst_case_distance_31_found_by_radius_1():
    """d = 31 with 2 bits in 15 substrings and 1 in the last: only one table can find it."""
    rng = np.random.default_rng(7)
    bank = rng.integers(0, 256, size=(500, 32), dtype=np.uint8)
    index = MIHIndex(delta_max=0)
    index.add(np.arange(500), bank)
    for t in range(16):
        pattern = [2] * 16
        pattern[t] = 1
        q = _adversarial(rng, bank[t], pattern)
        assert (t, 31) in index.search(q[None], 31)[0]
        # radius 0 cannot see it (no substring is equal): a subset, and documented as such
        assert (t, 31) not in _with_radius(index, 0).search(q[None], 31)[0]
    # distance 32 with 2 bits in every substring: outside 31, and beyond radius 1's guarantee
    q = _adversarial(rng, bank[3], [2] * 16)
    assert index.search(q[None], 31)[0] == []
    assert (3, 32) in index.search(q[None], 32)[0]  # automatic radius 2
    assert (3, 32) not in _with_radius(index, 1).search(q[None], 32)[0]
    # radius 0 is exact to 15: 1 bit in 15 substrings
    q = _adversarial(rng, bank[4], [1] * 15 + [0])
    assert (4, 15) in _with_radius(index, 0).search(q[None], 15)[0]


def _with_radius(index: MIHIndex, radius: int) -> MIHIndex:
    """A shallow copy sharing the arrays, with a fixed probing radius."""
    other = copy.copy(index)
    other.radius = radius
    return other


def test_exact_radius():
    assert [exact_radius(t) for t in (0, 15, 16, 31, 32, 47, 48)] == [0, 0, 1, 1, 2, 2, None]


def test_threshold_past_radius_2_falls_back_to_brute_force(data):
    bank, ids, queries, _, _ = data
    index = MIHIndex(delta_max=0)
    index.add(ids[:500], bank[:500])
    assert index.search(queries[:20], 60) == brute(bank[:500], ids[:500], queries[:20], 60)


def test_add_after_build_and_merge(make, data):
    bank, ids, queries, _, _ = data
    index = make()
    index.add(ids[:3000], bank[:3000])
    if isinstance(index, MIHIndex):
        index.compact()  # main tables hold 3000 rows
        index.delta_max = 600  # the next adds stay in the delta, then one triggers a merge
    index.add(ids[3000:3500], bank[3000:3500])
    assert index.search(queries, 31) == brute(bank[:3500], ids[:3500], queries, 31)
    if isinstance(index, MIHIndex):
        assert index.delta_size == 500
    index.add(ids[3500:], bank[3500:])
    if isinstance(index, MIHIndex):
        assert index.delta_size == 0
    assert len(index) == N
    assert index.search(queries, 31) == brute(bank, ids, queries, 31)


def test_remove_never_matches_again(make, data, tmp_path):
    bank, ids, queries, src, _ = data
    index = make()
    index.add(ids[:3000], bank[:3000])
    if isinstance(index, MIHIndex):
        index.delta_max = 10**9
    index.add(ids[3000:], bank[3000:])  # some removed ids live in the delta
    gone = np.unique(np.concatenate([ids[src[::2]], ids[3000:3100]]))
    assert index.remove(gone) == len(gone)
    assert index.remove(gone) == 0  # idempotent
    assert len(index) == N - len(gone)
    keep = ~np.isin(ids, gone)
    expected = brute(bank[keep], ids[keep], queries, 31)
    assert index.search(queries, 31) == expected
    for res in index.search(bank[np.isin(ids, gone)], 0):
        assert not {e for e, _ in res} & set(gone.tolist())
    index.save(tmp_path / "ix")
    again = PdqIndex.load(tmp_path / "ix", mmap=True)
    assert again.search(queries, 31) == expected
    if isinstance(index, MIHIndex):
        index.compact()
        assert index.delta_size == 0 and len(index) == N - len(gone)
        assert index.search(queries, 31) == expected


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(make, data, tmp_path, mmap):
    bank, ids, queries, _, _ = data
    index = make()
    index.add(ids[:3000], bank[:3000])
    if isinstance(index, MIHIndex):
        index.delta_max = 10**9
    index.add(ids[3000:], bank[3000:])
    before = index.search(queries, 31)
    index.save(tmp_path / "ix")
    loaded = type(index).load(tmp_path / "ix", mmap=mmap)
    assert type(loaded) is type(index) and len(loaded) == len(index)
    assert loaded.search(queries, 31) == before
    # a loaded (possibly mapped) index still takes changes, and can be saved over its own files
    loaded.remove(ids[:10])
    loaded.add([-5], bank[:1])
    loaded.save(tmp_path / "ix")
    third = PdqIndex.load(tmp_path / "ix")
    assert third.search(bank[:1], 0)[0] == [(-5, 0)]
    assert third.search(queries, 31) == loaded.search(queries, 31)


def test_load_checks_kind(tmp_path):
    FlatIndex().save(tmp_path / "f")
    with pytest.raises(ValueError):
        MIHIndex.load(tmp_path / "f")
    assert isinstance(PdqIndex.load(tmp_path / "f"), FlatIndex)


def test_empty_index(make, tmp_path):
    index = make()
    q = np.zeros((3, 32), np.uint8)
    assert len(index) == 0
    assert index.search(q) == [[], [], []]
    assert index.search(np.zeros((0, 32), np.uint8)) == []
    index.add(np.zeros(0, np.int64), np.zeros((0, 32), np.uint8))
    index.save(tmp_path / "e")
    assert PdqIndex.load(tmp_path / "e").search(q) == [[], [], []]


def test_duplicate_hash_under_two_ids_and_two_hashes_under_one_id(make):
    rng = np.random.default_rng(3)
    bank = rng.integers(0, 256, size=(50, 32), dtype=np.uint8)
    index = make()
    index.add(np.arange(50), bank)
    index.add([100, 101], np.stack([bank[5], bank[5]]))  # same hash in two more banks
    index.add([7], flip(rng, bank[7], 3)[None])  # entry 7 carries a second hash
    assert index.search(bank[5][None], 0)[0] == [(5, 0), (100, 0), (101, 0)]
    res = index.search(flip(rng, bank[7], 0)[None], 31)[0]
    assert res.count((7, 0)) == 1 and [e for e, _ in res].count(7) == 1


def test_bad_input(make):
    index = make()
    with pytest.raises(ValueError):
        index.add([1, 2], np.zeros((3, 32), np.uint8))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 16), np.uint8))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 32), np.int64))


def test_best_per_id_and_search_multi(make, data):
    bank, ids, _, _, _ = data
    assert best_per_id([[(1, 5), (2, 9)], [(2, 3)], [(1, 5)]]) == [(2, 3, 1), (1, 5, 0)]
    index = make()
    index.add(ids, bank)
    rng = np.random.default_rng(1)
    group = np.stack([flip(rng, bank[0], 20), flip(rng, bank[0], 4), rng.integers(0, 256, 32).astype(np.uint8)])
    (res,) = index.search_multi([group])
    assert res[0] == (int(ids[0]), 4, 1)


def test_factory_and_hex():
    assert isinstance(make_pdq_index(FLAT_MAX - 1), FlatIndex)
    assert isinstance(make_pdq_index(FLAT_MAX), MIHIndex)
    h = hex_to_hashes(["f" * 64, "0" * 63 + "1"])
    assert h.shape == (2, 32) and h[0, 0] == 255 and h[1, 31] == 1


def test_nbytes_under_100_per_hash_when_large():
    rng = np.random.default_rng(0)
    n = 200_000
    index = MIHIndex(delta_max=0)
    index.add(np.arange(n) + 5, rng.integers(0, 256, size=(n, 32), dtype=np.uint8))
    # 96.1 bytes per hash + 4 MB of bucket offsets
    assert index.nbytes <= 96.2 * n + 16 * 65537 * 4 + 8192


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    dists=st.lists(st.integers(0, 40), min_size=1, max_size=8),
    threshold=st.integers(0, 40),
    delta_max=st.sampled_from([0, 50, 10**9]),
)
def test_property_mih_equals_brute_force(seed, n, dists, threshold, delta_max):
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    bank[rng.integers(n, size=n // 4)] = bank[0]  # duplicates
    ids = rng.integers(0, 50, size=n)  # repeated ids: one entry, several hashes
    queries = np.stack([flip(rng, bank[int(rng.integers(n))], d) for d in dists])
    index = MIHIndex(delta_max=delta_max)
    half = n // 2
    index.add(ids[:half], bank[:half])
    index.add(ids[half:], bank[half:])
    gone = rng.integers(0, 50, size=3)
    index.remove(gone)
    keep = ~np.isin(ids, gone)
    assert index.search(queries, threshold) == brute(bank[keep], ids[keep], queries, threshold)
