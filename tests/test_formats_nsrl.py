"""NIST NSRL RDS as known-good banks: the RDS v3 SQLite release and the legacy NSRLFile.txt.

The fixtures are built here with sqlite3 from the schema NIST publishes for RDS v3 (the CREATE TABLE
statements below are written from its documentation, not taken from a release) and hold benign,
made-up digests; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3

import pytest

from vigie.banks import service as banks
from vigie.banks.formats import detect_format, get_format
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import FormatError, UsageError
from vigie.matching import Matcher, Query

#: RDS v3 tables as NIST documents them (the "minimal" and full releases share FILE and PKG).
RDS_V3_SCHEMA = """
CREATE TABLE VERSION (version VARCHAR UNIQUE NOT NULL, build_set VARCHAR NOT NULL, build_date TIMESTAMP NOT NULL,
                      release_date TIMESTAMP NOT NULL, description VARCHAR NOT NULL);
CREATE TABLE MFG (manufacturer_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL);
CREATE TABLE OS (operating_system_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
                 manufacturer_id INTEGER NOT NULL);
CREATE TABLE PKG (package_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
                  operating_system_id INTEGER NOT NULL, manufacturer_id INTEGER NOT NULL,
                  language VARCHAR NOT NULL, application_type VARCHAR NOT NULL);
CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, crc32 VARCHAR NOT NULL,
                   file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, package_id INTEGER NOT NULL);
"""


def digests(content: bytes) -> dict[str, str]:
    return {n: hashlib.new(n, content).hexdigest() for n in ("md5", "sha1", "sha256")}


def make_rds_v3(path, contents: list[bytes], *, package_id: int = 1, repeat: int = 1) -> None:
    """An RDS v3 database listing `contents` (each `repeat` times, as NIST lists a file once per package)."""
    conn = sqlite3.connect(path)
    conn.executescript(RDS_V3_SCHEMA)
    conn.execute("INSERT INTO VERSION VALUES ('2026.09.1', 'Modern', '2026-09-01', '2026-09-15', 'test set')")
    conn.execute("INSERT INTO MFG VALUES (1, 'Example Corp')")
    conn.execute("INSERT INTO OS VALUES (1, 'ExampleOS', '1.0', 1)")
    rows = []
    for pkg in range(repeat):
        conn.execute("INSERT INTO PKG VALUES (?, 'Example App', '1.0', 1, 1, 'English', 'Operating System')",
                     (package_id + pkg,))
        for i, c in enumerate(contents):
            d = digests(c)
            rows.append((d["sha256"].upper(), d["sha1"].upper(), d["md5"].upper(), "0000ABCD", f"file{i}.dll",
                         len(c), package_id + pkg))
    conn.executemany("INSERT INTO FILE VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def read(path, **options):
    fmt = get_format("nsrl")(**options)
    with open(path, "rb") as f:
        return fmt, list(fmt.read(f))


CONTENTS = [b"kernel32", b"notepad", b"logo"]


def test_an_rds_v3_database_is_told_from_its_first_bytes(tmp_path):
    db = tmp_path / "RDS_2026.09.1_modern_minimal.db"
    make_rds_v3(db, CONTENTS)
    assert detect_format(db.read_bytes()[:4096], db.name) == "nsrl"


def test_rds_v3_rows_give_one_entry_per_digest_sharing_the_sha1(tmp_path):
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS)
    fmt, rows = read(db)
    d = digests(b"notepad")
    got = [(e.signal, e.value, e.media_key) for line, e in rows if line == 2]
    assert got == [("sha1", d["sha1"], d["sha1"]), ("md5", d["md5"], d["sha1"]), ("sha256", d["sha256"], d["sha1"])]
    assert len(rows) == 9 and all(not e.extra and e.verdict is None for _, e in rows)
    assert fmt.bank_meta["rds"] == 3 and fmt.bank_meta["version"] == "2026.09.1"


def test_rds_v3_details_and_a_choice_of_digests(tmp_path):
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS)
    _, rows = read(db, signals="sha256", details=True)
    assert [e.signal for _, e in rows] == ["sha256"] * 3
    assert rows[1][1].extra == {"nsrl": {"file_name": "file1.dll", "file_size": 7, "package_id": 1}}
    with pytest.raises(UsageError):
        read(db, signals="crc32")


def test_an_rds_v3_given_as_a_stream_is_read_too(tmp_path):
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS)
    rows = list(get_format("nsrl")().read(io.BytesIO(db.read_bytes())))
    assert len(rows) == 9


def test_a_sqlite_file_that_is_not_an_rds_is_refused(tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE things (a TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(FormatError):
        read(db)


def test_a_legacy_nsrlfile_txt_reads_leanly(tmp_path):
    d = digests(b"readme")
    txt = tmp_path / "NSRLFile.txt"
    txt.write_text('"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\r\n'
                   f'"{d["sha1"].upper()}","{d["md5"].upper()}","EBD105A0","readme.txt",6,3095,"WIN",""\r\n'
                   '"","","00000000","nothing.txt",0,3095,"WIN",""\r\n')
    _, rows = read(txt)
    assert [(e.signal, e.value) for _, e in rows[:2]] == [("sha1", d["sha1"]), ("md5", d["md5"])]
    assert rows[2][1].code == "missing_value" and rows[2][0] == 3


def test_a_known_good_bank_exports_as_an_rds_v3_file_table(tmp_path):
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS)
    _, rows = read(db, details=True)
    fmt = get_format("nsrl")()
    out = io.BytesIO()
    entries = [e for _, e in rows] + [EntryData("pdq", "f" * 64)]
    assert fmt.write(entries, out, bank=BankMeta("x")) == 9 and fmt.left_out["no_rds_column"]["count"] == 1
    (tmp_path / "out.db").write_bytes(out.getvalue())
    conn = sqlite3.connect(tmp_path / "out.db")
    got = conn.execute("SELECT sha256, sha1, md5, file_name, file_size, package_id FROM FILE").fetchall()
    conn.close()
    d = digests(b"kernel32")
    assert got[0] == (d["sha256"].upper(), d["sha1"].upper(), d["md5"].upper(), "file0.dll", 8, 1)
    assert len(got) == 3


def test_known_good_is_a_bank_kind_and_others_are_refused(store):
    assert banks.create_bank(store, "nsrl", kind="known_good").kind == "known_good"
    with pytest.raises(UsageError):
        banks.create_bank(store, "bad", kind="harmless")


def test_an_rds_imports_into_a_known_good_bank_merging_repeats(store, tmp_path):
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS, repeat=2)  # every file listed in two packages
    banks.create_bank(store, "nsrl", kind="known_good")
    with open(db, "rb") as f:
        report = banks.import_file(store, "nsrl", f, "nsrl")
    assert (report.read, report.added, report.merged) == (18, 9, 9)
    [info] = [b for b in banks.list_banks(store) if b.name == "nsrl"]
    assert info.counts == {"sha1": 3, "md5": 3, "sha256": 3}
    assert info.meta["nsrl"]["version"] == "2026.09.1"


def test_the_bulk_known_good_import_keeps_the_import_contract(store, tmp_path, monkeypatch):
    """A known-good bank takes the bulk path (vigie.banks.known_good.bulk_import): batches larger than one
    INSERT, a second import adding nothing, a tombstone never revived, bad rows refusing the file whole unless
    skipped, and the bank change noted for the re-match."""
    from vigie.banks import changes, known_good
    from vigie.errors import RowError

    monkeypatch.setattr(known_good, "BULK_BATCH", 4)  # several sorted batches out of 9 entries
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS)
    banks.create_bank(store, "nsrl", kind="known_good")
    before = changes.latest(store)
    with open(db, "rb") as f:
        r1 = banks.import_file(store, "nsrl", f, "nsrl")
    assert (r1.read, r1.added, r1.merged) == (9, 9, 0) and changes.latest(store) > before
    d = digests(b"notepad")
    assert banks.remove_entry(store, "nsrl", d["md5"], signal="md5") == 1
    with open(db, "rb") as f:
        r2 = banks.import_file(store, "nsrl", f, "nsrl")
    assert (r2.read, r2.added, r2.merged) == (9, 0, 9)
    [info] = [b for b in banks.list_banks(store) if b.name == "nsrl"]
    assert info.counts == {"sha1": 3, "md5": 2, "sha256": 3, "removed": 1}  # the tombstone stayed
    extra = [(1, EntryData("sha1", digests(b"new")["sha1"])), (2, RowError(2, "invalid_hash", "bad"))]
    with pytest.raises(FormatError):
        banks.import_entries(store, "nsrl", iter(extra))
    [info] = [b for b in banks.list_banks(store) if b.name == "nsrl"]
    assert info.counts["sha1"] == 3  # refused whole: nothing of it went in
    r3 = banks.import_entries(store, "nsrl", iter(extra), skip_invalid=True)
    assert (r3.added, r3.skipped_count) == (1, 1)
    kg = known_good.load(store)
    assert kg.hit({"sha1": digests(b"new")["sha1"]}) == "sha1" and kg.hit({"md5": d["md5"]}) is None


def test_the_bulk_path_keeps_what_a_new_entry_brings(store):
    """A known-good list in another format (a CSV with tags, notes, dates, a tombstone) keeps all of it."""
    from datetime import UTC, datetime

    banks.create_bank(store, "kg", kind="known_good")
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    rows = [(1, EntryData("sha1", digests(b"a")["sha1"], tags=["os"], note="from vendor", external_id="v-1",
                          added_at=when, extra={"k": "v"})),
            (2, EntryData("md5", digests(b"b")["md5"], removed=True))]
    assert banks.import_entries(store, "kg", iter(rows)).added == 2
    got = {e.signal: e for e in banks.iter_entries(store, "kg", include_removed=True)}
    a = got["sha1"]
    assert (a.tags, a.note, a.external_id, a.extra, a.removed) == (["os"], "from vendor", "v-1", {"k": "v"}, False)
    assert a.added_at.replace(tzinfo=UTC) == when
    assert got["md5"].removed


def test_a_known_good_entry_is_never_a_match(store, tmp_path):
    db = tmp_path / "rds.db"
    make_rds_v3(db, CONTENTS)
    banks.create_bank(store, "nsrl", kind="known_good")
    banks.create_bank(store, "list")
    with open(db, "rb") as f:
        banks.import_file(store, "nsrl", f, "nsrl")
    d = digests(b"logo")
    m = Matcher(store)
    assert m.match([Query.from_hash(d["sha1"], "sha1")])[0].matches == []
    banks.add_entry(store, "list", "sha1", d["sha1"])  # the same digest in a match bank still matches
    m.refresh(save=False)
    [res] = m.match([Query.from_hash(d["sha1"], "sha1")])
    assert [x.bank for x in res.matches] == ["list"]


def test_the_cli_creates_a_known_good_bank_and_imports_an_rds_by_its_content(tmp_path):
    from test_cli_hash import vigie

    db = tmp_path / "release.db"
    make_rds_v3(db, CONTENTS)
    data = ["--data-dir", str(tmp_path / "data")]
    r = vigie("bank", "create", "nsrl", "--kind", "known_good", "--json", *data)
    assert r.returncode == 0, r.stderr
    r = vigie("bank", "import", "nsrl", str(db), "--json", *data)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["read"], rep["added"]) == (9, 9)
