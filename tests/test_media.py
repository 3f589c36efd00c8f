"""Media reading: types from bytes, conversions that keep information, limits against hostile files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vigie.errors import MediaError
from vigie.media import decode_image, sniff
from vigie.signals.pdq import hash_rgb

import factory


@pytest.mark.parametrize("fmt,mtype", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"),
                                       ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("TIFF", "image/tiff")])
def test_sniff_and_decode_every_format(fmt, mtype):
    data = factory.save(factory.picture(5), fmt)
    assert sniff(data[:64]) == mtype
    rgb = decode_image(data)
    assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8


def test_heif_roundtrip():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    data = factory.save(factory.picture(6), "HEIF", quality=90)
    assert sniff(data[:64]) == "image/heif"
    a = decode_image(data)
    b = np.asarray(factory.picture(6))
    assert a.shape == b.shape
    assert (hash_rgb(a, "reference").hex != "0" * 64)


def test_type_comes_from_bytes_not_name(tmp_path):
    assert sniff(b"hello, this is text named .jpg") is None
    with pytest.raises(MediaError) as e:
        decode_image(b"hello, this is text named .jpg")
    assert e.value.code == "not_media"


def test_progressive_and_cmyk_jpeg():
    img = factory.picture(7)
    prog = decode_image(factory.save(img, "JPEG", progressive=True, quality=95))
    base = decode_image(factory.save(img, "JPEG", quality=95))
    from vigie.signals.base import hamming_hex

    assert hamming_hex(hash_rgb(prog, "reference").hex, hash_rgb(base, "reference").hex) <= 8
    cmyk = decode_image(factory.save(img.convert("CMYK"), "JPEG", quality=95))
    assert cmyk.shape == (240, 320, 3)
    assert hamming_hex(hash_rgb(cmyk, "reference").hex, hash_rgb(base, "reference").hex) <= 31


def test_sixteen_bit_grey_png_hashes_like_8bit():
    grey = np.asarray(factory.picture(8).convert("L"))
    h16 = hash_rgb(decode_image(factory.png_16bit_grey(grey)), "reference")
    h8 = hash_rgb(decode_image(factory.save(Image.fromarray(grey), "PNG")), "reference")
    assert h16 == h8 and h16.quality == 100


def test_sixteen_bit_rgb_png_hashes_like_8bit():
    rgb = np.asarray(factory.picture(9))
    assert np.array_equal(decode_image(factory.png_rgb16(rgb)), rgb)


def test_palette_and_alpha_follow_hma_by_default():
    img = factory.picture(10).convert("RGBA")
    arr = np.asarray(img).copy()
    arr[:, :160, 3] = 0  # left half transparent
    data = factory.save(Image.fromarray(arr), "PNG")
    ignored = decode_image(data)
    assert np.array_equal(ignored, arr[:, :, :3])  # as HMA: colour channels as stored
    composited = decode_image(data, alpha="composite", background=(255, 255, 255))
    assert (composited[:, :160] == 255).all()
    assert np.array_equal(composited[:, 160:], arr[:, 160:, :3])
    pal = decode_image(factory.save(factory.picture(11).convert("P"), "PNG"))
    assert pal.shape == (240, 320, 3)


def test_animated_gif_first_frame():
    first = np.asarray(Image.open(io.BytesIO(factory.animated_gif())).convert("RGB"))
    assert np.array_equal(decode_image(factory.animated_gif()), first)


def test_one_pixel_image():
    rgb = decode_image(factory.save(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert rgb.shape == (1, 1, 3)
    h = hash_rgb(rgb, "reference")
    assert len(h.hex) == 64


@pytest.mark.parametrize("make,code", [
    (lambda: b"", "not_media"),
    (lambda: factory.save(factory.picture(1), "JPEG")[:300], "truncated"),
    (lambda: factory.save(factory.picture(1), "PNG")[:200], "truncated"),
    (lambda: factory.corrupt_png_crc(factory.save(factory.picture(1), "PNG")), "corrupt"),
    (lambda: factory.png_header_only(60000, 60000), "too_large"),
    (lambda: factory.gif_huge_screen(), "too_large"),
    (lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "corrupt"),
    (lambda: b"GIF89a" + b"\xff" * 20, "corrupt"),
])
def test_hostile_inputs_give_a_code(make, code):
    with pytest.raises(MediaError) as e:
        decode_image(make(), max_pixels=100_000_000)
    assert e.value.code == code, e.value.message


def test_pixel_limit_is_configurable():
    data = factory.save(factory.picture(2), "PNG")
    decode_image(data, max_pixels=320 * 240)
    with pytest.raises(MediaError) as e:
        decode_image(data, max_pixels=320 * 240 - 1)
    assert e.value.code == "too_large" and "320x240" in e.value.message


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (641, 479), (4001, 3)])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK"])
def test_pixels_come_out_as_numpy_gives_them(size, mode):
    """The one-copy pixel export gives the bytes np.asarray gives, for every shape and for pictures converted
    from other modes (the PDQ conformance vectors check the hashes on top)."""
    from vigie.media.decode import rgb_array, to_rgb

    rng = np.random.default_rng(size[0] * 31 + size[1])
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    want = np.asarray(img.convert("RGB"))
    got = to_rgb(img)
    assert got.dtype == np.uint8 and got.shape == want.shape and np.array_equal(got, want)
    if mode == "RGB":
        assert np.array_equal(rgb_array(img), np.asarray(img))
