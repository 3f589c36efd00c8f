"""Plain records that flow between formats, banks and the store.

They hold no database state, so readers and writers of the exchange formats can be
tested without a store, and the store can load them without knowing any format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vigie.banks.verdict import Verdict


@dataclass
class EntryData:
    """One hash of one signal type, with what is known about it.

    `media_key` groups the hashes of one media item (a VICS Media record carries MD5,
    SHA-1 and PDQ of the same file), so an export can put them back together.
    `extra` keeps the fields Vigie does not use, so an export gives them back.
    """

    signal: str
    value: str
    verdict: Verdict | None = None
    tags: list[str] = field(default_factory=list)
    external_id: str | None = None
    note: str | None = None
    media_key: str | None = None
    extra: dict = field(default_factory=dict)
    added_by: str | None = None
    added_at: datetime | None = None
    #: True for a tombstone (an entry removed from its bank).
    removed: bool = False


@dataclass
class BankMeta:
    """What a format writes about the bank itself (names, VICS case fields, profile)."""

    name: str
    description: str = ""
    source: str = ""
    default_verdict: Verdict | None = None
    extra: dict = field(default_factory=dict)
