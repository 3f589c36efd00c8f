"""VICS JSON 1.1 to 2.0: both shapes, the pitfalls of shared/design/VICS.md, round trips and
streaming memory. Hashes are digests of harmless strings or seeded random hex."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import random
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vigie.banks.formats import detect_format, get_format
from vigie.banks.formats.vics import CONTEXT, category_label, category_verdict
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import Verdict
from vigie.errors import FormatError, RowError, UsageError


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def pdq(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


PHOTODNA = "QUJD" * 48  # 192 base64 characters, not a real PhotoDNA

METADATA = {
    "1.1": ("odata.metadata", "http://github.com/ICMEC/ProjectVic/DataModels/1.1.xml#{frag}"),
    "1.2": ("odata.metadata", "http://github.com/ICMEC/ProjectVic/DataModels/1.2.xml#{frag}"),
    "1.3": ("odata.metadata", "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#{frag}"),
    "2.0": ("@odata.context",
            "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#{frag}"),
}


def media_records(version: str) -> list[dict]:
    """Three Media as a writer of `version` would give them, with the pitfalls."""
    m1 = {"MediaID": 1, "MD5": md5("beach").upper(), "SHA1": sha1("beach").upper(), "MediaSize": "43",
          "AlternativeHashes": [{"MD5": md5("beach").upper(), "HashName": "PhotoDNA", "HashValue": PHOTODNA}],
          "Exifs": [{"MD5": md5("beach").upper(), "PropertyName": "Make", "PropertyValue": "DemoCam"}]}
    m2 = {"MediaID": "2", "MD5": md5("garden"), "MediaSize": 19}
    m3 = {"MediaID": 3, "MD5": md5("park").upper(), "SHA1": sha1("park")}
    if version == "1.1":
        m1["odata.id"] = f'Media("{md5("beach").upper()}")'
        m1["Exifs@odata.navigationLinkUrl"] = f'Media("{md5("beach").upper()}")/Exifs'
    if version >= "1.2":
        m1["MediaFiles"] = [{"MD5": md5("beach").upper(), "FileName": "beach.jpg", "FilePath": "\\demo\\beach.jpg"}]
    if version >= "1.3":
        m1.update({"Category": 1, "VictimIdentified": "false", "IsDistributed": "true", "Series": "Demo series",
                   "DateUpdated": "2025-01-02T03:04:05.1234Z", "SelfGenerated": "true", "Tags": "demo,beach",
                   "IsPrecategorized": "false", "MimeType": "image/jpeg"})
        m2.update({"Category": None, "IsPrecategorized": "true", "DateUpdated": "/Date(1735787045000)/"})
        m3.update({"Category": "0", "DateUpdated": "2025-01-02T05:04:05.1234567+02:00", "Comments": "benign",
                   "SelfGenerated": "False",
                   "AlternativeHashes": [{"MD5": md5("park"), "HashName": "PDQ", "HashValue": pdq(7).upper()},
                                         {"MD5": md5("park"), "HashName": "SHA-256", "HashValue": sha256("park")}],
                   "FutureField": {"nested": [1, "two", None]}})
    return [m1, m2, m3]


def vics_doc(version: str, shape: str, media: list[dict], profile: str = "US") -> dict:
    key, url = METADATA[version]
    frag = "Cases" if shape == "cases" else "Media"
    doc = {key: url.format(frag=frag, profile=profile)}
    if shape == "cases":
        doc["value"] = [{"CaseID": "{21725496-946E-4EEE-A432-0CAEB46F596A}", "CaseNumber": "DEMO-1",
                         "ContactName": "Demo Analyst", "ContactEmail": "analyst@example.org",
                         "SourceApplicationName": "DemoExporter", "SourceApplicationVersion": "1.0",
                         "TotalMediaFiles": 999, "TotalPrecategorized": "999", "Media": media}]
    else:
        doc["value"] = media
    return doc


def dump(doc: dict, bom: bool = True) -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + json.dumps(doc, indent=1).encode()


def read(data: bytes, **options):
    fmt = get_format("vics")(**options)
    rows = list(fmt.read(io.BytesIO(data)))
    return fmt, rows


def ok(rows) -> list[EntryData]:
    bad = [r for _, r in rows if isinstance(r, RowError)]
    assert not bad, bad
    return [r for _, r in rows]


def write(entries, meta: dict | None = None, name: str = "demo", **options) -> tuple[bytes, object]:
    fmt = get_format("vics")(**options)
    out = io.BytesIO()
    fmt.write(entries, out, bank=BankMeta(name, extra=meta or {}))
    return out.getvalue(), fmt


def comparable(e: EntryData):
    v = e.verdict
    return (e.signal, e.value, v and (v.source_scheme, v.source_label, v.legality, v.flags), e.tags,
            e.external_id, e.note, e.media_key, e.extra, e.added_at)


VERSIONS = ["1.1", "1.2", "1.3", "2.0"]


@pytest.mark.parametrize("shape", ["cases", "media"])
@pytest.mark.parametrize("version", VERSIONS)
def test_reads_every_version_in_both_shapes(version, shape):
    fmt, rows = read(dump(vics_doc(version, shape, media_records(version))))
    entries = ok(rows)
    assert len(entries) == (7 if version >= "1.3" else 5)
    meta = fmt.bank_meta
    assert (meta["version"], meta["shape"], meta["media"]) == (version, shape, 3)
    assert meta["profile"] == "US" and meta["profile_assumed"] == (version != "2.0")
    if shape == "cases":
        assert meta["case"]["CaseID"] == "{21725496-946E-4EEE-A432-0CAEB46F596A}"
        assert meta["case"]["SourceApplicationName"] == "DemoExporter"
        assert "Media" not in meta["case"]
    json.dumps(meta)  # the importer stores it as JSON

    by_media = {}
    for line, e in rows:
        by_media.setdefault(line, []).append(e)
    # line = the 1-based Media number; one entry per hash, upper-case hex normalised
    assert [(e.signal, e.value) for e in by_media[1]] == [("md5", md5("beach")), ("sha1", sha1("beach"))]
    assert all(e.media_key == md5("beach") and e.external_id == "1" for e in by_media[1])
    assert by_media[2][0].external_id == "2"  # MediaID written as a string
    first = by_media[1][0]
    # PhotoDNA is not a signal: it stays in extra, as does every unused field
    assert first.extra["AlternativeHashes"][0]["HashName"] == "PhotoDNA"
    assert first.extra["MediaSize"] == "43"
    assert first.extra["Exifs"][0]["PropertyValue"] == "DemoCam"
    if version == "1.1":
        assert first.extra["odata.id"].startswith("Media(")
        assert first.verdict is None  # no Category before 1.3
    if version >= "1.3":
        assert first.verdict.label("vics_us") == "1" and first.verdict.source_profile == meta["profile"]
        assert "self_generated" in first.verdict.flags  # "true" as a string
        assert first.extra["VictimIdentified"] == "false" and first.extra["Series"] == "Demo series"
        assert first.tags == ["demo", "beach"]
        assert first.added_at == datetime(2025, 1, 2, 3, 4, 5, 123400, tzinfo=UTC)
        # IsPrecategorized "true" with a null Category: uncategorised
        assert by_media[2][0].verdict is None
        assert by_media[2][0].added_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        park = {e.signal: e for e in by_media[3]}
        assert set(park) == {"md5", "sha1", "pdq", "sha256"}
        assert park["pdq"].value == pdq(7) and park["sha256"].value == sha256("park")
        assert park["pdq"].verdict.label("vics_us") == "0"  # "0" as a string
        assert "self_generated" not in park["pdq"].verdict.flags  # "False" as a string
        assert park["pdq"].note == "benign"
        assert park["pdq"].added_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        assert park["pdq"].extra["FutureField"] == {"nested": [1, "two", None]}
        # the record stays whole in extra, as it came, hashes included: an export gives it back
        assert park["pdq"].extra["AlternativeHashes"][0]["HashValue"] == pdq(7).upper()
        assert "IsPrecategorized" in by_media[2][0].extra


@pytest.mark.parametrize("out_shape", ["media", "cases"])
@pytest.mark.parametrize("shape", ["cases", "media"])
@pytest.mark.parametrize("version", VERSIONS)
def test_import_export_import_gives_the_same_entries(version, shape, out_shape):
    fmt, rows = read(dump(vics_doc(version, shape, media_records(version))))
    first = ok(rows)
    data, writer = write(first, fmt.bank_meta, shape=out_shape)
    assert writer.skipped == 0
    doc = json.loads(data)
    key = METADATA[version][0]
    assert list(doc)[:2] == [key, "value"]  # the version the file came in, metadata first (IPED's order)
    assert doc[key].endswith("#Cases" if out_shape == "cases" else "#Media")
    media = doc["value"][0]["Media"] if out_shape == "cases" else doc["value"]
    # every Media goes out as it came: "2" stays a string, null Category stays, hex case, dates, extras
    assert media == media_records(version)
    if out_shape == "cases":
        case = doc["value"][0]
        assert case["TotalMediaFiles"] == 3
        if shape == "cases":
            assert case["CaseID"] == "{21725496-946E-4EEE-A432-0CAEB46F596A}"
            assert case["ContactName"] == "Demo Analyst"
    fmt2, rows2 = read(data)
    second = ok(rows2)
    assert [comparable(e) for e in second] == [comparable(e) for e in first]
    assert fmt2.bank_meta["version"] == version and fmt2.bank_meta["shape"] == out_shape


def test_profiles_uk_default_custom():
    media = [{"MediaID": 1, "MD5": md5("a"), "Category": "A"}, {"MediaID": 2, "MD5": md5("b"), "Category": 9},
             {"MediaID": 3, "MD5": md5("c"), "Category": 2}]
    fmt, rows = read(dump(vics_doc("2.0", "media", media, profile="UK")))
    a, b, c = ok(rows)
    assert fmt.bank_meta["profile"] == "UK"
    assert (a.verdict.source_scheme, a.verdict.label("uk"), a.verdict.severity) == ("uk", "A", "penetrative")
    assert (b.verdict.source_scheme, b.verdict.source_label) == ("vics_uk", "9")
    assert (c.verdict.source_scheme, c.verdict.source_label) == ("vics_uk", "2")
    data, _ = write([a, b, c], fmt.bank_meta)
    assert "/UK/$metadata#Media" in data.decode()
    assert [m["Category"] for m in json.loads(data)["value"]] == ["A", 9, 2]

    _, rows = read(dump(vics_doc("2.0", "media", media[1:], profile="Default")))
    b, c = ok(rows)
    assert (b.verdict.source_scheme, b.verdict.source_label) == ("vics_default", "9")
    assert c.verdict.label("vics_us") == "2" and c.verdict.source_profile == "Default"

    fmt, rows = read(dump(vics_doc("2.0", "media", media[1:], profile="CUSTOM")))
    b, c = ok(rows)
    assert fmt.bank_meta["profile"] == "CUSTOM" and c.verdict.source_scheme == "vics_custom"
    data, _ = write([b, c], fmt.bank_meta)
    assert [m["Category"] for m in json.loads(data)["value"]] == [9, 2]


def test_category_mapping_helpers():
    assert category_verdict(None, "US") is None and category_verdict("", "US") is None
    assert category_verdict(4.0, "US").label("vics_us") == "4"
    assert category_label(Verdict(legality="baseline"), "US") == 1
    assert category_label(Verdict(legality="baseline", severity="sexual_activity"), "UK") == "B"
    assert category_label(Verdict(legality="not_illegal"), "CUSTOM") is None
    assert category_label(None, "US") is None


def test_metadata_after_value_and_no_metadata():
    doc = {"value": [{"MediaID": 1, "MD5": md5("a"), "Category": 1}],
           "odata.metadata": METADATA["1.3"][1].format(frag="Media")}
    fmt, rows = read(dump(doc, bom=False))
    (e,) = ok(rows)
    assert e.verdict.label("vics_us") == "1" and fmt.bank_meta["version"] == "1.3"
    assert fmt.bank_meta["warnings"]
    fmt, rows = read(json.dumps({"value": [{"MD5": md5("a")}]}).encode())
    assert ok(rows)[0].value == md5("a") and fmt.bank_meta["version"] is None


def test_dates_in_every_spelling():
    spellings = {
        "2025-01-02T03:04:05.0000000Z": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "2025-01-02T03:04:05.1234Z": datetime(2025, 1, 2, 3, 4, 5, 123400, tzinfo=UTC),
        "2025-01-02T04:04:05.1234567+01:00": datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "2025-01-02T03:04:05": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "/Date(1735787045000)/": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "/Date(1735787045000+0100)/": datetime(2025, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
    }
    media = [{"MediaID": i, "MD5": md5(s), "DateUpdated": s} for i, s in enumerate(spellings, 1)]
    media.append({"MediaID": 99, "MD5": md5("odd"), "DateUpdated": "next tuesday"})
    _, rows = read(dump(vics_doc("2.0", "media", media)))
    got = ok(rows)
    assert [e.added_at for e in got[:-1]] == list(spellings.values())
    # an unreadable date is kept as it came, not lost and not fatal
    assert got[-1].added_at is None and got[-1].extra["DateUpdated"] == "next tuesday"


def test_bad_media_are_row_errors_with_their_number_and_reading_goes_on():
    media = [{"MediaID": 1, "MD5": md5("a")},
             {"MediaID": 2, "MD5": "NOT-A-HASH", "SHA1": sha1("b")},
             {"MediaID": 3, "MediaSize": 4},
             "a string, not a Media",
             {"MediaID": 5, "MD5": md5("e")}]
    _, rows = read(dump(vics_doc("2.0", "cases", media)))
    errs = [(r.line, r.code) for _, r in rows if isinstance(r, RowError)]
    assert errs == [(2, "invalid_hash"), (3, "missing_value"), (4, "bad_record")]
    good = [(line, e.signal) for line, e in rows if isinstance(e, EntryData)]
    assert good == [(1, "md5"), (2, "sha1"), (5, "md5")]


@pytest.mark.parametrize("data,why", [
    (bytes(range(256)) * 8, "binary"),
    (b"[1, 2, 3]", "JSON object"),
    (b'{"hello": "world"}', "no 'value'"),
    (b'{"@odata.context": "http://example.org/$metadata#Things", "value": []}', "Project VIC"),
    (b'{"value": {"MD5": "x"}}', "not a list"),
    (b'{"value": [{"Name": "x", "Size": 1}]}', "no metadata"),
    (b"hash,value\n1,2\n", "JSON object"),
])
def test_not_vics_is_a_format_error(data, why):
    with pytest.raises(FormatError) as exc:
        read(data)
    assert why in exc.value.message


def test_truncated_json_is_a_format_error_after_the_good_media():
    data = dump(vics_doc("2.0", "media", [{"MediaID": i, "MD5": md5(str(i))} for i in range(1, 4)]), bom=False)
    fmt = get_format("vics")()
    got = []
    with pytest.raises(FormatError) as exc:
        for row in fmt.read(io.BytesIO(data[:-40])):
            got.append(row)
    assert "not valid JSON" in exc.value.message and len(got) >= 1


def test_writer_groups_by_media_key_and_skips_what_vics_cannot_hold():
    entries = [
        EntryData("md5", md5("a"), media_key="k1", external_id="ABC-1", tags=["t"], note="n"),
        EntryData("pdq", pdq(1), media_key="k1"),
        EntryData("md5", md5("b"), external_id="5"),
        EntryData("sha256", sha256("c"), media_key="k2"),   # no MD5 in its media: left out
        EntryData("pdq", pdq(2)),                           # alone, no MD5: left out
        EntryData("md5", md5("d"), removed=True),           # tombstone: left out
        EntryData("sha1", sha1("a"), media_key="k1"),       # arrives apart, joins k1
        EntryData("md5", md5("e"), external_id="5"),        # MediaID 5 already used
    ]
    data, writer = write(entries)
    assert writer.skipped == 3
    assert {k: v["count"] for k, v in writer.left_out.items()} == {"removed": 1, "no_md5": 2}
    assert writer.report()["left_out_by_reason"]["no_md5"]["examples"][0].startswith("k2")
    media = json.loads(data)["value"]
    assert [m["MD5"] for m in media] == [md5(x).upper() for x in "abe"]
    k1 = media[0]
    assert k1["SHA1"] == sha1("a").upper() and k1["Tags"] == "t" and k1["Comments"] == "n"
    assert k1["AlternativeHashes"] == [{"MD5": md5("a").upper(), "HashName": "PDQ", "HashValue": pdq(1)}]
    assert k1["VigieExternalId"] == "ABC-1" and media[1]["MediaID"] == 5
    assert len({m["MediaID"] for m in media}) == 3 and media[2]["VigieExternalId"] == "5"
    _, rows = read(data)
    back = ok(rows)
    assert [(e.signal, e.value, e.external_id) for e in back] == [
        ("md5", md5("a"), "ABC-1"), ("sha1", sha1("a"), "ABC-1"), ("pdq", pdq(1), "ABC-1"),
        ("md5", md5("b"), "5"), ("md5", md5("e"), "5")]


def test_writer_refuses_an_unknown_shape():
    with pytest.raises(UsageError):
        write([], shape="tree")


def test_written_file_is_detected_and_matches_the_context_pattern():
    data, _ = write([EntryData("md5", md5("a"))], {"profile": "Default"})
    assert detect_format(data[:8192], "export.json") == "vics"
    assert json.loads(data)["@odata.context"] == CONTEXT.format(profile="Default", fragment="Media")


def _big_vics(path, n: int) -> int:
    cats = ["1", "2", "0", None]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\ufeff{\"@odata.context\": \"" + CONTEXT.format(profile="Default", fragment="Media") +
                "\", \"value\": [\n")
        for i in range(n):
            h = hashlib.md5(i.to_bytes(4, "little")).hexdigest().upper()
            s = hashlib.sha1(i.to_bytes(4, "little")).hexdigest().upper()
            cat = cats[i % 4]
            rec = (f'{{"MediaID": {i + 1}, "Category": {cat or "null"}, "MD5": "{h}", "SHA1": "{s}", '
                   f'"MediaSize": "{i * 7}", "DateUpdated": "2025-01-02T03:04:05.0000Z", '
                   f'"IsPrecategorized": "false", "VictimIdentified": "false"}}')
            f.write(rec + (",\n" if i < n - 1 else "\n"))
        f.write("]}\n")
    return path.stat().st_size


def _read_all(path) -> tuple[int, int, int]:
    fmt = get_format("vics")()
    count = errors = last = 0
    with open(path, "rb") as f:
        for line, row in fmt.read(f):
            errors += isinstance(row, RowError)
            count += 1
            last = line
    assert fmt.bank_meta["media"] == last
    return count, errors, last


def _traced_peak(path) -> tuple[tuple[int, int, int], int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = _read_all(path)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_memory_does_not_grow_with_the_file(tmp_path):
    """tracemalloc peak for 2,000 and 20,000 Media: the same, and far under the file size."""
    small, big = tmp_path / "small.json", tmp_path / "big.json"
    _big_vics(small, 2_000)
    size = _big_vics(big, 20_000)
    (counts_small, peak_small), (counts_big, peak_big) = _traced_peak(small), _traced_peak(big)
    assert counts_small == (4_000, 0, 2_000) and counts_big == (40_000, 0, 20_000)
    assert peak_big < size / 5, f"peak {peak_big} bytes for a {size}-byte file"
    assert peak_big < peak_small * 1.5 + 100_000, (peak_small, peak_big)


_RSS_PROBE = """
import resource, sys
from vigie.banks.formats import get_format
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fmt = get_format("vics")()
n = sum(1 for _ in fmt.read(open(sys.argv[1], "rb")))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, fmt.bank_meta["media"], (after - before) * 1024)
"""


@pytest.mark.slow
def test_a_national_size_hash_set_reads_in_flat_memory(tmp_path):
    """200,000 Media (a national set had 186,419): the process grows by far less than the file.

    Measured as the rise of the peak resident size in a fresh process, since tracemalloc slows a
    read of this size tenfold; the tracemalloc test above shows the peak does not grow with the file.
    """
    path = tmp_path / "national.json"
    size = _big_vics(path, 200_000)
    assert size > 40_000_000
    proc = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True, text=True,
                          check=True, timeout=600)
    entries, media, grown = map(int, proc.stdout.split())
    assert (entries, media) == (400_000, 200_000)
    assert grown < size / 4, f"grew {grown} bytes reading a {size}-byte file"


def test_vics_through_csv_and_back_keeps_the_media():
    fmt, rows = read(dump(vics_doc("1.3", "cases", media_records("1.3"))))
    first = ok(rows)
    out = io.BytesIO()
    get_format("csv")().write(first, out, bank=BankMeta("demo"))
    via_csv = ok(list(get_format("csv")().read(io.BytesIO(out.getvalue()))))
    data, _ = write(via_csv, fmt.bank_meta)
    _, rows2 = read(data)
    assert [comparable(e) for e in ok(rows2)] == [comparable(e) for e in first]


def test_dates_are_written_as_vics_writers_write_them_in_utc():
    """ISO-8601 in UTC, seven fractional digits, Z; a naive time is UTC; the year always has four digits."""
    from vigie.banks.formats._common import format_date, parse_date

    assert format_date(datetime(2024, 1, 2, 3, 4, 5, 6789)) == "2024-01-02T03:04:05.0067890Z"
    paris = timezone(timedelta(hours=2))
    assert format_date(datetime(2024, 5, 6, 1, 59, 59, 999999, tzinfo=paris)) == "2024-05-05T23:59:59.9999990Z"
    assert format_date(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.0000000Z"
    for text in ("2024-01-02T03:04:05.0067890Z", "1999-12-31T23:59:59.0000000Z"):
        assert format_date(parse_date(text)) == text


def test_media_ids_stay_unique_while_the_writer_remembers_only_claims_ahead_of_its_counter():
    """MediaIDs: a file's own where free, running numbers otherwise, never twice; the writer remembers only the
    numbers files claimed ahead of its running counter (an export of 100 million media holds no 100 million
    numbers), including 0, which the counter never gives."""
    from vigie.banks.formats.vics import _media_id

    state = {"next_id": 1, "used": set()}
    got = [_media_id(None, None, state)[0] for _ in range(3)]  # 1, 2, 3
    got.append(_media_id("7", None, state)[0])  # claimed ahead: kept as it came
    got.append(_media_id(2, None, state)[0])  # given out already: a running number instead
    got.append(_media_id(0, None, state)[0])  # 0 is free once
    got.append(_media_id("0", None, state)[0])
    got.append(_media_id(None, "20", state)[0])  # an external id that is a free number becomes the MediaID
    got += [_media_id(None, None, state)[0] for _ in range(4)]  # 7 is taken
    assert got == [1, 2, 3, "7", 4, 0, 5, 20, 6, 8, 9, 10]
    assert len({str(x) for x in got}) == len(got)
    for _ in range(100_000):
        _media_id(None, None, state)
    assert state["used"] == {0} and state["next_id"] == 100_012
