"""Everything a scan must hash: plain files, and the members of the archives and disk images among them.

`iter_items(paths, settings)` walks folders (`vigie.ingest.folders`: links and special files
are records, never followed or opened) and yields one `Item` per entry. A file whose bytes
(never its name) say zip, tar (plain, gzip, bzip2, xz), 7z, RAR, a CD/DVD or raw disk image (MBR/GPT
partition table, FAT, exFAT, NTFS, ext, ISO 9660), an evidence image, a PDF or a thumbnail cache is yielded
with `container=True` and is followed by its members, recursively, down to
`settings.archive_max_depth`. One kind is known by its name, having no magic of its own: Android's
``.thumbdata…`` thumbnail caches (`vigie.ingest.thumbdata`). Members are read into memory (`Item.data`); nothing is ever
extracted or written anywhere, and evidence is opened read-only.

Locations are stable across runs (a scan resumes by location): the path as given, then each
member's name joined by ``!`` (``evidence/a.zip!photos/b.jpg``, ``disk.dd!/Users/x/a.jpg``,
``disk.dd!p2/Users/x/a.jpg`` for the second partition). See docs/sources.md.

Each container kind is one module behind one small interface (`vigie.ingest.members`):
`KINDS` below maps a format to it. This module imports the kinds; they never import it.

A member that cannot be read is yielded with an `ErrorRecord` (never dropped); the scan
goes on with the next member or source.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest import archives, diskimage, evidence, pdf, rar, thumbcache, thumbdata, thumbnails, thumbsdb
from vigie.ingest.folders import iter_entries
from vigie.ingest.members import (  # noqa: F401 - the names scanners and tests know this module by
    CHUNK,
    HEAD_BYTES,
    RATIO_FLOOR,
    SEP,
    Context,
    Item,
    LimitExceeded,
    MemberSink,
    NameBook,
    limit_item,
    member_meta,
    read_member,
    safe_name,
)
from vigie.media.sniff import sniff
from vigie.settings import Settings

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


def compressed_kind(head: bytes) -> str | None:
    """gz, bz2 or xz from the stream's own magic (gzip with deflate; bzip2 with its block magic), else None."""
    if head[:3] == b"\x1f\x8b\x08":
        return "gz"
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
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


#: Where an ISO 9660 image (a CD or DVD) has its first volume descriptor (``CD001``), after a 32 KiB system area
#: that is blank unless the disc boots from it (a hybrid ISO's MBR is sniffed as a disk by its head already).
ISO_DESCRIPTOR = 32769


def disc_image(head: bytes, read_at: Callable[[int, int], bytes]) -> bool:
    """Whether a file whose head `sniff_container` did not know is an ISO 9660 image: a blank head, then ``CD001``
    at `ISO_DESCRIPTOR` (`read_at(offset, n)`: asked only for a blank head, which ordinary files rarely have, so
    that 50 million files are not each read at 32 KiB)."""
    return len(head) == HEAD_BYTES and not head.strip(b"\0") and read_at(ISO_DESCRIPTOR, 5) == b"CD001"


def container_kind(head: bytes, location: str, read_at: Callable[[int, int], bytes]) -> str | None:
    """The container format of a file or member: `sniff_container` on its head, then what the head cannot say:
    an ISO 9660 disc (`disc_image`, read further only for a blank head) and Android's thumbnail cache (by name)."""
    kind = sniff_container(head)
    if kind is None and disc_image(head, read_at):
        kind = "disk"  # an ISO 9660 CD or DVD image: The Sleuth Kit reads its file system
    if kind is None and thumbdata.is_thumbdata(location):
        kind = "thumbdata"  # Android's thumbnail cache: known by its name, its bytes have no magic
    return kind


def sniff_container(head: bytes) -> str | None:
    """The container format of a file from its first HEAD_BYTES bytes: zip, tar, tar.gz, tar.bz2,
    tar.xz, gz, bz2, xz (one compressed file), 7z, rar, disk (raw disk image or file-system image), ewf
    (E01/Ex01 first segment), ewf-segment (a later one), vmdk, vmdk-extent, vhd, vhdx, qcow, pdf, thumbcache
    (Windows thumbcache_*.db), ole (an OLE compound file: Thumbs.db is opened), or None.
    Never from the name."""
    seg = evidence.ewf_segment(head)
    if seg is not None:
        return "ewf" if seg <= 1 else "ewf-segment"
    vdisk = evidence.virtual_disk(head)
    if vdisk is not None:
        return vdisk
    if pdf.is_pdf(head):
        return "pdf"
    if thumbcache.is_thumbcache(head):
        return "thumbcache"
    if thumbsdb.is_ole(head):
        return "ole"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if rar.is_rar(head):
        return "rar"
    if head[257:262] == b"ustar":
        return "tar"
    comp = compressed_kind(head)
    if comp is not None:
        inner = _decompressed_head(head)
        if inner is not None and inner[257:262] == b"ustar":
            return f"tar.{comp}"
        return comp  # one compressed file (photo.jpg.gz), or a tar whose first block lies past the head
    if sniff(head) is not None:
        return None  # a picture or video whose bytes happen to look like a boot sector
    if head[512:520] == b"EFI PART" or head[3:11] in (b"NTFS    ", b"EXFAT   "):
        return "disk"
    if head[1024:1028] in (b"H+\x00\x04", b"HX\x00\x05") or (head[:2] == b"ER" and head[512:514] == b"PM"):
        return "disk"  # an HFS+/HFSX volume, an Apple partition map
    if _fat_plausible(head) or _mbr_plausible(head) or _ext_plausible(head):
        return "disk"
    return None


# -- the walk ----------------------------------------------------------------------------------

#: One module per container kind, each with `members(item, fobj, size, kind, depth, ctx)`
#: (see `vigie.ingest.members`). A new kind is one module and one line here.
KINDS = {"zip": archives.zip_members, "7z": archives.sevenzip_members, "rar": rar.members, "tar": archives.tar_members,
         "tar.gz": archives.tar_members, "tar.bz2": archives.tar_members, "tar.xz": archives.tar_members,
         "gz": archives.compressed_members, "bz2": archives.compressed_members, "xz": archives.compressed_members,
         "disk": diskimage.members, "ewf": evidence.ewf_members, "ewf-segment": evidence.ewf_segment_members,
         "split": evidence.split_members, "pdf": pdf.members, "vmdk": evidence.vdisk_members,
         "vmdk-extent": evidence.vdisk_members, "vhd": evidence.vdisk_members, "vhdx": evidence.vdisk_members,
         "qcow": evidence.vdisk_members, "thumbcache": thumbcache.members, "thumbdata": thumbdata.members,
         "ole": thumbsdb.members}
#: Kinds whose content is a drive's media: the container item carries the acquisition hash.
ACQUISITION = frozenset({"disk", "ewf", "split", "vmdk", "vhd", "vhdx", "qcow"})


def new_context(settings: Settings, target: str | None = None) -> Context:
    """The limits of one top-level source, wired to open the containers found inside it."""
    return Context(settings, expand, target, inner=_inner)


def _inner(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    """One kind reading its content as another (an E01's media as a disk image), without importing it."""
    yield from KINDS[kind](item, fobj, size, kind, depth, ctx)


def iter_items(paths: list[str], settings: Settings) -> Iterator[Item]:
    """Every file under `paths` (folders walked recursively, sorted), then the members of containers."""
    for entry in iter_entries(list(paths)):
        yield from entry_items(entry, settings)


def entry_items(entry: Item, settings: Settings) -> Iterator[Item]:
    """One entry of the walk (`vigie.ingest.folders.iter_entries`): itself first, then its members if its bytes
    say container. A scan resumed after an entry skips it without calling this (`vigie.ingest.resume`)."""
    if entry.path is None:
        yield entry  # a link, a special file, an unreadable folder: a record, never opened
        return
    yield from _named(from_path(entry, new_context(settings)))


def _named(items: Iterator[Item]) -> Iterator[Item]:
    """Each member's own name in its container (`meta["member"]`): a location alone cannot say which ``!``
    separates container and member when names hold ``!`` themselves (the VICS FileName needs it)."""
    stack: list[str] = []
    for it in items:
        while stack and not it.location.startswith(stack[-1] + SEP):
            stack.pop()
        if stack:
            it.meta.setdefault("member", it.location[len(stack[-1]) + len(SEP):])
        if it.container:
            stack.append(it.location)
        yield it


def from_path(item: Item, ctx: Context) -> Iterator[Item]:
    """A file on disk (`item.path`), and when its bytes say container, its members after it."""
    path = item.path
    try:
        st = os.stat(path)
    except OSError:
        yield item  # the hasher reports missing paths with their code
        return
    if not stat.S_ISREG(st.st_mode):
        yield item  # a folder without recursion, a special file: the hasher says which
        return
    item.size = st.st_size
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            if head[:3] == b"\xff\xd8\xff" and len(head) == HEAD_BYTES:  # a JPEG: its EXIF thumbnail lies in
                jpeg = head + f.read(thumbnails.HEAD - HEAD_BYTES)  # its first segments, read with one open
            else:
                jpeg = head
    except OSError:
        yield item
        return
    kind = container_kind(head, item.location, lambda off, n: _head_at(path, off, n))
    piece = evidence.split_first(path) if kind in (None, "disk") else None
    if piece is not None and sniff_container(_head(piece[0])) == "disk":
        yield evidence.split_piece(item, *piece)  # x.002: read with x.001, never alone
        return
    if kind is None:
        yield from _with_thumbnail(item, jpeg, ctx)
        return
    item.container = True
    item.meta["format"] = kind
    if kind == "disk" and evidence.split_segments(path):
        kind = "split"
        yield from open_container(item, lambda: evidence.open_split(path), sum(
            os.stat(p).st_size for p in evidence.split_segments(path)), kind, 1, ctx)
        return
    yield from open_container(item, lambda: open(path, "rb"), st.st_size, kind, 1, ctx)  # noqa: SIM115


def _head(path: str, n: int = HEAD_BYTES) -> bytes:
    return _head_at(path, 0, n)


def _head_at(path: str, offset: int, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(n)
    except OSError:
        return b""


def _with_thumbnail(item: Item, data: bytes, ctx: Context) -> Iterator[Item]:
    """The item, then the EXIF thumbnail its JPEG bytes carry, as a member (`vigie.ingest.thumbnails`)."""
    yield item
    thumb = thumbnails.exif_thumbnail(data) if data[:3] == b"\xff\xd8\xff" else None
    loc = f"{item.location}{SEP}{thumbnails.NAME}"
    if thumb is not None and ctx.wants(loc):
        yield Item(loc, size=len(thumb), data=thumb, deleted=item.deleted,
                   meta={"member": thumbnails.NAME, "exif_thumbnail": True})


def expand(item: Item, depth: int, ctx: Context) -> Iterator[Item]:
    """Yield a member read into memory; when its bytes are a container, open it too (at `depth`)."""
    if item.data is not None and item.error is None:
        data = item.data
        kind = container_kind(data[:HEAD_BYTES], item.location, lambda off, n: data[off:off + n])
        if kind is not None:
            item.container = True
            item.meta["format"] = kind
            data = item.data
            yield from open_container(item, lambda: io.BytesIO(data), len(data), kind, depth, ctx)
            return
        yield from _with_thumbnail(item, item.data, ctx)
        return
    yield item


def open_container(item: Item, opener: Callable[[], BinaryIO], size: int, kind: str, depth: int,
                   ctx: Context) -> Iterator[Item]:
    """Yield the container item (first), then its members. `depth` is its nesting level (top level: 1)."""
    if kind in ACQUISITION:
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
        yield from KINDS[kind](item, fobj, size, kind, depth, ctx)
