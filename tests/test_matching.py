"""The bank-aware matcher, on SQLite and PostgreSQL: exact and near matches, hygiene, persistence."""

from __future__ import annotations

import hashlib
import random

import pytest

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.banks.verdict import from_label
from vigie.errors import NotFound
from vigie.matching import Matcher, Query


def rand_pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(h: str, bits: int, rng: random.Random) -> str:
    v = int(h, 16)
    for b in rng.sample(range(256), bits):
        v ^= 1 << b
    return f"{v:064x}"


@pytest.fixture
def bank_with_entries(store):
    rng = random.Random(7)
    pdqs = [rand_pdq(rng) for _ in range(50)]
    banks.create_bank(store, "known", default_verdict=from_label("uk", "A"))
    rows = [EntryData("pdq", h) for h in pdqs] + [EntryData("md5", hashlib.md5(b"x").hexdigest(),
                                                           verdict=from_label("vics_us", "2"))]
    banks.import_entries(store, "known", enumerate(rows, 1))
    return store, pdqs, rng


def one(matcher, q, **kw):
    return matcher.match([q], **kw)[0]


def test_exact_and_near_matches(bank_with_entries):
    store, pdqs, rng = bank_with_entries
    m = Matcher(store)
    r = one(m, Query.from_hash(hashlib.md5(b"x").hexdigest()))
    assert [(x.signal, x.distance, x.category) for x in r.matches] == [("md5", 0, "vics_us:2")]
    for d in (0, 15, 31):
        r = one(m, Query.from_hash(flip(pdqs[3], d, rng)))
        assert [(x.entry_id, x.distance) for x in r.matches][:1] == [(4, d)], d
        assert r.matches[0].category == "uk:A" and r.matches[0].as_dict()["labels"]["uk"] == "A"
    assert one(m, Query.from_hash(flip(pdqs[3], 40, rng))).matches == []
    assert one(m, Query.from_hash(flip(pdqs[3], 20, rng)), threshold=10).matches == []


def test_removed_disabled_and_bank_disabled_never_match(bank_with_entries):
    store, pdqs, _ = bank_with_entries
    m = Matcher(store)
    assert one(m, Query.from_hash(pdqs[0])).matches
    banks.remove_entry(store, "known", pdqs[0])
    assert one(m, Query.from_hash(pdqs[0])).matches == []  # without a refresh too
    banks.set_disabled(store, "known", pdqs[1], True)
    assert one(m, Query.from_hash(pdqs[1])).matches == []
    banks.set_disabled(store, "known", pdqs[1], False)
    assert one(m, Query.from_hash(pdqs[1])).matches
    banks.update_bank(store, "known", enabled=False)
    assert one(m, Query.from_hash(pdqs[1])).matches == []


def test_bank_threshold_and_filter(bank_with_entries):
    store, pdqs, rng = bank_with_entries
    banks.create_bank(store, "strict", pdq_threshold=10)
    banks.import_entries(store, "strict", [(1, EntryData("pdq", pdqs[5]))])
    m = Matcher(store)
    q = Query.from_hash(flip(pdqs[5], 20, rng))
    assert {x.bank for x in one(m, q).matches} == {"known"}
    q2 = Query.from_hash(flip(pdqs[5], 5, rng))
    assert {x.bank for x in one(m, q2).matches} == {"known", "strict"}
    assert {x.bank for x in one(m, q2, banks=["strict"]).matches} == {"strict"}
    with pytest.raises(NotFound):
        m.match([q2], banks=["nope"])


def test_suppression_cancels_same_signal(bank_with_entries):
    store, pdqs, rng = bank_with_entries
    banks.create_bank(store, "fp", kind="suppression")
    banks.import_entries(store, "fp", [(1, EntryData("pdq", pdqs[7]))])
    m = Matcher(store)
    r = one(m, Query.from_hash(flip(pdqs[7], 3, rng)))
    assert r.matches == [] and [x.bank for x in r.suppressed] == ["known"]
    assert one(m, Query.from_hash(pdqs[8])).matches  # other entries unaffected


def test_flood_quarantine(bank_with_entries):
    store, pdqs, _ = bank_with_entries
    from vigie.settings import Settings

    st = Settings(data_dir=store.settings.data_dir, flood_min=5, flood_factor=3)
    m = Matcher(store, st)
    for _ in range(5):
        assert one(m, Query.from_hash(pdqs[9]), record=True).matches
    assert one(m, Query.from_hash(pdqs[9]), record=True).matches  # the 6th pushes it over
    assert one(m, Query.from_hash(pdqs[9])).matches == []
    from sqlalchemy import select

    from vigie.store.models import Entry

    with store.sessions() as s:
        e = s.scalar(select(Entry).where(Entry.value == pdqs[9]))
        assert e.quarantined_at is not None and "flood: 6 matches" in e.quarantine_reason
    banks.release_quarantine(store, e.id)
    assert one(m, Query.from_hash(pdqs[9])).matches


def test_match_counts_from_threads_at_once_add_up(bank_with_entries):
    """Matches recorded at once by several matchers (threads here; processes and servers alike: the count is
    added in the database, never read, incremented and written back) add up, on both stores."""
    from racing import at_once
    from sqlalchemy import select

    from vigie.settings import Settings
    from vigie.store.models import Entry, MatchCount

    store, pdqs, _ = bank_with_entries
    st = Settings(data_dir=store.settings.data_dir, flood_min=10_000)
    queries = [Query.from_hash(pdqs[i % 3]) for i in range(6)]  # three entries, each twice a batch

    def worker(m):
        for _ in range(10):
            m.match(queries, record=True)

    errors = at_once(worker, 4, ready=lambda k: Matcher(store, st))
    assert errors == []
    with store.sessions() as s:
        ids = [s.scalar(select(Entry.id).where(Entry.value == pdqs[i])) for i in range(3)]
        got = {r.entry_id: r.count for r in s.scalars(select(MatchCount).where(MatchCount.entry_id.in_(ids)))}
    assert got == dict.fromkeys(ids, 4 * 10 * 2)


def test_index_persists_and_grows_incrementally(bank_with_entries, tmp_path):
    store, pdqs, rng = bank_with_entries
    m = Matcher(store)
    assert m.refresh() == 51
    m2 = Matcher(store)  # loads the saved index: nothing to add
    assert m2.refresh() == 0
    assert one(m2, Query.from_hash(pdqs[10])).matches
    new = rand_pdq(rng)
    banks.add_entry(store, "known", "pdq", new)
    assert m2.refresh() == 1
    assert one(m2, Query.from_hash(flip(new, 12, rng))).matches[0].distance == 12


def test_flat_index_grows_into_mih(store, monkeypatch):
    import vigie.matching as matching

    monkeypatch.setattr(matching, "FLAT_MAX", 100)
    rng = random.Random(3)
    banks.create_bank(store, "b")
    hs = [rand_pdq(rng) for _ in range(300)]
    banks.import_entries(store, "b", enumerate((EntryData("pdq", h) for h in hs), 1))
    m = Matcher(store)
    m.refresh()
    assert type(m._pdq).__name__ == "MIHIndex"
    assert one(m, Query.from_hash(flip(hs[250], 31, rng))).matches[0].distance == 31


def test_hash_query_parsing():
    q = Query.from_hash("A" * 64)
    assert q.pdq == [("original", "a" * 64)]
    q = Query.from_hash("a" * 64, "sha256")
    assert q.exact == {"sha256": "a" * 64}
    with pytest.raises(Exception) as e:
        Query.from_hash("xyz")
    assert e.value.code in ("unknown_signal", "invalid_hash")
