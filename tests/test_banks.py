"""Banks and entries on the store, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.banks.verdict import Verdict, from_label
from vigie.errors import Conflict, FormatError, NotFound, RowError


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def rows(*entries):
    return list(enumerate(entries, start=1))


def test_create_list_and_conflict(store):
    banks.create_bank(store, "demo", description="d", source="unit test", default_verdict=from_label("uk", "B"))
    with pytest.raises(Conflict):
        banks.create_bank(store, "demo")
    [b] = banks.list_banks(store)
    assert b.name == "demo" and b.default_verdict.label("uk") == "B" and b.enabled and b.kind == "match"
    with pytest.raises(NotFound):
        banks.get_bank(store, "nope")


def test_import_normalises_and_merges_duplicates(store):
    banks.create_bank(store, "b")
    rep = banks.import_entries(store, "b", rows(
        EntryData("md5", md5("a").upper(), tags=["x"]),
        EntryData("MD5", md5("a"), tags=["y"], verdict=from_label("vics_us", "1")),
        EntryData("pdq", "0x" + "ab" * 32),
    ))
    assert rep.read == 3 and rep.added == 2 and rep.merged == 1
    entries = list(banks.iter_entries(store, "b"))
    assert len(entries) == 2
    e = next(e for e in entries if e.signal == "md5")
    assert e.value == md5("a") and e.tags == ["x", "y"] and e.verdict.label("vics_us") == "1"
    rep = banks.import_entries(store, "b", rows(EntryData("md5", md5("a"), tags=["z"])))
    assert rep.added == 0 and rep.merged == 1
    assert next(e for e in banks.iter_entries(store, "b") if e.signal == "md5").tags == ["x", "y", "z"]


def test_bad_rows_refuse_whole_file_unless_skip_invalid(store):
    banks.create_bank(store, "b")
    bad = rows(EntryData("md5", md5("a")), EntryData("md5", "zz"), RowError(3, "bad_category", "no such"),
               EntryData("sha1", hashlib.sha1(b"x").hexdigest()))
    with pytest.raises(FormatError) as e:
        banks.import_entries(store, "b", bad)
    assert [(r.line, r.code) for r in e.value.rows] == [(2, "invalid_hash"), (3, "bad_category")]
    assert list(banks.iter_entries(store, "b")) == []  # atomic: nothing imported
    rep = banks.import_entries(store, "b", bad, skip_invalid=True)
    assert rep.added == 2 and rep.skipped_count == 2


def test_tombstones_survive_reimport(store):
    banks.create_bank(store, "b")
    data = rows(EntryData("md5", md5("fp")), EntryData("md5", md5("ok")))
    banks.import_entries(store, "b", data)
    assert banks.remove_entry(store, "b", md5("fp"), by="alice", reason="false positive") == 1
    rep = banks.import_entries(store, "b", data)
    assert rep.tombstoned == 1 and rep.added == 0
    assert [e.value for e in banks.iter_entries(store, "b")] == [md5("ok")]
    removed = [e for e in banks.iter_entries(store, "b", include_removed=True) if e.removed]
    assert [e.value for e in removed] == [md5("fp")]
    with pytest.raises(Conflict):
        banks.add_entry(store, "b", "md5", md5("fp"))
    assert banks.restore_entry(store, "b", md5("fp")) == 1
    assert len(list(banks.iter_entries(store, "b"))) == 2


def test_large_import_batches(store):
    banks.create_bank(store, "big")
    n = 12_000
    rep = banks.import_entries(store, "big", ((i, EntryData("md5", md5(str(i)))) for i in range(1, n + 1)))
    assert rep.added == n
    assert sum(1 for _ in banks.iter_entries(store, "big", batch=5000)) == n
    [b] = banks.list_banks(store)
    assert b.counts == {"md5": n}


def test_update_and_delete_bank(store):
    banks.create_bank(store, "s", kind="suppression", pdq_threshold=10)
    b = banks.update_bank(store, "s", enabled=False, default_verdict=Verdict(legality="not_illegal"))
    assert not b.enabled and b.kind == "suppression" and b.pdq_threshold == 10
    assert b.default_verdict.label("iccam") == "not_illegal"
    banks.delete_bank(store, "s")
    assert banks.list_banks(store) == []


def test_verdict_labels_derive_per_scheme():
    v = Verdict(legality="baseline", age_band="prepubescent", severity="penetrative")
    assert v.labels() == {"interpol": "baseline", "iccam": "baseline", "vics_us": "1", "uk": "A",
                          "tech_coalition": "A1"}
    assert Verdict(synthetic="drawn", legality="national").label("vics_us") == "3"
    assert Verdict(legality="not_illegal").labels()["uk"] is None
    imported = from_label("vics_us", "2", profile="US")
    assert imported.label("vics_us") == "2" and imported.source_profile == "US"
    assert Verdict.from_dict(imported.as_dict()) == imported
    with pytest.raises(ValueError):
        from_label("uk", "D")
