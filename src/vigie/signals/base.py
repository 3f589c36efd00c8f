"""The signal-type extension point: one small class per kind of hash.

A signal type knows how to validate and normalise its values, how far apart two
values are, and (for content signals) how to compute itself. Matching and banks
only ever talk to this interface, so vPDQ and others slot in beside PDQ.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar

from vigie.errors import InvalidHash

_HEX = re.compile(r"^[0-9a-f]*$")


class SignalType(ABC):
    """A kind of hash. Subclasses set `name` and `hex_length` and implement `distance`."""

    name: ClassVar[str]
    hex_length: ClassVar[int]
    #: True when near (not only equal) values mean the same content.
    fuzzy: ClassVar[bool] = False

    @classmethod
    def normalise(cls, value: str) -> str:
        """Lower-case hex of the right length, or InvalidHash. Accepts upper case and a 0x prefix,
        since exported lists come in every spelling."""
        if not isinstance(value, str):
            raise InvalidHash(f"{cls.name}: expected a hex string, got {type(value).__name__}")
        v = value.strip().lower()
        if v.startswith("0x"):
            v = v[2:]
        if len(v) != cls.hex_length or not _HEX.match(v):
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise InvalidHash(f"{cls.name}: expected {cls.hex_length} hex characters, got {shown!r}")
        return v

    @classmethod
    def key(cls, value: str) -> str:
        """What the store indexes for a normalised value: the value itself, or for signals whose
        values are long (vPDQ frame lists) a digest of it, the value then kept beside it."""
        return value

    @classmethod
    def is_valid(cls, value: str) -> bool:
        try:
            cls.normalise(value)
        except InvalidHash:
            return False
        return True

    @classmethod
    @abstractmethod
    def distance(cls, a: str, b: str) -> int:
        """0 for the same content; larger is further apart."""


class ExactSignal(SignalType):
    """Cryptographic digests: equal or not."""

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if cls.normalise(a) == cls.normalise(b) else 1


def hamming_hex(a: str, b: str) -> int:
    """Hamming distance of two hex strings of equal length."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
