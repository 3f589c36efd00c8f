"""Vigie: recognise known child-abuse material by its hashes so that no person has to see it again.

The library is the product; :mod:`vigie.cli` is a thin shell over it.
"""

__version__ = "0.1.0"
