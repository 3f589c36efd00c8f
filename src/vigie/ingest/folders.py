"""The folders of the evidence, walked the way a forensic tool walks them.

Everything under a source is listed once, sorted by name, and nothing is ever followed
out of it: a symbolic link is a `link` record with its target (``link_target``), never
opened, whether it points inside the evidence, outside it (``link_outside_evidence``) or
nowhere (``link_dangling``). A link given as a source itself is followed (the user named
it). FIFOs, devices and sockets are listed (`special_file`), never opened, so a walk never
hangs. Names that are not UTF-8 are escaped and flagged (`vigie.ingest.names`).

The walk is a generator: a seized drive holds millions of files, none of them in a list.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from vigie.errors import ErrorRecord
from vigie.ingest.members import Item
from vigie.ingest.names import escape, raw_hex


def located(path: str) -> tuple[str, dict]:
    """The location text of a path on disk, and the meta that flags a name that is not UTF-8."""
    loc, bad = escape(path)
    return loc, ({"name_not_utf8": True, "name_bytes": raw_hex(path)} if bad else {})


def iter_entries(paths: list[str]) -> Iterator[Item]:
    """One Item per entry under `paths`: regular files with `path` set (not read yet), the rest with an error."""
    roots = [os.path.realpath(p) for p in paths]
    for top in paths:
        loc, meta = located(top)
        try:
            st = os.stat(top)
        except OSError:
            if os.path.islink(top):
                yield _link(top, loc, meta, roots)
            else:
                yield Item(loc, path=top, meta=meta)  # the hasher reports a missing path with its code
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(top, roots, {(st.st_dev, st.st_ino)})
        elif stat.S_ISREG(st.st_mode):
            yield Item(loc, path=top, size=st.st_size, meta=_times(meta, st))
        else:
            yield _special(loc, meta)


def _walk(folder: str, roots: list[str], seen: set[tuple[int, int]]) -> Iterator[Item]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        loc, meta = located(folder)
        yield Item(loc, meta=meta, error=ErrorRecord("unreadable", f"cannot list folder: {exc.strerror or exc}"))
        return
    for e in entries:
        loc, meta = located(e.path)
        try:
            st = e.stat(follow_symlinks=False)
        except OSError as exc:
            yield Item(loc, meta=meta, error=ErrorRecord("unreadable", f"cannot stat: {exc.strerror or exc}"))
            continue
        if stat.S_ISLNK(st.st_mode):
            yield _link(e.path, loc, meta, roots)
        elif stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen:  # a bind mount or a hard-linked folder: listed once
                yield Item(loc, meta=meta, error=ErrorRecord("duplicate_folder", "folder already visited through "
                                                             "another path: not walked again"))
                continue
            seen.add(key)
            yield from _walk(e.path, roots, seen)
        elif stat.S_ISREG(st.st_mode):
            yield Item(loc, path=e.path, size=st.st_size, meta=_times(meta, st))
        else:
            yield _special(loc, meta)


def _times(meta: dict, st: os.stat_result) -> dict:
    """A file's times as the file system gives them (seconds since 1970, UTC), read before it is opened."""
    return {**meta, "mtime": int(st.st_mtime), "atime": int(st.st_atime)}


def _special(loc: str, meta: dict) -> Item:
    return Item(loc, meta=meta, error=ErrorRecord("special_file", "not a regular file (FIFO, device or socket): "
                                                  "listed, not read"))


def _link(path: str, loc: str, meta: dict, roots: list[str]) -> Item:
    """A symbolic link as a record: its target, and whether that is inside the evidence or exists at all."""
    try:
        target = os.readlink(path)
    except OSError as exc:
        target = f"<unreadable: {exc.strerror or exc}>"
    shown = escape(target)[0]
    meta = dict(meta, link_target=shown)
    resolved = os.path.realpath(path)
    dangling = not os.path.lexists(resolved) or not os.path.exists(path)
    inside = any(resolved == r or resolved.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
    if dangling:
        meta["link_dangling"] = True
        why = "dangling: its target does not exist"
    elif not inside:
        meta["link_outside_evidence"] = True
        why = "its target is outside the evidence"
    else:
        why = "its target is inside the evidence and listed there"
    return Item(loc, meta=meta, error=ErrorRecord("link", f"symbolic link to {shown!r}: recorded, not followed "
                                                  f"({why})"))
