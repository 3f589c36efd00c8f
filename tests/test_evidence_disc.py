"""CD and DVD images (ISO 9660): the files of a burned disc, as The Sleuth Kit lists them.

A disc image has no partition table and its first 32 KiB are blank, so it is told by its first volume
descriptor (``CD001`` at 32769), read only for a file whose first 4 KiB are blank. The discs are made here by
``xorriso`` (Rock Ridge and Joliet names, folders), plain and inside a zip.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest
from test_containers import by_loc, code, scan
from test_evidence_formats import pic

from vigie.ingest.containers import disc_image
from vigie.ingest.reopen import read_location
from vigie.settings import Settings

XORRISO = shutil.which("xorriso")
need_xorriso = pytest.mark.skipif(not XORRISO, reason="xorriso not installed (it burns the test disc)")


def burn(tmp, files: dict[str, bytes]) -> bytes:
    src = tmp / "src"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    subprocess.run([XORRISO, "-as", "mkisofs", "-quiet", "-J", "-R", "-o", str(tmp / "disc.iso"), str(src)],
                   check=True, capture_output=True)
    return (tmp / "disc.iso").read_bytes()


@need_xorriso
def test_a_burned_disc_is_read_as_its_files(tmp_path):
    files = {"DCIM/Photo one.jpg": pic(61, size=(120, 90)), "DCIM/Sub/a_long_file_name.png": pic(62, "PNG"),
             "notes.txt": b"benign text"}
    iso = burn(tmp_path, files)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "disc.iso").write_bytes(iso)
    with zipfile.ZipFile(ev / "backup.zip", "w") as z:
        z.writestr("old/disc.iso", iso)
    items = by_loc(scan([ev]))
    for where in (str(ev / "disc.iso"), f"{ev / 'backup.zip'}!old/disc.iso"):
        disc = items[where]
        assert disc.container and disc.meta["format"] == "disk" and code(disc) is None, where
        for name, data in files.items():
            it = items[f"{where}!/{name}"]
            assert it.data == data and it.meta["fs"] == "iso9660" and not it.deleted, name
            assert read_location(f"{where}!/{name}", Settings()) == data, name
    # a file that merely starts blank is not a disc, and costs no second read to say so
    blank = bytes(40000)
    assert disc_image(blank[:4096], lambda off, n: blank[off:off + n]) is False
    reads = []
    photo = pic(63)
    assert disc_image(photo[:4096].ljust(4096, b"\0"), lambda off, n: reads.append(off) or b"") is False
    assert reads == []
    (tmp_path / "blank.bin").write_bytes(blank + iso[32768:32774])  # CD001, but at 40001: not a disc
    again = by_loc(scan([tmp_path / "blank.bin"]))
    assert list(again) == [str(tmp_path / "blank.bin")] and not again[str(tmp_path / "blank.bin")].container
