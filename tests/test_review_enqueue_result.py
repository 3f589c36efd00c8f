"""The crawler hands the queue the hashes it already computed: an unknown picture is hashed once, not twice, and
the queue still asks the banks itself at the moment of queueing (invariant 1)."""

from __future__ import annotations

import pytest

from vigie.banks import service as banks
from vigie.demo import encode, photo_like
from vigie.ingest import scan as scan_mod
from vigie.ingest.members import Item
from vigie.ingest.process import process_item
from vigie.review import queue


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = scan_mod.process_item

    def counted(item, settings, *a, **k):
        calls.append(item.location)
        return real(item, settings, *a, **k)

    monkeypatch.setattr(scan_mod, "process_item", counted)
    return calls


def test_a_picture_hashed_by_the_caller_is_not_hashed_again(store, media_key, monkeypatch):
    st = store.settings
    data = encode(photo_like(41, 480, 360), "JPEG")
    r = process_item(Item("http://site.example/a.jpg", size=len(data), data=data), st)
    calls = _counting(monkeypatch)
    got = queue.enqueue_media(store, st, data, source="crawl", location="http://site.example/a.jpg", result=r)
    assert got["items_added"] == 1 and got["media_stored"] == 1 and calls == []
    listed = queue.list_queue(store)
    assert len(listed) == 1 and listed[0]["size"] == 1


def test_a_result_for_other_bytes_is_not_trusted(store, media_key, monkeypatch):
    st = store.settings
    data = encode(photo_like(42, 480, 360), "JPEG")
    other = encode(photo_like(43, 480, 360), "JPEG")
    wrong = process_item(Item("x", size=len(other), data=other), st)
    calls = _counting(monkeypatch)
    got = queue.enqueue_media(store, st, data, source="crawl", location="http://site.example/b.jpg", result=wrong)
    assert calls == ["http://site.example/b.jpg"] and got["items_added"] == 1
    assert got["sha256"] != wrong.sha256


def test_the_banks_are_asked_again_even_with_the_callers_hashes(store, media_key, monkeypatch):
    """A bank that learnt the picture after the caller matched it: refused, nothing queued."""
    st = store.settings
    data = encode(photo_like(44, 480, 360), "JPEG")
    r = process_item(Item("c", size=len(data), data=data), st)
    banks.create_bank(store, "late")
    banks.add_entry(store, "late", "sha256", r.sha256)
    calls = _counting(monkeypatch)
    with pytest.raises(Exception) as exc:
        queue.enqueue_media(store, st, data, source="crawl", location="c", result=r)
    assert getattr(exc.value, "code", None) == "known_material" and calls == []
    assert queue.list_queue(store) == []
