"""Signal types, one module each, registered by name.

Add a signal type by subclassing :class:`vigie.signals.base.SignalType` and
registering it here; banks, formats and matchers find it by `name`.
"""

from __future__ import annotations

from vigie.errors import InvalidHash
from vigie.signals.base import SignalType
from vigie.signals.md5 import Md5Signal
from vigie.signals.pdq import PdqSignal
from vigie.signals.sha1 import Sha1Signal
from vigie.signals.sha256 import Sha256Signal
from vigie.signals.vpdq import VpdqSignal

SIGNALS: dict[str, type[SignalType]] = {}


def register(signal: type[SignalType]) -> type[SignalType]:
    if signal.name in SIGNALS and SIGNALS[signal.name] is not signal:
        raise ValueError(f"signal type {signal.name!r} registered twice")
    SIGNALS[signal.name] = signal
    return signal


for _s in (Md5Signal, Sha1Signal, Sha256Signal, PdqSignal, VpdqSignal):
    register(_s)

#: Spellings seen in exported lists, mapped to our names.
ALIASES = {"pdq": "pdq", "photo_pdq": "pdq", "pdq_hash": "pdq", "md5": "md5", "video_md5": "md5",
           "photo_md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256", "vpdq": "vpdq",
           "video_vpdq": "vpdq"}


def get_signal(name: str) -> type[SignalType]:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return SIGNALS[key]
    except KeyError:
        raise InvalidHash(f"unknown signal type {name!r} (known: {', '.join(sorted(SIGNALS))})",
                          code="unknown_signal") from None


def infer_signal(value: str) -> type[SignalType]:
    """Guess the signal from a bare hex value. 64 characters are ambiguous (PDQ or SHA-256),
    so they are refused: the caller must say which."""
    v = value.strip().lower().removeprefix("0x")
    by_len = {32: Md5Signal, 40: Sha1Signal}
    if len(v) == 64:
        raise InvalidHash("64 hex characters may be PDQ or SHA-256: give the signal type",
                          code="ambiguous_signal")
    if len(v) not in by_len:
        raise InvalidHash(f"cannot tell the signal type of {value[:80]!r}")
    return by_len[len(v)]


def normalise(signal: str, value: str) -> tuple[str, str]:
    s = get_signal(signal)
    return s.name, s.normalise(value)


__all__ = ["SIGNALS", "SignalType", "get_signal", "infer_signal", "normalise", "register",
           "Md5Signal", "Sha1Signal", "Sha256Signal", "PdqSignal", "VpdqSignal"]
