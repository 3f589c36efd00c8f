"""The bank-format extension point: a reader and a writer per exchange format.

A reader yields `(line, EntryData | RowError)` so that the importer decides what to
do with bad rows (refuse the whole file, or skip them with `--skip-invalid`): a
reader never raises for one bad row, only for a file it cannot read at all
(FormatError). After reading, `bank_meta` holds what the file said about the bank
(VICS case fields, profile), which an export writes back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import BinaryIO, ClassVar

from vigie.banks.records import BankMeta, EntryData
from vigie.errors import RowError

Row = tuple[int, "EntryData | RowError"]


class BankFormat(ABC):
    name: ClassVar[str]
    #: File name endings that suggest this format (a hint only; content decides).
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, signal: str | None = None, **options):
        #: The signal type for formats whose rows do not say it (plain text).
        self.signal = signal
        self.options = options
        self.bank_meta: dict = {}

    @abstractmethod
    def read(self, stream: BinaryIO) -> Iterator[Row]:
        """Yield every row of `stream` as an entry or a row error, streaming."""

    @abstractmethod
    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """Write `entries` (live ones; tombstones where the format can say so) and return how many."""
