"""QCOW2 virtual disks (QEMU/KVM, libvirt) read through libqcow (``libqcow-python``), never converted.

``qemu-img`` (Debian's qemu-utils) builds the test disks only: converting at scan time would write the
evidence in clear. A QCOW2 with a backing file (a snapshot overlay) needs its parent and is ``unsupported``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vigie.ingest.containers import iter_items
from vigie.ingest.reopen import read_location
from vigie.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from test_evidence_formats import MKFS, MTOOLS, MiB, fat_disk  # noqa: E402

QEMU_IMG = shutil.which("qemu-img")
pyqcow = pytest.importorskip("pyqcow", reason="libqcow-python not installed")


@pytest.mark.skipif(not (QEMU_IMG and MKFS and MTOOLS), reason="qemu-utils (qemu-img), dosfstools or mtools "
                    "not installed")
def test_qcow2_is_read_as_its_media(tmp_path):
    disk, live, carve = fat_disk(tmp_path)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(disk)
    ev = tmp_path / "ev"
    ev.mkdir()
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", str(raw), str(ev / "vm.qcow2")],
                   check=True, capture_output=True)
    # compressed clusters: libqcow (20260703) reads some of them as zeros, so such an image is refused
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", "-c", str(raw), str(ev / "packed.qcow2")],
                   check=True, capture_output=True)
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", str(ev / "vm.qcow2"), "-F", "qcow2",
                    str(ev / "overlay.qcow2")], check=True, capture_output=True)
    before = {p.name: p.stat().st_mtime_ns for p in ev.iterdir()}
    items = {i.location: i for i in iter_items([str(ev)], Settings())}
    d = str(ev / "vm.qcow2")
    img = items[d]
    assert img.error is None and img.meta["format"] == "qcow" and img.meta["acquisition"] is True
    assert img.meta["media_sha256"] == hashlib.sha256(disk).hexdigest()
    for path, data in live.items():
        assert items[f"{d}!p1{path}"].data == data
    for off, data in carve.items():
        assert items[f"{d}!p1/@unallocated:0x{off:x}"].data == data
    s = Settings()
    assert read_location(f"{d}!p1/LIVE.JPG", s) == live["/LIVE.JPG"]
    assert read_location(f"{d}!p1/@unallocated:0x{9 * MiB:x}", s) == carve[9 * MiB]
    overlay = items[str(ev / "overlay.qcow2")]
    assert overlay.error.code == "unsupported" and "vm.qcow2" in overlay.error.message
    assert not [loc for loc in items if loc.startswith(str(ev / "overlay.qcow2") + "!")]
    packed = items[str(ev / "packed.qcow2")]
    assert packed.error.code == "unsupported" and "compressed clusters" in packed.error.message
    assert not [loc for loc in items if loc.startswith(str(ev / "packed.qcow2") + "!")]
    assert {p.name: p.stat().st_mtime_ns for p in ev.iterdir()} == before  # read-only
