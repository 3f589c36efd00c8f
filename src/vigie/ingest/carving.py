"""Carving: pictures in a file system's unallocated space, found by signature and checked by structure.

When a file is deleted and its directory entry reused (or the file system reformatted), nothing
lists it any more, but its bytes often stay in blocks no file owns. Carving reads that space
and finds pictures by their first bytes, then follows each format's own structure to its end:

- JPEG: ``FF D8 FF``, marker segments by their lengths (a frame header before the first scan),
  entropy-coded data up to the next marker, down to ``FF D9``;
- PNG: the 8-byte signature, ``IHDR`` first (its CRC checked), chunks by their lengths to ``IEND``;
- GIF: ``GIF87a``/``GIF89a``, colour tables, extension and image blocks with their sub-blocks,
  to the trailer ``3B``;
- WebP: ``RIFF`` + size + ``WEBP`` with a ``VP8 ``/``VP8L``/``VP8X`` first chunk; the RIFF size;
- BMP: ``BM`` with a plausible header (reserved zero, a known DIB header size, one plane, a known
  bit depth, pixel data that fits the declared size); the declared size;
- MP4/MOV (and 3GP, M4V…): an ``ftyp`` box first, then top-level boxes by their sizes (``moov``, ``mdat``,
  ``free``…) up to the first bytes that are not one; both a ``moov`` and an ``mdat`` (or ``moof``) needed;
- AVI: ``RIFF`` + size + ``AVI `` with a ``LIST hdrl`` holding ``avih`` first, a ``movi`` list inside; the RIFF
  size (even-padded), plus the ``RIFF AVIX`` chunks that follow it in an OpenDML file over 1 GiB;
- Matroska/WebM: the EBML header (``1A 45 DF A3``, its DocType ``matroska`` or ``webm``), then one ``Segment``:
  its size when known; when unknown (a live recording, a muxer that never seeked back), its top-level
  children (SeekHead, Info, Tracks, Cluster, Cues…) walked by their sizes (an unknown-size Cluster by its
  own children) up to the first bytes that are not one, within the limit; ``Tracks`` and a ``Cluster`` needed.

A candidate whose structure breaks, or whose end is not found within `limit` bytes, is not carved.
The length comes from the bytes alone, from the start offset: the same offset always carves the
same bytes, so a carved item's location (``disk.E01!p2/@unallocated:0x1a2b3c00``, the byte offset
inside the file system) is enough to read it again (`carve_at`). A carved item lies wholly inside
one unallocated run; the search resumes after its end (a JPEG's EXIF thumbnail is not carved again:
the scan lists it as the picture's member).

Streamed and bounded: unallocated space is read in windows of `WINDOW` bytes, each candidate read
once, in memory, never written anywhere.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterator

#: Bytes of unallocated space searched at a time.
WINDOW = 4 << 20
#: The longest picture carved (also bounded by `max_file_bytes`).
CARVE_MAX = 128 << 20
#: The longest video carved (also bounded by `max_file_bytes`): held in memory like any member.
CARVE_MAX_VIDEO = 1 << 30
#: Location of a carved item inside its file system's prefix (``disk.dd!p1/``): ``@unallocated:0x…``.
MARK = "@unallocated:"
_SIGS = re.compile(rb"\xff\xd8\xff|\x89PNG\r\n\x1a\n|GIF8[79]a|RIFF.{4}(?:WEBP|AVI )|BM|\x00\x00\x00[\x0c-\xff]ftyp"
                   rb"|\x1a\x45\xdf\xa3", re.S)
#: What is searched for (with bytes.find, far faster than one regular expression on long runs of zeros), and
#: where the candidate starts relative to it; `_SIGS` then checks the whole signature.
_NEEDLES = ((b"\xff\xd8\xff", 0), (b"\x89PNG", 0), (b"GIF8", 0), (b"WEBP", -8), (b"BM", 0), (b"ftyp", -4),
            (b"AVI ", -8), (b"\x1a\x45\xdf\xa3", 0))
_ZEROS = bytes(WINDOW + 15)
#: Top-level boxes of an MP4/QuickTime file.
_BOXES = frozenset((b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"pdin", b"moof",
                    b"mfra", b"styp", b"sidx", b"udta", b"pnot", b"prfl", b"junk"))
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

Read = Callable[[int, int], bytes]


class _Buf:
    """Random reads through a small cache (structure walks read a few bytes at a time). Reads start at 4 KiB
    and double up to 1 MiB: most candidates (a ``BM`` in random bytes) fail on their first bytes."""

    def __init__(self, read: Read, start: int, limit: int):
        self.read, self.start, self.end = read, start, start + limit
        self.at, self.data = -1, b""
        self.step = 1 << 12

    def get(self, pos: int, n: int) -> bytes:
        if pos < self.start or pos + n > self.end:
            raise EOFError
        if not (self.at <= pos and pos + n <= self.at + len(self.data)):
            self.at = pos
            self.data = self.read(pos, max(n, self.step))
            self.step = min(self.step * 2, 1 << 20)
        out = self.data[pos - self.at:pos - self.at + n]
        if len(out) < n:
            raise EOFError
        return out


def _jpeg(b: _Buf, off: int) -> int | None:
    pos, frame = off + 2, False
    while True:
        m = b.get(pos, 2)
        if m[0] != 0xFF:
            return None
        marker = m[1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2 - off if frame else None
        if marker < 0xC0 or marker in (0xD8,) or 0xD0 <= marker <= 0xD7:
            return None
        (length,) = struct.unpack(">H", b.get(pos + 2, 2))
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = True
        pos += 2 + length
        if marker != 0xDA:
            continue
        if not frame:
            return None
        while True:  # entropy-coded data: up to the next marker that is not a stuffed byte or a restart
            chunk = b.get(pos, min(1 << 16, b.end - pos))
            if len(chunk) < 2:
                return None
            hit = _MARKER.search(chunk)
            if hit is not None:
                pos += hit.start()
                break
            pos += len(chunk) - 1  # a marker may straddle two chunks


def _png(b: _Buf, off: int) -> int | None:
    pos = off + 8
    first = True
    while True:
        length, ctype = struct.unpack(">I4s", b.get(pos, 8))
        if not ctype.isalpha() or length > b.end - pos:
            return None
        if first:
            if ctype != b"IHDR" or length != 13:
                return None
            body = b.get(pos + 4, 4 + 13 + 4)
            if zlib.crc32(body[:17]) != struct.unpack(">I", body[17:])[0]:
                return None
            first = False
        pos += 12 + length
        if ctype == b"IEND":
            return pos - off


def _sub_blocks(b: _Buf, pos: int) -> int:
    while True:
        n = b.get(pos, 1)[0]
        pos += 1 + n
        if n == 0:
            return pos


def _gif(b: _Buf, off: int) -> int | None:
    lsd = b.get(off + 6, 7)
    w, h, flags = struct.unpack("<HHB", lsd[:5])
    if w == 0 or h == 0:
        return None
    pos = off + 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    images = 0
    while True:
        kind = b.get(pos, 1)[0]
        if kind == 0x3B:
            return pos + 1 - off if images else None
        if kind == 0x21:
            pos = _sub_blocks(b, pos + 2)
        elif kind == 0x2C:
            flags = b.get(pos + 9, 1)[0]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            if not 2 <= b.get(pos, 1)[0] <= 12:
                return None
            pos = _sub_blocks(b, pos + 1)
            images += 1
        else:
            return None


def _webp(b: _Buf, off: int) -> int | None:
    head = b.get(off, 16)
    (size,) = struct.unpack("<I", head[4:8])
    if head[12:16] not in (b"VP8 ", b"VP8L", b"VP8X") or size < 12:
        return None
    b.get(off + 8 + size - 1, 1)  # within the limit
    return 8 + size


def _bmp(b: _Buf, off: int) -> int | None:
    h = b.get(off, 30)
    size, reserved, bits_at, dib = struct.unpack("<IIII", h[2:18])
    if reserved != 0 or dib not in (12, 40, 52, 56, 108, 124):
        return None
    if dib == 12:
        w, hh, planes, bpp = struct.unpack("<HHHH", h[18:26])
        comp = 0
    else:
        w, hh, planes, bpp = struct.unpack("<iiHH", b.get(off + 18, 12))
        comp = struct.unpack("<I", b.get(off + 30, 4))[0]
    if planes != 1 or bpp not in (1, 4, 8, 16, 24, 32) or not 0 < w <= 65535 or not 0 < abs(hh) <= 65535:
        return None
    if comp not in (0, 1, 2, 3) or not 14 + dib <= bits_at < size:
        return None
    if comp == 0 and bits_at + ((w * bpp + 31) // 32) * 4 * abs(hh) > size:
        return None
    b.get(off + size - 1, 1)
    return size


def _mp4(b: _Buf, off: int) -> int | None:
    pos, seen = off, set()
    while pos + 8 <= b.end:
        try:
            size, box = struct.unpack(">I4s", b.get(pos, 8))
        except EOFError:
            break
        if box not in _BOXES or (pos == off) != (box == b"ftyp"):
            break
        if size == 1:
            size = struct.unpack(">Q", b.get(pos + 8, 8))[0]
        if size < 8:
            return None  # 0: "to the end of the file", which carving cannot know
        if pos + size > b.end:
            return None
        seen.add(box)
        pos += size
    return pos - off if b"moov" in seen and (b"mdat" in seen or b"moof" in seen) else None


_FOURCC = re.compile(rb"[0-9A-Za-z _]{4}")


def _avi(b: _Buf, off: int) -> int | None:
    head = b.get(off, 24)
    (size,) = struct.unpack("<I", head[4:8])
    if head[12:16] != b"LIST" or head[20:24] != b"hdrl" or b.get(off + 24, 4) != b"avih" or size < 4 + 12 + 8:
        return None
    (hdrl,) = struct.unpack("<I", head[16:20])
    pos, end = off + 12 + 8 + hdrl + (hdrl & 1), off + 8 + size
    movi = False
    while pos + 12 <= end:  # the top-level chunks of the RIFF AVI: LIST movi needed
        cid, n = struct.unpack("<4sI", b.get(pos, 8))
        if not _FOURCC.fullmatch(cid):
            return None
        if cid == b"LIST" and b.get(pos + 8, 4) == b"movi":
            movi = True
        pos += 8 + n + (n & 1)
    if not movi or pos > end + 1:
        return None
    b.get(end - 1, 1)  # within the limit
    pos = end + (size & 1)
    while True:  # OpenDML: RIFF AVIX chunks go on past the first 1 GiB
        try:
            nxt = b.get(pos, 12)
        except EOFError:
            break
        if nxt[:4] != b"RIFF" or nxt[8:12] != b"AVIX":
            break
        (n,) = struct.unpack("<I", nxt[4:8])
        try:
            b.get(pos + 8 + n - 1, 1)
        except EOFError:
            break  # past the limit: the file is carved up to the end of its last whole RIFF
        pos += 8 + n + (n & 1)
    return pos - off


def _riff(b: _Buf, off: int) -> int | None:
    return _avi(b, off) if b.get(off + 8, 4) == b"AVI " else _webp(b, off)


#: Matroska element IDs (with their length-marker bits): the EBML header, the Segment, the Segment's
#: top-level children, and the children of a Cluster (to walk an unknown-size Cluster).
_EBML, _SEGMENT, _CLUSTER, _TRACKS = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0x1654AE6B
_TOP = frozenset((0x114D9B74, 0x1549A966, _TRACKS, _CLUSTER, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367,
                  0xEC, 0xBF))
_IN_CLUSTER = frozenset((0xE7, 0xA3, 0xA0, 0xA7, 0xAB, 0x5854, 0xAF, 0xEC, 0xBF))


def _vint(b: _Buf, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length, unknown) of an EBML variable-length integer at `pos` (an ID keeps its marker bits)."""
    first = b.get(pos, 1)[0]
    if first == 0:
        raise EOFError  # not a valid vint (over 8 bytes): not Matroska
    n = 9 - first.bit_length()
    raw = int.from_bytes(b.get(pos, n), "big")
    value = raw if keep_marker else raw & ((1 << (7 * n)) - 1)
    return value, n, not keep_marker and value == (1 << (7 * n)) - 1


def _element(b: _Buf, pos: int) -> tuple[int, int, int | None]:
    """(id, header length, data size or None when unknown) of the EBML element at `pos`."""
    eid, n1, _ = _vint(b, pos, True)
    size, n2, unknown = _vint(b, pos + n1, False)
    return eid, n1 + n2, None if unknown else size


def _children(b: _Buf, pos: int, ids: frozenset, stop: int | None = None, enough: frozenset = frozenset()
              ) -> tuple[int, set]:
    """Walk elements from `pos` while their IDs are in `ids` (up to `stop`; with `stop`, only until the IDs
    `enough` were all seen): (end, the IDs seen)."""
    seen: set = set()
    while stop is None or (pos < stop and not enough <= seen):
        try:
            eid, hl, size = _element(b, pos)
        except EOFError:
            break
        if eid not in ids:
            break
        seen.add(eid)
        if size is None:
            if eid != _CLUSTER:
                break  # only a Cluster may go on with unknown size inside an unknown-size Segment
            pos, _ = _children(b, pos + hl, _IN_CLUSTER)
            continue
        if size:
            b.get(pos + hl + size - 1, 1)  # within the limit
        pos += hl + size
    return pos, seen


def _mkv(b: _Buf, off: int) -> int | None:
    eid, hl, size = _element(b, off)
    if size is None or size > 4096:
        return None
    header = b.get(off + hl, size)
    if b"\x42\x82" not in header or not (b"matroska" in header or b"webm" in header):
        return None  # no DocType saying Matroska or WebM
    pos = off + hl + size
    eid, hl, size = _element(b, pos)
    if eid != _SEGMENT:
        return None
    start = pos + hl
    if size is not None:  # its first children checked up to Tracks and a Cluster, then its size trusted
        end, seen = _children(b, start, _TOP, start + size, frozenset((_TRACKS, _CLUSTER)))
        if end > start + size:
            return None  # a child runs past the size the Segment declares
        b.get(start + size - 1, 1)
        end = start + size
    else:
        end, seen = _children(b, start, _TOP)
    return end - off if _TRACKS in seen and _CLUSTER in seen else None


_MEASURE = {b"\xff": ("jpeg", _jpeg), b"\x89": ("png", _png), b"G": ("gif", _gif), b"R": ("webp", _riff),
            b"B": ("bmp", _bmp), b"\x00": ("mp4", _mp4), b"\x1a": ("mkv", _mkv)}


def measure(read: Read, off: int, limit: int, video_limit: int | None = None) -> tuple[str, int] | None:
    """The picture type and length starting at `off`, when its structure holds within `limit` bytes
    (`video_limit` for a video)."""
    try:
        head = read(off, 16)
    except OSError:
        return None
    m = _SIGS.match(head)
    if m is None:
        return None
    kind, fn = _MEASURE[head[:1]]
    if kind == "mp4":
        kind = "mov" if head[8:12] == b"qt  " else "mp4"
    elif kind == "webp" and head[8:12] == b"AVI ":
        kind = "avi"
    if kind in ("mp4", "mov", "avi", "mkv"):
        limit = max(limit, video_limit or 0)
    try:
        n = fn(_Buf(read, off, limit), off)
    except (EOFError, OSError, struct.error, IndexError):
        return None
    if kind == "mkv" and n:
        try:
            if b"webm" in read(off, 64):
                kind = "webm"
        except OSError:
            pass
    return (kind, n) if n and n <= limit else None


def carve(read: Read, runs: list[tuple[int, int]], limit: int, listed: frozenset | set = frozenset(),
          video_limit: int | None = None, release: Callable[[int], None] | None = None
          ) -> Iterator[tuple[int, str, int]]:
    """(offset, type, length) of every picture lying wholly inside one of the byte ranges `runs`
    ([start, end), sorted, not overlapping), in offset order; none starting at an offset in `listed`
    (where a deleted file the file system still lists starts: that file is already in the scan).

    Reads go forward: before each window, `release(pos)` says nothing before `pos` is read again (the
    one-pass reader of `vigie.ingest.onepass` then lets those bytes go)."""
    for start, end in runs:
        pos, skip = start, start
        while pos < end:
            if release is not None:
                release(min(pos, skip))
            try:
                window = read(pos, min(WINDOW + 15, end - pos))
            except OSError:
                break
            if not window:
                break
            if window == _ZEROS[:len(window)]:  # never-written or wiped space: nothing to find, skipped at memcmp speed
                pos += WINDOW
                continue
            for start in _candidates(window, min(WINDOW, len(window))):
                at = pos + start
                if at < skip:
                    continue
                got = measure(read, at, min(limit, end - at), min(video_limit or limit, end - at))
                if got is not None:
                    if at not in listed:
                        yield at, got[0], got[1]
                    skip = at + got[1]
            pos += WINDOW


def _candidates(window: bytes, upto: int) -> list[int]:
    """Offsets below `upto` in `window` where a signature starts, sorted."""
    out = []
    for needle, shift in _NEEDLES:
        i = window.find(needle)
        while i >= 0:
            start = i + shift
            if start >= upto:
                break
            if start >= 0 and _SIGS.match(window, start):
                out.append(start)
            i = window.find(needle, i + 1)
    out.sort()
    return out


def free_runs(total: int, used: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The byte ranges of [0, total) outside every [start, end) of `used`."""
    out, pos = [], 0
    for s, e in sorted(used):
        if s > pos:
            out.append((pos, min(s, total)))
        pos = max(pos, e)
        if pos >= total:
            break
    if pos < total:
        out.append((pos, total))
    return [(s, e) for s, e in out if e > s]


def offset_of(name: str) -> int | None:
    """The byte offset of a carved item's name (``@unallocated:0x1a2b3c00``), else None."""
    if not name.startswith(MARK):
        return None
    try:
        return int(name[len(MARK):], 16)
    except ValueError:
        return None
