"""IPED's hash-database CSV (`iped`), read and written as IPED's `HashDBTool` reads it.

`iped_csv_load` follows IPED's public `HashDBTool.readFile` for a CSV input: Apache Commons' default CSV
(comma, double quotes) whose first record is the header; a column named `MD5`, `SHA1`, `SHA256`, `SHA512` or
`EDONKEY` (any case) holds hashes, any other column is a property; a record with another number of cells than
the header refuses the file; an empty hash cell is no hash, a hash of the wrong length is counted and ignored;
empty property cells are ignored, and a row is loaded only when it has at least one property value (IPED's
`process` returns at once on an empty property map). Fixtures are written by those rules, by hand.
"""

from __future__ import annotations

import csv
import hashlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigie.banks.formats import detect_format, get_format
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import from_label
from vigie.errors import RowError

LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "edonkey": 32}


class Refused(Exception):
    pass


def iped_csv_load(data: bytes) -> list[tuple[dict, dict]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if not rows or not rows[0]:
        raise Refused("header not found")
    header = rows[0]
    out = []
    for n, rec in enumerate(rows[1:], 1):
        if len(rec) != len(header):
            raise Refused(f"record #{n}: number of columns does not match header columns")
        hashes, props = {}, {}
        for name, cell in zip(header, rec):
            kind = name.lower()
            if kind in LENGTHS:
                v = cell.strip()
                if v and len(v) == LENGTHS[kind] and all(c in "0123456789abcdefABCDEF" for c in v):
                    hashes[kind] = v.lower()
            elif cell.strip():
                props[name] = cell.strip()
        if hashes and props:
            out.append((hashes, props))
    return out


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def read(data: bytes, **options):
    fmt = get_format("iped")(**options)
    rows = list(fmt.read(io.BytesIO(data)))
    return fmt, rows


def write(entries, meta=None, default=None, **options) -> tuple[bytes, object]:
    fmt = get_format("iped")(**options)
    out = io.BytesIO()
    fmt.write(entries, out, bank=BankMeta("demo set", default_verdict=default, extra=meta or {}))
    return out.getvalue(), fmt


FIXTURE = (f"MD5,SHA1,set,status,vicCategory,photoDna\n"
           f"{md5('a').upper()},{sha1('a').upper()},Demo,pedo,1,\n"
           f"{md5('b')},,Demo,known,0,\n"
           f",{sha1('c')},\"Demo, other\",pedo,,\n").encode()


def test_the_rules_load_the_fixture_and_refuse_a_short_row():
    got = iped_csv_load(FIXTURE)
    assert [h for h, _ in got] == [{"md5": md5("a"), "sha1": sha1("a")}, {"md5": md5("b")}, {"sha1": sha1("c")}]
    try:
        iped_csv_load(FIXTURE + b"abc,def\n")
        raise AssertionError("a short row must refuse the file")
    except Refused:
        pass
    assert iped_csv_load(b"MD5,set\n" + md5("x").encode() + b",\n") == []  # no property: not loaded


def test_reads_iped_csv_and_writes_it_back_unchanged():
    assert detect_format(FIXTURE, "x.csv") == "iped"
    fmt, rows = read(FIXTURE)
    entries = [e for _, e in rows]
    assert [(e.signal, e.value) for e in entries] == [("md5", md5("a")), ("sha1", sha1("a")), ("md5", md5("b")),
                                                      ("sha1", sha1("c"))]
    assert entries[0].verdict.label("vics_us") == "1" and entries[0].media_key == md5("a")
    assert entries[2].verdict.label("vics_us") == "0" and entries[3].verdict is None
    assert entries[3].extra["iped"]["set"] == "Demo, other"
    data, writer = write(entries, fmt.bank_meta)
    assert data == FIXTURE and writer.skipped == 0
    assert iped_csv_load(data) == iped_csv_load(FIXTURE)


def test_vigie_banks_export_as_iped_loads_them():
    entries = [EntryData("md5", md5("a"), verdict=from_label("vics_us", "1"), media_key="a"),
               EntryData("sha1", sha1("a"), media_key="a"),
               EntryData("pdq", "ab" * 32, media_key="a"),      # no IPED column: left out, counted
               EntryData("md5", md5("b")),                      # the bank's default category
               EntryData("md5", md5("gone"), removed=True)]
    data, writer = write(entries, default=from_label("uk", "A"))
    assert data.decode().splitlines()[0] == "MD5,SHA1,SHA256,set,status,vicCategory"
    got = iped_csv_load(data)
    assert [(h, p["status"], p["vicCategory"], p["set"]) for h, p in got] == [
        ({"md5": md5("a"), "sha1": sha1("a")}, "pedo", "1", "demo set"), ({"md5": md5("b")}, "pedo", "1", "demo set")]
    assert {k: v["count"] for k, v in writer.left_out.items()} == {"no_iped_column": 1, "removed": 1}


def test_bad_rows_are_row_errors_with_their_line():
    data = FIXTURE + f"{md5('d')},x\nnothex,,Demo,,,\n".encode()
    _, rows = read(data)
    assert [(r.line, r.code) for _, r in rows if isinstance(r, RowError)] == [(5, "bad_row"), (6, "invalid_hash")]


cell = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.just(""), st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)),
                          st.text("0123456789abcdef", min_size=40, max_size=40), cell,
                          st.sampled_from(["pedo", "known", ""]), st.sampled_from(["0", "1", "2", "", "x"]), cell),
                min_size=1, max_size=6, unique_by=lambda r: (r[0].lower(), r[1])))
def test_iped_csv_goes_out_as_it_came_in(rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["MD5", "SHA1", "set", "status", "vicCategory", "Comment"])
    w.writerows(rows)
    fmt, got = read(buf.getvalue().encode())
    data, _ = write([e for _, e in got], fmt.bank_meta)
    assert data.decode() == buf.getvalue()


def test_a_legacy_nsrl_file_reads_through_the_iped_format():
    # NSRLFile.txt of the legacy RDS (2.x): quoted header and cells as NIST publishes them; benign hashes
    data = ('"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\r\n'
            f'"{sha1("a").upper()}","{md5("a").upper()}","EBD105A0","readme.txt",98865,3095,"WIN",""\r\n').encode()
    assert detect_format(data, "NSRLFile.txt") == "iped"
    _, rows = read(data)
    assert [(e.signal, e.value) for _, e in rows] == [("sha1", sha1("a")), ("md5", md5("a"))]
    assert rows[0][1].extra["iped"]["FileName"] == "readme.txt" and rows[0][1].media_key == md5("a")


def test_ipeds_properties_do_not_leak_into_a_vics_export():
    import json

    _, rows = read(FIXTURE)
    vics = get_format("vics")()
    out = io.BytesIO()
    vics.write([e for _, e in rows], out, bank=BankMeta("x"))
    media = json.loads(out.getvalue())["value"]
    assert [sorted(m) for m in media] == [["Category", "MD5", "MediaID", "SHA1"], ["Category", "MD5", "MediaID"]]
    assert [m["Category"] for m in media] == [1, 0] and vics.left_out["no_md5"]["count"] == 1


ICSE_HEADER = ("MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;Series name;"
               "Number of submissions;File Available;Media Type;Baseline")


def test_an_interpol_icse_export_reads_with_its_baseline_and_short_rows():
    # the header is IPED's published icseHeaderColumns; values are benign hashes and made-up ids
    data = (ICSE_HEADER + "\n"
            + f"{md5('a').upper()};{sha1('a').upper()};;1001;Yes;No;No;Demo series;3;Yes;Image;Yes\n"
            + f"{md5('b').upper()};;;1002;No;No;No;;1;No;Video;No\n"
            + f"{md5('c').upper()};;;1003\n").encode()
    assert detect_format(data, "icse.csv") == "iped"
    fmt, rows = read(data)
    entries = [e for _, e in rows]
    assert not [e for e in entries if isinstance(e, RowError)]
    assert [(e.signal, e.value) for e in entries] == [("md5", md5("a")), ("sha1", sha1("a")), ("md5", md5("b")),
                                                      ("md5", md5("c"))]
    assert entries[0].verdict.source_scheme == "interpol" and entries[0].verdict.legality == "baseline"
    assert entries[2].verdict is None and entries[3].extra["iped"]["Image ID"] == "1003"
    data2, _ = write(entries, fmt.bank_meta)
    lines = data2.decode().splitlines()
    assert lines[0] == ICSE_HEADER and lines[1] == data.decode().splitlines()[1]
    assert lines[3] == f"{md5('c').upper()};;;1003" + ";" * 8  # the short row written whole
