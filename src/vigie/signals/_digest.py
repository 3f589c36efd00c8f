"""Streamed cryptographic digests of file bytes, shared by md5, sha1 and sha256.

All three are computed in one pass over the file, since reading dominates on
seized drives; each signal module exposes its own type for banks and matching.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

CHUNK = 1 << 20


def digests(stream: BinaryIO, names: tuple[str, ...] = ("md5", "sha1", "sha256")) -> tuple[dict[str, str], int]:
    """Hex digests of everything left in `stream`, and the number of bytes read."""
    hs = {n: hashlib.new(n) for n in names}
    size = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        for h in hs.values():
            h.update(chunk)
    return {n: h.hexdigest() for n, h in hs.items()}, size


def digests_of_bytes(data: bytes, names: tuple[str, ...] = ("md5", "sha1", "sha256")) -> dict[str, str]:
    return {n: hashlib.new(n, data).hexdigest() for n in names}
