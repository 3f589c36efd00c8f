"""ExactIndex against a plain dict model."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.index import ExactIndex


def model_lookup(pairs: list[tuple[int, bytes]], values: list[bytes]) -> list[list[int]]:
    table: dict[bytes, set[int]] = {}
    for i, v in pairs:
        table.setdefault(v, set()).add(i)
    return [sorted(table.get(v, ())) for v in values]


@pytest.mark.parametrize("algo,width", [("md5", 16), ("sha1", 20), ("sha256", 32)])
def test_lookup_found_missing_and_duplicates(algo, width):
    digests = [hashlib.new(algo, str(i).encode()).digest() for i in range(2000)]
    index = ExactIndex(width, delta_max=500)  # several merges on the way
    for start in range(0, 2000, 300):
        index.add(np.arange(start, min(2000, start + 300)), digests[start : start + 300])
    index.add([5000, 5001], [digests[7], digests[7]])  # the same file in two more banks
    missing = hashlib.new(algo, b"nope").digest()
    got = index.lookup([digests[0], digests[1999], missing, digests[7]])
    assert got == [[0], [1999], [], [7, 5000, 5001]]
    assert len(index) == 2002


def test_first_eight_bytes_collision_is_not_a_match():
    a = bytes(8) + b"\x01" * 8
    b = bytes(8) + b"\x02" * 8
    c = bytes(8) + b"\x03" * 8
    index = ExactIndex(16)
    index.add([1, 2], [a, b])
    index.merge()
    index.add([3], [b])  # and one in the delta
    assert index.lookup([a, b, c]) == [[1], [2, 3], []]


def test_remove_never_matches_again(tmp_path):
    digests = [hashlib.sha1(str(i).encode()).digest() for i in range(100)]
    index = ExactIndex(20)
    index.add(np.arange(80), digests[:80])
    index.merge()
    index.add(np.arange(80, 100), digests[80:])
    index.add([7], [digests[50]])  # id 7 holds two digests
    assert index.remove([7, 90, 12345]) == 3
    assert index.remove([7]) == 0
    assert index.lookup([digests[7], digests[90], digests[50]]) == [[], [], [50]]
    index.save(tmp_path / "x")
    again = ExactIndex.load(tmp_path / "x")
    assert again.lookup([digests[7], digests[90], digests[50], digests[1]]) == [[], [], [50], [1]]
    assert len(again) == 98


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, mmap):
    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(500)]
    index = ExactIndex(32)
    index.add(np.arange(500) * 3, digests)
    index.save(tmp_path / "x")
    loaded = ExactIndex.load(tmp_path / "x", mmap=mmap)
    assert loaded.lookup(digests[:5]) == [[0], [3], [6], [9], [12]]
    # a loaded (mapped, read-only) index takes changes and can be saved over its own files
    loaded.remove([0])
    loaded.add([-1], [digests[1]])
    loaded.save(tmp_path / "x")
    third = ExactIndex.load(tmp_path / "x")
    assert third.lookup(digests[:2]) == [[], [-1, 3]]


def test_empty_and_bad_input(tmp_path):
    index = ExactIndex(16)
    assert index.lookup([bytes(16)]) == [[]]
    assert index.lookup([]) == []
    index.save(tmp_path / "e")
    assert ExactIndex.load(tmp_path / "e").lookup([bytes(16)]) == [[]]
    with pytest.raises(ValueError):
        index.lookup([bytes(20)])
    with pytest.raises(ValueError):
        index.add([1, 2], [bytes(16)])
    with pytest.raises(ValueError):
        ExactIndex(4)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "merge"]),
            st.lists(st.tuples(st.integers(0, 20), st.integers(0, 15)), max_size=10),
        ),
        max_size=12,
    )
)
def test_property_matches_dict_model(ops):
    def digest(k: int) -> bytes:  # few distinct digests, several sharing their first 8 bytes
        return bytes(8) + bytes([k % 4]) * 4 + bytes([k]) * 4

    index = ExactIndex(16, delta_max=7)
    pairs: list[tuple[int, bytes]] = []
    for op, items in ops:
        if op == "add":
            index.add([i for i, _ in items], [digest(k) for _, k in items])
            pairs += [(i, digest(k)) for i, k in items]
        elif op == "remove":
            gone = {i for i, _ in items}
            index.remove(sorted(gone))
            pairs = [p for p in pairs if p[0] not in gone]
        else:
            index.merge()
    values = [digest(k) for k in range(16)]
    assert index.lookup(values) == model_lookup(pairs, values)
    assert len(index) == len(pairs)
