"""Lossless round trips, one property per format: what a file brings in, an export gives back the same.

VICS: any hash set or case export (1.x or 2.0, any profile spelling Vigie reads) goes out as the
same JSON, each Media with its keys in their order, dates and booleans as written, strings for
numbers, null / "" / [] fields, hex in its case and unknown fields. ThreatExchange: the lines and
the CSV rows of python-threatexchange go out the same (its names, lower-case hex, vPDQ as its JSON
list). CSV: Vigie's own rows read back to the same entries. Text: the same hashes in the same order.
Every hash is random hex; no picture is involved.
"""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigie.banks.formats import get_format
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import from_label
from vigie.errors import RowError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hexs(n: int):
    return st.text("0123456789abcdef", min_size=n, max_size=n)


def cased(n: int):
    return st.tuples(hexs(n), st.sampled_from(["lower", "upper"])).map(
        lambda t: t[0].upper() if t[1] == "upper" else t[0])


def read(fmt: str, data: bytes, **options):
    f = get_format(fmt)(**options)
    rows = list(f.read(io.BytesIO(data)))
    bad = [r for _, r in rows if isinstance(r, RowError)]
    assert not bad, bad
    return f, [r for _, r in rows]


def write(fmt: str, entries, meta: dict | None = None, **options) -> bytes:
    out = io.BytesIO()
    get_format(fmt)(**options).write(entries, out, bank=BankMeta("b", extra=meta or {}))
    return out.getvalue()


# -- VICS --------------------------------------------------------------------------------------

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=12),
                        st.floats(allow_nan=False, allow_infinity=False, width=32))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text("abcXYZ", min_size=1, max_size=5), inner, max_size=3)),
    max_leaves=6)
bool_spelling = st.sampled_from([True, False, "true", "false", "True", "FALSE", "1", "0"])
date_spelling = st.sampled_from(["2025-01-02T03:04:05.1234567Z", "2025-01-02T03:04:05.1234Z",
                                 "2025-01-02T03:04:05Z", "2025-01-02T04:04:05.0000000+01:00",
                                 "/Date(1735787045000)/", "next tuesday", "", None])
category = st.sampled_from([0, 1, 2, 3, 4, "0", "1", "4", None, ""])


@st.composite
def media(draw, media_id: int):
    m: dict = {"MediaID": draw(st.sampled_from([media_id, str(media_id)]))}
    if draw(st.booleans()):
        m["Category"] = draw(category)
    m["MD5"] = draw(cased(32))
    if draw(st.booleans()):
        m["SHA1"] = draw(st.one_of(cased(40), st.sampled_from(["", None])))
    for key, strat in (("DateUpdated", date_spelling), ("VictimIdentified", bool_spelling),
                       ("IsDistributed", bool_spelling), ("Tags", st.sampled_from(["a,b", "x", "", None, " a ; b "])),
                       ("Comments", st.sampled_from(["note", "", None])), ("MediaSize", st.sampled_from([43, "43"])),
                       ("XFuture", json_value), ("MediaFiles", st.lists(st.fixed_dictionaries(
                           {"FileName": st.text(max_size=8), "Deleted": bool_spelling}), max_size=2))):
        if draw(st.booleans()):
            m[key] = draw(strat)
    if draw(st.booleans()):
        alts = []
        if draw(st.booleans()):
            alts.append({"MD5": m["MD5"], "HashName": "PhotoDNA", "HashValue": "QUJD" * 48})
        if draw(st.booleans()):
            alts.append({"MD5": m["MD5"], "HashName": draw(st.sampled_from(["PDQ", "pdq", "PdqHash"])),
                         "HashValue": draw(cased(64))})
        m["AlternativeHashes"] = alts
    keys = draw(st.permutations(list(m)))
    return {k: m[k] for k in keys}


@st.composite
def vics_document(draw):
    version = draw(st.sampled_from(["1.2", "1.3", "2.0"]))
    profile = draw(st.sampled_from(["US", "Default"]))
    shape = draw(st.sampled_from(["media", "cases"]))
    n = draw(st.integers(1, 5))
    ids = draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n, unique=True))
    md = [draw(media(i)) for i in ids]
    if len({m["MD5"].lower() for m in md}) < n:
        md = md[:1]
    frag = "Cases" if shape == "cases" else "Media"
    if version == "2.0":
        doc = {"@odata.context": f"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/"
                                 f"$metadata#{frag}"}
    else:
        doc = {"odata.metadata": f"http://github.com/ICMEC/ProjectVic/DataModels/{version}.xml#{frag}"}
    if shape == "cases":
        doc["value"] = [{"CaseID": "{21725496-946E-4EEE-A432-0CAEB46F596A}", "CaseNumber": "DEMO",
                         "SourceApplicationName": "DemoTool", "Media": md}]
    else:
        doc["value"] = md
    return doc, shape


@SETTINGS
@given(vics_document())
def test_vics_goes_out_as_it_came_in(case):
    doc, shape = case
    fmt, entries = read("vics", json.dumps(doc, ensure_ascii=False).encode())
    back = json.loads(write("vics", entries, fmt.bank_meta, shape=shape))
    assert list(back)[:2] == list(doc)[:2]
    if shape == "cases":
        case_out = back["value"][0]
        assert case_out.pop("TotalMediaFiles") == len(doc["value"][0]["Media"])
        assert case_out == doc["value"][0]
        media_in, media_out = doc["value"][0]["Media"], case_out["Media"]
    else:
        assert back == doc
        media_in, media_out = doc["value"], back["value"]
    assert [list(m) for m in media_out] == [list(m) for m in media_in]


def test_vics_patches_only_what_vigie_changed():
    doc = {"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
           "value": [{"MediaID": "7", "Category": "1", "MD5": "AB" * 16, "SHA1": "CD" * 20, "Tags": "x",
                      "DateUpdated": "2025-01-02T03:04:05.1234567Z"}]}
    fmt, entries = read("vics", json.dumps(doc).encode())
    md5, sha1 = entries
    md5.verdict = from_label("vics_us", "2")   # an analyst changed the category
    md5.tags = ["x", "y"]
    out = json.loads(write("vics", [md5], fmt.bank_meta))   # the SHA-1 was removed from the bank
    assert out["value"] == [{"MediaID": "7", "Category": 2, "MD5": "AB" * 16, "Tags": "x,y",
                             "DateUpdated": "2025-01-02T03:04:05.1234567Z"}]


# -- ThreatExchange -----------------------------------------------------------------------------

vpdq_json = st.lists(st.tuples(hexs(64), st.integers(0, 100), st.integers(0, 10**6)), min_size=1, max_size=4).map(
    lambda fs: json.dumps([f"{h},{q},{t / 1000:.3}" for h, q, t in fs]))  # python-threatexchange's {:.3}
te_line = st.one_of(
    st.tuples(st.just("pdq"), hexs(64)), st.tuples(st.just("video_md5"), hexs(32)),
    st.tuples(st.just("video_sha256"), hexs(64)), st.tuples(st.just("vpdq"), vpdq_json))


@SETTINGS
@given(st.lists(te_line, min_size=1, max_size=8))
def test_threatexchange_lines_go_out_as_they_came_in(lines):
    text = "".join(f"{t} {h}\n" for t, h in lines)
    _, entries = read("te", text.encode())
    assert write("te", entries).decode() == text


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["Sample Data", "collab-2"]), te_line,
                          st.sampled_from(["", "POSITIVE_CLASS"]),
                          st.lists(st.text("abcdefgh_", min_size=1, max_size=6), max_size=3)), min_size=1, max_size=6))
def test_threatexchange_csv_goes_out_as_it_came_in(rows):
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["collab", "signal_type", "signal_str", "category", "tags"])
    for collab, (t, h), cat, tags in rows:
        w.writerow([collab, t, h, cat, " ".join(tags)])
    _, entries = read("te", buf.getvalue().encode())
    assert write("te", entries, shape="csv").decode() == buf.getvalue()


# -- Vigie CSV and text -------------------------------------------------------------------------

entry = st.builds(
    EntryData, signal=st.just("md5"), value=hexs(32),
    verdict=st.one_of(st.none(), st.sampled_from([from_label("vics_us", "1"), from_label("uk", "B")])),
    tags=st.lists(st.text("abc xyz", min_size=1, max_size=5).map(str.strip).filter(bool), max_size=2),
    external_id=st.one_of(st.none(), st.text("0123abc", min_size=1, max_size=6)),
    note=st.one_of(st.none(), st.text(st.one_of(st.characters(blacklist_categories=("Cs", "Cc")),
                                                 st.sampled_from("\r\n\t,;\"")), min_size=1, max_size=10)
                   .map(str.strip).filter(bool)),
    extra=st.dictionaries(st.text("XYZ", min_size=1, max_size=3), json_value, max_size=2))


@SETTINGS
@given(st.lists(entry, min_size=1, max_size=6))
def test_vigie_csv_reads_back_the_same_entries(entries):
    _, back = read("csv", write("csv", entries))
    key = [(e.signal, e.value, e.verdict and (e.verdict.source_scheme, e.verdict.source_label), e.tags,
            e.external_id, e.note, e.extra) for e in entries]
    assert [(e.signal, e.value, e.verdict and (e.verdict.source_scheme, e.verdict.source_label), e.tags,
             e.external_id, e.note, e.extra) for e in back] == key


@SETTINGS
@given(st.lists(hexs(40), min_size=1, max_size=10))
def test_text_gives_the_same_hashes_in_the_same_order(values):
    _, entries = read("text", ("\n".join(values) + "\n").encode())
    _, back = read("text", write("text", entries))
    assert [e.value for e in back] == values


def test_a_vics_file_goes_through_the_store_unchanged_on_both_stores(store):
    from test_formats_vics import dump, media_records, vics_doc

    from vigie.banks import service

    for version in ("1.3", "2.0"):
        doc = vics_doc(version, "media", media_records(version), profile="US")
        name = f"v{version}"
        service.create_bank(store, name)
        service.import_file(store, name, io.BytesIO(dump(doc)), "vics")
        out = io.BytesIO()
        report: dict = {}
        service.export_file(store, name, out, "vics", report=report)
        back = json.loads(out.getvalue())
        assert back == doc and report["left_out"] == 0
        assert [list(m) for m in back["value"]] == [list(m) for m in doc["value"]]
