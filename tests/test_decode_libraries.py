"""JPEGs decoded by libjpeg-turbo through simplejpeg, and 8-bit RGB(A) PNGs by libspng through pyspng, give Pillow's
pixels to the last bit; every picture those paths should not take (CMYK, palettes, 16 bits, composited alpha,
damaged, too large) still goes through Pillow with the same result or error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vigie.demo import photo_like
from vigie.errors import MediaError
from vigie.media import decode as D

from conftest import CONFORMANCE


def pillow(data: bytes, **kw) -> np.ndarray:
    """`decode_image` with the simplejpeg and pyspng paths switched off: what Vigie decoded before them."""
    saved = D.simplejpeg, D.pyspng
    D.simplejpeg = D.pyspng = None
    try:
        return D.decode_image(data, **kw)
    finally:
        D.simplejpeg, D.pyspng = saved


def saved(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def jpeg(img: Image.Image, **kw) -> bytes:
    return saved(img, "JPEG", **kw)


def png(img: Image.Image, **kw) -> bytes:
    return saved(img, "PNG", **kw)


def outcome(decode, data: bytes) -> tuple[str, object]:
    """("ok", pixels) or ("error", its code)."""
    try:
        return "ok", decode(data)
    except MediaError as exc:
        return "error", exc.code


def spied(monkeypatch, module, name: str) -> list[bytes]:
    """The bytes each call of `module.name` (a decoder) was given, from now on."""
    seen: list[bytes] = []
    real = getattr(module, name)

    def spy(data, *a, **kw):
        seen.append(data)
        return real(data, *a, **kw)

    monkeypatch.setattr(module, name, spy)
    return seen


def taken(monkeypatch) -> list[bytes]:
    """Records which calls went through simplejpeg."""
    return spied(monkeypatch, D.simplejpeg, "decode_jpeg")


def spng_calls(monkeypatch) -> list[bytes]:
    """Records which calls went through pyspng."""
    return spied(monkeypatch, D.pyspng, "load")


BASE = photo_like(61, 640, 480)
NOISY = Image.fromarray(np.random.default_rng(62).integers(0, 256, (241, 333, 3), dtype=np.uint8))
CASES = {
    "420": (BASE, {"quality": 90}),
    "422": (BASE, {"subsampling": 1}),
    "444": (BASE, {"subsampling": 0, "quality": 100}),
    "progressive": (BASE, {"progressive": True}),
    "optimized": (BASE, {"optimize": True, "quality": 70}),
    "odd-size-noise": (NOISY, {"quality": 95}),
    "grey": (BASE.convert("L"), {}),
    "restart-markers": (BASE, {"restart_marker_blocks": 4}),
    "exif": (BASE, {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_simplejpeg_gives_pillows_pixels(name, monkeypatch):
    img, kw = CASES[name]
    data = jpeg(img, **kw)
    seen = taken(monkeypatch)
    got = D.decode_image(data)
    assert seen == [data]  # it took the fast path
    want = pillow(data)
    assert got.dtype == np.uint8 and got.shape == want.shape and got.shape[2] == 3
    assert np.array_equal(got, want)


def test_conformance_jpegs_decode_as_with_pillow():
    files = sorted(CONFORMANCE.glob("pdq/**/*.jpg")) if CONFORMANCE.exists() else []
    if not files:
        pytest.skip("Meta's conformance pictures not found")
    for f in files:
        data = f.read_bytes()
        assert np.array_equal(D.decode_image(data), pillow(data)), f.name


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("size", [(2100, 1500), (4032, 3024), (1024, 1024), (1023, 2000)])
def test_fast_reduced_decode_is_pillows_draft(size, mode, monkeypatch):
    data = jpeg(BASE.resize(size).convert(mode), quality=85)
    seen = taken(monkeypatch)
    got = D.decode_image(data, fast=True)
    want = pillow(data, fast=True)
    assert seen and got.shape == want.shape and np.array_equal(got, want)
    if min(size) >= 1024:
        assert min(got.shape[:2]) < min(size)  # reduced, as Pillow's draft reduces it


def test_cmyk_goes_through_pillow(monkeypatch):
    data = jpeg(BASE.convert("CMYK"))
    seen = taken(monkeypatch)
    got = D.decode_image(data)
    assert seen == [] and np.array_equal(got, pillow(data))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "header-only"])
def test_damaged_jpegs_get_the_same_error_or_pixels_as_before(damage, monkeypatch):
    data = jpeg(BASE, quality=90)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        mid = len(data) // 2
        data = data[:mid] + bytes(range(256)) * 8 + data[mid + 2048:]
    else:
        data = data[:600]
    want, got = outcome(pillow, data), outcome(D.decode_image, data)
    assert got[0] == want[0]
    if got[0] == "ok":
        assert np.array_equal(got[1], want[1])
    else:
        assert got[1] == want[1]


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_pixel_limit_is_read_from_the_header_before_decoding(kind, monkeypatch):
    data = jpeg(BASE) if kind == "jpeg" else png(BASE)
    seen = taken(monkeypatch) if kind == "jpeg" else spng_calls(monkeypatch)
    with pytest.raises(MediaError) as err:
        D.decode_image(data, max_pixels=640 * 480 - 1)
    assert err.value.code == "too_large" and seen == []


def rgba() -> Image.Image:
    img = BASE.convert("RGBA")
    a = np.asarray(img).copy()
    a[..., 3] = np.random.default_rng(63).integers(0, 256, a.shape[:2], dtype=np.uint8)
    return Image.fromarray(a)


PNGS = {
    "rgb": lambda: png(BASE),
    "rgb-fast": lambda: png(BASE, compress_level=1),
    "rgb-noise": lambda: png(NOISY, compress_level=9),
    "interlaced": lambda: _interlaced(),
    "rgba": lambda: png(rgba()),
    "rgb-trns": lambda: png(BASE, transparency=(0, 0, 0)),
}


def _interlaced() -> bytes:
    """An Adam7-interlaced PNG, written by hand (Pillow writes none)."""
    import struct
    import zlib

    a = np.asarray(NOISY.resize((37, 29)))
    h, w = a.shape[:2]
    raw = b""
    for y0, x0, dy, dx in ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
                           (1, 0, 2, 1)):
        sub = a[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)

    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name", sorted(PNGS))
def test_spng_gives_pillows_pixels(name, monkeypatch):
    data = PNGS[name]()
    seen = spng_calls(monkeypatch)
    got = D.decode_image(data)
    assert seen == [data]
    want = pillow(data)
    assert got.dtype == np.uint8 and got.flags.c_contiguous and got.shape == want.shape and got.shape[2] == 3
    assert np.array_equal(got, want)


@pytest.mark.parametrize("name,make,kw", [
    ("palette", lambda: png(BASE.convert("P")), {}),
    ("grey", lambda: png(BASE.convert("L")), {}),
    ("grey16", lambda: png(Image.fromarray(np.asarray(BASE.convert("L")).astype(np.uint16) * 257)), {}),
    ("rgba-composited", lambda: png(rgba()), {"alpha": "composite"}),
])
def test_other_pngs_go_through_pillow(name, make, kw, monkeypatch):
    data = make()
    seen = spng_calls(monkeypatch)
    got = D.decode_image(data, **kw)
    assert seen == [] and np.array_equal(got, pillow(data, **kw))


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte", "header-only", "bad-crc"])
def test_damaged_pngs_never_crash_and_truncation_is_named_as_before(damage):
    import struct

    data = bytearray(png(BASE))
    at = 8
    while data[at + 4:at + 8] != b"IDAT":
        at += 12 + struct.unpack(">I", data[at:at + 4])[0]
    end = at + 8 + struct.unpack(">I", data[at:at + 4])[0]
    if damage == "truncated":
        data = data[: (at + end) // 2]
    elif damage == "flipped-byte":
        data[end - 100] ^= 0x55
    elif damage == "header-only":
        data = data[:at]
    else:
        data[end] ^= 0xFF  # the IDAT's CRC, which Pillow does not check either
    data = bytes(data)
    want, got = outcome(pillow, data), outcome(D.decode_image, data)
    if damage == "flipped-byte" and got[0] == "ok":
        # libspng may inflate a damaged stream Pillow gives up on: its pixels are hashed as they decode
        assert got[1].shape == (480, 640, 3)
        return
    assert got[0] == want[0]
    assert (np.array_equal(got[1], want[1]) if got[0] == "ok" else got[1] == want[1])
