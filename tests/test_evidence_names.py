"""File names that are not UTF-8 never stop a scan: kept as bytes, shown escaped, flagged `name_not_utf8`.

Seized drives hold names in Latin-1, CP1252 or random bytes. The files here are real files
with such names under a temporary folder, and tar and zip members named the same way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import tarfile
import zipfile

from sqlalchemy import select

from vigie.demo import encode, photo_like
from vigie.ingest.containers import iter_items
from vigie.ingest.names import clean, escape, escape_bytes, unescape
from vigie.ingest.reopen import read_location
from vigie.ingest.scan import run_scan, scan_key
from vigie.settings import Settings
from vigie.store.models import Scan, ScanFile


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 64, 48), "JPEG")


def bpath(folder, name: bytes) -> str:
    """A path with a bytes name, as Python's os functions give it back (surrogateescape)."""
    return os.fsdecode(os.path.join(os.fsencode(str(folder)), name))


def write(folder, name: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(str(folder)), name), "wb") as f:
        f.write(data)


def latin_tar(members: list[tuple[bytes, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(os.fsdecode(name))
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def utf8_flagged_zip(name: bytes, data: bytes) -> bytes:
    """A zip whose member says its name is UTF-8 (flag bit 11) but is not: Python's zipfile refuses it whole."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("PLACEHOLDER.jpg"[: len(name)].ljust(len(name), "_"), data)
    raw = bytearray(buf.getvalue())
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        i = raw.find(sig)
        flags = struct.unpack_from("<H", raw, i + flag_at)[0] | 0x800
        struct.pack_into("<H", raw, i + flag_at, flags)
        raw[i + name_at: i + name_at + len(name)] = name
    return bytes(raw)


def test_escaping_is_reversible_and_unambiguous():
    for raw in (b"caf\xe9.jpg", b"\xff\xfe\x80", b"a\\xe9", b"\\\xe9", b"ok.jpg", "été".encode()):
        text = os.fsdecode(raw)
        shown, flagged = escape(text)
        assert shown.encode("utf-8") and unescape(shown) == raw
        assert flagged == _not_utf8(raw)
    # the literal four characters \xe9 and the byte 0xe9 never share a location
    assert escape("caf\\xe9")[0] != escape(os.fsdecode(b"caf\xe9"))[0]
    assert escape_bytes(b"gr\xfcn") == ("gr\\xfcn", True)
    assert clean({"a": ["x\udce9"]}) == {"a": ["x\\xe9"]}


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_items_keep_the_bytes_and_read_the_file(tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    pic = jpeg(1)
    write(ev, b"caf\xe9.jpg", pic)
    write(ev, b"caf\\xe9.jpg", pic)  # a real name holding a backslash: its own location
    write(ev, b"t.tar", latin_tar([(b"x\xe9y.jpg", pic), (b"\x81\x82.jpg", pic)]))
    items = {i.location: i for i in iter_items([str(ev)], Settings())}
    latin = f"{ev}/caf\\xe9.jpg"
    literal = f"{ev}/caf\\x5cxe9.jpg"
    assert set(items) == {latin, literal, f"{ev}/t.tar", f"{ev}/t.tar!x\\xe9y.jpg", f"{ev}/t.tar!\\x81\\x82.jpg"}
    assert items[latin].meta["name_not_utf8"] is True
    assert bytes.fromhex(items[latin].meta["name_bytes"]) == os.fsencode(str(ev)) + b"/caf\xe9.jpg"
    assert "name_not_utf8" not in items[literal].meta
    assert items[latin].path == bpath(ev, b"caf\xe9.jpg")  # the real path, to read the file
    member = items[f"{ev}/t.tar!x\\xe9y.jpg"]
    assert member.meta["name_not_utf8"] and member.meta["name_bytes"] == b"x\xe9y.jpg".hex() and member.data == pic
    assert read_location(latin, Settings()) == pic and read_location(literal, Settings()) == pic
    assert read_location(f"{ev}/t.tar!\\x81\\x82.jpg", Settings()) == pic


def test_zip_that_lies_about_utf8_names(tmp_path):
    pic = jpeg(2)
    z = tmp_path / "z.zip"
    z.write_bytes(utf8_flagged_zip(b"\xe9t\xe9.jpg", pic))
    items = list(iter_items([str(z)], Settings()))
    assert [(i.location, i.error) for i in items] == [(str(z), None), (f"{z}!\\xe9t\\xe9.jpg", None)]
    assert items[1].data == pic and items[1].meta["name_not_utf8"] is True


def test_scan_with_bytes_names_on_the_store_and_again(store, tmp_path):
    settings = store.settings
    ev = tmp_path / "ev"
    (ev / "sub").mkdir(parents=True)
    pics = [jpeg(10 + i) for i in range(4)]
    write(ev, b"caf\xe9.jpg", pics[0])
    write(ev / "sub", b"\xff\xfe\x80\x00"[:3] + b".jpg", pics[1])
    write(ev, b"notes-\xe9.txt", b"benign text")
    write(ev, b"t.tar", latin_tar([(b"\xe9l\xe8ve.jpg", pics[2]), (b"dir\xa0/p.jpg", pics[3])]))
    os.mkdir(os.path.join(os.fsencode(str(ev)), b"d\xe9"))
    write(os.path.join(str(ev), os.fsdecode(b"d\xe9")), b"in.jpg", pics[3])
    out = tmp_path / "out"
    # a first run stopped after 2 rows (as a kill would), then the same command again
    partial = run_scan(store, settings, [str(ev)], str(out), workers=1, stop_after=2)
    assert partial["status"] == "interrupted"
    summary = run_scan(store, settings, [str(ev)], str(out), workers=1)
    assert summary["status"] == "done"
    with store.sessions() as s:
        scan = s.scalar(select(Scan).where(Scan.key == scan_key([str(ev)], None)))
        rows = {r.location: r for r in s.scalars(select(ScanFile).where(ScanFile.scan_id == scan.id))}
    expected = {f"{ev}/caf\\xe9.jpg": "unknown", f"{ev}/sub/\\xff\\xfe\\x80.jpg": "unknown",
                f"{ev}/notes-\\xe9.txt": "skipped", f"{ev}/t.tar": "skipped",
                f"{ev}/t.tar!\\xe9l\\xe8ve.jpg": "unknown", f"{ev}/t.tar!dir\\xa0/p.jpg": "unknown",
                f"{ev}/d\\xe9/in.jpg": "unknown"}
    assert {k: r.klass for k, r in rows.items()} == expected
    for loc, r in rows.items():
        if loc != f"{ev}/t.tar":
            assert "name_not_utf8" in r.flags, loc
    assert bytes.fromhex(rows[f"{ev}/t.tar!\\xe9l\\xe8ve.jpg"].detail["source"]["name_bytes"]) == b"\xe9l\xe8ve.jpg"
    with open(out / "files.csv", newline="", encoding="utf-8") as f:
        assert {r["location"] for r in csv.DictReader(f)} == set(expected)
    assert json.loads((out / "summary.json").read_text())["counts"]["flags"]["name_not_utf8"] == 6
    # a source whose own name is not UTF-8
    top = bpath(tmp_path, b"src-\xe9")
    os.mkdir(top)
    write(top, b"a.jpg", pics[0])
    again = run_scan(store, settings, [top], str(tmp_path / "out2"), workers=1)
    assert again["counts"]["locations"] == 1 and again["sources"] == [f"{tmp_path}/src-\\xe9"]
