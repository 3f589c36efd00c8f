"""What the scan's hashing workers make and carry back: no miniature unless asked, the same hashes either way."""

from __future__ import annotations

from vigie.demo import encode, photo_like
from vigie.ingest.members import Item
from vigie.ingest.process import process_item


def test_miniatures_only_when_asked(settings):
    data = encode(photo_like(3, 320, 240), "JPEG")
    plain = process_item(Item("a.jpg", size=len(data), data=data), settings)
    asked = process_item(Item("a.jpg", size=len(data), data=data), settings, miniatures=True)
    assert plain.thumb is None and plain.keyframes == []
    assert asked.thumb and asked.thumb[:2] == b"\xff\xd8"
    assert (plain.pdq, plain.pdq_variants, plain.sha256) == (asked.pdq, asked.pdq_variants, asked.sha256)


def test_reduced_decode_only_for_large_jpegs_and_carried_to_duplicates(settings):
    fast = settings.model_copy(update={"fast_decode": True})
    big = encode(photo_like(4, 1600, 1200), "JPEG")
    seen: dict = {}
    first = process_item(Item("big.jpg", size=len(big), data=big), fast, seen.get)
    seen[first.sha256] = first
    again = process_item(Item("copy.jpg", size=len(big), data=big), fast, seen.get)
    small = encode(photo_like(5, 800, 600), "JPEG")
    assert "pdq_reduced" in first.flags
    assert again.reused and "pdq_reduced" in again.flags and again.pdq == first.pdq
    assert "pdq_reduced" not in process_item(Item("s.jpg", size=len(small), data=small), fast).flags
    assert "pdq_reduced" not in process_item(Item("big.jpg", size=len(big), data=big), settings).flags


def test_the_forkserver_preload_warms_without_raising():
    from vigie.ingest import preload

    preload.warm()
