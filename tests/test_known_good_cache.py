"""The known-good set is kept on disk between scans and mapped by the workers (`vigie.banks.known_good.load`):
read from the store once per state of the banks, never trusted when the banks changed or the files are damaged,
and an older set removed only when no scan holds it. Both stores."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat

import numpy as np
import pytest
from sqlalchemy import select

from vigie.banks import known_good
from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.store.models import Entry

DIGESTS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(50)]
MD5S = [hashlib.md5(str(i).encode()).hexdigest() for i in range(50, 60)]


@pytest.fixture
def nsrl(store):
    banks.create_bank(store, "nsrl", kind="known_good")
    rows = [(i, EntryData(signal="sha256", value=v)) for i, v in enumerate(DIGESTS, 1)]
    rows += [(i, EntryData(signal="md5", value=v)) for i, v in enumerate(MD5S, 51)]
    banks.import_entries(store, "nsrl", rows)
    return store


def hits(kg, value: str, sig: str = "sha256") -> str | None:
    return kg.hit({sig: value})


def saved(store) -> list[str]:
    root = store.index_dir / known_good.FOLDER
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_the_second_load_maps_the_saved_set_without_reading_the_store(nsrl, monkeypatch):
    first = known_good.load(nsrl)
    assert len(first) == 60 and first.path is not None and saved(nsrl) == [first.path.name]
    first.release()

    def no_read(session):
        raise AssertionError("the saved set should have been used")

    monkeypatch.setattr(known_good, "_read", no_read)
    again = known_good.load(nsrl)
    assert again.path == first.path and len(again) == 60
    assert hits(again, DIGESTS[7]) == "sha256" and hits(again, MD5S[3], "md5") == "md5"
    assert hits(again, hashlib.sha256(b"other").hexdigest()) is None
    arr = again._idx["sha256"]._digests
    assert not arr.flags.writeable and not arr.flags.owndata  # mapped, not copied
    again.release()


@pytest.mark.parametrize("change", ["remove", "disable_entry", "quarantine", "add", "disable_bank", "delete_bank",
                                    "remove_then_restore"])
def test_any_change_to_the_banks_gives_a_set_read_again(nsrl, change):
    before = known_good.load(nsrl)
    before.release()
    value = DIGESTS[3]
    if change == "remove":
        banks.remove_entry(nsrl, "nsrl", value)
    elif change == "disable_entry":
        banks.set_disabled(nsrl, "nsrl", value, True)
    elif change == "quarantine":
        from vigie.store.models import utcnow
        with nsrl.session() as s:
            e = s.scalars(select(Entry).where(Entry.value == value)).one()
            e.quarantined_at = utcnow()
    elif change == "add":
        banks.add_entry(nsrl, "nsrl", "sha256", hashlib.sha256(b"new").hexdigest())
    elif change == "disable_bank":
        banks.update_bank(nsrl, "nsrl", enabled=False)
    elif change == "delete_bank":
        banks.delete_bank(nsrl, "nsrl")
    elif change == "remove_then_restore":
        banks.remove_entry(nsrl, "nsrl", value)
        mid = known_good.load(nsrl)
        assert hits(mid, value) is None
        mid.release()
        banks.restore_entry(nsrl, "nsrl", value)
    after = known_good.load(nsrl)
    expect = {"remove": None, "disable_entry": None, "quarantine": None, "add": "sha256", "disable_bank": None,
              "delete_bank": None, "remove_then_restore": "sha256"}[change]
    assert hits(after, value if change != "add" else hashlib.sha256(b"new").hexdigest()) == expect
    if change in ("disable_bank", "delete_bank"):
        assert not after and after.path is None
    else:
        assert after.path != before.path and after.path.exists()
        assert not before.path.exists()  # no scan held the older set: removed
        assert len(after) == {"add": 61}.get(change, 60 if change == "remove_then_restore" else 59)
    after.release()


def test_a_set_in_use_is_kept_until_its_scan_releases_it(nsrl):
    held = known_good.load(nsrl)  # a scan that runs on
    banks.remove_entry(nsrl, "nsrl", DIGESTS[0])
    newer = known_good.load(nsrl)
    assert held.path.exists() and sorted(saved(nsrl)) == sorted([held.path.name, newer.path.name])
    # a worker of the first scan starting now still maps the set its scan began with
    worker = pickle.loads(pickle.dumps(held))
    assert hits(worker, DIGESTS[0]) == "sha256" and hits(newer, DIGESTS[0]) is None
    held.release()
    newer.release()
    banks.remove_entry(nsrl, "nsrl", DIGESTS[1])
    latest = known_good.load(nsrl)
    assert saved(nsrl) == [latest.path.name]  # both older sets gone
    latest.release()


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "meta"])
def test_a_damaged_saved_set_is_read_again_never_trusted(nsrl, damage):
    kg = known_good.load(nsrl)
    kg.release()
    path = kg.path
    del kg
    digests = path / "sha256" / "digests.npy"
    a = np.load(digests)
    if damage == "truncated":
        np.save(digests, a[:10])
    elif damage == "overwritten":
        a[:] = 0  # every digest changed: a lookup would find nothing
        np.save(digests, a)
    else:
        (path / known_good.META).write_text("{")
    again = known_good.load(nsrl)
    assert len(again) == 60 and hits(again, DIGESTS[20]) == "sha256" and hits(again, MD5S[0], "md5") == "md5"
    assert again.path == path and known_good.KnownGood.open(path)  # saved again, whole
    again.release()


def test_exact_index_verify_catches_damage():
    from vigie.index.exact import ExactIndex

    idx = ExactIndex(32)
    idx.add(np.arange(100), [hashlib.sha256(str(i).encode()).digest() for i in range(100)])
    idx.merge()
    idx.verify()
    idx._digests = idx._digests.copy()
    idx._digests[37, 0] ^= 0xFF
    with pytest.raises(ValueError, match="do not match"):
        idx.verify()
    idx._digests = idx._digests[:50]
    with pytest.raises(ValueError, match="disagree"):
        idx.verify()


def test_workers_get_the_folder_not_the_digests(nsrl):
    kg = known_good.load(nsrl)
    blob = pickle.dumps(kg)
    assert len(blob) < 1000  # the folder's name; each worker maps the files
    worker = pickle.loads(blob)
    assert worker.path == kg.path and hits(worker, DIGESTS[9]) == "sha256"
    kg.release()
    unsaved = known_good.read(nsrl)  # a set only in memory travels whole
    copy = pickle.loads(pickle.dumps(unsaved))
    assert copy.path is None and hits(copy, DIGESTS[9]) == "sha256"


def test_the_saved_set_is_for_this_process_user_only(nsrl):
    kg = known_good.load(nsrl)
    kg.release()
    for root, dirs, files in os.walk(nsrl.index_dir / known_good.FOLDER):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) == 0o700
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode) == 0o600


def test_a_crashed_save_is_cleaned_up_and_never_used(nsrl):
    root = nsrl.index_dir / known_good.FOLDER
    root.mkdir(parents=True, exist_ok=True)
    name = known_good.fingerprint(nsrl)
    junk = root / f".{name}.999999.tmp"  # a save killed halfway
    (junk / "sha256").mkdir(parents=True)
    kg = known_good.load(nsrl)
    assert len(kg) == 60 and saved(nsrl) == [name]
    kg.release()


def test_an_empty_set_saves_nothing(store):
    kg = known_good.load(store)
    assert not kg and kg.path is None and saved(store) == []
    kg.release()


def test_a_set_is_saved_under_the_name_of_the_state_it_was_read_from(nsrl, monkeypatch):
    """A bank added while the set is read, then deleted: the state is the first one again, and the saved set
    must not hold the added bank's digests (it would skip files no bank lists any more)."""
    real = known_good._read
    racing = hashlib.sha256(b"added while the set was read").hexdigest()

    def read_while_a_bank_comes(session):
        banks.create_bank(nsrl, "other", kind="known_good")
        banks.add_entry(nsrl, "other", "sha256", racing)  # committed by another connection meanwhile
        return real(session)

    monkeypatch.setattr(known_good, "_read", read_while_a_bank_comes)
    first = known_good.load(nsrl)
    first.release()
    monkeypatch.setattr(known_good, "_read", real)
    banks.delete_bank(nsrl, "other")
    again = known_good.load(nsrl)
    assert hits(again, racing) is None and len(again) == 60
    again.release()


def test_a_change_made_by_hand_written_sql_is_seen_too(nsrl):
    """The revision is raised by the database's triggers, not by Vigie's code: an operator's UPDATE counts."""
    from sqlalchemy import text

    before = known_good.load(nsrl)
    before.release()
    with nsrl.engine.begin() as c:
        c.execute(text("UPDATE entries SET disabled = :t WHERE value = :v"), {"t": True, "v": DIGESTS[5]})
    after = known_good.load(nsrl)
    assert after.path != before.path and hits(after, DIGESTS[5]) is None and len(after) == 59
    after.release()
    with nsrl.engine.begin() as c:
        c.execute(text("DELETE FROM entries WHERE value = :v"), {"v": DIGESTS[6]})
    last = known_good.load(nsrl)
    assert hits(last, DIGESTS[6]) is None and len(last) == 58
    last.release()


def test_a_bank_that_was_a_match_bank_for_a_while_is_read_again(nsrl):
    before = known_good.load(nsrl)
    before.release()
    banks.update_bank(nsrl, "nsrl", kind="match")
    banks.remove_entry(nsrl, "nsrl", DIGESTS[8])  # while it is no known-good bank
    banks.update_bank(nsrl, "nsrl", kind="known_good")
    after = known_good.load(nsrl)
    assert hits(after, DIGESTS[8]) is None and len(after) == 59
    after.release()


def test_the_revision_rises_with_each_change_and_only_for_the_bank_changed(nsrl):
    from vigie.store.models import Bank

    banks.create_bank(nsrl, "other", kind="known_good")

    def revisions():
        with nsrl.sessions() as s:
            return dict(s.execute(select(Bank.name, Bank.entries_revision)).all())

    r0 = revisions()
    banks.add_entry(nsrl, "nsrl", "sha256", hashlib.sha256(b"x").hexdigest())
    r1 = revisions()
    assert r1["nsrl"] > r0["nsrl"] and r1["other"] == r0["other"]
    banks.remove_entry(nsrl, "nsrl", DIGESTS[0])
    r2 = revisions()
    assert r2["nsrl"] > r1["nsrl"] and r2["other"] == r0["other"]


@pytest.mark.parametrize("outcome", ["imported", "refused"])
def test_a_bulk_import_raises_the_revision_once_and_leaves_the_triggers_in_place(nsrl, outcome):
    from sqlalchemy import text

    from vigie.errors import FormatError, RowError
    from vigie.store.models import Bank

    def revision():
        with nsrl.sessions() as s:
            return s.scalar(select(Bank.entries_revision).where(Bank.name == "nsrl"))

    before = revision()
    rows = [(i, EntryData(signal="sha256", value=hashlib.sha256(b"bulk%d" % i).hexdigest())) for i in range(1, 6)]
    if outcome == "refused":
        rows.append((6, RowError(6, "bad_hash", "not a digest")))
        with pytest.raises(FormatError):
            banks.import_entries(nsrl, "nsrl", rows)
        assert revision() == before  # nothing was imported: the whole transaction, trigger change included, undone
    else:
        banks.import_entries(nsrl, "nsrl", rows)
        assert revision() > before
    mid = revision()
    with nsrl.engine.begin() as c:  # the row trigger is back for every other writer
        c.execute(text("UPDATE entries SET note = 'x' WHERE value = :v"), {"v": DIGESTS[0]})
        c.execute(text("INSERT INTO entries (bank_id, signal, value, tags, added_at, updated_at, disabled) "
                       "SELECT bank_id, 'sha256', :v, '[]', added_at, updated_at, disabled FROM entries "
                       "WHERE value = :w"), {"v": hashlib.sha256(b"by hand").hexdigest(), "w": DIGESTS[0]})
    assert revision() >= mid + 2 if nsrl.engine.dialect.name == "sqlite" else revision() > mid


def test_without_the_triggers_the_set_is_read_every_time_never_trusted(nsrl, monkeypatch):
    """A store restored without its triggers: the revisions stand still, so no saved set may be used."""
    from vigie.store import revisions

    first = known_good.load(nsrl)
    first.release()
    with nsrl.engine.begin() as c:
        for sql in revisions.drop_statements(nsrl.engine.dialect.name):
            c.exec_driver_sql(sql)
        assert not revisions.present(c)
    banks.remove_entry(nsrl, "nsrl", DIGESTS[2])  # the revision does not move now
    again = known_good.load(nsrl)
    assert hits(again, DIGESTS[2]) is None and len(again) == 59 and again.path is None
    with nsrl.engine.begin() as c:
        for sql in revisions.create_statements(nsrl.engine.dialect.name):
            c.exec_driver_sql(sql)
        assert revisions.present(c)
