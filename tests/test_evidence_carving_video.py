"""Carving AVI and Matroska/WebM videos out of unallocated space, by signature and structure, bounded.

The videos are encoded by the test with PyAV (FFmpeg), in memory, and written into free clusters of a FAT
volume made by ``mkfs.vfat``; each is found at its byte offset, re-read from its location alone, and a
video whose structure is cut or that runs past the limit is not carved.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest

from vigie.demo import photo_like
from vigie.ingest import carving
from vigie.ingest.containers import iter_items
from vigie.ingest.reopen import read_location
from vigie.settings import Settings

MKFS = shutil.which("mkfs.vfat") or ("/usr/sbin/mkfs.vfat" if os.path.exists("/usr/sbin/mkfs.vfat") else None)
MiB = 1 << 20


def video(fmt: str, codec: str, seed: int, frames: int = 10, options: dict | None = None) -> bytes:
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, options=options or {}) as c:
        st = c.add_stream(codec, rate=5)
        st.width, st.height, st.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(photo_like(seed * 10 + i // 5, 160, 120)), format="rgb24")
            for p in st.encode(frame):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return buf.getvalue()


@pytest.fixture(scope="module")
def videos() -> dict[str, bytes]:
    live = video("matroska", "mpeg4", 4, options={"live": "1"})
    assert live[live.index(b"\x18\x53\x80\x67") + 4:][:8] == b"\x01" + b"\xff" * 7  # an unknown-size Segment
    return {"avi": video("avi", "mpeg4", 1), "mkv": video("matroska", "mpeg4", 2), "webm": video("webm", "libvpx", 3),
            "live": live}


def space(parts: dict[int, bytes], size: int = 4 * MiB) -> bytes:
    buf = bytearray(size)
    for off, b in parts.items():
        buf[off:off + len(b)] = b
    return bytes(buf)


def carve_all(data: bytes, limit: int = 64 * MiB) -> list[tuple[int, str, int]]:
    return list(carving.carve(lambda o, n: data[o:o + n], [(0, len(data))], limit))


def test_avi_mkv_webm_are_carved_by_structure(videos):
    garbage = b"\x42" + os.urandom(4000)  # not an EBML element: the unknown-size Segment ends before it
    data = space({0x1000: videos["avi"], MiB: videos["mkv"], 2 * MiB: videos["webm"],
                  3 * MiB: videos["live"] + garbage})
    got = carve_all(data)
    assert got == [(0x1000, "avi", len(videos["avi"])), (MiB, "mkv", len(videos["mkv"])),
                   (2 * MiB, "webm", len(videos["webm"])), (3 * MiB, "mkv", len(videos["live"]))]


def test_broken_or_oversized_videos_are_not_carved(videos):
    avi, mkv = videos["avi"], videos["mkv"]
    cut_avi = avi[:len(avi) // 2]  # the RIFF size says more than is there: zeros where chunks should be
    no_cluster = mkv[:mkv.index(b"\x1f\x43\xb6\x75")]  # header and tracks, every cluster gone
    bad_doc = mkv.replace(b"matroska", b"mutroska", 1)
    no_hdrl = avi[:12] + b"JUNK" + avi[16:]
    data = space({0x1000: cut_avi, MiB: no_cluster, 2 * MiB: bad_doc, 3 * MiB: no_hdrl})
    assert [k for _, k, _ in carve_all(data)] == []
    # over the limit: not carved at all (a video is never cut at the limit)
    assert carve_all(space({0: avi, MiB: mkv}), limit=len(avi) - 1) == [(MiB, "mkv", len(mkv))]


def test_unknown_size_segment_is_bounded_by_the_limit(videos):
    live = videos["live"]
    # clusters that would go on forever: the walk stops at the limit, and nothing is carved past it
    data = space({0: live})
    assert carve_all(data, limit=len(live) - 100) == []
    assert carve_all(data, limit=len(live) + 10) == [(0, "mkv", len(live))]


@pytest.mark.skipif(not MKFS, reason="dosfstools (mkfs.vfat) not installed")
def test_videos_in_unallocated_space_of_a_disk_image(tmp_path, videos):
    ev = tmp_path / "ev"
    ev.mkdir()
    vol = ev / "usb.img"
    subprocess.run([MKFS, "-C", "-F", "16", "-n", "USB", str(vol), "16384"], check=True, capture_output=True)
    data = bytearray(vol.read_bytes())
    placed = {4 * MiB: videos["avi"], 5 * MiB + 512: videos["mkv"], 6 * MiB: videos["webm"], 7 * MiB: videos["live"]}
    for off, b in placed.items():
        data[off:off + len(b)] = b
    vol.write_bytes(bytes(data))
    items = {i.location: i for i in iter_items([str(ev)], Settings())}
    carved = {loc: it for loc, it in items.items() if carving.MARK in loc}
    v = str(vol)
    assert sorted(carved) == sorted(f"{v}!/{carving.MARK}0x{off:x}" for off in placed)
    kinds = {}
    for off, b in placed.items():
        it = carved[f"{v}!/{carving.MARK}0x{off:x}"]
        assert it.data == b and it.deleted and it.meta["carved"] is True and it.meta["offset"] == off
        kinds[off] = it.meta["carved_type"]
    assert kinds == {4 * MiB: "avi", 5 * MiB + 512: "mkv", 6 * MiB: "webm", 7 * MiB: "mkv"}
    s = Settings()
    for off, b in placed.items():  # review re-reads each from its location alone
        assert read_location(f"{v}!/{carving.MARK}0x{off:x}", s) == b
    assert read_location(f"{v}!/{carving.MARK}0x{4 * MiB + 8:x}", s) is None
