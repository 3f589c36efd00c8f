"""PDQ, Meta's 256-bit perceptual hash of a picture's pixels.

Two engines compute it: `reference` calls Meta's own C++ through the `pdqhash`
package (exactly what HMA and python-threatexchange run) and `numba`, a faithful
re-implementation of the same float32 operations in the same order, several times
faster and bit-exact with the reference (tests compare both on every conformance
file and on generated images). The numba engine is the default.

Hex layout is python-threatexchange's: the first hex digit holds the highest bits,
bit k = 16*i + j is the DCT coefficient (i, j) above the median.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vigie.signals.base import SignalType, hamming_hex
from vigie.signals.pdq_types import DIHEDRAL_KINDS, PdqHash  # noqa: F401 - known by these names here


class PdqSignal(SignalType):
    name = "pdq"
    hex_length = 64
    fuzzy = True
    #: Meta's match rule: distance <= 31.
    default_threshold: ClassVar[int] = 31
    #: Below this quality a PDQ hash says little about the picture (pdq/README.md).
    quality_floor: ClassVar[int] = 50

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return hamming_hex(cls.normalise(a), cls.normalise(b))


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's bit vector (most significant first) to 64 hex characters."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8))
    return packed.tobytes().hex()


def hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value)


def luma_reference(rgb: np.ndarray) -> np.ndarray:
    """pdqhash's own grey conversion: float64 weighted sum, then float32."""
    return (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.float32)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 array, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def hash_rgb(rgb: np.ndarray, engine: str = "numba") -> PdqHash:
    """PDQ of an RGB uint8 image."""
    rgb = _check_rgb(rgb)
    if engine == "reference":
        import pdqhash

        bits, quality = pdqhash.compute(rgb)
        return PdqHash(bits_to_hex(bits), int(quality))
    from vigie.signals import pdq_numba

    return pdq_numba.hash_rgb(rgb)


def dihedral_rgb(rgb: np.ndarray, engine: str = "numba") -> tuple[dict[str, str], int]:
    """The hashes of the eight rotations and mirrors, from one decode and one filter pass."""
    rgb = _check_rgb(rgb)
    if engine == "reference":
        import pdqhash

        vectors, quality = pdqhash.compute_dihedral(rgb)
        return {k: bits_to_hex(v) for k, v in zip(DIHEDRAL_KINDS, vectors)}, int(quality)
    from vigie.signals import pdq_numba

    return pdq_numba.dihedral_rgb(rgb)
