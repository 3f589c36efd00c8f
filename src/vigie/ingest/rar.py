"""Members of RAR archives (RAR 1.5-4.x and RAR 5), read through libarchive (the `libarchive-c` binding).

RAR is how much of the material hotlines and police meet is packed, and no Python library reads it without
the non-free `unrar`: libarchive reads both formats, stored and compressed, solid too, as a stream. Members
come in stored order (a solid archive can only be read in order), each read in `CHUNK` pieces into a
`MemberSink`: the ratio guard counts the packed bytes libarchive actually consumed, never a size the header
declares. libarchive cannot decrypt RAR: an encrypted member is listed (`encrypted`) with its name and size,
and an archive whose headers are encrypted is reported as such. Only the first volume of a multi-volume
archive is read (a member that goes on in the next volume is `corrupt_container`).
"""

from __future__ import annotations

import ctypes
import datetime as dt
from collections.abc import Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.members import (
    CHUNK,
    SEP,
    Context,
    Item,
    LimitExceeded,
    MemberSink,
    NameBook,
    limit_item,
    member_meta,
    safe_name,
)
from vigie.ingest.names import escape

#: RAR 1.5-4.x and RAR 5 signatures.
SIGNATURES = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")


def is_rar(head: bytes) -> bool:
    return head.startswith(SIGNATURES)


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


def members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    try:
        import libarchive
        from libarchive.exception import ArchiveError
    except (ImportError, OSError) as exc:  # the binding, or libarchive itself (Debian libarchive13), is missing
        item.error = ErrorRecord("unsupported", f"RAR needs libarchive (libarchive-c and libarchive13): {exc}")
        yield item
        return
    fobj.seek(0)
    fmt = "rar" if fobj.read(len(SIGNATURES[0])) == SIGNATURES[0] else "rar5"
    fobj.seek(0)
    shown = False
    try:
        with libarchive.stream_reader(fobj, format_name=fmt, block_size=CHUNK) as archive:
            entries = iter(archive)
            entry = next(entries, None)  # the first header: an archive that has none is reported on its own row
            shown = True
            yield item
            book = NameBook()
            count = 0
            while entry is not None and not ctx.exhausted:
                count += 1
                rawname = _name(entry)
                if entry.isdir:
                    if count > ctx.settings.archive_max_entries:
                        yield _too_many(f"{item.location}{SEP}{safe_name(rawname, backslash=True)[0]}", ctx)
                        return
                elif (yield from _member(item, archive, entry, rawname, count, book, depth, ctx, ArchiveError)):
                    return  # a bomb, the entry limit or damage: a stream cannot go on past it
                try:
                    entry = next(entries, None)
                except ArchiveError as exc:
                    yield Item(f"{item.location}{SEP}<damaged>", error=ErrorRecord(
                        "corrupt_container", f"archive damaged after the members listed before: {exc}"))
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


def _too_many(location: str, ctx: Context) -> Item:
    n = ctx.settings.archive_max_entries
    return Item(location, error=ErrorRecord("too_many_entries", f"over archive_max_entries ({n}) entries: "
                                            "this one and the rest of the archive are not read"))


def _member(item: Item, archive, entry, rawname: str, count: int, book: NameBook, depth: int, ctx: Context,
            ArchiveError):  # noqa: N803
    """Yield one member's items; return True when the archive must not be read further."""
    name, unsafe = safe_name(rawname, backslash=True)
    meta = member_meta(rawname, unsafe)
    try:
        mtime = entry.mtime
        if mtime:
            meta["mtime"] = dt.datetime.fromtimestamp(int(mtime), dt.UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        pass
    loc = f"{item.location}{SEP}{book.unique(name, meta)}"
    if count > ctx.settings.archive_max_entries:
        yield _too_many(loc, ctx)
        return True
    if not ctx.wants(loc):
        return False  # re-opening another member: libarchive skips this one's data
    if entry.issym or entry.islnk:
        target = escape(entry.linkpath or "")[0]
        meta["link_target"] = target
        meta["hard_link"] = bool(entry.islnk)
        yield Item(loc, meta=meta, error=ErrorRecord("link", f"link to {target!r}: listed, not followed"))
        return False
    if not entry.isreg and entry.filetype:  # no type bits at all (a bare 0o644 from some writers): a file
        yield Item(loc, meta=meta, error=ErrorRecord("special_file", "device or FIFO member: listed, not read"))
        return False
    declared = entry.size
    if _encrypted(entry):
        meta["encrypted"] = True
        yield Item(loc, size=declared, meta=meta, error=ErrorRecord("encrypted", "encrypted member: no password, "
                                                                     "not read"))
        return False
    start = archive.bytes_read

    def packed(n: int) -> int:  # packed bytes libarchive consumed since this member began (solid: the stream's)
        return max(archive.bytes_read - start, 1)

    sink = MemberSink(ctx, packed=packed)
    try:
        for block in entry.get_blocks(CHUNK):
            sink.write(block)
        data = sink.finish()
    except LimitExceeded as exc:
        yield limit_item(loc, exc, meta=meta)
        return exc.code == "zip_bomb" or exc.stop  # too_large: streamed to its end, the archive goes on
    except ArchiveError as exc:
        text = str(exc)
        if "encrypt" in text.lower() or "password" in text.lower():
            meta["encrypted"] = True
            yield Item(loc, size=declared, meta=meta,
                       error=ErrorRecord("encrypted", f"encrypted member: no password, not read ({text})"))
            return False
        yield Item(loc, size=declared, meta=meta,
                   error=ErrorRecord("corrupt_container", f"archive damaged in this member: {text}"))
        return True
    yield from ctx.expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1)
    return False
