"""Members of RAR archives (RAR 1.5-4.x and RAR 5), read through libarchive (the `libarchive-c` binding).

RAR is how much of the material hotlines and police meet is packed, and no Python library reads it without
the non-free `unrar`: libarchive reads both formats, stored and compressed, solid too, as a stream. Members
come in stored order (a solid archive can only be read in order), each read in `CHUNK` pieces into a
`MemberSink` (`vigie.ingest.members`): the ratio guard counts the packed bytes libarchive actually consumed,
never a size the header declares. libarchive cannot decrypt RAR: an encrypted member is listed (`encrypted`)
with its name and size, and an archive whose headers are encrypted is reported as such.

A multi-volume archive (``x.part1.rar``, ``x.part2.rar``…, or the older ``x.rar``, ``x.r00``, ``x.r01``…) is read
from its first volume with the volumes found beside it, in order, as one archive: a member that goes on from one
volume into the next is read whole, under the first volume's location (``x.part1.rar!photo.jpg``). A later
volume met in a folder whose first volume is there too is a record of that set (`meta["segment_of"]`), never
opened alone; one whose first volume is missing is read alone, as far as it goes. Volumes inside an archive
(bytes, no folder) are read one by one.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest import members as mem
from vigie.ingest.names import escape

#: RAR 1.5-4.x and RAR 5 signatures.
SIGNATURES = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")


def is_rar(head: bytes) -> bool:
    return head.startswith(SIGNATURES)


def _vint(b: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while pos < len(b) and shift < 64:
        c = b[pos]
        n |= (c & 0x7F) << shift
        pos += 1
        if not c & 0x80:
            return n, pos
        shift += 7
    raise ValueError("truncated vint")


def volume_of(head: bytes) -> tuple[bool, bool]:
    """(part of a multi-volume set, its first volume) from the archive's main header."""
    try:
        if head.startswith(SIGNATURES[0]):  # RAR 4: MHD_VOLUME 0x0001, MHD_FIRSTVOLUME 0x0100 (RAR 3.0 and later)
            kind, flags = struct.unpack_from("<BH", head, 9)
            if kind != 0x73 or not flags & 0x0001:
                return False, False
            return True, bool(flags & 0x0100)
        if head.startswith(SIGNATURES[1]):  # RAR 5: archive flags 0x0001 volume, 0x0002 its number follows
            _, pos = _vint(head, 12)  # header size, after the header's CRC32
            kind, pos = _vint(head, pos)
            hflags, pos = _vint(head, pos)
            if kind != 1:
                return False, False
            if hflags & 0x0001:
                _, pos = _vint(head, pos)  # extra area size
            aflags, pos = _vint(head, pos)
            if not aflags & 0x0001:
                return False, False
            number = _vint(head, pos)[0] if aflags & 0x0002 else 0
            return True, number == 0
    except (struct.error, ValueError):
        pass
    return False, False


_PART = re.compile(r"^(?P<stem>.*\.part)(?P<n>\d+)(?P<ext>\.rar)$", re.I)
_OLD = re.compile(r"^(?P<stem>.*)\.(?P<ext>rar|[r-z]\d\d)$", re.I)
MAX_VOLUMES = 10_000


def _old_suffix(i: int) -> str:
    """The suffix of the old naming's volume i (0: ``rar``, then ``r00``…``r99``, ``s00``…)."""
    return "rar" if i == 0 else f"{chr(ord('r') + (i - 1) // 100)}{(i - 1) % 100:02d}"


def _set_of(path: str) -> tuple[str, int] | None:
    """The path the first volume of `path`'s set would have, and `path`'s index in the set (None: not named as
    a volume)."""
    folder, name = os.path.split(path)
    m = _PART.match(name)
    if m:
        return os.path.join(folder, f"{m['stem']}{1:0{len(m['n'])}d}{m['ext']}"), int(m["n"]) - 1
    m = _OLD.match(name)
    if m:
        suffix = m["ext"].lower()
        i = 0 if suffix == "rar" else (ord(suffix[0]) - ord("r")) * 100 + int(suffix[1:]) + 1
        case = str.upper if m["ext"].isupper() else str.lower
        return os.path.join(folder, f"{m['stem']}.{case('rar')}"), i
    return None


def _volume_path(first: str, i: int) -> str:
    """The path of volume `i` of the set whose first volume is `first`."""
    folder, name = os.path.split(first)
    m = _PART.match(name)
    if m:
        return os.path.join(folder, f"{m['stem']}{int(m['n']) + i:0{len(m['n'])}d}{m['ext']}")
    m = _OLD.match(name)
    case = str.upper if m["ext"].isupper() else str.lower
    return os.path.join(folder, f"{m['stem']}.{case(_old_suffix(i))}")


def volumes(path: str) -> list[str]:
    """The volumes of the set whose first volume is `path`, in order, as far as they follow one another on disk
    (at most MAX_VOLUMES; `path` alone when it is not named as a first volume)."""
    got = _set_of(path)
    if got is None or got[1] != 0:
        return [path]
    out = [path]
    for i in range(1, MAX_VOLUMES):
        nxt = _volume_path(path, i)
        if not os.path.isfile(nxt):
            break
        out.append(nxt)
    return out


def first_volume(path: str) -> str | None:
    """The first volume of the set a later volume `path` belongs to, when it lies beside it."""
    got = _set_of(path)
    if got is None or got[1] <= 0:
        return None
    return got[0] if os.path.isfile(got[0]) else None


@contextmanager
def _open_volumes(paths: list[str], fmt: str):
    """libarchive reading the volumes `paths` in order as one archive (`archive_read_open_filenames`)."""
    from libarchive import ffi
    from libarchive.read import ArchiveRead

    fn = ffi.libarchive.archive_read_open_filenames
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t], ctypes.c_int
    names = (ctypes.c_char_p * (len(paths) + 1))(*[os.fsencode(p) for p in paths], None)
    archive_p = ffi.read_new()
    try:
        ffi.get_read_filter_function("all")(archive_p)
        ffi.get_read_format_function(fmt)(archive_p)
        if fn(archive_p, names, mem.CHUNK) != 0:
            from libarchive.exception import ArchiveError

            raise ArchiveError(ffi.error_string(archive_p) or b"cannot open the volumes")
        yield ArchiveRead(archive_p)
    finally:
        ffi.read_free(archive_p)


def _encrypted(entry) -> bool:
    """Whether libarchive says this member's data (or the archive's headers) are encrypted."""
    from libarchive import ffi

    try:
        fn = ffi.libarchive.archive_entry_is_encrypted
    except AttributeError:  # pragma: no cover - libarchive older than 3.2
        return False
    fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_int
    return bool(fn(entry._entry_p))


def _name(entry) -> str:
    raw = entry.pathname
    if isinstance(raw, bytes):  # not valid in the archive's encoding: kept as bytes, escaped
        raw = raw.decode("utf-8", "surrogateescape")
    return raw or ""


class _Guarded:
    """The archive's file object as libarchive reads it, through a ctypes callback, which swallows exceptions: a
    read that fails (a bad sector) would look like the end of the archive and its last members vanish without a
    word. The failure is kept here and reported after the members read before it (`members`)."""

    def __init__(self, fobj: BinaryIO):
        self.fobj, self.error = fobj, None

    def readinto(self, buf) -> int:
        if self.error is not None:
            return 0
        try:
            return self.fobj.readinto(buf)
        except OSError as exc:
            self.error = exc
            return 0

    def read(self, n: int = -1) -> bytes:
        return self.fobj.read(n)

    def seekable(self) -> bool:
        return self.fobj.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fobj.seek(offset, whence)

    def tell(self) -> int:
        return self.fobj.tell()


def members(item: mem.Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: mem.Context
            ) -> Iterator[mem.Item]:
    guarded = _Guarded(fobj)
    yield from _members(item, guarded, kind, depth, ctx)
    if guarded.error is not None:
        yield mem.damaged(item, f"reading the archive failed at byte {guarded.tell()}: {guarded.error}")


def _members(item: mem.Item, fobj, kind: str, depth: int, ctx: mem.Context) -> Iterator[mem.Item]:
    try:
        import libarchive
        from libarchive.exception import ArchiveError as _ArchiveError
    except (ImportError, OSError, AttributeError) as exc:  # libarchive-c, or libarchive13 itself, is missing
        item.error = ErrorRecord("unsupported", f"RAR needs libarchive (libarchive-c and libarchive13): {exc}")
        yield item
        return
    ArchiveError = (_ArchiveError, OSError)  # noqa: N806 - libarchive's, or a read of the evidence that failed
    fobj.seek(0)
    head = fobj.read(64)
    fobj.seek(0)
    fmt = "rar" if head.startswith(SIGNATURES[0]) else "rar5"
    multi, first = volume_of(head)
    paths = [item.path]
    if multi and item.path:
        if not first and first_volume(item.path) is not None:
            item.meta["segment"] = "volume"
            item.meta["segment_of"] = os.path.basename(first_volume(item.path))
            yield item  # read with its first volume, never alone
            return
        if first:
            paths = volumes(item.path)
            item.meta["volumes"] = len(paths)
    opened = _open_volumes(paths, fmt) if len(paths) > 1 else \
        libarchive.stream_reader(fobj, format_name=fmt, block_size=mem.CHUNK)
    shown = False
    try:
        with opened as archive:
            entries = iter(archive)
            entry = next(entries, None)  # the first header: an archive that has none is reported on its own row
            shown = True
            yield item
            book = mem.NameBook()
            count = 0
            while entry is not None and not ctx.exhausted:
                count += 1
                rawname = _name(entry)
                if entry.isdir:
                    if count > ctx.settings.archive_max_entries:
                        name = mem.safe_name(rawname, backslash=True)[0]
                        yield mem.too_many(f"{item.location}{mem.SEP}{name}", ctx)
                        return
                elif (yield from _member(item, archive, entry, rawname, count, book, depth, ctx, ArchiveError)):
                    return  # a bomb, the entry limit or damage: a stream cannot go on past it
                try:
                    entry = next(entries, None)
                except ArchiveError as exc:
                    yield mem.damaged(item, exc)
                    return
    except ArchiveError as exc:
        if shown:  # raised while closing, after every member was listed
            return
        text = str(exc)
        if "encrypt" in text.lower() or "password" in text.lower():
            item.meta["encrypted"] = True
            item.error = ErrorRecord("encrypted", f"RAR with encrypted headers: member names cannot be read ({text})")
        else:
            item.error = ErrorRecord("corrupt_container", f"not a readable RAR: {text}")
        yield item


def _member(item: mem.Item, archive, entry, rawname: str, count: int, book: mem.NameBook, depth: int,
            ctx: mem.Context, ArchiveError):  # noqa: N803
    """Yield one member's items; return True when the archive must not be read further."""
    name, unsafe = mem.safe_name(rawname, backslash=True)
    meta = mem.member_meta(rawname, unsafe)
    try:
        mtime = entry.mtime
        if mtime:
            meta["mtime"] = dt.datetime.fromtimestamp(int(mtime), dt.UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        pass
    loc = f"{item.location}{mem.SEP}{book.unique(name, meta)}"
    if count > ctx.settings.archive_max_entries:
        yield mem.too_many(loc, ctx)
        return True
    if not ctx.wants(loc):
        return False  # re-opening another member: libarchive skips this one's data
    if entry.issym or entry.islnk:
        target = escape(entry.linkpath or "")[0]
        meta["link_target"] = target
        meta["hard_link"] = bool(entry.islnk)
        yield mem.Item(loc, meta=meta, error=ErrorRecord("link", f"link to {target!r}: listed, not followed"))
        return False
    if not entry.isreg and entry.filetype:  # no type bits at all (a bare 0o644 from some writers): a file
        yield mem.Item(loc, meta=meta, error=ErrorRecord("special_file", "device or FIFO member: listed, not read"))
        return False
    declared = entry.size
    if _encrypted(entry):
        meta["encrypted"] = True
        yield mem.Item(loc, size=declared, meta=meta, error=ErrorRecord("encrypted", "encrypted member: no password, "
                                                                     "not read"))
        return False
    start = archive.bytes_read

    def packed(n: int) -> int:  # packed bytes libarchive consumed since this member began (solid: the stream's)
        return max(archive.bytes_read - start, 1)

    sink = mem.MemberSink(ctx, packed=packed)
    try:
        for block in entry.get_blocks(mem.CHUNK):
            sink.write(block)
        data = sink.finish()
    except mem.LimitExceeded as exc:
        yield mem.limit_item(loc, exc, meta=meta)
        return exc.code == "zip_bomb" or exc.stop  # too_large: streamed to its end, the archive goes on
    except ArchiveError as exc:
        text = str(exc)
        if "encrypt" in text.lower() or "password" in text.lower():
            meta["encrypted"] = True
            yield mem.Item(loc, size=declared, meta=meta,
                       error=ErrorRecord("encrypted", f"encrypted member: no password, not read ({text})"))
            return False
        yield mem.Item(loc, size=declared, meta=meta,
                   error=ErrorRecord("corrupt_container", f"archive damaged in this member: {text}"))
        return False  # the next header says whether libarchive can go on (a lone later volume's first member)
    yield from ctx.expand(mem.Item(loc, size=len(data), data=data, meta=meta), depth + 1)
    return False
