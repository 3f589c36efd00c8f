"""SHA256 of a file's bytes: the exact signal most hash lists carry."""

from vigie.signals.base import ExactSignal


class Sha256Signal(ExactSignal):
    name = "sha256"
    hex_length = 64
