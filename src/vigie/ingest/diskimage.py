"""Files of raw disk images and file-system images, through The Sleuth Kit (pytsk3), read-only.

An image is read through a file object (the evidence file opened "rb", or the bytes of an
image found inside an archive): pytsk3 never gets a path it could open for writing. A file
system at offset 0 is walked as ``image!/path``; otherwise the partition table (MBR, GPT…)
is read and each allocated partition is walked as ``image!p1/path``, ``image!p2/path``
(partitions numbered from 1 in the order of their start sector).

Directories are walked sorted by name, once per inode (loops in damaged file systems are not
followed twice). Entries the file system lists as deleted come with ``deleted=True`` and
whatever bytes are still readable. TSK's virtual ``$OrphanFiles`` folder (deleted files
whose name is gone) is walked too; its other virtual files ($MBR, $FAT1…) are not listed.

Space that no file system describes is carved whole (`_no_fs`): a partition whose file system The Sleuth
Kit cannot open (``image!p2/@unallocated:0x…``), the space between and around partitions
(``image!unpartitioned/@unallocated:0x…``, disk offsets) and media with neither a file system nor a
partition table (``image!/@unallocated:0x…``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO

import pytsk3

from vigie.errors import ErrorRecord
from vigie.ingest import carving, onepass
from vigie.ingest.members import SEP, Context, Item, LimitExceeded, MemberSink, NameBook, limit_item
from vigie.ingest.names import escape_bytes

_FS_NAMES = {int(getattr(pytsk3, f"TSK_FS_TYPE_{n}")): n.lower()
             for n in ("NTFS", "FAT12", "FAT16", "FAT32", "EXFAT", "EXT2", "EXT3", "EXT4", "HFS", "ISO9660",
                       "FFS1", "FFS1B", "FFS2", "APFS", "YAFFS2", "SWAP", "RAW")}
_CHUNK = 1 << 20
#: The folder under which pictures carved between partitions are located: ``disk.E01!unpartitioned/@unallocated:0x…``
#: (the offset from the disk's first byte).
UNPARTITIONED = "unpartitioned"
#: In one-pass mode, The Sleuth Kit's reads while listing (up to `_CACHE_MAX_READ` bytes each) are kept, up to
#: `_CACHE` bytes: listing reads the same metadata many times, and each read of an E01 inflates its chunks again.
_CACHE_MAX_READ = 1 << 20
_CACHE = 64 << 20
_M = pytsk3


class _FileImg(pytsk3.Img_Info):
    """A TSK image over a read-only Python file object."""

    def __init__(self, fobj: BinaryIO, size: int, cache: int = 0):
        self._fobj = fobj
        self._size = size
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._room = cache  # bytes kept of what The Sleuth Kit asked for (0: nothing kept)
        self._held = 0
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def close(self):
        pass

    def read(self, offset, size):
        key = (offset, size)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        self._fobj.seek(offset)
        data = self._fobj.read(size)
        if self._room and size <= _CACHE_MAX_READ:
            # TSK asks for the same 64 KiB pieces again and again while listing (the FAT, the MFT, folders), and
            # its own cache holds 2 MiB: each miss would inflate the same E01 chunks again
            self._cache[key] = data
            self._held += len(data)
            while self._held > self._room:
                self._held -= len(self._cache.popitem(last=False)[1])
        return data

    def get_size(self):
        return self._size


def members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    """The files of a disk image. When `fobj` is an evidence image's media asking for its acquisition hash
    (``fobj.one_pass(item, digests)``, set by `vigie.ingest.evidence`), the media is read once for the hash, the
    files and carving together (`vigie.ingest.onepass`) and the image's own item comes last, with its hash."""
    mp = None
    if ctx.target is None and callable(getattr(fobj, "one_pass", None)):
        mp = onepass.MediaPass(fobj, size)
    walk = _members(item, fobj, size, depth, ctx, mp)
    if mp is None:
        yield from walk
        return
    yield from onepass.own_members(walk, ctx, item.location)
    mp.release(size)  # carving is over: what is left is read for the hash and the files, and held nowhere
    try:
        mp.advance(size)
    except OSError as exc:
        item.error = ErrorRecord("corrupt_container", f"media unreadable: {str(exc).strip()[:300]}")
    yield from _ready(mp, ctx)
    yield from mp.unfinished()
    if mp.end == size:
        fobj.one_pass(item, mp.digests())
    item.meta["media_bytes_reread"] = mp.bytes_reread
    yield item


def _members(item: Item, fobj: BinaryIO, size: int, depth: int, ctx: Context, mp) -> Iterator[Item]:
    """`members`; with `mp` (one pass) the files are listed first, read and carved by the pass, and `item` is
    not yielded here (it comes last, see `members`)."""
    try:
        img = _FileImg(fobj, size, _CACHE if mp is not None else 0)
    except OSError as exc:
        item.error = ErrorRecord("corrupt_container", f"disk image unreadable: {exc}")
        if mp is None:
            yield item
        return
    try:
        fs = pytsk3.FS_Info(img, offset=0)
    except (OSError, RuntimeError):  # pytsk3 raises RuntimeError when the image's own reads fail
        fs = None
    parts: list[tuple[int, int, str]] = []
    bare = False  # neither a file system nor a partition table: all of the media is carved
    carved = "; all of it is carved" if ctx.settings.carve_unallocated else ""  # said of space with no file system
    if fs is None:
        try:
            vs = pytsk3.Volume_Info(img)
            block = vs.info.block_size
            for part in vs:
                if int(part.flags) & int(pytsk3.TSK_VS_PART_FLAG_ALLOC) and part.len > 0:
                    desc = part.desc.decode("utf-8", "replace") if isinstance(part.desc, bytes) else str(part.desc)
                    parts.append((part.start * block, part.len * block, desc))
        except (OSError, RuntimeError) as exc:
            item.error = ErrorRecord("no_filesystem", "no file system or partition table that The Sleuth Kit can "
                                     "open (wiped, reformatted, an unknown or encrypted file system, or damaged)"
                                     f"{carved}: {str(exc).strip()[:300]}")
            bare = True
        else:
            parts.sort()
            item.meta["partitions"] = len(parts)
    if mp is None:
        yield item
    plans: list | None = [] if mp is not None else None
    if fs is not None:
        yield from _walk_fs(img, fs, 0, f"{item.location}{SEP}/", depth, ctx, None, mp, plans)
    elif bare:
        yield from _no_fs(img, 0, size, f"{item.location}{SEP}/", depth, ctx, {}, mp, plans)
    else:
        # the partitions and the space between them (a deleted partition's pictures lie there), in disk order
        gaps = [(a, 1, 0, b - a, "") for a, b in carving.free_runs(size, [(o, o + n) for o, n, _ in parts])]
        seen: list[tuple[int, int]] = []  # the disk's bytes under partitions met so far: carved once, not again
        for offset, gap, i, length, desc in sorted([(o, 0, i, n, d) for i, (o, n, d) in enumerate(parts, 1)] + gaps):
            if gap:
                yield from _no_fs(img, 0, size, f"{item.location}{SEP}{UNPARTITIONED}/", depth, ctx,
                                  {"unpartitioned": True}, mp, plans, (offset, offset + length))
                continue
            prefix = f"{item.location}{SEP}p{i}"
            end = min(offset + length, size)
            earlier = [(max(a, offset) - offset, min(b, end) - offset) for a, b in seen if a < end and b > offset]
            seen.append((offset, end))
            if not ctx.wants(prefix) and not ctx.wants_under(prefix + "/"):
                continue
            try:
                pfs = pytsk3.FS_Info(img, offset=offset)
            except (OSError, RuntimeError) as exc:
                if ctx.wants(prefix):
                    yield Item(prefix, meta={"partition": i, "offset": offset, "length": length, "description": desc},
                               error=ErrorRecord("no_filesystem", f"partition {i} ({desc}): no file system The Sleuth "
                                                 f"Kit can open (unknown, encrypted or damaged){carved}: "
                                                 f"{str(exc).strip()[:200]}"))
                yield from _no_fs(img, offset, end - offset, prefix + "/", depth, ctx, {"partition": i}, mp, plans,
                                  skip=earlier)
                continue
            yield from _walk_fs(img, pfs, offset, prefix + "/", depth, ctx, {"partition": i}, mp, plans)
    for read, total, used, prefix, fsname, extra in plans or ():
        try:
            yield from _carve(read, total, used, prefix, fsname, depth, ctx, extra, mp)
        except OSError as exc:
            item.error = ErrorRecord("corrupt_container", f"media unreadable: {str(exc).strip()[:300]}")
            return


def _reader(img, mp, base: int, total: int):
    """Reads of the bytes [base, base + total) of the image, from their first byte (through the pass, if any)."""

    def read(off: int, n: int) -> bytes:
        n = min(n, total - off)
        if n <= 0:
            return b""
        return img.read(base + off, n) if mp is None else mp.read(base + off, n)

    return read


def _no_fs(img, base: int, total: int, prefix: str, depth: int, ctx: Context, extra: dict, mp, plans: list | None,
           window: tuple[int, int] | None = None, skip: list[tuple[int, int]] = ()) -> Iterator[Item]:
    """Carve space that no file system describes: a partition whose file system The Sleuth Kit cannot open
    (reformatted with another, APFS, LVM, encrypted, or its first blocks wiped), media with neither a file system
    nor a partition table (a wiped or damaged card), and, with `window`, one stretch between partitions (where a
    deleted partition lay). Nothing is allocated there: all of it is searched, as PhotoRec does. `window` is the
    stretch of [0, total) searched; its items are located from `base` like the rest (``disk!unpartitioned/``
    offsets are the disk's own). `skip`: ranges already under an earlier partition (a hostile table of 128
    partitions over the same bytes reads them once, not 128 times)."""
    read = _reader(img, mp, base, total)
    fsname = "none"
    t = ctx.target
    if t is not None:
        if t.startswith(prefix + carving.MARK):
            off = carving.offset_of(t[len(prefix):].split(SEP, 1)[0])
            if window is None or (off is not None and window[0] <= off < window[1]):
                yield from _carved_one(read, total if window is None else window[1], prefix, t, fsname, depth, ctx,
                                       extra)
        return
    if not ctx.settings.carve_unallocated:
        return
    used = _Used(512, mp, base)
    used.ranges = list(skip) if window is None else \
        [r for r in ((0, window[0]), (window[1], total)) if r[1] > r[0]]  # all but the stretch
    if plans is not None:
        plans.append((read, total, used, prefix, fsname, extra))
    else:
        yield from _carve(read, total, used, prefix, fsname, depth, ctx, extra)


def _ready(mp, ctx: Context) -> Iterator[Item]:
    """The listed files whose bytes the pass has gone through, each opened if it is a container."""
    for p in mp.take_ready():
        yield from ctx.expand(p.item(), p.depth)


def _walk_fs(img, fs, base: int, prefix: str, depth: int, ctx: Context, extra: dict | None = None, mp=None,
             plans: list | None = None) -> Iterator[Item]:
    """The files of one file system starting `base` bytes into the image, then what carving finds in its
    unallocated space. With `mp` (one pass), files are handed to the pass and carving is planned in `plans`."""
    fsname = _FS_NAMES.get(int(fs.info.ftype), str(int(fs.info.ftype)))
    extra = extra or {}
    block = int(fs.info.block_size)
    total = int(fs.info.block_count) * block

    read = _reader(img, mp, base, total)  # bytes of this file system, from its first byte
    t = ctx.target
    if t is not None and t.startswith(prefix + carving.MARK):
        yield from _carved_one(read, total, prefix, t, fsname, depth, ctx, extra)
        return
    try:
        root = fs.open_dir(path="/")
    except (OSError, RuntimeError) as exc:
        yield Item(prefix, error=ErrorRecord("corrupt_container", f"root folder unreadable: {exc}"))
        return
    seen = {root.info.fs_file.meta.addr if root.info.fs_file and root.info.fs_file.meta else -1}
    carve = t is None and ctx.settings.carve_unallocated
    used = _Used(block, mp, base) if carve or mp is not None else None
    yield from _walk_dir(root, prefix, False, seen, fsname, depth, ctx, extra, used)
    if fsname == "ntfs" and ctx.wants_under(prefix + STREAM):  # the root folder's own streams: ``disk!p1/:x.jpg``
        try:
            top = fs.open_meta(inode=fs.info.root_inum)
        except (OSError, RuntimeError):
            top = None
        if top is not None:
            yield from _streams(top, prefix, False, {"fs": fsname, "inode": int(fs.info.root_inum), **extra}, depth,
                                ctx)
    if carve and used is not None:
        try:
            _runs(fs.open_meta(inode=fs.info.root_inum), used)
        except (OSError, RuntimeError):
            pass
        if plans is not None:
            used.base = base
            plans.append((read, total, used, prefix, fsname, extra))
        else:
            yield from _carve(read, total, used, prefix, fsname, depth, ctx, extra)


class _Used:
    """The byte ranges allocated files and folders occupy in one file system (what carving leaves alone)."""

    def __init__(self, block: int, mp=None, base: int = 0):
        self.block = block
        self.mp, self.base = mp, base  # the one pass files are handed to; where the file system starts in it
        self.ranges: list[tuple[int, int]] = []
        self.deleted_starts: set[int] = set()  # where deleted files still listed start: not carved again


def _runs(f, used: _Used) -> None:
    """Add the byte ranges an allocated file or folder occupies (its non-resident attributes' runs)."""
    if f is None:
        return
    b = used.block
    try:
        for attr in f:
            for run in attr:
                if run.len and not int(run.flags) & int(_M.TSK_FS_ATTR_RUN_FLAG_SPARSE):
                    used.ranges.append((int(run.addr) * b, (int(run.addr) + int(run.len)) * b))
    except (OSError, RuntimeError, AttributeError):
        pass


def _first_run(f, used: _Used) -> None:
    try:
        for attr in f:
            for run in attr:
                if run.len:
                    used.deleted_starts.add(int(run.addr) * used.block)
                    return
    except (OSError, RuntimeError, AttributeError):
        pass


def _carve(read, total: int, used: _Used, prefix: str, fsname: str, depth: int, ctx: Context, extra: dict,
           mp=None) -> Iterator[Item]:
    """Pictures in the space no allocated file or folder occupies (`vigie.ingest.carving`); with `mp` (one pass),
    the files the pass completes on its way too."""
    limit = min(carving.CARVE_MAX, ctx.settings.max_file_bytes)
    vlimit = min(carving.CARVE_MAX_VIDEO, ctx.settings.max_file_bytes)
    release = (lambda pos: mp.release(used.base + pos)) if mp is not None else None
    for off, kind, n in carving.carve(read, carving.free_runs(total, used.ranges), limit, used.deleted_starts,
                                      vlimit, release):
        if mp is not None:
            yield from _ready(mp, ctx)
        yield from _carved(read(off, n), prefix, off, kind, fsname, depth, ctx, extra)
    if mp is not None:
        yield from _ready(mp, ctx)


def _carved_one(read, total: int, prefix: str, target: str, fsname: str, depth: int, ctx: Context, extra: dict
                ) -> Iterator[Item]:
    """Re-read one carved item from its offset (its length comes from its bytes: the same as in the scan; the
    search is bounded by the file system's end, as the scan's is by the end of the free run)."""
    name = target[len(prefix):].split(SEP, 1)[0]
    off = carving.offset_of(name)
    if off is None or not 0 <= off < total:
        return
    s = ctx.settings
    got = carving.measure(read, off, min(carving.CARVE_MAX, s.max_file_bytes, total - off),
                          min(carving.CARVE_MAX_VIDEO, s.max_file_bytes, total - off))
    if got is not None:
        yield from _carved(read(off, got[1]), prefix, off, got[0], fsname, depth, ctx, extra)


def _carved(data: bytes, prefix: str, off: int, kind: str, fsname: str, depth: int, ctx: Context, extra: dict
            ) -> Iterator[Item]:
    meta = {"fs": fsname, **extra, "carved": True, "carved_type": kind, "offset": off}
    loc = f"{prefix}{carving.MARK}0x{off:x}"
    yield from ctx.expand(Item(loc, size=len(data), data=data, deleted=True, meta=meta), depth + 1)


def _walk_dir(directory, prefix: str, parent_deleted: bool, seen: set, fsname: str, depth: int, ctx: Context,
              extra: dict, used: _Used | None) -> Iterator[Item]:
    entries = []
    try:
        for f in directory:
            n = f.info.name
            if n is None or n.name in (b".", b".."):
                continue
            m = f.info.meta
            entries.append((*escape_bytes(n.name), m.addr if m else n.meta_addr, f))
    except (OSError, RuntimeError) as exc:
        yield Item(prefix.rstrip("/") or prefix, error=ErrorRecord("corrupt_container", f"folder unreadable: {exc}"))
    entries.sort(key=lambda e: (e[0], e[2]))
    book = NameBook()
    for name, not_utf8, addr, f in entries:
        n, m = f.info.name, f.info.meta
        deleted = parent_deleted or bool(int(n.flags) & int(_M.TSK_FS_NAME_FLAG_UNALLOC)) or (
            m is not None and bool(int(m.flags) & int(_M.TSK_FS_META_FLAG_UNALLOC)))
        meta = {"fs": fsname, "inode": addr, **extra}
        if not_utf8:
            meta["name_not_utf8"] = True
            meta["name_bytes"] = n.name.hex()
        if m is not None:
            for t in ("mtime", "atime", "ctime", "crtime"):
                v = getattr(m, t, 0)
                if v:
                    meta[t] = int(v)
        mtype = m.type if m is not None else None
        if used is not None and m is not None:
            if not deleted:
                _runs(f, used)
            elif mtype == _M.TSK_FS_META_TYPE_REG:
                _first_run(f, used)
        what = _fs_metadata(fsname, name, addr)
        if what is not None:
            loc = f"{prefix}{book.unique(name, meta)}"
            if ctx.wants(loc):
                meta["fs_metadata"] = what
                yield Item(loc, deleted=False, meta=meta,
                           error=ErrorRecord("fs_metadata", f"{what}: recorded, not read as a file"))
            continue
        if mtype in (_M.TSK_FS_META_TYPE_DIR, _M.TSK_FS_META_TYPE_VIRT_DIR) or (
                m is None and n.type == _M.TSK_FS_NAME_TYPE_DIR):
            if addr in seen or m is None:
                continue  # a loop, or a deleted folder whose inode is gone: nothing to list
            if fsname == "ntfs" and mtype == _M.TSK_FS_META_TYPE_DIR:
                yield from _streams(f, f"{prefix}{name}", deleted, meta, depth, ctx)  # a folder's streams
            if not ctx.wants_under(f"{prefix}{name}/"):
                continue  # re-opening one location elsewhere
            seen.add(addr)
            try:
                sub = f.as_directory()
            except (OSError, RuntimeError):
                continue  # deleted folders often cannot be listed any more
            yield from _walk_dir(sub, f"{prefix}{name}/", deleted, seen, fsname, depth, ctx, extra, used)
            continue
        if mtype == _M.TSK_FS_META_TYPE_VIRT:
            continue  # $MBR, $FAT1, $FAT2: TSK's views of file-system structures, not files
        loc = f"{prefix}{book.unique(name, meta)}"
        ads = fsname == "ntfs" and mtype == _M.TSK_FS_META_TYPE_REG
        if not ctx.wants(loc) and not (ads and ctx.wants_under(loc + STREAM)):
            continue
        if m is None:
            yield Item(loc, deleted=deleted, meta=meta,
                       error=ErrorRecord("unrecoverable", "deleted entry whose metadata is gone: content unreadable"))
            continue
        if mtype == _M.TSK_FS_META_TYPE_LNK:
            target = getattr(m, "link", None)
            if isinstance(target, bytes):
                target = escape_bytes(target)[0]
            meta["link_target"] = target
            yield Item(loc, deleted=deleted, meta=meta,
                       error=ErrorRecord("link", f"link to {target!r}: listed, not followed"))
            continue
        if mtype != _M.TSK_FS_META_TYPE_REG:
            yield Item(loc, deleted=deleted, meta=meta,
                       error=ErrorRecord("special_file", "not a regular file (device, FIFO, socket): not read"))
            continue
        runs = None
        if used is not None and used.mp is not None and not deleted and ctx.wants(loc) and not used.mp.full():
            runs = onepass.plan_file(f, fsname, used.block, used.base, int(m.size))
        if runs is not None:
            used.mp.defer(loc, int(m.size), deleted, meta, depth + 1, runs, ctx)  # read when the pass gets there
        elif ctx.wants(loc):
            yield from _read_file(f, loc, int(m.size), deleted, meta, depth, ctx)
        if ads:
            yield from _streams(f, loc, deleted, meta, depth, ctx)


#: Between an NTFS file's location and the name of one of its alternate data streams: ``file.txt:hidden.jpg``
#: (the name Windows itself gives a stream; ``:`` cannot appear in a Windows file name).
STREAM = ":"


def _streams(f, loc: str, deleted: bool, meta: dict, depth: int, ctx: Context) -> Iterator[Item]:
    """The alternate data streams of an NTFS file or folder (named ``$DATA`` attributes), each read like a file:
    ``file.txt:hidden.jpg``. A picture hidden this way has no name of its own in any folder listing."""
    named = []
    try:
        for attr in f:
            a = attr.info
            if int(a.type) == int(_M.TSK_FS_ATTR_TYPE_NTFS_DATA) and a.name:
                raw = a.name if isinstance(a.name, bytes) else str(a.name).encode("utf-8", "surrogateescape")
                named.append((escape_bytes(raw)[0], int(a.type), int(a.id), int(a.size), int(a.flags)))
    except (OSError, RuntimeError, AttributeError):
        return
    for sname, atype, aid, size, flags in sorted(named):
        sloc = f"{loc}{STREAM}{sname}"
        if not ctx.wants(sloc):
            continue
        smeta = {**meta, "ads": True, "stream": sname}
        if flags & (int(_M.TSK_FS_ATTR_COMP) | int(_M.TSK_FS_ATTR_ENC)):
            smeta["stream_flags"] = "compressed" if flags & int(_M.TSK_FS_ATTR_COMP) else "encrypted"
        yield from _read_file(f, sloc, size, deleted, smeta, depth, ctx, (atype, aid))


#: NTFS keeps its own structures in MFT records 0-23 ($MFT, $LogFile, $Volume, $Boot, $BadClus, $Secure,
#: $Extend...; 16-23 are reserved): files to the file system, not evidence a person saved.
_NTFS_RESERVED = 24
_FAT_LABEL = "(Volume Label Entry)"
#: The Sleuth Kit's virtual files for exFAT's own structures (the allocation bitmap, the up-case table…).
_EXFAT_SYSTEM = frozenset(("$ALLOC_BITMAP", "$UPCASE_TABLE", "$VOLUME_GUID", "$TEX_FAT", "$ACT"))
#: HFS+ catalog node IDs below 16 are the volume's own files ($ExtentsFile, $CatalogFile, $AllocationFile…).
_HFS_RESERVED = 16


def _fs_metadata(fsname: str, name: str, addr) -> str | None:
    """What a file-system structure listed as a file is ("NTFS system file", "FAT volume label"), else None.

    Such entries were errors before (`empty` for a volume label, $Boot opened as a disk image, reserved
    records "deleted, unrecoverable"); they are recorded as what they are, never read."""
    if fsname == "ntfs" and isinstance(addr, int) and 0 <= addr < _NTFS_RESERVED:
        return "NTFS system file" if name.startswith("$") else "NTFS reserved MFT record"
    if fsname.startswith("fat") and name.endswith(_FAT_LABEL):
        return "FAT volume label"
    if fsname == "exfat" and (name in _EXFAT_SYSTEM or name.endswith(_FAT_LABEL)):
        return "exFAT system file" if name in _EXFAT_SYSTEM else "exFAT volume label"
    if fsname == "hfs" and isinstance(addr, int) and 0 <= addr < _HFS_RESERVED and name.startswith("$"):
        return "HFS+ system file"
    return None


def _read_file(f, loc: str, size: int, deleted: bool, meta: dict, depth: int, ctx: Context,
               attr: tuple[int, int] | None = None) -> Iterator[Item]:
    """A file's content (its default data, or the attribute `attr`: (type, id), an NTFS stream)."""
    try:
        sink = MemberSink(ctx, counted=False)
        off = 0
        while off < size:
            n = min(_CHUNK, size - off)
            chunk = f.read_random(off, n) if attr is None else f.read_random(off, n, attr[0], attr[1])
            if not chunk:
                break
            sink.write(chunk)
            off += len(chunk)
        data = sink.finish()
    except LimitExceeded as exc:
        yield limit_item(loc, exc, size=size, deleted=deleted, meta=meta)
        return
    except (OSError, RuntimeError) as exc:
        code = "unrecoverable" if deleted else "corrupt_container"
        yield Item(loc, size=size, deleted=deleted, meta=meta,
                   error=ErrorRecord(code, f"content unreadable: {str(exc).strip()[:200]}"))
        return
    if len(data) < size:
        meta["partial_bytes"] = len(data)
        yield Item(loc, size=size, deleted=deleted, meta=meta,
                   error=ErrorRecord("unrecoverable" if deleted else "corrupt_container",
                                     f"only {len(data)} of {size} bytes readable"))
        return
    yield from ctx.expand(Item(loc, size=size, data=data, deleted=deleted, meta=meta), depth + 1)
