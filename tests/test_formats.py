"""Bank formats: csv, text, te and the registry (VICS has its own file, test_formats_vics.py).

All hashes are digests of harmless strings or seeded random hex.
"""

from __future__ import annotations

import hashlib
import io
import random
from datetime import UTC, datetime

import pytest

from vigie.banks.formats import FORMATS, BankFormat, detect_format, get_format, register
from vigie.banks.formats.csv import COLUMNS
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import Verdict, from_label
from vigie.errors import FormatError, RowError, UsageError


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


BANK = BankMeta("demo-bank")


def read(fmt: str, data: bytes, **options) -> list[tuple[int, EntryData | RowError]]:
    return list(get_format(fmt)(**options).read(io.BytesIO(data)))


def write(fmt: str, entries, bank: BankMeta = BANK, **options) -> bytes:
    out = io.BytesIO()
    get_format(fmt)(**options).write(entries, out, bank=bank)
    return out.getvalue()


def entries_of(rows) -> list[EntryData]:
    bad = [r for _, r in rows if isinstance(r, RowError)]
    assert not bad, bad
    return [r for _, r in rows]


def errors_of(rows) -> list[RowError]:
    return [r for _, r in rows if isinstance(r, RowError)]


def rich_entries() -> list[EntryData]:
    when = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    return [
        EntryData("md5", md5("beach"), verdict=from_label("vics_us", "1"), tags=["demo", "beach day"],
                  external_id="17", note="a note, with comma", media_key=md5("beach"),
                  extra={"MediaSize": 43, "MediaFiles": [{"FileName": "beach.jpg"}]}, added_by="alice",
                  added_at=when),
        EntryData("sha1", sha1("beach"), verdict=from_label("vics_us", "1"), tags=["demo"],
                  media_key=md5("beach")),
        EntryData("pdq", pdq(1), verdict=Verdict(legality="baseline", age_band="prepubescent",
                                                 severity="penetrative", flags=("sadism", "comparison"),
                                                 jurisdictions=("FR", "BE"))),
        EntryData("sha256", sha256("garden"), verdict=from_label("uk", "B"), note='quote " and\nnewline'),
        EntryData("md5", md5("removed"), removed=True, added_at=when),
        EntryData("md5", md5("plain")),
        EntryData("md5", md5("custom"), verdict=Verdict(source_scheme="vics_custom", source_label="7")),
        EntryData("md5", md5("facets only"), verdict=Verdict()),
    ]


# -- registry --------------------------------------------------------------------------------


def test_registry_lists_the_seven_formats():
    assert set(FORMATS) == {"csv", "text", "te", "vics", "iped", "nsrl", "xways"}
    for name, cls in FORMATS.items():
        assert issubclass(cls, BankFormat) and cls.name == name
    assert get_format("CSV") is FORMATS["csv"]


def test_unknown_format_is_a_usage_error():
    with pytest.raises(UsageError) as exc:
        get_format("xlsx")
    assert exc.value.code == "bad_usage"


def test_register_refuses_a_second_format_with_the_same_name():
    class Other(FORMATS["csv"]):
        name = "csv"

    with pytest.raises(ValueError):
        register(Other)


# -- round trips -----------------------------------------------------------------------------


def test_csv_round_trip_keeps_everything():
    entries = rich_entries()
    data = write("csv", entries)
    assert data.decode().splitlines()[0] == ",".join(COLUMNS)
    back = entries_of(read("csv", data))
    assert back == entries


@pytest.mark.parametrize("signal,values", [
    ("md5", [md5(f"t{i}") for i in range(5)]),
    ("sha1", [sha1(f"t{i}") for i in range(5)]),
    ("sha256", [sha256(f"t{i}") for i in range(5)]),
    ("pdq", [pdq(i) for i in range(5)]),
])
def test_text_round_trip_per_signal(signal, values):
    entries = [EntryData(signal, v) for v in values]
    data = write("text", entries)
    back = entries_of(read("text", data))  # 64-hex values read back through the `# signal:` line
    assert [(e.signal, e.value) for e in back] == [(signal, v) for v in values]


@pytest.mark.parametrize("csv_mode", [False, True])
def test_te_round_trip(csv_mode):
    entries = [EntryData("pdq", pdq(3), tags=["t1", "t2"]), EntryData("md5", md5("video")),
               EntryData("sha256", sha256("video")), EntryData("sha1", sha1("video"), tags=["x"])]
    data = write("te", entries, csv=csv_mode)
    back = entries_of(read("te", data))
    assert [(e.signal, e.value) for e in back] == [(e.signal, e.value) for e in entries]
    if csv_mode:
        assert [e.tags for e in back] == [e.tags for e in entries]
        assert back[0].extra["te_collab"] == "demo-bank"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips_its_hashes(fmt):
    entries = [EntryData("md5", md5(f"r{i}"), media_key=md5(f"r{i}")) for i in range(20)]
    data = write(fmt, entries)
    back = entries_of(read(fmt, data))
    assert [(e.signal, e.value) for e in back] == [(e.signal, e.value) for e in entries]
    assert detect_format(data[:4096], f"x.{fmt}") == fmt


# -- csv reading -----------------------------------------------------------------------------


def test_csv_accepts_a_subset_of_columns_any_case_bom_and_separators():
    data = ("\ufeffVALUE,Tags,Category,CATEGORY_SCHEME,Flags\n"
            f"{md5('a').upper()},x;y|z,1,vics_us,sadism+comparison\n"
            f"{sha1('a')},,A,uk,\n").encode()
    a, b = entries_of(read("csv", data))
    assert (a.signal, a.value, a.tags) == ("md5", md5("a"), ["x", "y", "z"])
    assert a.verdict.label("vics_us") == "1" and a.verdict.flags == ("comparison", "sadism")
    assert (b.signal, b.verdict.label("uk"), b.verdict.severity) == ("sha1", "A", "penetrative")


def test_csv_facet_columns_override_the_category():
    data = f"value,category,category_scheme,severity\n{md5('a')},1,vics_us,sexual_activity\n".encode()
    (e,) = entries_of(read("csv", data))
    assert e.verdict.legality == "national" and e.verdict.severity == "sexual_activity"
    assert e.verdict.label("uk") == "B" and e.verdict.label("vics_us") == "1"


def test_csv_category_as_scheme_colon_label():
    (e,) = entries_of(read("csv", f"value,category\n{md5('a')},uk:C\n".encode()))
    assert e.verdict.label("uk") == "C"


def test_csv_64_hex_needs_a_signal():
    data = f"value\n{sha256('a')}\n".encode()
    (err,) = errors_of(read("csv", data))
    assert (err.line, err.code) == (2, "ambiguous_signal")
    (e,) = entries_of(read("csv", data, signal="sha256"))
    assert e.signal == "sha256"
    (e,) = entries_of(read("csv", f"signal,value\npdq,{pdq(1)}\n".encode()))
    assert e.signal == "pdq"


def test_csv_bad_rows_have_their_line_numbers_and_reading_goes_on():
    data = ("signal,value,category_scheme,category,added_at,note\n"   # 1
            f"md5,{md5('ok1')},,,,\n"                                  # 2
            "md5,nothex,,,,\n"                                         # 3
            f"md5,{md5('ok2')},,,,\"two\nlines\"\n"                    # 4-5
            f"whirlpool,{md5('x')},,,,\n"                              # 6
            f"md5,{md5('y')},vics_us,9,,\n"                            # 7
            f"md5,{md5('z')},,,yesterday,\n"                           # 8
            "md5,,,,,\n"                                               # 9
            "\n"                                                       # 10
            f"md5,{md5('ok3')},nonsense,1,,\n"                         # 11
            f"md5,{md5('ok4')},,,2025-01-02T03:04:05Z,\n").encode()    # 12
    rows = read("csv", data)
    errs = {(r.line, r.code) for r in errors_of(rows)}
    assert errs == {(3, "invalid_hash"), (6, "unknown_signal"), (7, "bad_category"), (8, "bad_date"),
                    (9, "missing_value"), (11, "bad_category")}
    good = [(line, r.value) for line, r in rows if isinstance(r, EntryData)]
    assert good == [(2, md5("ok1")), (4, md5("ok2")), (12, md5("ok4"))]
    assert all(line == r.line for line, r in rows if isinstance(r, RowError))


def test_csv_without_value_column_or_binary_is_a_format_error():
    with pytest.raises(FormatError) as exc:
        read("csv", b"hash,tags\nabc,def\n")
    assert exc.value.code == "bad_format" and "'value'" in exc.value.message
    with pytest.raises(FormatError):
        read("csv", bytes(range(256)) * 4)


def test_csv_writes_tombstones_as_removed_true():
    data = write("csv", [EntryData("md5", md5("gone"), removed=True)]).decode()
    header, row = data.splitlines()
    assert dict(zip(header.split(","), row.split(",")))["removed"] == "true"


# -- text ------------------------------------------------------------------------------------


def test_text_skips_comments_and_blanks_and_counts_lines():
    data = (f"# a list\n\n{md5('a')}\n  {sha1('a').upper()}  \n0x{md5('b')}\nnot-a-hash\n"
            f"{sha256('a')}\n{md5('c')}  ./holiday/c.jpg\n").encode()
    rows = read("text", data)
    assert [(line, r.value) for line, r in rows if isinstance(r, EntryData)] == [
        (3, md5("a")), (4, sha1("a")), (5, md5("b")), (8, md5("c"))]
    assert [(e.line, e.code) for e in errors_of(rows)] == [(6, "invalid_hash"), (7, "ambiguous_signal")]
    assert rows[-1][1].note == "./holiday/c.jpg"


def test_text_signal_option_wins_and_reads_64_hex():
    (e,) = entries_of(read("text", f"{pdq(5)}\n".encode(), signal="pdq"))
    assert e.signal == "pdq"


def test_text_refuses_to_write_two_signal_types_unless_one_is_chosen():
    entries = [EntryData("md5", md5("a")), EntryData("sha1", sha1("a")), EntryData("md5", md5("b"), removed=True)]
    with pytest.raises(UsageError) as exc:
        write("text", entries)
    assert "one signal type" in exc.value.message
    fmt = get_format("text")(signal="sha1")
    out = io.BytesIO()
    assert fmt.write(entries, out, bank=BANK) == 1
    assert fmt.skipped == 2
    assert [e.value for e in entries_of(read("text", out.getvalue()))] == [sha1("a")]


def test_text_binary_is_a_format_error():
    with pytest.raises(FormatError):
        read("text", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))


# -- te --------------------------------------------------------------------------------------


def test_te_reads_hash_cmd_lines_and_dataset_print_lines():
    data = (f"pdq {pdq(1)}\n"
            f"video_md5 {md5('clip').upper()}\n"
            f"video_sha256 {sha256('clip')}\n"
            "# comment\n"
            f"'Sample Data' pdq {pdq(2)} FetchedSignalMetadata(tags=[a])\n"
            f"{md5('bare')}\n"
            "url https://example.org/\n"
            f"pdq {md5('short')}\n").encode()
    rows = read("te", data)
    good = [(line, r.signal, r.value) for line, r in rows if isinstance(r, EntryData)]
    assert good == [(1, "pdq", pdq(1)), (2, "md5", md5("clip")), (3, "sha256", sha256("clip")),
                    (5, "pdq", pdq(2)), (6, "md5", md5("bare"))]
    assert rows[3][1].extra == {"te_collab": "Sample Data", "te_metadata": "FetchedSignalMetadata(tags=[a])"}
    assert [(e.line, e.code) for e in errors_of(rows)] == [(7, "unknown_signal"), (8, "invalid_hash")]


def test_te_reads_dataset_csv():
    data = ("collab,signal_type,signal_str,category,tags\n"
            f"Sample Data,pdq,{pdq(1)},POSITIVE_CLASS,tag_a tag_b\n"
            f"Sample Data,raw_text,hello,POSITIVE_CLASS,\n").encode()
    rows = read("te", data)
    (e,) = [r for _, r in rows if isinstance(r, EntryData)]
    assert e.tags == ["tag_a", "tag_b"] and e.extra == {"te_collab": "Sample Data", "te_category": "POSITIVE_CLASS"}
    assert [(r.line, r.code) for r in errors_of(rows)] == [(3, "unknown_signal")]


def test_te_writes_threatexchange_names():
    data = write("te", [EntryData("md5", md5("v")), EntryData("pdq", pdq(1)), EntryData("md5", md5("x"), removed=True)])
    assert data.decode().splitlines() == [f"video_md5 {md5('v')}", f"pdq {pdq(1)}"]
    assert write("te", [EntryData("md5", md5("v"))], md5_name="md5").decode() == f"md5 {md5('v')}\n"


# -- detection -------------------------------------------------------------------------------


def test_detect_format_by_content_first():
    assert detect_format(f"{md5('a')}\n{md5('b')}\n".encode(), "list.csv") == "text"
    assert detect_format(f"signal,value\nmd5,{md5('a')}\n".encode(), "list.txt") == "csv"
    assert detect_format(f"pdq {pdq(1)}\nvideo_md5 {md5('a')}\n".encode(), "x.txt") == "te"
    assert detect_format(f"'Collab' pdq {pdq(1)} meta\n".encode(), "") == "te"
    assert detect_format(b"collab,signal_type,signal_str,category,tags\n", "") == "te"
    assert detect_format(b'\xef\xbb\xbf{"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.2.xml#Media"',
                         "x.txt") == "vics"
    # a few bad lines do not hide a hash list
    assert detect_format(f"{md5('a')}\n{md5('b')}\noops\n".encode(), "") == "text"
    # an empty file falls back on its extension
    assert detect_format(b"", "bank.csv") == "csv"


@pytest.mark.parametrize("data", [bytes(range(256)), b"\x00\x01\x02garbage", b'{"foo": 1}', b"[1, 2]",
                                  b"hello world\nthis is prose\n"])
def test_detect_format_refuses_what_is_no_format(data):
    with pytest.raises(FormatError) as exc:
        detect_format(data, "x.bin")
    assert exc.value.code == "bad_format"
