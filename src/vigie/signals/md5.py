"""MD5 of a file's bytes: the exact signal most hash lists carry."""

from vigie.signals.base import ExactSignal


class Md5Signal(ExactSignal):
    name = "md5"
    hex_length = 32
