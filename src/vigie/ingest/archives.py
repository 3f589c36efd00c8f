"""Members of zip, tar (plain, gzip, bzip2, xz) and 7z archives, read into memory under limits.

Each `*_members` function is the container interface of `vigie.ingest.members`; it yields the container item
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
from vigie.ingest.members import (
    CHUNK,
    SEP,
    Context,
    Item,
    LimitExceeded,
    MemberSink,
    NameBook,
    damaged,
    limit_item,
    member_meta,
    read_member,
    safe_name,
    too_many,
)
from vigie.ingest.names import escape

_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError,
                RuntimeError, struct.error)


# -- zip -----------------------------------------------------------------------------------------

def zip_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    try:
        zf = zipfile.ZipFile(fobj)
        infos = zf.infolist()
    except UnicodeDecodeError:
        # A name flagged UTF-8 that is not: zipfile gives up on the whole directory. The local headers hold
        # the same names and data; nothing is damaged, so this is no error.
        item.meta["names_not_utf8"] = True
        yield item
        yield from _zip_local_scan(item, fobj, depth, ctx)
        return
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
            yield too_many(loc, ctx)
            return
        if not ctx.wants(loc):
            continue  # re-opening another member: this one is not read
        if info.flag_bits & 0x1:
            meta["encrypted"] = True
            yield Item(loc, size=info.file_size, meta=meta,
                       error=ErrorRecord("encrypted", "encrypted member: no password, not read"))
            continue
        try:
            data = _zip_read(zf, fobj, info, ctx)
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
        yield from ctx.expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1)


def _zip_read(zf: zipfile.ZipFile, fobj: BinaryIO, info: zipfile.ZipInfo, ctx: Context) -> bytes:
    """One member's bytes. Deflate (nearly every zip) is inflated here, from the local header on, in small
    steps that know exactly how many packed bytes they consumed: the bomb guard never trusts the compressed
    size the archive declares (a member claiming 4 GB packed for a 4 MB stream is a 1000:1 bomb), and no more
    than one chunk is ever inflated past the limit. Other methods go through zipfile, measured by the bytes
    it actually read."""
    if info.compress_type == zipfile.ZIP_DEFLATED:
        fobj.seek(info.header_offset)
        hdr = fobj.read(30)
        if len(hdr) < 30 or hdr[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("no local header where the central directory says")
        nlen, elen = struct.unpack("<HH", hdr[26:30])
        fobj.seek(info.header_offset + 30 + nlen + elen)
        reader = _Inflate(fobj)
        crc = 0

        def read(n: int) -> bytes:
            nonlocal crc
            out = reader.read(n)
            crc = zlib.crc32(out, crc)
            return out

        data = read_member(read, ctx, packed=lambda n: reader.consumed)
        if reader.truncated:
            raise zipfile.BadZipFile("the archive ends inside this member's deflate stream")
        if crc != info.CRC:
            raise zipfile.BadZipFile(f"bad CRC-32 (stored {info.CRC:08x}, read {crc:08x})")
        return data
    with zf.open(info) as m:
        raw = getattr(m, "_fileobj", None)
        base = raw.tell() if raw is not None else 0

        def packed(n: int) -> int | None:
            return max(raw.tell() - base, 1) if raw is not None else None

        return read_member(m.read, ctx, packed=packed)


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
        # UTF-8 names that are not UTF-8 keep their bytes (escaped and flagged by member_meta)
        rawname = raw.decode("utf-8", "surrogateescape") if flags & 0x800 else raw.decode("cp437")
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
            yield too_many(loc, ctx)
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
        yield from ctx.expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1)
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


def tar_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
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
            yield damaged(item, exc)
            return
        if m is None:
            return
        count += 1
        if m.isdir():
            if count > ctx.settings.archive_max_entries:
                yield too_many(f"{item.location}{SEP}{safe_name(m.name)[0]}", ctx)
                return
            continue
        name, unsafe = safe_name(m.name)
        meta = member_meta(m.name, unsafe, {"mtime": m.mtime, "mode": m.mode})
        loc = f"{item.location}{SEP}{book.unique(name, meta)}"
        if count > ctx.settings.archive_max_entries:
            yield too_many(loc, ctx)
            return
        if not ctx.wants(loc):
            continue  # re-opening another member: the stream skips this one's data
        if m.issym() or m.islnk():
            target = escape(m.linkname)[0]
            meta["link_target"] = target
            meta["hard_link"] = m.islnk()
            yield Item(loc, meta=meta, error=ErrorRecord("link", f"link to {target!r}: listed, not followed"))
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
        yield from ctx.expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1)


# -- one compressed file (gz, bz2, xz) --------------------------------------------------------------

_STREAMS = {"gz": lambda f: gzip.GzipFile(fileobj=f, mode="rb"), "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}
_SUFFIXES = {"gz": (".gz", ".gzip", ".z"), "bz2": (".bz2", ".bz"), "xz": (".xz",)}


def compressed_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context
                       ) -> Iterator[Item]:
    """A gzip, bzip2 or xz file: one member, the uncompressed file (``photo.jpg.gz!photo.jpg``), read under the
    same ratio and budget guards as a tar stream. A tar inside (whose first block lay past the sniffed head)
    is handed to `tar_members`. The member's name is the one gzip stores, else the container's own name
    without its suffix."""
    stored = _gzip_name(fobj) if kind == "gz" else None
    fobj.seek(0)
    raw = _Counting(fobj)
    truncated = None
    try:
        stream = _STREAMS[kind](raw)
        first = stream.read(512)
    except EOFError as exc:  # a file cut short: the member is listed with the damage
        first, truncated = b"", exc
    except _READ_ERRORS as exc:
        item.error = ErrorRecord("corrupt_container", f"not a readable {kind} stream: {exc}")
        yield item
        return
    if first[257:262] == b"ustar":
        fobj.seek(0)
        item.meta["format"] = f"tar.{kind}"
        yield from tar_members(item, fobj, size, f"tar.{kind}", depth, ctx)
        return
    yield item
    if stored is not None:
        name, unsafe = safe_name(stored, backslash=True)
        meta = member_meta(stored, unsafe)
    else:
        base = item.location.rsplit(SEP, 1)[-1].rsplit("/", 1)[-1]
        suffix = next((x for x in _SUFFIXES[kind] if base.lower().endswith(x) and len(base) > len(x)), None)
        name, meta = (base[: -len(suffix)] if suffix else "data"), {}
    loc = f"{item.location}{SEP}{name}"
    if not ctx.wants(loc):
        return
    if truncated is not None:
        yield Item(loc, meta=meta, error=ErrorRecord("corrupt_container", f"compressed stream damaged: {truncated}"))
        return
    pending = [first]

    def read(n: int) -> bytes:
        if pending:
            return pending.pop()
        return stream.read(n)

    try:
        data = read_member(read, ctx, packed=lambda n: raw.n)
    except LimitExceeded as exc:
        yield limit_item(loc, exc, meta=meta)
        return
    except _READ_ERRORS as exc:
        yield Item(loc, meta=meta, error=ErrorRecord("corrupt_container", f"compressed stream damaged: {exc}"))
        return
    yield from ctx.expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1)


def _gzip_name(fobj: BinaryIO) -> str | None:
    """The original file name a gzip header stores (FNAME), as text (bytes that are not UTF-8 kept, escaped later)."""
    fobj.seek(0)
    head = fobj.read(65536)
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA
        if len(head) < 12:
            return None
        pos += 2 + struct.unpack("<H", head[10:12])[0]
    end = head.find(b"\x00", pos)
    if end <= pos:
        return None
    return head[pos:end].decode("utf-8", "surrogateescape")


# -- 7z ------------------------------------------------------------------------------------------

def sevenzip_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
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
            yield too_many(loc, ctx)
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
            target = escape(data.decode("utf-8", "surrogateescape"))[0]
            meta["link_target"] = target
            yield Item(loc, meta=meta, error=ErrorRecord("link", f"link to {target!r}: listed, not followed"))
            continue
        yield from ctx.expand(Item(loc, size=len(data), data=data, meta=meta), depth + 1)


def _7z_decompress(fp, folder, sink: MemberSink, size: int, compressed: int | None, end: int) -> int:
    """One member of a 7z folder, in CHUNK-sized pieces (py7zr's own loop asks for far more at once)."""
    import py7zr

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
