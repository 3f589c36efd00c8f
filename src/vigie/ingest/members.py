"""What every container kind shares: the `Item` it yields, the limits it reads under, how it names members.

The container interface (see docs/scanning.md, "Containers"): a container kind is one module
with one function

    members(item, fobj, size, kind, depth, ctx) -> Iterator[Item]

that opens the container read from `fobj` (read-only, seekable), yields `item` first (with
an error when the container cannot be opened), then lists and reads its members in a stable
order, one `Item` each, and hands every member it read to `ctx.expand(member, depth + 1)`
so that a container inside it is opened too. Opening, listing and reading are one generator
because most formats are streams (tar.gz, solid 7z): a member can only be read in order.

The same function re-opens one member for review (`vigie.ingest.reopen`): `ctx.target` is
then the location wanted, and a kind skips reading the members `ctx.wants` rejects when it
can (random-access formats: zip, disk images). Nothing here imports a container kind, and
no container kind imports another: `vigie.ingest.containers` wires them together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from vigie.errors import ErrorRecord
from vigie.ingest.names import escape, raw_hex
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
    """One thing a scan hashes: a plain file (`path`), or a member held in memory (`data`).

    A member over max_file_bytes has no `data` but its `digests` (md5, sha1, sha256, size),
    computed while it streamed past, and its first bytes in `head` (to tell its type).
    """

    location: str
    size: int | None = None
    path: str | None = None
    data: bytes | None = None
    deleted: bool = False
    container: bool = False
    error: ErrorRecord | None = None
    meta: dict = field(default_factory=dict)
    digests: dict | None = None
    head: bytes | None = None


class LimitExceeded(Exception):
    """A member over a limit: its code (too_large, zip_bomb) and message go on its Item."""

    def __init__(self, code: str, message: str, *, stop: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.stop = stop  # the budget of the whole source is spent: nothing more is read from it
        self.digests: dict | None = None
        self.head: bytes | None = None


class Context:
    """Limits and the unpacked-bytes budget of one top-level source (nested containers included).

    `expand(item, depth)` opens a member that is itself a container and `inner(...)` reads one container's
    content as another kind (both set by `vigie.ingest.containers`); `target`, when set, is the one
    location being re-opened.
    """

    def __init__(self, settings: Settings, expand: Callable[[Item, int, Context], Iterator[Item]] | None = None,
                 target: str | None = None, inner: Callable[..., Iterator[Item]] | None = None):
        self.settings = settings
        self.unpacked = 0
        self.exhausted = False  # archive_max_total_bytes reached: no more archive members are read
        self._expand = expand
        self._inner = inner
        self.target = target

    def count(self, n: int) -> None:
        self.unpacked += n
        if self.unpacked > self.settings.archive_max_total_bytes:
            self.exhausted = True
            raise LimitExceeded("zip_bomb", f"more than archive_max_total_bytes "
                                f"({self.settings.archive_max_total_bytes}) unpacked from this source: "
                                "the rest of its archives is not read", stop=True)

    def expand(self, item: Item, depth: int) -> Iterator[Item]:
        if self._expand is None or not self.wants(item.location):
            yield item
            return
        yield from self._expand(item, depth, self)

    def inner(self, item: Item, fobj, size: int, kind: str, depth: int) -> Iterator[Item]:
        """Read `fobj` as a container of another `kind` for `item` (an E01's media as a disk image): a kind
        hands its content to another without importing it."""
        if self._inner is None:
            yield item
            return
        yield from self._inner(item, fobj, size, kind, depth, self)

    def wants(self, location: str) -> bool:
        """Whether the member at `location` must be read: always in a scan; when re-opening one location,
        only that location and the containers on its way."""
        t = self.target
        return t is None or t == location or t.startswith(location + SEP)

    def wants_under(self, prefix: str) -> bool:
        """Whether anything under the folder `prefix` (ending in ``/``) may be wanted."""
        return self.target is None or self.target.startswith(prefix)


class MemberSink:
    """Receives a member's bytes chunk by chunk, under the limits of `ctx`.

    `packed(n)` gives the packed bytes actually consumed behind `n` unpacked ones (ratio guard,
    checked while reading; never a size the archive declares); `counted` adds the bytes to the
    source's unpacked budget (archives; not disk images). Raises LimitExceeded (zip_bomb). Past
    max_file_bytes the bytes are no longer held: they are streamed into MD5/SHA-1/SHA-256 and
    `finish` raises too_large with the digests (and the first bytes) attached.
    """

    def __init__(self, ctx: Context, *, packed: Callable[[int], int | None] | None = None, counted: bool = True):
        self.ctx, self.packed, self.counted = ctx, packed, counted
        self.buf = bytearray()
        self.n = 0
        self.digests: list | None = None
        self.head = b""

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
            self.head = bytes(self.buf[:HEAD_BYTES]) if len(self.buf) >= HEAD_BYTES else \
                (bytes(self.buf) + chunk)[:HEAD_BYTES]
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
            exc.head = self.head
            raise exc
        return bytes(self.buf)


def too_many(location: str, ctx: Context) -> Item:
    """The item at which an archive passed `archive_max_entries`: it and the rest are not read."""
    n = ctx.settings.archive_max_entries
    return Item(location, error=ErrorRecord("too_many_entries", f"over archive_max_entries ({n}) entries: "
                                            "this one and the rest of the archive are not read"))


def damaged(container: Item, exc: BaseException | str) -> Item:
    """The record of damage met after the members listed before it (a stream cannot be read past it)."""
    return Item(f"{container.location}{SEP}<damaged>",
                error=ErrorRecord("corrupt_container", f"archive damaged after the members listed before: {exc}"))


def read_member(read: Callable[[int], bytes], ctx: Context, **kw) -> bytes:
    """Read a member through `read(n)` in chunks into a MemberSink (same keywords); its bytes."""
    sink = MemberSink(ctx, **kw)
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return sink.finish()
        sink.write(chunk)


def limit_item(location: str, exc: LimitExceeded, **kw) -> Item:
    """The Item of a member over a limit; a too-large one keeps the digests computed while it streamed."""
    item = Item(location, error=ErrorRecord(exc.code, exc.message), **kw)
    digests = exc.digests
    if digests:
        item.meta["digests"] = digests
        item.digests = digests
        item.head = exc.head
        item.size = digests["size"]
    return item


# -- names -------------------------------------------------------------------------------------

def safe_name(raw: str, *, backslash: bool = False) -> tuple[str, bool]:
    """A member name as a relative `/` path with no `..`, and whether the original was unsafe.

    Absolute names (``/etc/x``, ``C:\\x``) lose their root; ``..`` parts become ``__``: the
    location stays inside its container, and the original name is kept in meta by the caller.
    Bytes that are not UTF-8 are escaped (`vigie.ingest.names`); `member_meta` flags them.
    """
    name = raw.replace("\\", "/") if backslash else raw
    name = escape(name)[0]
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
    """A member's meta: the original name when it was unsafe or not UTF-8 (escaped, and its bytes in hex)."""
    meta = dict(meta or {})
    shown, not_utf8 = escape(raw)
    if unsafe:
        meta["unsafe_name"] = True
        meta["original_name"] = shown
    if not_utf8:
        meta["name_not_utf8"] = True
        meta["original_name"] = shown
        meta["name_bytes"] = raw_hex(raw)
    return meta
