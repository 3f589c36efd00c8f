"""Everything a scan must hash: plain files, and the members of the archives and disk images among them.

`iter_items(paths, settings)` walks folders like `vigie.ingest.files` and yields one `Item`
per file. A file whose bytes (never its name) say zip, tar (plain, gzip, bzip2, xz), 7z or
raw disk image (MBR/GPT partition table, FAT, exFAT, NTFS, ext) is yielded with
`container=True` and is followed by its members, recursively, down to
`settings.archive_max_depth`. Members are read into memory (`Item.data`); nothing is ever
extracted or written anywhere, and evidence is opened read-only.

Locations are stable across runs (a scan resumes by location): the path as given, then each
member's name joined by ``!`` (``evidence/a.zip!photos/b.jpg``, ``disk.dd!/Users/x/a.jpg``,
``disk.dd!p2/Users/x/a.jpg`` for the second partition). See docs/sources.md.

A member that cannot be read is yielded with an `ErrorRecord` (never dropped); the scan
goes on with the next member or source.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.files import Skipped, iter_files
from vigie.media.sniff import sniff
from vigie.settings import Settings

#: Bytes read from the start of a file to tell whether it is a container.
HEAD_BYTES = 4096
#: Read size for members.
CHUNK = 1 << 20
#: The unpacked/packed ratio guard applies once a member (or tar/7z stream) has unpacked this much:
#: small runs of zeros compress far beyond any sane ratio and are harmless.
RATIO_FLOOR = 1 << 20
#: Separator between a container's location and its member's name.
SEP = "!"


@dataclass
class Item:
    """One thing a scan hashes: a plain file (`path`), or a member held in memory (`data`)."""

    location: str
    size: int | None = None
    path: str | None = None
    data: bytes | None = None
    deleted: bool = False
    container: bool = False
    error: ErrorRecord | None = None
    meta: dict = field(default_factory=dict)


class LimitExceeded(Exception):
    """A member over a limit: its code (too_large, zip_bomb) and message go on its Item."""

    def __init__(self, code: str, message: str, *, stop: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.stop = stop  # the budget of the whole source is spent: nothing more is read from it
        self.digests: dict | None = None


class Context:
    """Limits and the unpacked-bytes budget of one top-level source (nested containers included)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.unpacked = 0
        self.exhausted = False  # archive_max_total_bytes reached: no more archive members are read

    def count(self, n: int) -> None:
        self.unpacked += n
        if self.unpacked > self.settings.archive_max_total_bytes:
            self.exhausted = True
            raise LimitExceeded("zip_bomb", f"more than archive_max_total_bytes "
                                f"({self.settings.archive_max_total_bytes}) unpacked from this source: "
                                "the rest of its archives is not read", stop=True)


class MemberSink:
    """Receives a member's bytes chunk by chunk, under the limits of `ctx`.

    `packed(n)` gives the packed bytes behind `n` unpacked ones (ratio guard; checked while
    reading, never trusting a declared size alone); `counted` adds the bytes to the source's
    unpacked budget (archives; not disk images). Raises LimitExceeded (zip_bomb). Past
    max_file_bytes the bytes are no longer held: they are streamed into MD5/SHA-1/SHA-256 and
    `finish` raises too_large with the digests attached.
    """

    def __init__(self, ctx: Context, *, packed: Callable[[int], int | None] | None = None, counted: bool = True):
        self.ctx, self.packed, self.counted = ctx, packed, counted
        self.buf = bytearray()
        self.n = 0
        self.digests: list | None = None

    def write(self, chunk: bytes) -> int:
        s = self.ctx.settings
        self.n += len(chunk)
        if self.counted:
            self.ctx.count(len(chunk))
        if self.packed is not None and self.n > RATIO_FLOOR:
            p = self.packed(self.n)
            if p is not None and self.n > s.archive_max_ratio * max(p, 1):
                raise LimitExceeded("zip_bomb", f"unpacked/packed ratio over archive_max_ratio "
                                    f"({s.archive_max_ratio:g}): {self.n} bytes from {p}")
        if self.digests is not None:
            for h in self.digests:
                h.update(chunk)
        elif self.n > s.max_file_bytes:
            self.digests = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
            for h in self.digests:
                h.update(self.buf)
                h.update(chunk)
            self.buf = bytearray()
        else:
            self.buf += chunk
        return len(chunk)

    def finish(self) -> bytes:
        if self.digests is not None:
            s = self.ctx.settings
            exc = LimitExceeded("too_large", f"{self.n} bytes, over max_file_bytes ({s.max_file_bytes}): "
                                "digests only")
            exc.digests = {"md5": self.digests[0].hexdigest(), "sha1": self.digests[1].hexdigest(),
                           "sha256": self.digests[2].hexdigest(), "size": self.n}
            raise exc
        return bytes(self.buf)


def read_member(read: Callable[[int], bytes], ctx: Context, **kw) -> bytes:
    """Read a member through `read(n)` in chunks into a MemberSink (same keywords); its bytes."""
    sink = MemberSink(ctx, **kw)
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return sink.finish()
        sink.write(chunk)


def limit_item(location: str, exc: LimitExceeded, **kw) -> Item:
    item = Item(location, error=ErrorRecord(exc.code, exc.message), **kw)
    digests = exc.digests
    if digests:
        item.meta["digests"] = digests
        item.size = digests["size"]
    return item


# -- names -------------------------------------------------------------------------------------

def safe_name(raw: str, *, backslash: bool = False) -> tuple[str, bool]:
    """A member name as a relative `/` path with no `..`, and whether the original was unsafe.

    Absolute names (``/etc/x``, ``C:\\x``) lose their root; ``..`` parts become ``__``: the
    location stays inside its container, and the original name is kept in meta by the caller.
    """
    name = raw.replace("\\", "/") if backslash else raw
    unsafe = False
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        unsafe = True
        if name[1:2] == ":":
            name = name[2:]
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            unsafe = True
            part = "__"
        parts.append(part)
    return "/".join(parts) or "_", unsafe


class NameBook:
    """Makes member names unique within one container: a repeated name gets ``#2``, ``#3``…"""

    def __init__(self):
        self.seen: dict[str, int] = {}

    def unique(self, name: str, meta: dict) -> str:
        k = self.seen.get(name, 0) + 1
        self.seen[name] = k
        if k == 1:
            return name
        meta["duplicate_name"] = True
        return f"{name}#{k}"


def member_meta(raw: str, unsafe: bool, meta: dict | None = None) -> dict:
    meta = dict(meta or {})
    if unsafe:
        meta["unsafe_name"] = True
        meta["original_name"] = raw
    return meta


# -- sniffing ----------------------------------------------------------------------------------

def _decompressed_head(head: bytes) -> bytes | None:
    opener: Callable[[BinaryIO], BinaryIO] | None = None
    if head[:2] == b"\x1f\x8b":
        opener = lambda f: gzip.GzipFile(fileobj=f)  # noqa: E731
    elif head[:3] == b"BZh":
        opener = bz2.BZ2File
    elif head[:6] == b"\xfd7zXZ\x00":
        opener = lzma.LZMAFile
    if opener is None:
        return None
    try:
        with opener(io.BytesIO(head)) as f:
            return f.read(512)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error):
        return None


def _mbr_plausible(head: bytes) -> bool:
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return False
    used = 0
    for i in range(4):
        e = head[446 + 16 * i: 462 + 16 * i]
        status, ptype = e[0], e[4]
        start, count = struct.unpack("<II", e[8:16])
        if status not in (0x00, 0x80):
            return False
        if ptype:
            if start == 0 or count == 0:
                return False
            used += 1
    return used > 0


def _fat_plausible(head: bytes) -> bool:
    if len(head) < 512 or head[510:512] != b"\x55\xaa" or head[0] not in (0xEB, 0xE9):
        return False
    bps, spc, reserved, nfats = struct.unpack("<HBHB", head[11:17])
    return (bps in (512, 1024, 2048, 4096) and spc in (1, 2, 4, 8, 16, 32, 64, 128)
            and reserved >= 1 and nfats in (1, 2))


def _ext_plausible(head: bytes) -> bool:
    if len(head) < 1024 + 90 or head[1080:1082] != b"\x53\xef":
        return False
    sb = head[1024:]
    inodes, blocks = struct.unpack("<II", sb[0:8])
    log_block = struct.unpack("<I", sb[24:28])[0]
    per_group = struct.unpack("<I", sb[40:44])[0]
    rev = struct.unpack("<I", sb[76:80])[0]
    return inodes > 0 and blocks > 0 and log_block <= 6 and per_group > 0 and rev <= 1


def sniff_container(head: bytes) -> str | None:
    """The container format of a file from its first HEAD_BYTES bytes: zip, tar, tar.gz, tar.bz2,
    tar.xz, 7z, disk (raw disk image or file-system image), or None. Never from the name."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[257:262] == b"ustar":
        return "tar"
    inner = _decompressed_head(head)
    if inner is not None:
        if inner[257:262] == b"ustar":
            return {0x1f: "tar.gz", ord("B"): "tar.bz2", 0xfd: "tar.xz"}[head[0]]
        return None
    if sniff(head) is not None:
        return None  # a picture or video whose bytes happen to look like a boot sector
    if head[512:520] == b"EFI PART" or head[3:11] in (b"NTFS    ", b"EXFAT   "):
        return "disk"
    if _fat_plausible(head) or _mbr_plausible(head) or _ext_plausible(head):
        return "disk"
    return None


# -- the walk ----------------------------------------------------------------------------------

def iter_items(paths: list[str], settings: Settings) -> Iterator[Item]:
    """Every file under `paths` (folders walked recursively, sorted), then the members of containers."""
    for entry in iter_files(list(paths), recursive=True):
        if isinstance(entry, Skipped):
            yield Item(entry.path, error=ErrorRecord(entry.code, entry.message))
            continue
        yield from _from_path(entry, Context(settings))


def _from_path(path: str, ctx: Context) -> Iterator[Item]:
    try:
        st = os.stat(path)
    except OSError:
        yield Item(path, path=path)  # the hasher reports missing paths with their code
        return
    if not stat.S_ISREG(st.st_mode):
        yield Item(path, path=path)  # a folder without recursion, a special file: the hasher says which
        return
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        yield Item(path, size=st.st_size, path=path)
        return
    kind = sniff_container(head)
    item = Item(path, size=st.st_size, path=path)
    if kind is None:
        yield item
        return
    item.container = True
    item.meta["format"] = kind
    yield from open_container(item, lambda: open(path, "rb"), st.st_size, kind, 1, ctx)  # noqa: SIM115


def expand(item: Item, depth: int, ctx: Context) -> Iterator[Item]:
    """Yield a member read into memory; when its bytes are a container, open it too (at `depth`)."""
    if item.data is not None and item.error is None:
        kind = sniff_container(item.data[:HEAD_BYTES])
        if kind is not None:
            item.container = True
            item.meta["format"] = kind
            data = item.data
            yield from open_container(item, lambda: io.BytesIO(data), len(data), kind, depth, ctx)
            return
    yield item


def open_container(item: Item, opener: Callable[[], BinaryIO], size: int, kind: str, depth: int,
                   ctx: Context) -> Iterator[Item]:
    """Yield the container item (first), then its members. `depth` is its nesting level (top level: 1)."""
    from vigie.ingest import archives, diskimage

    if kind == "disk":
        item.meta["acquisition"] = True
    if depth > ctx.settings.archive_max_depth:
        item.error = ErrorRecord("too_deep", f"container nested {depth} deep, over archive_max_depth "
                                 f"({ctx.settings.archive_max_depth}): not opened")
        yield item
        return
    if kind != "disk" and ctx.exhausted:
        item.error = ErrorRecord("zip_bomb", "archive_max_total_bytes already reached for this source: not opened")
        yield item
        return
    try:
        fobj = opener()
    except OSError as exc:
        item.error = ErrorRecord("unreadable", f"cannot open: {exc.strerror or exc}")
        yield item
        return
    with fobj:
        if kind == "zip":
            yield from archives.iter_zip(item, fobj, depth, ctx)
        elif kind == "7z":
            yield from archives.iter_7z(item, fobj, depth, ctx)
        elif kind.startswith("tar"):
            yield from archives.iter_tar(item, fobj, kind, depth, ctx)
        else:
            yield from diskimage.iter_disk(item, fobj, size, depth, ctx)
