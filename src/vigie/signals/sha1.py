"""SHA1 of a file's bytes: the exact signal most hash lists carry."""

from vigie.signals.base import ExactSignal


class Sha1Signal(ExactSignal):
    name = "sha1"
    hex_length = 40
