"""One sequential read of an evidence image's media serves its acquisition hash, its files and carving.

An E01 (or a VMDK, a VHD, a split raw image) used to be read through twice or more: once, in order,
to hash its media for the acquisition hash and the check against the hash stored at acquisition,
then again by The Sleuth Kit for every file, then again by carving for the unallocated space. On
a seized drive of several terabytes, inside compressed EWF chunks, each extra read is hours.

`MediaPass` reads the media once, from the first byte to the last, in `CHUNK` pieces:

- every piece goes into MD5, SHA-1 and SHA-256 (the acquisition hash);
- the files The Sleuth Kit listed (`plan_file`: an allocated file whose data lies in runs on the
  media, in increasing order) get their bytes as the pass crosses their runs, streamed into their
  `MemberSink` (held in memory under `max_file_bytes`, digests only past it, as for any member), and
  are yielded when their last run has gone by;
- carving's reads (`read`) are served from what the pass holds: carving asks in increasing order,
  and says with `release(pos)` that nothing before `pos` is needed again, so the pass holds at most a
  carving window plus the candidate being measured.

What cannot be read this way is read by The Sleuth Kit as before, while listing: resident and
compressed data (small NTFS files live in the MFT record), deleted files (TSK decides what of their
blocks is still theirs), fragments out of order, alternate data streams. The file system's own
structures are read by The Sleuth Kit while listing too (through its cache): that is the only part
of the media read twice. ``bytes_reread`` counts what the pass had to read again (a read behind it).
"""

from __future__ import annotations

import hashlib
import heapq
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

import pytsk3

from vigie.errors import ErrorRecord
from vigie.ingest.members import SEP, Context, Item, LimitExceeded, MemberSink, limit_item

#: Bytes read from the media at a time.
CHUNK = 4 << 20
#: Files handed to one pass at most (each waits in memory with its name, times and runs until the pass
#: reaches it, ~1 KiB): past it, a file is read through The Sleuth Kit while listing, as before (its blocks
#: are then read twice). A drive with more files is read once for the first `DEFER_MAX` of them.
DEFER_MAX = 250_000
_M = pytsk3
#: The attribute The Sleuth Kit reads as a file's content, per file system (else TSK_FS_ATTR_TYPE_DEFAULT).
_DATA = {"ntfs": int(_M.TSK_FS_ATTR_TYPE_NTFS_DATA), "hfs": int(_M.TSK_FS_ATTR_TYPE_HFS_DATA)}
_NOT_PLAIN = int(_M.TSK_FS_ATTR_COMP) | int(_M.TSK_FS_ATTR_ENC) | int(_M.TSK_FS_ATTR_RES)


def plan_file(f, fsname: str, block: int, base: int, size: int) -> list[tuple[int, int]] | None:
    """The runs of a file's content on the media, in file order: (media offset, bytes), offset -1 for a hole
    (sparse: zeros); None when the pass cannot give exactly what The Sleuth Kit would read (resident,
    compressed or encrypted data, filler runs, runs out of disk order, several content attributes)."""
    want = _DATA.get(fsname, int(_M.TSK_FS_ATTR_TYPE_DEFAULT))
    found = None
    try:
        for attr in f:
            a = attr.info
            if int(a.type) != want or a.name:
                continue
            if found is not None or not int(a.flags) & int(_M.TSK_FS_ATTR_NONRES) or int(a.flags) & _NOT_PLAIN:
                return None
            runs, at, last = [], 0, -1
            for run in attr:
                if not run.len:
                    continue
                if int(run.flags) & int(_M.TSK_FS_ATTR_RUN_FLAG_FILLER) or int(run.offset) * block != at:
                    return None
                n = int(run.len) * block
                if int(run.flags) & int(_M.TSK_FS_ATTR_RUN_FLAG_SPARSE):
                    runs.append((-1, n))
                else:
                    start = base + int(run.addr) * block
                    if start < last:
                        return None  # a fragment before the one it follows: the pass would have gone by
                    runs.append((start, n))
                    last = start + n
                at += n
            found = runs
    except (OSError, RuntimeError, AttributeError):
        return None
    if not found or sum(n for _, n in found) < size:
        return None
    return found


class _Pending:
    """A listed file waiting for the pass to cross its runs."""

    __slots__ = ("loc", "size", "deleted", "meta", "depth", "runs", "i", "pos", "left", "sink", "error")

    def __init__(self, loc: str, size: int, deleted: bool, meta: dict, depth: int, runs, ctx: Context):
        self.loc, self.size, self.deleted, self.meta, self.depth = loc, size, deleted, meta, depth
        self.runs, self.i, self.left = runs, 0, size
        self.pos = runs[0][0]
        self.sink: MemberSink | Context = ctx  # the context until the first bytes come: the sink is made then
        self.error: LimitExceeded | None = None

    def take(self, data) -> None:
        data = data[:self.left]
        self.left -= len(data)
        if not isinstance(self.sink, MemberSink):
            self.sink = MemberSink(self.sink, counted=False)
        if self.error is None:
            try:
                self.sink.write(bytes(data))
            except LimitExceeded as exc:
                self.error = exc

    def holes(self) -> None:
        """Zeros for the sparse runs at the current place (they have no bytes on the media)."""
        while self.i < len(self.runs) and self.runs[self.i][0] < 0 and self.left > 0:
            n = min(self.runs[self.i][1], self.left)
            while n > 0:
                k = min(n, CHUNK)
                self.take(bytes(k))
                n -= k
            self.i += 1
        if self.i < len(self.runs):
            self.pos = self.runs[self.i][0]

    def item(self) -> Item:
        try:
            if self.error is not None:
                raise self.error
            data = self.sink.finish() if isinstance(self.sink, MemberSink) else b""
        except LimitExceeded as exc:
            return limit_item(self.loc, exc, size=self.size, deleted=self.deleted, meta=self.meta)
        return Item(self.loc, size=self.size, data=data, deleted=self.deleted, meta=self.meta)


class MediaPass:
    """The one read of the media (see the module's docstring)."""

    def __init__(self, fobj: BinaryIO, size: int):
        self.f, self.size = fobj, size
        self.hashes = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
        self.end = 0  # bytes [0, end) read
        self.buf, self.buf_at = bytearray(), 0  # bytes [buf_at, end) held
        self.keep = 0  # nothing before this is read again
        self.heap: list[tuple[int, int, _Pending]] = []
        self.ready: deque[_Pending] = deque()
        self.bytes_reread = 0
        self._seq = 0
        self.deferred = 0

    def full(self) -> bool:
        """Whether `DEFER_MAX` files wait already (the next ones are read while listing)."""
        return self.deferred >= DEFER_MAX

    def defer(self, loc: str, size: int, deleted: bool, meta: dict, depth: int, runs, ctx: Context) -> None:
        self.deferred += 1
        p = _Pending(loc, size, deleted, meta, depth, runs, ctx)
        p.holes()
        self._queue(p)

    def _queue(self, p: _Pending) -> None:
        if p.left <= 0 or p.i >= len(p.runs):
            self.ready.append(p)
        else:
            self._seq += 1
            heapq.heappush(self.heap, (p.pos, self._seq, p))

    def advance(self, upto: int) -> None:
        """Read on, in order, up to byte `upto` (the end of the media at most)."""
        upto = min(upto, self.size)
        while self.end < upto:
            self.f.seek(self.end)
            chunk = self.f.read(min(CHUNK, self.size - self.end))
            if not chunk:
                raise OSError(f"the media ends at byte {self.end} of {self.size}")
            start = self.end
            for h in self.hashes:
                h.update(chunk)
            self.end += len(chunk)
            self._feed(start, chunk)
            if self.end <= self.keep:
                self.buf, self.buf_at = bytearray(), self.end
            else:
                self.buf += chunk
                self._trim()

    def _feed(self, start: int, chunk: bytes) -> None:
        end = start + len(chunk)
        view = memoryview(chunk)
        while self.heap and self.heap[0][0] < end:
            _, _, p = heapq.heappop(self.heap)
            rstart, rlen = p.runs[p.i]
            rend = rstart + rlen
            hi = min(rend, end)
            if p.pos < start and p.error is None:  # queued after the pass went by: never the case when listed first
                p.error = LimitExceeded("corrupt_container", "content not read: the pass had gone by")
            p.take(view[max(p.pos, start) - start:hi - start])
            p.pos = hi
            if hi == rend:
                p.i += 1
                p.holes()
            self._queue(p)

    def _trim(self) -> None:
        drop = min(self.keep, self.end) - self.buf_at
        if drop > 0:
            del self.buf[:drop]
            self.buf_at += drop

    def read(self, off: int, n: int) -> bytes:
        """Bytes [off, off + n) of the media for carving, from the pass (read on as far as needed)."""
        if off < self.buf_at:
            self.bytes_reread += n
            self.f.seek(off)
            return self.f.read(n)
        self.advance(off + n)
        return bytes(self.buf[off - self.buf_at:off - self.buf_at + n])

    def release(self, pos: int) -> None:
        """Nothing before media byte `pos` will be read again."""
        if pos > self.keep:
            self.keep = pos
            self._trim()

    def take_ready(self) -> Iterator[_Pending]:
        while self.ready:
            yield self.ready.popleft()

    def unfinished(self) -> Iterator[Item]:
        """Files whose runs the pass never reached (the media ended early): each an error."""
        while self.heap:
            _, _, p = heapq.heappop(self.heap)
            yield Item(p.loc, size=p.size, deleted=p.deleted, meta=p.meta,
                       error=ErrorRecord("corrupt_container", f"content unreadable: the media ends at byte "
                                         f"{self.end} of {self.size}"))

    def digests(self) -> dict:
        md5, sha1, sha256 = (h.hexdigest() for h in self.hashes)
        return {"media_md5": md5, "media_sha1": sha1, "media_sha256": sha256, "media_size": self.end}


def own_members(items: Iterator[Item], ctx: Context, owner: str) -> Iterator[Item]:
    """Name each item the image yields itself (``meta["member"]``, its name inside the image), not the members of
    its members: in one-pass mode the image's own item comes last, after them, so
    `vigie.ingest.containers` cannot name them from the order."""
    inside = [0]
    outer = ctx.expand

    def expand(item: Item, depth: int) -> Iterator[Item]:
        if inside[0] == 0:  # the image's own member, not one of a member's members
            item.meta.setdefault("member", item.location[len(owner) + len(SEP):])
        inside[0] += 1
        try:
            yield from outer(item, depth)
        finally:
            inside[0] -= 1

    ctx.expand = expand  # type: ignore[method-assign]
    try:
        for it in items:
            if inside[0] == 0:
                it.meta.setdefault("member", it.location[len(owner) + len(SEP):])
            yield it
    finally:
        ctx.expand = outer  # type: ignore[method-assign]
