"""The bank-format extension point: a reader and a writer per exchange format.

A reader yields `(line, EntryData | RowError)` so that the importer decides what to
do with bad rows (refuse the whole file, or skip them with `--skip-invalid`): a
reader never raises for one bad row, only for a file it cannot read at all
(FormatError). After reading, `bank_meta` holds what the file said about the bank
(VICS case fields, profile), which an export writes back.

A writer never leaves an entry out silently: what its format cannot carry (a VICS Media
without an MD5, a tombstone in a format that cannot say "removed") is counted by reason
with a few examples in `left_out`, and :meth:`BankFormat.report` gives that to the CLI and
the API, which warn about it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import BinaryIO, ClassVar

from vigie.banks.records import BankMeta, EntryData
from vigie.errors import RowError

Row = tuple[int, "EntryData | RowError"]
#: How many left-out values a writer names per reason (the count is always exact).
MAX_EXAMPLES = 10


class BankFormat(ABC):
    name: ClassVar[str]
    #: File name endings that suggest this format (a hint only; content decides).
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, signal: str | None = None, **options):
        #: The signal type for formats whose rows do not say it (plain text).
        self.signal = signal
        self.options = options
        self.bank_meta: dict = {}
        #: Entries the last `write` left out, all reasons together.
        self.skipped = 0
        self.warnings: list[str] = []
        #: reason -> {"count": entries, "examples": the first few values or media keys}
        self.left_out: dict[str, dict] = {}

    def _start_write(self) -> None:
        self.skipped, self.warnings, self.left_out = 0, [], {}

    def leave_out(self, reason: str, what: str, n: int = 1) -> None:
        """Count `n` entries left out for `reason` (`what` names them: a value or a media key)."""
        self.skipped += n
        slot = self.left_out.setdefault(reason, {"count": 0, "examples": []})
        slot["count"] += n
        if len(slot["examples"]) < MAX_EXAMPLES:
            slot["examples"].append(what)

    def report(self) -> dict:
        """What the last `write` could not carry, for a warning: counts by reason, examples, other warnings."""
        return {"left_out": self.skipped, "left_out_by_reason": self.left_out, "warnings": list(self.warnings)}

    @abstractmethod
    def read(self, stream: BinaryIO) -> Iterator[Row]:
        """Yield every row of `stream` as an entry or a row error, streaming."""

    @abstractmethod
    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """Write `entries` (live ones; tombstones where the format can say so) and return how many."""
