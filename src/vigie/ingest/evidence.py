"""Evidence containers: Expert Witness images (E01, Ex01), split raw images (``.001``, ``.002``…) and
virtual disks (VMDK, VHD, VHDX).

Drives are acquired into these formats, not into one raw file: an E01 holds the media compressed,
in segments (``.E01``, ``.E02``…), with the MD5/SHA-1 computed at acquisition; a split raw image
is the media cut into pieces. Each is opened read-only (segment files opened "rb" here, libewf
reads through those file objects) and its **media** is handed to The Sleuth Kit as one image,
through the disk-image kind (`ctx.inner(..., "disk", ...)`): locations read
``case.E01!p2/Users/x/a.jpg`` as for a raw image.

The acquisition hash is the hash of the media content, not of the container file (an E01 file's
own SHA-256 says nothing about the drive): the media is read once, in order, and that one read
gives the hash, the files' bytes and carving's (`vigie.ingest.onepass`); MD5, SHA-1 and SHA-256
go into the container item's meta (``media_md5``, ``media_sha1``, ``media_sha256``), and the
container item comes after its members, once the pass is over. For an E01 the hashes stored at
acquisition are compared with them: ``hash_check`` is ``verified``, ``mismatch`` (the item then
gets the error ``hash_mismatch``: the image is damaged or was altered) or ``none stored``.
Re-reading one member for review (`vigie.ingest.reopen`) skips this pass.

A later segment met on its own (``case.E02``, ``disk.002``, a VMDK extent without a descriptor)
is a record of the image it belongs to: hashed as a file, never opened alone.

Virtual disks go through libvmdk and libvhdi (``libvmdk-python``, ``libvhdi-python``): a VMDK
(monolithic sparse with its embedded descriptor, or a descriptor file whose extents lie beside it),
a dynamic VHD (``conectix`` at offset 0; a fixed VHD is a raw disk with a footer and is read as one)
and a VHDX; QCOW2 through libqcow (``libqcow-python``, optional: without it a QCOW2 is ``unsupported``).
A differencing disk (one that needs its parent, a QCOW2 with a backing file) or an encrypted QCOW2 is
``unsupported``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.members import Context, Item

try:
    import pyewf
except ImportError:  # pragma: no cover - libewf-python is a dependency; kept optional for odd platforms
    pyewf = None
try:
    import pyvhdi
    import pyvmdk
except ImportError:  # pragma: no cover - same
    pyvmdk = pyvhdi = None
try:
    import pyqcow
except ImportError:  # libqcow-python: QCOW images are `unsupported` without it
    pyqcow = None

#: EWF segment signatures: EWF1 (E01, also written by FTK and ewfacquire), EWF2 (Ex01).
EWF1 = b"EVF\x09\x0d\x0a\xff\x00"
EWF2 = b"EVF2\x0d\x0a\x81\x00"
#: A split raw image's pieces: name.001, name.002… (three digits or more, numbered from 1).
SPLIT = re.compile(r"^(.*)\.(\d{3,})$", re.S)


def virtual_disk(head: bytes) -> str | None:
    """vmdk, vmdk-extent (a sparse extent without a descriptor: read through its descriptor), vhd (dynamic or
    differencing), vhdx or qcow (QCOW2) from a file's first bytes; else None."""
    if head[:4] == b"KDMV" and len(head) >= 36:
        at = int.from_bytes(head[28:36], "little") * 512  # the embedded descriptor, if any
        if at == 0 or (at + 21 <= len(head) and head[at:at + 21] != b"# Disk DescriptorFile"):
            return "vmdk-extent"  # an extent of a disk described elsewhere (qemu reserves an empty descriptor)
        return "vmdk"
    if head[:21] == b"# Disk DescriptorFile":
        return "vmdk"
    if head[:8] == b"conectix":
        return "vhd"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    if head[:4] == b"QFI\xfb" and head[4:8] in (b"\x00\x00\x00\x02", b"\x00\x00\x00\x03"):
        return "qcow"  # QCOW2 (version 2 or 3), what QEMU/KVM and libvirt keep virtual machines' disks in
    return None


def ewf_segment(head: bytes) -> int | None:
    """The segment number of an EWF segment file from its first bytes (1 for ``.E01``), else None."""
    if head[:8] == EWF1 and len(head) >= 11:
        return int.from_bytes(head[9:11], "little")
    if head[:8] == EWF2 and len(head) >= 16:
        return int.from_bytes(head[12:16], "little")  # EWF2: major, minor, compression method, segment number
    return None


class _Positioned:
    """A read-only file object of known `size`: the position and what is left from it, shared by the views below."""

    size = 0
    _pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self.size + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _wanted(self, n: int | None) -> int:
        """How many bytes a read of `n` (None or negative: to the end) returns from here."""
        if n is None or n < 0:
            n = self.size - self._pos
        return max(0, min(n, self.size - self._pos))


class LibMedia(_Positioned):
    """The media of an opened libewf/libvmdk/libvhdi handle as a read-only file object (what `diskimage`
    reads through)."""

    def __init__(self, handle):
        self._h = handle
        self._pos = 0
        self.size = handle.get_media_size()

    def read(self, n: int = -1) -> bytes:
        n = self._wanted(n)
        if n == 0:
            return b""
        try:
            data = self._h.read_buffer_at_offset(n, self._pos)
        except (RuntimeError, ValueError) as exc:
            raise OSError(str(exc)[:300]) from None
        self._pos += len(data)
        return data

    def close(self) -> None:
        pass


class Concatenated(_Positioned):
    """Several read-only files read as one (the pieces of a split raw image, in order)."""

    def __init__(self, files: list[BinaryIO], sizes: list[int]):
        self._files, self._sizes = files, sizes
        self._starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.size = sum(sizes)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        n = self._wanted(n)
        out = bytearray()
        while n > 0 and self._pos < self.size:
            i = max(k for k, s in enumerate(self._starts) if s <= self._pos)
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            chunk = f.read(min(n, self._sizes[i] - (self._pos - self._starts[i])))
            if not chunk:
                break
            out += chunk
            self._pos += len(chunk)
            n -= len(chunk)
        return bytes(out)

    def close(self) -> None:
        for f in self._files:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def split_segments(path: str) -> list[str] | None:
    """The pieces of the split raw image whose first piece is `path` (``x.001``, ``x.002``…), in order;
    None when `path` is not the first piece of at least two."""
    m = SPLIT.match(path)
    if m is None or int(m.group(2)) != 1:
        return None
    base, width = m.group(1), len(m.group(2))
    out = [path]
    while os.path.isfile(f"{base}.{len(out) + 1:0{width}d}"):
        out.append(f"{base}.{len(out) + 1:0{width}d}")
    return out if len(out) > 1 else None


def split_first(path: str) -> tuple[str, int] | None:
    """For a later piece (``x.002``…), the first piece's path and this piece's number; else None."""
    m = SPLIT.match(path)
    if m is None or int(m.group(2)) < 2:
        return None
    first = f"{m.group(1)}.{1:0{len(m.group(2))}d}"
    return (first, int(m.group(2))) if os.path.isfile(first) else None


def open_split(path: str) -> Concatenated:
    paths = split_segments(path) or [path]
    files = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed with the Concatenated
    return Concatenated(files, [os.fstat(f.fileno()).st_size for f in files])


def ewf_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    """An E01/Ex01 image: its media handed to The Sleuth Kit, its stored hashes checked."""
    item.meta["format"] = "ewf"
    if pyewf is None:
        item.error = ErrorRecord("unsupported", "E01 needs libewf's Python binding (libewf-python): not opened")
        yield item
        return
    extra: list = []
    try:
        files = [fobj]
        if item.path is not None:  # a file on disk: its other segments lie beside it (.E02, .E03…)
            names = pyewf.glob(item.path)
            extra = [open(p, "rb") for p in names[1:]]  # noqa: SIM115 - closed below
            files += extra
            item.meta["segments"] = len(names)
        handle = pyewf.handle()
        handle.open_file_objects(files, "r")
        size = handle.get_media_size()
        if size:
            handle.read_buffer_at_offset(1, size - 1)  # the last byte: libewf opens a set missing segments
    except (OSError, ValueError, RuntimeError) as exc:
        for f in extra:
            f.close()
        item.error = ErrorRecord("corrupt_container", f"E01 unreadable (missing segment or damaged): "
                                 f"{str(exc).strip()[:300]}")
        yield item
        return
    try:
        media = LibMedia(handle)
        item.meta["media_size"] = media.size
        if ctx.target is None:  # hashed in the one read of the media that also reads its files (`onepass`)
            media.one_pass = lambda it, got: _check(it, got, handle)
        yield from ctx.inner(item, media, media.size, "disk", depth)
    finally:
        handle.close()
        for f in extra:
            f.close()


def _check(item: Item, got: dict, handle) -> None:
    """The media hashes into the image's meta, compared with the ones the E01 stores from acquisition."""
    item.meta.update(got)
    stored = {k.lower(): v.lower() for k, v in (handle.get_hash_values() or {}).items() if v}
    checked = []
    for name, key in (("md5", "media_md5"), ("sha1", "media_sha1"), ("sha256", "media_sha256")):
        if stored.get(name):
            item.meta[f"stored_{name}"] = stored[name]
            checked.append(stored[name] == got[key])
    item.meta["hash_check"] = "none stored" if not checked else ("verified" if all(checked) else "mismatch")
    if checked and not all(checked):
        item.error = ErrorRecord("hash_mismatch", "the media does not hash to what the E01 stores from "
                                 "acquisition: damaged or altered image (its files are still listed)")


def ewf_segment_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context
                        ) -> Iterator[Item]:
    """A later E01 segment (``.E02``…): a record of the image it belongs to, opened with its first segment."""
    head = fobj.read(16)
    item.meta["format"] = "ewf"
    item.meta["segment"] = ewf_segment(head)
    yield item


def split_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    """A split raw image opened from its first piece: all pieces read as one disk image."""
    item.meta["format"] = "split raw"
    if isinstance(fobj, Concatenated):
        item.meta["segments"] = len(fobj._files)
    item.meta["media_size"] = size
    if ctx.target is None:
        fobj.one_pass = lambda it, got: it.meta.update(got)
    yield from ctx.inner(item, fobj, size, "disk", depth)


def split_piece(item: Item, first: str, number: int) -> Item:
    """A later piece of a split raw image met on its own: a record, read with the first piece."""
    item.container = True
    item.meta.update({"format": "split raw", "segment": number, "segment_of": os.path.basename(first)})
    return item


def _qcow_compressed(fobj: BinaryIO) -> str | None:
    """Whether a QCOW2 holds compressed clusters (``qemu-img convert -c``), from its L2 tables: libqcow
    (20260703) returns zeros for some of them, silently; such an image is refused rather than read wrong."""
    fobj.seek(0)
    h = fobj.read(48)
    if len(h) < 48:
        return None
    cluster_bits = int.from_bytes(h[20:24], "big")
    l1_size, l1_at = int.from_bytes(h[36:40], "big"), int.from_bytes(h[40:48], "big")
    if not 9 <= cluster_bits <= 21 or l1_size > 1 << 22:
        return None  # libqcow will say what is wrong with it
    fobj.seek(l1_at)
    l1 = fobj.read(8 * l1_size)
    mask = (1 << 56) - (1 << 9)
    for i in range(0, len(l1) - 7, 8):
        l2_at = int.from_bytes(l1[i:i + 8], "big") & mask
        if not l2_at:
            continue
        fobj.seek(l2_at)
        l2 = fobj.read(1 << cluster_bits)
        for j in range(0, len(l2) - 7, 8):
            if l2[j] & 0x40:  # bit 62: a compressed cluster
                return f"the first at guest byte {((i // 8) * (len(l2) // 8) + j // 8) << cluster_bits:#x}"
    return None


def vdisk_members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    """A VMDK, VHD or VHDX: its media handed to The Sleuth Kit, its media hash as the acquisition hash."""
    item.meta["format"] = kind
    if kind == "vmdk-extent":
        item.meta["format"] = "vmdk"
        item.meta["segment"] = "extent"
        yield item  # read through the descriptor that names it
        return
    if (pyqcow if kind == "qcow" else pyvmdk) is None:
        need = "libqcow-python" if kind == "qcow" else "libvmdk-python and libvhdi-python"
        item.error = ErrorRecord("unsupported", f"{kind.upper()} disks need {need}: not opened")
        yield item
        return
    extra: list = []
    locked = False
    try:
        if kind == "qcow":
            compressed = _qcow_compressed(fobj)
            if compressed:
                item.error = ErrorRecord("unsupported", f"QCOW2 with compressed clusters ({compressed}): "
                                         "libqcow reads some of them as zeros; not opened rather than read wrong")
                yield item
                return
            handle = pyqcow.file()
            handle.open_file_object(fobj)
            locked = bool(handle.is_locked())
        elif kind == "vmdk":
            handle = pyvmdk.handle()
            handle.open_file_object(fobj)
            extents = [d.filename for d in handle.extent_descriptors]
            if item.path is not None:
                folder = os.path.dirname(item.path)
                extra = [open(os.path.join(folder, os.path.basename(n)), "rb") for n in extents]  # noqa: SIM115
                handle.open_extent_data_files_as_file_objects(extra)
            else:  # inside an archive: only a monolithic sparse disk, its own extent
                handle.open_extent_data_files_as_file_objects([fobj])
            item.meta["segments"] = len(extents)
        else:
            handle = pyvhdi.file()
            handle.open_file_object(fobj)
        parent = handle.get_parent_filename() if hasattr(handle, "get_parent_filename") else (
            handle.get_backing_filename() if kind == "qcow" else None)
    except (OSError, ValueError, TypeError) as exc:
        for f in extra:
            f.close()
        item.error = ErrorRecord("corrupt_container", f"{kind.upper()} unreadable (missing extent or damaged): "
                                 f"{str(exc).strip()[:300]}")
        yield item
        return
    try:
        if parent:
            item.error = ErrorRecord("unsupported", f"differencing disk: its parent ({parent}) is needed")
            yield item
            return
        if locked:
            item.error = ErrorRecord("unsupported", "encrypted QCOW image: its password is needed")
            yield item
            return
        media = LibMedia(handle)
        item.meta["media_size"] = media.size
        if ctx.target is None:
            media.one_pass = lambda it, got: it.meta.update(got)
        yield from ctx.inner(item, media, media.size, "disk", depth)
    finally:
        handle.close()
        for f in extra:
            f.close()
