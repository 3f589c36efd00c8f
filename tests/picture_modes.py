"""Generated (benign) pictures in every Pillow mode and the file formats that carry each one.

Used by the PDQ parity tests: the point is how each mode is turned into pixels, so every
picture is the same kind of photo-like field (vigie.demo.photo_like), converted and saved.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from vigie.demo import photo_like


def _save(img: Image.Image, fmt: str, **kw) -> bytes | None:
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt, **kw)
    except (OSError, ValueError, KeyError):
        return None  # this Pillow cannot write that mode in that format
    return buf.getvalue()


def _shuffled_palette(img: Image.Image, seed: int) -> Image.Image:
    """A palette picture whose palette order is random: indices then say nothing of the colours."""
    p = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    order = np.random.default_rng(seed).permutation(256)
    return p.remap_palette(order.tolist())


def pictures(seed: int, w: int = 240, h: int = 180) -> list[tuple[str, bytes]]:
    """(name, file bytes) for one seed: every mode Pillow reads, in the formats that store it."""
    rgb = photo_like(seed, w, h)
    a = np.asarray(rgb)
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = Image.fromarray(((xx * 255) // max(1, w - 1)).astype(np.uint8))
    grey = rgb.convert("L")
    g16 = np.asarray(grey).astype(np.uint16) * 257 - ((yy * 7) % 13).astype(np.uint16)
    out: list[tuple[str, bytes | None]] = [
        ("rgb.png", _save(rgb, "PNG")),
        ("rgb.jpg", _save(rgb, "JPEG", quality=90)),
        ("rgba.png", _save(Image.merge("RGBA", (*rgb.split(), alpha)), "PNG")),
        ("rgba.webp", _save(Image.merge("RGBA", (*rgb.split(), alpha)), "WEBP", lossless=True)),
        ("l.png", _save(grey, "PNG")),
        ("l.jpg", _save(grey, "JPEG", quality=90)),
        ("la.png", _save(Image.merge("LA", (grey, alpha)), "PNG")),
        ("p-adaptive.png", _save(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "PNG")),
        ("p-web.gif", _save(rgb.convert("P"), "GIF")),
        ("p-shuffled.png", _save(_shuffled_palette(rgb, seed), "PNG")),
        ("p-shuffled.gif", _save(_shuffled_palette(rgb, seed + 1), "GIF")),
        ("p-shuffled.bmp", _save(_shuffled_palette(rgb, seed + 2), "BMP")),
        ("p-transparent.png", _save(_shuffled_palette(rgb, seed + 3), "PNG", transparency=0)),
        ("1.png", _save(rgb.convert("1"), "PNG")),
        ("1.tif", _save(rgb.convert("1"), "TIFF")),
        ("1.bmp", _save(rgb.convert("1"), "BMP")),
        ("cmyk.jpg", _save(rgb.convert("CMYK"), "JPEG", quality=90)),
        ("cmyk.tif", _save(rgb.convert("CMYK"), "TIFF")),
        ("i16.png", _save(Image.frombytes("I;16", (w, h), g16.astype("<u2").tobytes()), "PNG")),
        ("i16-8bit-range.png", _save(Image.frombytes("I;16", (w, h), np.asarray(grey).astype("<u2").tobytes()),
                                     "PNG")),
        ("i16.tif", _save(Image.frombytes("I;16", (w, h), g16.astype("<u2").tobytes()), "TIFF")),
        ("i16b.tif", _save(Image.frombytes("I;16B", (w, h), g16.astype(">u2").tobytes()), "TIFF")),
        ("i32.tif", _save(Image.fromarray(g16.astype(np.int32)), "TIFF")),
        ("f.tif", _save(Image.fromarray((np.asarray(grey) / 255.0).astype(np.float32)), "TIFF")),
        ("ycbcr.tif", _save(rgb.convert("YCbCr"), "TIFF")),
        ("lab.tif", _save(rgb.convert("LAB"), "TIFF")),
        ("rgb-small.png", _save(Image.fromarray(a[:4, :4].copy()), "PNG")),
    ]
    return [(n, d) for n, d in out if d is not None]


def mode_of(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        return img.mode
