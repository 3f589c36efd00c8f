"""Media reading: type sniffing from bytes, decoding, and the limits that keep hostile files harmless."""

from vigie.media.decode import decode_image, open_image, to_rgb
from vigie.media.sniff import is_image, is_video, sniff

__all__ = ["decode_image", "open_image", "to_rgb", "sniff", "is_image", "is_video"]
