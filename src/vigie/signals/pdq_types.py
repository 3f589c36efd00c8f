"""The values PDQ engines share: a hash with its quality, and the names of the eight dihedral transforms.

Their own module so that the engines (`vigie.signals.pdq_numba`, pdqhash behind
`vigie.signals.pdq`) and the signal type import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The eight dihedral transforms, in the order Meta's code returns them.
DIHEDRAL_KINDS = ("original", "rot90", "rot180", "rot270", "flipx", "flipy", "transpose", "transverse")


@dataclass(frozen=True)
class PdqHash:
    hex: str
    quality: int
