"""Read one scanned location again, wherever it is: a plain file, or a member deep inside archives and disk images.

A scan holds no member bytes once it has hashed them (nothing is extracted, nothing is kept),
but an unknown picture must reach review with its media. Its location says how to find it
again: ``evidence/a.zip!dir/b.tgz!c.jpg`` is the file ``evidence/a.zip``, its member
``dir/b.tgz``, and that one's member ``c.jpg``; ``disk.dd!p2/Users/x/a.jpg`` a file of the
second partition of a disk image. `read_location` opens the outermost file on disk and walks
it with the very walkers the scan used (same names, same ``#2`` for repeated names, same
escaping of names that are not UTF-8, same limits), reading only what lies on the way:
members of a zip and files of a disk image that are not on the way are skipped unread;
streams (tar.gz, solid 7z) are read through up to the member.

The caller checks the bytes against the row's SHA-256 (`vigie.review.queue` does): a file
changed since the scan is never taken for the one scanned. Relative locations are read
relative to the current folder, as the scan was given them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator

from vigie.ingest.containers import from_path, new_context
from vigie.ingest.members import SEP, Item
from vigie.ingest.names import DUP_SUFFIX, os_path
from vigie.settings import Settings


def read_location(location: str, settings: Settings, sha256: str | None = None) -> bytes | None:
    """The bytes at a scan location, or None (gone, unreadable, over `settings.max_file_bytes`, not a file).

    A location can be read more than one way when names hold ``!`` (a file ``a!b.jpg`` beside a container ``a``
    with a member ``b.jpg``): given the `sha256` the scan recorded, every reading is tried until one has it.
    A location the scan suffixed because another item held it already (``#dup2``, `vigie.ingest.names.DUP`)
    is read as walked, without the suffix."""
    for loc in (location, DUP_SUFFIX.sub("", location)) if DUP_SUFFIX.search(location) else (location,):
        for data in _readings(loc, settings):
            if sha256 is None or hashlib.sha256(data).hexdigest() == sha256:
                return data
    return None


def _readings(location: str, settings: Settings) -> Iterator[bytes]:
    path = os_path(location)
    if _regular(path):
        data = _read_plain(path, settings.max_file_bytes)
        if data is not None:
            yield data
    for i, ch in enumerate(location):
        if ch != SEP:
            continue
        top = location[:i]
        top_path = os_path(top)
        if not _regular(top_path):
            continue
        yield from _read_members(top, top_path, location, settings)


def _regular(path: str) -> bool:
    """A regular file that is not a link (a scan never follows links below its sources)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def _read_plain(path: str, limit: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def _read_members(top: str, top_path: str, location: str, settings: Settings) -> Iterator[bytes]:
    """The bytes of every member of `top` walked to `location` (two when names hold ``!``; one as a rule)."""
    walk = from_path(Item(top, path=top_path), new_context(settings, target=location))
    try:
        for it in walk:
            if it.location == location and it.error is None and it.data is not None:
                yield it.data
    except Exception:  # noqa: BLE001 - a container that no longer opens: nothing to show, the item stays reviewable
        return
    finally:
        walk.close()


__all__ = ["read_location"]
