"""VICS as IPED reads it: Vigie's exports must pass IPED's own reader rules.

`iped_load` follows, token by token, what IPED's hash database tool (`iped.engine.hashdb.HashDBTool`,
`readProjectVIC` and `checkDataModel`, read in its public source) does with a Project VIC file:

* the root is an object whose fields come in pairs: first the data-model key with exactly
  `http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media` under
  `@odata.context`, or `http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media` under
  `odata.metadata` (key and value compared without case), then a field named exactly `value`;
  anything else refuses the whole file;
* in `value`, on each Media object: `Category` (that spelling) is read as an integer (a string or
  null counts as absent; 0 gives status `known`, 1 and 2 `pedo`); `MD5` and `SHA1` must be strings
  (another token type makes the reader fail); `PhotoDNA`, `VictimIdentified`, `OffenderIdentified`,
  `IsDistributed`, `Series`, `IsPrecategorized` and `Tags` become properties; a nested object opened
  directly in a Media starts a new record (IPED's parser only counts arrays);
* a Media is loaded only when it has a hash **and** at least one property: a Media with only its
  hashes (no Category, no flags) is dropped, which is why a bank's default category must be written.

The fixtures below are written by these rules, by hand, not by Vigie's writer.
"""

from __future__ import annotations

import hashlib
import io
import json

import ijson
import pytest

from vigie.banks.formats import get_format
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import from_label

IPED_20 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"
IPED_13 = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"
STATUS = ("known", "pedo", "pedo")
FLAGS = ("victimidentified", "offenderidentified", "isdistributed", "series", "isprecategorized", "tags")


class Refused(Exception):
    """IPED would stop reading the file (its tool prints an error and returns false)."""


def _tokens(data: bytes):
    """ijson events as Jackson tokens: (token, current name, value)."""
    stack: list[list] = []
    for ev, val in ijson.basic_parse(io.BytesIO(data), use_float=False):
        parent = stack[-1] if stack else None
        name = parent[1] if parent and parent[0] == "obj" else None
        if ev == "map_key":
            parent[1] = val
            yield "FIELD_NAME", val, val
        elif ev == "start_map":
            yield "START_OBJECT", name, None
            stack.append(["obj", None])
        elif ev == "start_array":
            yield "START_ARRAY", name, None
            stack.append(["arr", None])
        elif ev in ("end_map", "end_array"):
            stack.pop()
            yield ("END_OBJECT" if ev == "end_map" else "END_ARRAY"), None, None
        else:
            kind = {"string": "STRING", "boolean": "BOOL", "null": "NULL"}.get(ev)
            if kind is None:
                kind = "INT" if isinstance(val, int) else "FLOAT"
            yield kind, name, val


def iped_load(data: bytes) -> list[dict]:
    """The records IPED's hash database tool would load from a Project VIC file; Refused if none."""
    toks = _tokens(data)

    def nxt():
        try:
            return next(toks)
        except StopIteration:
            raise Refused("unexpected end of file") from None

    if nxt()[0] != "START_OBJECT":
        raise Refused("root JSON should be an object")
    loaded: list[dict] = []
    while True:
        tok = nxt()
        if tok[0] == "END_OBJECT":
            return loaded
        key = tok[1]
        val = nxt()
        ok = val[0] == "STRING" and (
            (key.lower() == "odata.metadata" and val[2].lower() == IPED_13.lower())
            or (key.lower() == "@odata.context" and val[2].lower() == IPED_20.lower()))
        if not ok:
            raise Refused(f"unknown ProjectVic JSON data model: {key}={val[2]!r}")
        tok = nxt()
        if tok[0] != "FIELD_NAME" or tok[1] != "value":
            raise Refused(f"unexpected property in ProjectVic JSON {tok[1]!r}")
        depth = 0
        rec: dict = {}
        while True:
            tok, name, v = nxt()
            if tok == "START_ARRAY":
                depth += 1
            elif tok == "END_ARRAY":
                depth -= 1
            elif depth == 1:
                if tok == "START_OBJECT":
                    rec = {"hashes": {}, "props": {}}
                elif name == "Category" and tok == "FIELD_NAME":
                    t2 = nxt()
                    cat = t2[2] if t2[0] == "INT" else -1
                    if cat >= 0:
                        rec["props"]["vicCategory"] = str(cat)
                        if cat < len(STATUS):
                            rec["props"]["status"] = STATUS[cat]
                elif name and name.lower() in ("md5", "sha1") and tok == "FIELD_NAME":
                    t2 = nxt()
                    if t2[0] != "STRING":
                        raise Refused(f"{name} is not a string (NullPointerException in IPED)")
                    rec["hashes"][name.lower()] = t2[2].strip().lower()
                elif name and name.lower() in FLAGS and tok == "FIELD_NAME":
                    t2 = nxt()
                    value = None
                    if t2[0] == "STRING":
                        value = t2[2].replace("|", " ").strip()
                        if value.lower() in ("true", "false"):
                            value = value.lower()
                    elif t2[0] == "BOOL":
                        value = "true" if t2[2] else "false"
                    if value:
                        rec["props"]["vic" + name] = value
                elif tok == "END_OBJECT":
                    if rec.get("hashes") and rec.get("props"):
                        loaded.append(rec)
                    rec = {"hashes": {}, "props": {}}
            if depth == 0:
                break


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def export(entries, **options) -> tuple[bytes, object]:
    default = options.pop("default", None)
    meta = options.pop("meta", {})
    fmt = get_format("vics")(**options)
    out = io.BytesIO()
    fmt.write(entries, out, bank=BankMeta("demo", default_verdict=default, extra=meta))
    return out.getvalue(), fmt


#: A hash set as IPED's rules want it (the way a national portal writes it), made by hand.
IPED_FIXTURE = (
    '{"@odata.context": "' + IPED_20 + '", "value": [\n'
    '{"MediaID": 1, "Category": 1, "MD5": "' + md5("a").upper() + '", "SHA1": "' + sha1("a").upper() + '",'
    ' "DateUpdated": "2025-01-02T03:04:05.1234567Z", "IsDistributed": "true", "MediaSize": "43"},\n'
    '{"MediaID": 2, "Category": 0, "MD5": "' + md5("b").upper() + '", "Tags": "demo,beach",'
    ' "VictimIdentified": false, "Comments": null, "AlternativeHashes": []},\n'
    '{"MediaID": 3, "Category": 2, "MD5": "' + md5("c") + '", "Series": ""}\n'
    ']}\n').encode()


def test_the_rules_load_what_iped_loads_and_refuse_what_it_refuses():
    got = iped_load(IPED_FIXTURE)
    assert [r["hashes"]["md5"] for r in got] == [md5("a"), md5("b"), md5("c")]
    assert [r["props"]["status"] for r in got] == ["pedo", "known", "pedo"]
    us = IPED_FIXTURE.replace(b"/Default/", b"/US/")
    with pytest.raises(Refused, match="data model"):
        iped_load(us)
    with pytest.raises(Refused, match="unexpected property"):
        iped_load(IPED_FIXTURE.replace(b'"value"', b'"Source": "x", "value"', 1))
    with pytest.raises(Refused, match="not a string"):
        iped_load(IPED_FIXTURE.replace(f'"{md5("c")}"'.encode(), b"12345"))
    # no category and no flag: not loaded; a category written as a string is not a category
    bare = json.dumps({"@odata.context": IPED_20, "value": [{"MediaID": 1, "MD5": md5("x")},
                                                           {"MediaID": 2, "MD5": md5("y"), "Category": "1"}]})
    assert iped_load(bare.encode()) == []


def test_a_default_file_goes_through_vigie_and_iped_still_loads_it_unchanged():
    fmt = get_format("vics")()
    entries = [e for _, e in fmt.read(io.BytesIO(IPED_FIXTURE))]
    data, writer = export(entries, meta=fmt.bank_meta)
    assert writer.skipped == 0
    assert json.loads(data) == json.loads(IPED_FIXTURE)
    assert iped_load(data) == iped_load(IPED_FIXTURE)


@pytest.mark.parametrize("options", [{}, {"profile": "Default"}, {"version": "1.3"}, {"profile": "default"}])
def test_vigie_exports_pass_ipeds_rules_and_every_media_loads(options):
    entries = [
        EntryData("md5", md5("a"), verdict=from_label("vics_us", "1"), media_key="a"),
        EntryData("sha1", sha1("a"), media_key="a"),
        EntryData("md5", md5("b"), tags=["t1", "t2"]),             # no category: the bank's default
        EntryData("md5", md5("c"), verdict=from_label("uk", "A")),   # UK A is CAM: vics_us 1
        EntryData("md5", md5("d")),
    ]
    data, writer = export(entries, default=from_label("vics_us", "2"), **options)
    got = iped_load(data)
    assert len(got) == 4 and writer.skipped == 0
    assert [r["props"]["vicCategory"] for r in got] == ["1", "2", "1", "2"]
    assert got[0]["hashes"] == {"md5": md5("a"), "sha1": sha1("a")}


def test_without_the_bank_category_iped_drops_the_bare_media():
    entries = [EntryData("md5", md5("a"), verdict=from_label("vics_us", "1")), EntryData("md5", md5("b"))]
    data, _ = export(entries, default=from_label("vics_us", "1"), bank_category=False)
    assert len(iped_load(data)) == 1
    data, _ = export(entries, default=from_label("vics_us", "1"))
    assert len(iped_load(data)) == 2


def test_other_profiles_and_shapes_are_written_as_asked_and_iped_refuses_them():
    entries = [EntryData("md5", md5("a"), verdict=from_label("uk", "B"))]
    for options, context in (({"profile": "UK"}, "2.0.xml/UK/$metadata#Media"),
                             ({"profile": "US", "shape": "cases"}, "2.0.xml/US/$metadata#Cases"),
                             ({"version": "1.3", "shape": "cases"}, "1.3.xml#Cases")):
        data, _ = export(entries, **options)
        doc = json.loads(data)
        assert next(iter(doc.values())).endswith(context)
        with pytest.raises(Refused):
            iped_load(data)
    doc = json.loads(export(entries, profile="UK")[0])
    assert doc["value"][0]["Category"] == "B"
