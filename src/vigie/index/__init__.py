"""Matcher indexes: exact digests (`ExactIndex`) and PDQ range search (`FlatIndex`, `MIHIndex`).

Use `make_pdq_index(n_expected)` to get the right PDQ index for a bank's size and
`PdqIndex.load(path)` to reopen any saved one.
"""

from vigie.index.base import Matches, PdqIndex, best_per_id, hex_to_hashes
from vigie.index.exact import ExactIndex
from vigie.index.flat import FlatIndex
from vigie.index.mih import MIHIndex
from vigie.index.pdq import FLAT_MAX, make_pdq_index

__all__ = [
    "FLAT_MAX",
    "ExactIndex",
    "FlatIndex",
    "MIHIndex",
    "Matches",
    "PdqIndex",
    "best_per_id",
    "hex_to_hashes",
    "make_pdq_index",
]
