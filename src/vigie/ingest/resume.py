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

#: `changed(location, stored_size, size_now)`: a stored location whose size the walk finds otherwise.
Changed = Callable[[str, "int | None", "int | None"], None]


class Diverged(Exception):
    """The walk does not give the stored locations: resume by walking every item again."""


def resumed_items(paths: list[str], settings: Settings, done: int, locations: Iterable[str | tuple[str, int | None]],
                  changed: Changed | None = None) -> Iterator[Item]:
    """The items of `iter_items(paths, settings)` after the first `done`, given the locations of those `done`
    in order (or `(location, size)` pairs). Raises `Diverged` before yielding anything when the walk and the
    stored locations disagree. `changed(location, stored_size, size_now)` is called for each walked entry or
    item whose stored size is not its size now (the same name, other content: the row stands, the run
    records it, `vigie.ingest.runs`)."""
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
            sizes = rows.last_sizes(taken)
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
    """The stored locations (and sizes, when given), consumed in order; `left` counts those not consumed yet."""

    def __init__(self, locations: Iterable[str | tuple[str, int | None]], done: int,
                 changed: Changed | None = None) -> None:
        self._it = iter(locations)
        self._head: str | None = None
        self._size: int | None = None
        self._changed = changed
        self._sizes: deque[int | None] = deque(maxlen=MAX_BACK)  # of the rows taken last, for `last_sizes`
        self.seq = 0
        self.left = done

    def peek(self) -> str:
        if self._head is None:
            head = next(self._it, None)
            if head is None:
                raise Diverged(f"{self.left} stored rows missing after row {self.seq}")
            self._head, self._size = head if isinstance(head, tuple) else (head, None)
        return self._head

    def check(self, item: Item) -> None:
        """Compare the item's size with the head row's."""
        if self._changed is not None:
            self.peek()
            self.compare(item, self._size)

    def compare(self, item: Item, stored: int | None) -> None:
        """Tell `changed` when the item's size is known and not the stored one."""
        if self._changed is not None and None not in (stored, item.size) and stored != item.size:
            self._changed(item.location, stored, item.size)

    def last_sizes(self, n: int) -> list[int | None]:
        """The stored sizes of the last `n` rows taken, in order (None for those no longer kept)."""
        kept = list(self._sizes)[-n:]
        return [None] * (n - len(kept)) + kept

    def take(self) -> None:
        self.peek()
        self._sizes.append(self._size)
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
