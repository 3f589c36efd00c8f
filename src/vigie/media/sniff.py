"""Tell a file's type from its first bytes, never from its name.

Seized drives hold pictures renamed to .dat or .txt and text renamed to .jpg; only
the bytes say what a file is.
"""

from __future__ import annotations

#: How many leading bytes `sniff` needs.
SNIFF_BYTES = 64


def is_media(media_type: str | None) -> bool:
    """Whether a media type (`sniff`'s answer) is a picture or a video: what is hashed for matching, queued for
    review and counted as media."""
    return bool(media_type) and media_type.split("/")[0] in ("image", "video")


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes, or None when it is not a known media type."""
    h = head
    if h.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return "image/webp"
    if h[:2] == b"BM" and len(h) >= 14:
        return "image/bmp"
    if h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heif"
        if brand == b"avif" or brand == b"avis":
            return "image/avif"
        if brand in (b"qt  ",):
            return "video/quicktime"
        if brand[:3] == b"3gp" or brand[:3] == b"3g2":
            return "video/3gpp"
        return "video/mp4"
    if h[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in h[:64] else "video/x-matroska"
    if h[:4] == b"RIFF" and h[8:12] == b"AVI ":
        return "video/x-msvideo"
    if h[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if h[:3] == b"FLV":
        return "video/x-flv"
    if h[:4] == b"\x00\x00\x01\x00":
        return "image/x-icon"
    return None


def is_image(media_type: str | None) -> bool:
    return bool(media_type) and media_type.startswith("image/")


def is_video(media_type: str | None) -> bool:
    return bool(media_type) and media_type.startswith("video/")
