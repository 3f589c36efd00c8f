"""Walk the paths a user names, lazily, without ever hanging on a special file or a loop.

A seized drive holds millions of files: the walk is a generator (no list in memory),
follows symbolic links to folders only once per real folder (a loop is recorded,
not followed), and reports FIFOs, devices and sockets instead of opening them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Skipped:
    """A path that will not be hashed, with the reason as an error code."""

    path: str
    code: str
    message: str


def iter_files(paths: list[str], *, recursive: bool = False) -> Iterator[str | Skipped]:
    """Yield file paths to hash (regular files or paths whose trouble the hasher reports) and Skipped."""
    for top in paths:
        try:
            st = os.stat(top)
        except OSError:
            yield top  # the hasher reports missing or looping paths with their code
            continue
        if stat.S_ISDIR(st.st_mode) and recursive:
            yield from _walk(top, {(st.st_dev, st.st_ino)})
        else:
            yield top


def _walk(folder: str, seen: set[tuple[int, int]]) -> Iterator[str | Skipped]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(folder, "unreadable", f"cannot list folder: {exc.strerror or exc}")
        return
    for e in entries:
        try:
            is_link = e.is_symlink()
            st = e.stat(follow_symlinks=True)
        except OSError as exc:
            code = "symlink_loop" if exc.errno == 40 else "unreadable"
            yield Skipped(e.path, code, f"cannot follow: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen:
                yield Skipped(e.path, "symlink_loop" if is_link else "duplicate_folder",
                              "folder already visited through another path: not followed again")
                continue
            seen.add(key)
            yield from _walk(e.path, seen)
        elif stat.S_ISREG(st.st_mode):
            yield e.path
        else:
            yield Skipped(e.path, "special_file", "not a regular file (FIFO, device or socket): skipped")
