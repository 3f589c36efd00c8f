"""The EXIF thumbnail a JPEG carries: a second picture, where an edited or cropped photo's original survives.

Cameras and phones store a small JPEG (about 160x120) in the EXIF block (APP1, TIFF IFD1,
tags 0x0201 offset and 0x0202 length); editors often leave it as it was, so a picture cropped
or painted over may still show its original in the thumbnail. The scan yields it as a member of
the picture, ``photo.jpg!exif-thumbnail.jpg``, matched like any other picture (a thumbnail that
matches a known picture is evidence the picture was on the device).

Only the markers before the first scan (SOS) are read, and only the bytes of the APP1 block:
nothing is decoded here. A file on disk needs at most `HEAD` bytes read.
"""

from __future__ import annotations

import struct

#: Bytes of a JPEG read to find its EXIF block (APP1 is at most 64 KiB, after APP0 and maybe another APPn).
HEAD = 128 * 1024
#: The member name of an EXIF thumbnail, after ``!``.
NAME = "exif-thumbnail.jpg"


def _exif_block(data: bytes) -> bytes | None:
    """The TIFF structure of the first APP1 ``Exif`` segment, walking markers up to the first scan."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no EXIF before the pixels
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if length < 2:
            return None
        seg = data[i + 4:i + 2 + length]
        if marker == 0xE1 and seg[:6] == b"Exif\x00\x00":
            return seg[6:]
        i += 2 + length
    return None


def exif_thumbnail(data: bytes) -> bytes | None:
    """The JPEG thumbnail stored in a JPEG's EXIF IFD1, or None (no EXIF, no thumbnail, or not a JPEG)."""
    tiff = _exif_block(data)
    if tiff is None or len(tiff) < 8:
        return None
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    try:
        (ifd0,) = struct.unpack(order + "I", tiff[4:8])
        (n0,) = struct.unpack(order + "H", tiff[ifd0:ifd0 + 2])
        (ifd1,) = struct.unpack(order + "I", tiff[ifd0 + 2 + 12 * n0:ifd0 + 6 + 12 * n0])
        if ifd1 == 0 or ifd1 + 2 > len(tiff):
            return None
        (n1,) = struct.unpack(order + "H", tiff[ifd1:ifd1 + 2])
        tags = {}
        for k in range(min(n1, 256)):
            e = tiff[ifd1 + 2 + 12 * k:ifd1 + 14 + 12 * k]
            tag, typ, count = struct.unpack(order + "HHI", e[:8])
            value = struct.unpack(order + ("H" if typ == 3 else "I"), e[8:10] if typ == 3 else e[8:12])[0]
            tags[tag] = value
    except struct.error:
        return None
    off, length = tags.get(0x0201), tags.get(0x0202)
    if not off or not length or off + length > len(tiff):
        return None
    thumb = tiff[off:off + length]
    return thumb if thumb[:3] == b"\xff\xd8\xff" else None
