"""X-Ways Forensics hash sets (vigie.banks.formats.xways) on files written by X-Ways' published rules
(tests/data/xways/README.md): read, written back byte for byte, detected, and carried through a bank."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from vigie.banks import service
from vigie.banks.formats import detect_format, get_format
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import FormatError, RowError

DATA = Path(__file__).parent / "data" / "xways"
SHA1_SET = DATA / "Windows system files.txt"
MD5_SET = DATA / "md5_set.txt"


def rows(data: bytes, fmt=None):
    fmt = fmt or get_format("xways")()
    return fmt, list(fmt.read(io.BytesIO(data)))


def test_reads_the_fixture_as_xways_writes_it():
    fmt, got = rows(SHA1_SET.read_bytes())
    entries = [e for _, e in got]
    assert all(isinstance(e, EntryData) for e in entries) and len(entries) == 6
    assert {e.signal for e in entries} == {"sha1"}
    assert entries[0].value == hashlib.sha1(b"benign-file-0.txt").hexdigest()
    assert fmt.bank_meta == {"hash_type": "SHA-1", "signal": "sha1", "case": "upper", "newline": "crlf"}
    assert detect_format(SHA1_SET.read_bytes()[:8192], SHA1_SET.name) == "xways"
    assert detect_format(MD5_SET.read_bytes()[:8192]) == "xways"


@pytest.mark.parametrize("path", [SHA1_SET, MD5_SET])
def test_round_trip_gives_the_same_bytes(path):
    data = path.read_bytes()
    reader, got = rows(data)
    out = io.BytesIO()
    writer = get_format("xways")()
    n = writer.write([e for _, e in got], out, bank=BankMeta("x", extra=reader.bank_meta))
    assert n == len(got) and out.getvalue() == data


def test_other_spellings_lower_case_and_lf_are_kept():
    data = b"sha256\n" + b"\n".join(hashlib.sha256(f"f{i}".encode()).hexdigest().encode() for i in range(3)) + b"\n"
    reader, got = rows(data)
    assert [e.signal for _, e in got] == ["sha256"] * 3
    out = io.BytesIO()
    get_format("xways")().write([e for _, e in got], out, bank=BankMeta("x", extra=reader.bank_meta))
    assert out.getvalue() == data


def test_bad_lines_are_row_errors_and_foreign_types_are_refused():
    data = b"MD5\r\n" + hashlib.md5(b"a").hexdigest().upper().encode() + b"\r\nnot-a-hash\r\n\r\n"
    _, got = rows(data)
    assert isinstance(got[0][1], EntryData)
    assert isinstance(got[1][1], RowError) and got[1][1].code == "invalid_hash" and got[1][0] == 3
    with pytest.raises(FormatError) as e:
        rows(b"CRC32\r\nDEADBEEF\r\n")
    assert e.value.code == "unsupported_hash_type"
    with pytest.raises(FormatError):
        rows(b"")


def test_writer_keeps_one_type_and_counts_the_rest():
    entries = [EntryData("md5", hashlib.md5(b"a").hexdigest()), EntryData("sha1", hashlib.sha1(b"a").hexdigest()),
               EntryData("pdq", "f" * 64), EntryData("md5", hashlib.md5(b"b").hexdigest(), removed=True)]
    out = io.BytesIO()
    w = get_format("xways")()
    assert w.write(entries, out, bank=BankMeta("x")) == 1
    assert out.getvalue() == b"MD5\r\n" + hashlib.md5(b"a").hexdigest().upper().encode() + b"\r\n"
    assert w.report()["left_out_by_reason"].keys() == {"other_signal", "no_xways_type", "removed"}
    out = io.BytesIO()
    assert get_format("xways")(signal="sha1").write(entries, out, bank=BankMeta("x")) == 1
    assert out.getvalue().startswith(b"SHA-1\r\n")


def test_through_a_bank_on_both_stores(store):
    service.create_bank(store, "xw")
    with open(SHA1_SET, "rb") as f:
        rep = service.import_file(store, "xw", f, "xways")
    assert rep.added == 6
    out = io.BytesIO()
    assert service.export_file(store, "xw", out, "xways") == 6
    assert out.getvalue() == SHA1_SET.read_bytes()
