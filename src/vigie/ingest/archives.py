"""Members of zip, tar (plain, gzip, bzip2, xz) and 7z archives, read into memory under limits.

Called by `vigie.ingest.containers.open_container`; each function yields the container item
first (with an error when it cannot be opened), then one Item per member. Nothing is
extracted to disk. Zip members come sorted by name (random access); tar and 7z members in
the order they are stored (streams: sorting would mean reading them twice or holding them).
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.containers import (
    SEP,
    Context,
    Item,
    LimitExceeded,
    MemberSink,
    NameBook,
    expand,
    limit_item,
    member_meta,
    read_member,
    safe_name,
)

_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError,
                RuntimeError, struct.error)


def _too_many(location: str, ctx: Context) -> Item:
    n = ctx.settings.archive_max_entries
    return Item(location, error=ErrorRecord("too_many_entries", f"over archive_max_entries ({n}) entries: "
                                            "this one and the rest of the archive are not read"))


def _damaged(container: Item, exc: BaseException) -> Item:
    return Item(f"{container.location}{SEP}<damaged>",
                error=ErrorRecord("corrupt_container", f"archive damaged after the members listed before: {exc}"))


# -- zip -----------------------------------------------------------------------------------------

def iter_zip(item: Item, fobj: BinaryIO, depth: int, ctx: Context) -> Iterator[Item]:
    try:
        zf = zipfile.ZipFile(fobj)
        infos = zf.infolist()
    except _READ_ERRORS as exc:
        item.error = ErrorRecord("corrupt_container", f"zip central directory unreadable ({exc}): members "
                                 "recovered from their local headers")
        yield item
        yield from _zip_local_scan(item, fobj, depth, ctx)
        return
    yield item
    book = NameBook()
    named = []
    for info in infos:
        if info.is_dir():
            continue
        name, unsafe = safe_name(info.filename, backslash=True)
        named.append((name, unsafe, info))
    named.sort(key=lambda t: t[0])  # stable: duplicates keep their stored order
    for count, (name, unsafe, info) in enumerate(named, 1):
        if ctx.exhausted:
            return
        meta = member_meta(info.filename, unsafe, {"compressed_size": info.compress_size,
                                                   "mtime": _zip_time(info.date_time)})
        loc = f"{item.location}{SEP}{book.unique(name, meta)}"
        if count > ctx.settings.archive_max_entries:
            yield _too_many(loc, ctx)
            return
        if info.flag_bits & 0x1:
            meta["encrypted"] = True
            yield Item(loc, size=info.file_size, meta=meta,
                       error=ErrorRecord("encrypted", "encrypted member: no password, not read"))
            continue
        try:
            with zf.open(info) as m:
                data = read_member(m.read, ctx, packed=lambda n, i=info: i.compress_size)
        except LimitExceeded as exc:
            yield limit_item(loc, exc, meta=meta)
            if exc.stop:
                return
            continue
        except NotImplementedError as exc:
            yield Item(loc, size=info.file_size, meta=meta, error=ErrorRecord("unsupported", str(exc)))
            continue
        except _READ_ERRORS as exc:
            yield Item(loc, size=info.file_size, meta=meta, error=ErrorRecord("corrupt", f"member unreadable: {exc}"))
            continue
        yield from expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1, ctx)


def _zip_time(date_time: tuple) -> str | None:
    try:
        return dt.datetime(*date_time).isoformat()
    except ValueError:
        return None


class _Inflate:
    """Raw deflate from a file, for the local-header scan: knows where the stream ended."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.d = zlib.decompressobj(-15)
        self.raw = 0
        self.truncated = False

    def read(self, n: int) -> bytes:
        while not self.d.eof:
            if self.d.unconsumed_tail:
                out = self.d.decompress(self.d.unconsumed_tail, n)
            else:
                chunk = self.f.read(1 << 16)
                if not chunk:
                    self.truncated = True
                    return b""
                self.raw += len(chunk)
                out = self.d.decompress(chunk, n)
            if out:
                return out
        return b""

    @property
    def consumed(self) -> int:
        return self.raw - len(self.d.unused_data) - len(self.d.unconsumed_tail)


class _Limited:
    def __init__(self, f: BinaryIO, n: int):
        self.f, self.left = f, n
        self.truncated = False

    def read(self, n: int) -> bytes:
        if self.left <= 0:
            return b""
        b = self.f.read(min(n, self.left))
        if not b:
            self.truncated = True
        self.left -= len(b)
        return b


def _zip_local_scan(item: Item, fobj: BinaryIO, depth: int, ctx: Context) -> Iterator[Item]:
    """Members of a zip without a usable central directory, from the local headers in sequence."""
    book = NameBook()
    pos = 0
    count = 0
    while not ctx.exhausted:
        fobj.seek(pos)
        hdr = fobj.read(30)
        if len(hdr) < 30 or hdr[:4] != b"PK\x03\x04":
            return
        _, _, flags, method, mtime, mdate, _crc, csize, usize, nlen, elen = struct.unpack("<4sHHHHHIIIHH", hdr)
        raw = fobj.read(nlen)
        fobj.read(elen)
        start = pos + 30 + nlen + elen
        rawname = raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        sized = not flags & 0x8  # sizes in the local header (else in a data descriptor after the data)
        if rawname.endswith("/"):
            if not sized:
                return
            pos = start + csize
            continue
        count += 1
        name, unsafe = safe_name(rawname, backslash=True)
        meta = member_meta(rawname, unsafe, {"recovered": True,
                                             "mtime": _zip_time(((mdate >> 9) + 1980, (mdate >> 5) & 15, mdate & 31,
                                                                 mtime >> 11, (mtime >> 5) & 63, (mtime & 31) * 2))})
        loc = f"{item.location}{SEP}{book.unique(name, meta)}"
        if count > ctx.settings.archive_max_entries:
            yield _too_many(loc, ctx)
            return
        if flags & 0x1:
            meta["encrypted"] = True
            yield Item(loc, meta=meta, error=ErrorRecord("encrypted", "encrypted member: no password, not read"))
            if not sized:
                return
            pos = start + csize
            continue
        if method == 0 and sized:
            reader = _Limited(fobj, csize)
            packed = None
        elif method == 8:
            reader = _Inflate(fobj)
            packed = lambda n, r=reader: r.consumed  # noqa: E731
        else:
            yield Item(loc, meta=meta, error=ErrorRecord("unsupported", f"compression method {method} cannot be "
                                                         "recovered without the central directory"))
            if not sized:
                return
            pos = start + csize
            continue
        try:
            data = read_member(reader.read, ctx, packed=packed)
        except LimitExceeded as exc:
            yield limit_item(loc, exc, meta=meta)
            if exc.stop or not sized:
                return
            pos = start + csize
            continue
        except _READ_ERRORS as exc:
            yield Item(loc, meta=meta, error=ErrorRecord("corrupt_container", f"archive damaged in this member: {exc}"))
            return
        if reader.truncated:
            meta["partial_bytes"] = len(data)
            yield Item(loc, meta=meta, error=ErrorRecord("corrupt_container", "archive ends inside this member"))
            return
        yield from expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1, ctx)
        if method == 8:
            pos = start + reader.consumed
            if not sized:
                fobj.seek(pos)
                pos += 16 if fobj.read(4) == b"PK\x07\x08" else 12
        else:
            pos = start + csize


# -- tar -----------------------------------------------------------------------------------------

class _Counting:
    def __init__(self, f):
        self.f = f
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        b = self.f.read(size)
        self.n += len(b)
        return b


def iter_tar(item: Item, fobj: BinaryIO, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    raw = _Counting(fobj)
    try:
        if kind == "tar.gz":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "tar.bz2":
            stream = bz2.BZ2File(raw)
        elif kind == "tar.xz":
            stream = lzma.LZMAFile(raw)  # noqa: SIM115 (closed with fobj by the caller)
        else:
            stream = raw
        # Decompression is done here, by readers that never inflate more than asked (tarfile's own
        # stream mode would inflate a whole compressed block at once: a bzip2 bomb in one call).
        unpacked = _Counting(stream)
        tf = tarfile.open(fileobj=unpacked, mode="r|")  # noqa: SIM115
    except _READ_ERRORS as exc:
        item.error = ErrorRecord("corrupt_container", f"not a readable {kind}: {exc}")
        yield item
        return
    yield item
    book = NameBook()
    count = 0

    def packed(n: int) -> int:  # the stream's ratio, as the packed size of n bytes
        return int(n * raw.n / max(unpacked.n, 1))

    while not ctx.exhausted:
        try:
            m = tf.next()
        except _READ_ERRORS as exc:
            yield _damaged(item, exc)
            return
        if m is None:
            return
        count += 1
        if m.isdir():
            if count > ctx.settings.archive_max_entries:
                yield _too_many(f"{item.location}{SEP}{safe_name(m.name)[0]}", ctx)
                return
            continue
        name, unsafe = safe_name(m.name)
        meta = member_meta(m.name, unsafe, {"mtime": m.mtime, "mode": m.mode})
        loc = f"{item.location}{SEP}{book.unique(name, meta)}"
        if count > ctx.settings.archive_max_entries:
            yield _too_many(loc, ctx)
            return
        if m.issym() or m.islnk():
            meta["link_target"] = m.linkname
            meta["hard_link"] = m.islnk()
            yield Item(loc, meta=meta, error=ErrorRecord("link", f"link to {m.linkname!r}: listed, not followed"))
            continue
        if not m.isfile():
            yield Item(loc, meta=meta, error=ErrorRecord("special_file", "device or FIFO member: listed, not read"))
            continue
        try:
            f = tf.extractfile(m)
            data = read_member(f.read, ctx, packed=packed)
        except LimitExceeded as exc:
            yield limit_item(loc, exc, meta=meta)
            if exc.code == "zip_bomb" or exc.stop:
                return  # a stream: what follows a bomb is the bomb
            continue
        except _READ_ERRORS as exc:
            yield Item(loc, size=m.size, meta=meta,
                       error=ErrorRecord("corrupt_container", f"archive damaged in this member: {exc}"))
            return
        yield from expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1, ctx)


# -- 7z ------------------------------------------------------------------------------------------

def iter_7z(item: Item, fobj: BinaryIO, depth: int, ctx: Context) -> Iterator[Item]:
    import py7zr
    from py7zr.exceptions import CrcError

    errors = _READ_ERRORS + (py7zr.Bad7zFile, py7zr.DecompressionError, CrcError, KeyError, IndexError,
                             AttributeError, TypeError)
    try:
        sz = py7zr.SevenZipFile(fobj, mode="r")
    except py7zr.PasswordRequired:
        item.meta["encrypted"] = True
        item.error = ErrorRecord("encrypted", "7z with encrypted headers: member names cannot be read")
        yield item
        return
    except py7zr.UnsupportedCompressionMethodError as exc:
        item.error = ErrorRecord("unsupported", f"7z compression method not supported: {exc}")
        yield item
        return
    except errors as exc:
        item.error = ErrorRecord("corrupt_container", f"not a readable 7z: {exc}")
        yield item
        return
    yield item
    with sz:
        yield from _7z_members(item, sz, depth, ctx, errors)


def _7z_members(item: Item, sz, depth: int, ctx: Context, errors: tuple) -> Iterator[Item]:
    import py7zr

    encrypted = sz.needs_password()
    ms = sz.header.main_streams
    folders = ms.unpackinfo.folders if ms is not None else []
    index = {id(f): i for i, f in enumerate(folders)}
    positions = ms.packinfo.packpositions if ms is not None else [0]
    book = NameBook()
    current = None
    folder_start = folder_end = 0
    count = 0
    for f in sz.files:
        if ctx.exhausted:
            return
        count += 1
        if f.is_directory:
            continue
        rawname = f.filename
        name, unsafe = safe_name(rawname, backslash=True)
        meta = member_meta(rawname, unsafe)
        if f.lastwritetime is not None:
            try:
                meta["mtime"] = py7zr.helpers.filetime_to_dt(f.lastwritetime).isoformat()
            except (ValueError, OverflowError, OSError):
                pass
        loc = f"{item.location}{SEP}{book.unique(name, meta)}"
        if count > ctx.settings.archive_max_entries:
            yield _too_many(loc, ctx)
            return
        if encrypted and not f.emptystream:
            meta["encrypted"] = True
            yield Item(loc, size=f.uncompressed, meta=meta,
                       error=ErrorRecord("encrypted", "encrypted member: no password, not read"))
            continue
        if f.emptystream or f.folder is None:
            data = b""
        else:
            if f.folder is not current:
                current = f.folder
                i = index[id(current)]
                folder_start = sz.afterheader + positions[i]
                folder_end = sz.afterheader + positions[i + 1]
                sz.fp.seek(folder_start)
            start = folder_start

            def packed(n: int, fp=sz.fp, start=start) -> int:
                return max(fp.tell() - start, 1)

            try:
                sink = MemberSink(ctx, packed=packed)
                crc = _7z_decompress(sz.fp, current, sink, f.uncompressed, f.compressed, folder_end)
                if f.crc32 is not None and crc != f.crc32:
                    raise py7zr.exceptions.CrcError(crc, f.crc32, rawname)
                data = sink.finish()
            except LimitExceeded as exc:
                yield limit_item(loc, exc, meta=meta)
                if exc.code == "zip_bomb" or exc.stop:
                    return
                continue  # too_large: streamed to the end, the folder goes on
            except errors as exc:
                yield Item(loc, size=f.uncompressed, meta=meta,
                           error=ErrorRecord("corrupt_container", f"archive damaged in this member: {exc}"))
                return
        if f.is_symlink:
            target = data.decode("utf-8", errors="replace")
            meta["link_target"] = target
            yield Item(loc, meta=meta, error=ErrorRecord("link", f"link to {target!r}: listed, not followed"))
            continue
        yield from expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1, ctx)


def _7z_decompress(fp, folder, sink: MemberSink, size: int, compressed: int | None, end: int) -> int:
    """One member of a 7z folder, in CHUNK-sized pieces (py7zr's own loop asks for far more at once)."""
    import py7zr

    from vigie.ingest.containers import CHUNK

    decompressor = folder.get_decompressor(compressed)
    remaining = size
    crc = 0
    while remaining > 0:
        pos = fp.tell()
        if pos > end:
            raise py7zr.Bad7zFile("member data runs past its folder")
        out = decompressor.decompress(fp, min(remaining, CHUNK))
        if out:
            remaining -= len(out)
            sink.write(out)
            crc = zlib.crc32(out, crc)
        elif fp.tell() == pos:
            raise py7zr.Bad7zFile("archive ends before this member does")
    return crc
