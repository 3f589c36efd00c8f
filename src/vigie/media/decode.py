"""Decode a picture into the RGB pixels PDQ expects, with limits against hostile files.

Conversion follows what HMA and python-threatexchange do (Pillow's `convert("RGB")`)
so that our PDQ hashes equal the ones in partners' banks, with two deliberate
differences that keep information Pillow would throw away:

* 16-bit samples are scaled to 8 bits (the high byte) instead of clipped at 255, so a
  16-bit picture hashes like its 8-bit version.
* Float images (TIFF "F") are scaled from 0..1 when they are in that range.

Alpha: by default the colour channels are hashed as stored and alpha is ignored,
exactly as HMA does (compositing moves PDQ by 60 bits on upstream's LA.png test
picture, so our hashes would no longer match HMA's). `alpha="composite"` composites
on a fixed background instead (settings.alpha_background, white by default).

EXIF orientation is not applied, as in HMA; rotated copies are found by dihedral
matching instead. Animated GIF/WebP/APNG: the first frame. Multi-page TIFF: the
first page.

JPEGs in YCbCr or grey (nearly all of them) are decoded by libjpeg-turbo straight into a numpy array
through simplejpeg: the same library Pillow decodes with, the same pixels to the last bit (checked on
every JPEG of the scan bench and Meta's conformance pictures, tests/test_decode_libraries.py), in 1/1.2 of
the time in a scanning process (1/1.6 in a plain loop), since Pillow decodes into its own four-byte pixels
in 64 KB pieces that are then packed again (on a scan of photographs, decoding is the largest single cost).
Likewise 8-bit RGB and RGBA PNGs (alpha ignored) through libspng (pyspng): the same pixels, a PNG being
lossless, in 60 % of Pillow's time. Anything else (CMYK, palettes, 16 bits, a file either library rejects or
warns about, one over the pixel limit) goes through Pillow, which decodes it or names what is wrong, as
before; libspng inflates some damaged data streams Pillow gives up on (docs/hashing.md, "Decoders").
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from vigie.errors import MediaError
from vigie.media.sniff import SNIFF_BYTES, sniff

try:
    import simplejpeg
except ImportError:  # pragma: no cover - a dependency; Pillow decodes every JPEG without it
    simplejpeg = None
try:
    import pyspng
except ImportError:  # pragma: no cover - a dependency; Pillow decodes every PNG without it
    pyspng = None

_heif_lock = threading.Lock()
_heif_ready = False


def _enable_heif() -> bool:
    """Register pillow-heif's opener once, on first use rather than at import."""
    global _heif_ready
    with _heif_lock:
        if not _heif_ready:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                _heif_ready = True
            except ImportError:
                return False
    return True


def _classify(exc: BaseException) -> MediaError:
    msg = str(exc) or type(exc).__name__
    low = msg.lower()
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, (Image.DecompressionBombError, MemoryError)):
        return MediaError(f"picture too large to decode: {msg}", code="too_large")
    if "truncated" in low or isinstance(exc, EOFError) or "premature end" in low:
        return MediaError(f"file ends early: {msg}", code="truncated")
    if isinstance(exc, UnidentifiedImageError):
        return MediaError(f"not a picture Vigie can decode: {msg}", code="corrupt")
    return MediaError(f"damaged picture: {msg}", code="corrupt")


def open_image(source: bytes | BinaryIO, *, max_pixels: int = 100_000_000) -> Image.Image:
    """Open (without decoding pixels) and check the size against `max_pixels`."""
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    head = fp.read(SNIFF_BYTES)
    fp.seek(0)
    mtype = sniff(head)
    if mtype is None:
        raise MediaError("not a picture: the bytes match no known image format", code="not_media")
    if not mtype.startswith("image/"):
        raise MediaError(f"{mtype} is not a still picture", code="not_image")
    if mtype in ("image/heif", "image/avif") and not _enable_heif():
        raise MediaError("HEIF support (pillow-heif) is not installed", code="unsupported")
    # Pillow's own bomb check uses a global limit; we apply ours, so lift Pillow's to at least ours.
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(fp)
            w, h = img.size
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a record, not a crash
        raise _classify(exc) from None
    if w <= 0 or h <= 0:
        raise MediaError(f"picture has no pixels ({w}x{h})", code="corrupt")
    if w * h > max_pixels:
        raise MediaError(f"picture of {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}",
                         code="too_large")
    return img


def to_rgb(img: Image.Image, *, alpha: str = "ignore", background: tuple[int, int, int] = (255, 255, 255)
           ) -> np.ndarray:
    """Pixels as an HxWx3 uint8 array, converted as described in the module docstring."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img)
        if mode == "I" and a.size and int(a.max()) > 65535:
            a = (a.astype(np.float64) * (255.0 / float(a.max()))).astype(np.uint8)
        else:
            a = (a.astype(np.uint32) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        finite = a[np.isfinite(a)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 and finite.min() >= 0.0 else 1.0
        a = np.clip(np.nan_to_num(a * scale), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if alpha == "composite" and (mode in ("RGBA", "LA", "PA", "RGBa", "La")
                                 or (mode == "P" and "transparency" in img.info)):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (*background, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")
    return rgb_array(img)


def rgb_array(img: Image.Image) -> np.ndarray:
    """An RGB picture's pixels as an HxWx3 uint8 array (read-only), the bytes of `np.asarray(img)`.

    `np.asarray` goes through `Image.tobytes`, which packs the pixels in 64 KB pieces and joins them: two copies
    of a camera photo's 36 MB. One call of the same raw packer into one buffer makes one (15 -> 7 ms on 12 MP,
    about a tenth of decoding it); any surprise from Pillow's encoder falls back to `np.asarray`."""
    w, h = img.size
    try:
        enc = Image._getencoder("RGB", "raw", ("RGB",))
        try:
            enc.setimage(img.im, (0, 0, w, h))
            _, err, data = enc.encode(w * h * 3 + 1)
        finally:
            enc.cleanup()
        if err == 1 and len(data) == w * h * 3:
            return np.frombuffer(data, np.uint8).reshape(h, w, 3)
    except Exception:  # noqa: BLE001, S110 - an encoder API change: the slower, public way below
        pass
    return np.asarray(img)


#: `decode_image(fast=True)`: JPEGs are decoded at the largest DCT reduction (1/2, 1/4, 1/8) that keeps this
#: many pixels a side, as Pillow's `draft` chooses it.
FAST_SIDE = 512


def _turbo_jpeg(data: bytes, max_pixels: int, fast: bool) -> np.ndarray | None:
    """A YCbCr or greyscale JPEG's pixels from libjpeg-turbo (simplejpeg), RGB uint8 as `to_rgb` gives them; None
    for anything it should not decode (other colour spaces, a size over `max_pixels`, any warning or error from
    libjpeg-turbo: strict mode), which the caller then decodes through Pillow."""
    try:
        h, w, space, _ = simplejpeg.decode_jpeg_header(data)
    except Exception:  # noqa: BLE001 - Pillow's path reports what is wrong with it
        return None
    if space not in ("YCbCr", "Gray") or h <= 0 or w <= 0 or h * w > max_pixels:
        return None
    size = (h, w)
    try:
        if fast and min(h, w) >= 2 * FAST_SIDE:  # the reduction Pillow's draft picks, so the same pixels
            with Image.open(io.BytesIO(data)) as img:
                img.draft("RGB", (FAST_SIDE, FAST_SIDE))
                size = (img.size[1], img.size[0])
        kw = {"min_height": size[0], "min_width": size[1]} if size != (h, w) else {}
        out = simplejpeg.decode_jpeg(data, colorspace="GRAY" if space == "Gray" else "RGB", **kw)
    except Exception:  # noqa: BLE001 - warnings and errors alike: Pillow decodes it or names the damage
        return None
    if out.shape[:2] != size:
        return None
    return np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out  # grey as Pillow's convert("RGB") gives it


def _spng_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """An 8-bit RGB or RGBA PNG's colour channels from libspng (pyspng), as `to_rgb` gives them with alpha ignored;
    None for any other PNG (palette, grey, 16 bits), a size over `max_pixels` (read from its header first) or any
    error, which the caller then decodes through Pillow."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour = data[24], data[25]
    if depth != 8 or colour not in (2, 6) or h <= 0 or w <= 0 or h * w > max_pixels:
        return None
    try:
        out = pyspng.load(data)
    except Exception:  # noqa: BLE001 - damaged: Pillow's path decodes it or names the damage
        return None
    if out.dtype != np.uint8 or out.shape != (h, w, 3 if colour == 2 else 4):
        return None
    return out if colour == 2 else np.ascontiguousarray(out[:, :, :3])


def _fast_path(source: bytes | bytearray | memoryview, max_pixels: int, fast: bool, alpha: str) -> np.ndarray | None:
    """The pixels from libjpeg-turbo or libspng when the picture is one they decode as Pillow does, else None."""
    data = source if isinstance(source, bytes) else bytes(source)
    kind = sniff(data[:SNIFF_BYTES])
    if kind == "image/jpeg" and simplejpeg is not None:
        return _turbo_jpeg(data, max_pixels, fast)
    if kind == "image/png" and pyspng is not None and alpha == "ignore":
        return _spng_png(data, max_pixels)
    return None


def decode_image(source: bytes | BinaryIO, *, max_pixels: int = 100_000_000, fast: bool = False,
                 alpha: str = "ignore", background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Decode the first frame of a picture to RGB uint8; MediaError with a stable code otherwise.

    `fast` lets JPEG decode at a reduced scale in the DCT domain (at least `FAST_SIDE` pixels
    a side): many times faster on camera photos, but it moves a few PDQ bits, so it is
    an explicit choice (bench/hash_bench.py reports how many).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        out = _fast_path(source, max_pixels, fast, alpha)
        if out is not None:
            return out
    img = open_image(source, max_pixels=max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fast and img.format == "JPEG":
                img.draft("RGB", (FAST_SIDE, FAST_SIDE))
            img.load()
            return to_rgb(img, alpha=alpha, background=background)
    except Exception as exc:  # noqa: BLE001
        raise _classify(exc) from None
    finally:
        img.close()
