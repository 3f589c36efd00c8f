"""Where a resumed scan takes up the walk, without opening again what it had finished.

A scan's rows are its items in walk order (`seq`), so a scan resumed after `done` rows must skip the first
`done` items of `iter_items`. Skipping them by walking them again opened every container before that point
once more: every archive decompressed, every disk image's file systems listed and its unallocated space
carved, every plain file opened for its first bytes. On a 15 TB case resumed late that is most of the
evidence read again.

Here only the folders are walked again (`iter_entries`: names and `stat`, no file is opened). Each entry of
the walk is checked against the stored rows, read in `seq` order: the entry's own row must be the next one
(else the evidence is not what was scanned, and the caller falls back to walking every item again), and when
the next entry's own row is stored too, every row in between is this entry's members: it is skipped without
being opened. The entry at which the stored rows end is opened and its finished members skipped one by one,
as before. One case is ambiguous: a member's location can equal the next entry's (a container `a` beside a
file named `a!b.jpg`, with a member `b.jpg`); such an entry is opened and skipped item by item too. A row
that the scan suffixed because its location was another's already (``#dup2``, `vigie.ingest.names.DUP`) is
its walked location.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from vigie.ingest.containers import entry_items
from vigie.ingest.folders import iter_entries
from vigie.ingest.members import SEP, Item
from vigie.ingest.names import DUP_SUFFIX
from vigie.settings import Settings

#: Sizes of the rows last taken, kept so that an entry opened where the stored rows end has its members' sizes.
MAX_BACK = 100_000

#: `changed(location, stored_size, size_now, stored_mtime, mtime_now)`: a stored location whose size or time
#: the walk finds otherwise (`note_change`).
Changed = Callable[..., None]


def note_change(changed: Changed, location: str, stored: tuple, item: Item) -> None:
    """Tell `changed` when a stored row's `(size, mtime)` is not the walked item's: a size, or a modification
    time (seconds since 1970 from a file system, or a member's time as its archive gives it), known on both
    sides and not the same. A time is compared only with one of its kind: a tar's seconds are never compared
    with a zip's date text."""
    size, mtime = stored
    now = item.meta.get("mtime") if item.meta else None
    if (None not in (size, item.size) and size != item.size) or \
            (None not in (mtime, now) and type(mtime) is type(now) and mtime != now):
        changed(location, size, item.size, mtime, now)


class Diverged(Exception):
    """The walk does not give the stored locations: resume by walking every item again."""


def resumed_items(paths: list[str], settings: Settings, done: int, locations: Iterable[str | tuple],
                  changed: Changed | None = None) -> Iterator[Item]:
    """The items of `iter_items(paths, settings)` after the first `done`, given the locations of those `done`
    in order (or `(location, size)` or `(location, size, mtime)` tuples). Raises `Diverged` before yielding
    anything when the walk and the stored locations disagree. `changed(location, stored_size, size_now,
    stored_mtime, mtime_now)` is called for each walked entry or item whose stored size or time is not its
    own now (`note_change`: the same name, other content; the row stands, the run records it,
    `vigie.ingest.runs`)."""
    rows = _Rows(locations, done, changed)
    entries = iter_entries(list(paths))
    entry = next(entries, None)
    while entry is not None and rows.left:
        nxt = next(entries, None)
        if not _is(rows.peek(), entry.location):
            raise Diverged(f"row {rows.seq + 1} is {rows.peek()!r}, the walk gives {entry.location!r}")
        rows.check(entry)
        prefix = entry.location + SEP
        if nxt is None or not nxt.location.startswith(prefix):
            taken, whole = rows.skip_entry(nxt.location if nxt is not None else None, prefix)
            if whole:
                entry = nxt  # every row of this entry is stored: never opened
                continue
            items = entry_items(entry, settings)  # the stored rows end inside this entry: open it
            sizes = rows.last_states(taken)
            for n in range(taken):
                item = next(items, None)
                ok = item is not None and (item.location == entry.location if n == 0 else
                                           item.location.startswith(prefix))
                if not ok:
                    raise Diverged(f"{entry.location!r} gives other items than its {taken} stored rows")
                if n:
                    rows.compare(item, sizes[n])
            return _after(items, nxt, entries, settings)
        items = entry_items(entry, settings)  # ambiguous: a member may be named like the next entry
        for item in items:
            if not rows.left:
                return _after(itertools.chain((item,), items), nxt, entries, settings)
            if not _is(rows.peek(), item.location):
                raise Diverged(f"row {rows.seq + 1} is {rows.peek()!r}, the walk gives {item.location!r}")
            rows.check(item)
            rows.take()
        entry = nxt
    if rows.left:
        raise Diverged(f"the walk ended at row {rows.seq}, {rows.left} stored rows after it")
    return _after(None, entry, entries, settings)


def _is(row: str, walked: str) -> bool:
    """Whether a stored row is this walked location (a row suffixed for holding another's location included)."""
    return row == walked or (row.startswith(walked) and DUP_SUFFIX.fullmatch(row[len(walked):]) is not None)


def _after(rest: Iterator[Item] | None, entry: Item | None, entries: Iterator[Item], settings: Settings
           ) -> Iterator[Item]:
    if rest is not None:
        yield from rest
    while entry is not None:
        yield from entry_items(entry, settings)
        entry = next(entries, None)


class _Rows:
    """The stored locations (and sizes and times, when given), consumed in order; `left` counts those not
    consumed yet."""

    def __init__(self, locations: Iterable[str | tuple], done: int, changed: Changed | None = None) -> None:
        self._it = iter(locations)
        self._head: str | None = None
        self._state: tuple = (None, None)  # the head row's (size, mtime)
        self._changed = changed
        self._states: deque[tuple] = deque(maxlen=MAX_BACK)  # of the rows taken last, for `last_states`
        self.seq = 0
        self.left = done

    def peek(self) -> str:
        if self._head is None:
            head = next(self._it, None)
            if head is None:
                raise Diverged(f"{self.left} stored rows missing after row {self.seq}")
            if isinstance(head, tuple):  # (location, size) or (location, size, mtime)
                self._head, self._state = head[0], (head[1], head[2] if len(head) > 2 else None)
            else:
                self._head, self._state = head, (None, None)
        return self._head

    def check(self, item: Item) -> None:
        """Compare the item's size and time with the head row's."""
        if self._changed is not None:
            self.peek()
            self.compare(item, self._state)

    def compare(self, item: Item, stored: tuple) -> None:
        """Tell `changed` when the item's size or time is known and not the stored one."""
        if self._changed is not None:
            note_change(self._changed, item.location, stored, item)

    def last_states(self, n: int) -> list[tuple]:
        """The stored `(size, mtime)` of the last `n` rows taken, in order (unknown for those no longer kept)."""
        kept = list(self._states)[-n:]
        return [(None, None)] * (n - len(kept)) + kept

    def take(self) -> None:
        self.peek()
        self._states.append(self._state)
        self._head = None
        self.seq += 1
        self.left -= 1

    def skip_entry(self, following: str | None, prefix: str) -> tuple[int, bool]:
        """Consume an entry's own row and its members' (under `prefix`). Returns how many, and whether the row
        after them is `following`'s own (the entry is whole); False when the stored rows end first."""
        self.take()
        taken = 1
        while self.left:
            loc = self.peek()
            if following is not None and _is(loc, following):
                return taken, True
            if not loc.startswith(prefix):
                raise Diverged(f"row {self.seq + 1} is {loc!r}, outside {prefix!r} and not {following!r}")
            self.take()
            taken += 1
        return taken, False
