"""PDQ variants: border removal, photo regions in screenshots, central crops, switches.

Only benign generated pictures (vigie.demo.photo_like and flat synthetic UI pages).
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vigie.demo import photo_like
from vigie.signals.pdq import PdqSignal, hash_rgb
from vigie.signals.variants import (
    Box,
    central_crop,
    compute_variants,
    entry_variants,
    find_border,
    find_regions,
)

THRESHOLD = 31
DIHEDRAL = {"rot90", "rot180", "rot270", "flipx", "flipy", "transpose", "transverse"}


def make_settings(**kw) -> SimpleNamespace:
    base = {"pdq_engine": "reference", "dihedral": True, "variant_unbordered": True,
            "variant_region": True, "variant_crops": True}
    return SimpleNamespace(**(base | kw))


def jpeg(img: Image.Image, quality: int = 85) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def framed(img: Image.Image, top: int, bottom: int, left: int, right: int, colour) -> Image.Image:
    w, h = img.size
    out = Image.new("RGB", (w + left + right, h + top + bottom), colour)
    out.paste(img, (left, top))
    return out


def ui_page(img: Image.Image, seed: int, area: float = 0.5) -> tuple[np.ndarray, Box]:
    """`img` pasted on a synthetic UI page (top bar, side panel, text-like stripes, icons)."""
    rng = np.random.default_rng(seed)
    pw, ph = img.size
    scale = (1 / area) ** 0.5
    fw, fh = round(pw * scale * 1.1), round(ph * scale / 1.1)
    page = Image.new("RGB", (fw, fh), (246, 246, 248))
    d = ImageDraw.Draw(page)
    x, y = fw - pw - 20, fh - ph - 10
    d.rectangle([0, 0, fw, 40], fill=(40, 60, 120))
    d.rectangle([0, 48, x - 12, fh], fill=(230, 232, 236))
    for row in range(60, fh - 20, 18):  # text-like stripes in the side panel
        cx = 8
        while cx < x - 40:
            ww = int(rng.integers(10, 50))
            d.rectangle([cx, row, min(cx + ww, x - 20), row + 8], fill=(50, 50, 50))
            cx += ww + 6
    for k in range(4):  # icons in the top bar
        d.ellipse([10 + 40 * k, 8, 34 + 40 * k, 32], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for row in range(y - 40, y - 12, 14):  # a caption above the photo
        d.rectangle([x, row, x + pw // 2, row + 7], fill=(60, 60, 60))
    page.paste(img, (x, y))
    return np.asarray(page), Box(y, y + ph, x, x + pw)


def best(query: list[str], entry: list[str]) -> int:
    return min(PdqSignal.distance(q, e) for q in query for e in entry)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return photo_like(7, 640, 480)


@pytest.fixture(scope="module")
def photo_entry(photo) -> tuple[str, list[str]]:
    rgb = np.asarray(photo)
    plain = hash_rgb(rgb, "reference").hex
    return plain, [plain] + [v["pdq"] for v in entry_variants(rgb, make_settings(), plain=plain)]


# --- border removal -----------------------------------------------------------------------------


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (200, 30, 40), (90, 160, 90)])
@pytest.mark.parametrize("sides", [(48, 48, 64, 64), (60, 60, 0, 0), (0, 0, 90, 90), (0, 70, 35, 0), (30, 0, 0, 0)])
def test_border_found_any_colour_any_side(photo, colour, sides):
    top, bottom, left, right = sides
    rgb = jpeg(framed(photo, top, bottom, left, right, colour))
    box = find_border(rgb)
    assert box is not None
    h, w = rgb.shape[:2]
    truth = Box(top, h - bottom, left, w - right)
    for got, want in zip((box.y0, box.y1, box.x0, box.x1), (truth.y0, truth.y1, truth.x0, truth.x1)):
        assert abs(got - want) <= 4, (box, truth)


def test_nested_frames_of_two_colours(photo):
    inner = framed(photo, 20, 20, 20, 20, (255, 255, 255))
    rgb = jpeg(framed(inner, 30, 30, 30, 30, (10, 10, 10)))
    box = find_border(rgb)
    assert box is not None and abs(box.y0 - 50) <= 4 and abs(box.x0 - 50) <= 4


def test_borderless_photos_have_no_unbordered_variant():
    for seed in range(8):
        rgb = np.asarray(photo_like(seed, 480 + 40 * seed, 360))
        assert find_border(rgb) is None
        _, variants = compute_variants(rgb, make_settings())
        assert "unbordered" not in {v["kind"] for v in variants}


def test_large_picture_border_in_full_resolution_pixels(photo):
    big = photo.resize((2600, 1950), Image.Resampling.BILINEAR)
    rgb = np.asarray(framed(big, 300, 300, 0, 0, (0, 0, 0)))  # letterbox, 2600 x 2550
    box = find_border(rgb)
    assert box is not None
    assert abs(box.y0 - 300) <= 6 and abs(box.y1 - 2250) <= 6 and box.x0 == 0 and box.x1 == 2600


# --- photo inside a screenshot -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_region_finds_photo_on_ui_page(seed):
    img = photo_like(100 + seed, 520, 390)
    page, truth = ui_page(img, seed)
    regions = find_regions(page)
    assert regions and regions[0].iou(truth) > 0.8, (regions, truth)


def test_region_after_jpeg(photo):
    page, truth = ui_page(photo, 5)
    regions = find_regions(jpeg(Image.fromarray(page), 80))
    assert regions and regions[0].iou(truth) > 0.8


# --- the variants are what make altered copies match ------------------------------------------------


def _alterations(photo: Image.Image) -> dict[str, np.ndarray]:
    w, h = photo.size
    return {
        "mirror": jpeg(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "rot90": jpeg(photo.transpose(Image.Transpose.ROTATE_90)),
        "border": jpeg(framed(photo, 48, 48, 64, 64, (255, 200, 0))),
        "letterbox": jpeg(framed(photo, 80, 80, 0, 0, (0, 0, 0))),
        "crop10": jpeg(photo.crop((32, 24, 32 + 576, 24 + 432))),
        "screenshot": ui_page(photo, 3)[0],
    }


@pytest.mark.parametrize("name", ["mirror", "rot90", "border", "letterbox", "crop10", "screenshot"])
def test_altered_copy_matches_only_through_variants(photo, photo_entry, name):
    rgb = _alterations(photo)[name]
    entry_plain, entry_all = photo_entry
    plain, variants = compute_variants(rgb, make_settings())
    assert PdqSignal.distance(plain.hex, entry_plain) > THRESHOLD  # plain PDQ misses it
    assert best([plain.hex] + [v["pdq"] for v in variants], entry_all) <= THRESHOLD  # variants find it


def test_variants_do_not_match_other_pictures(photo_entry):
    _, entry_all = photo_entry
    for seed in range(20, 30):
        img = photo_like(seed, 640, 480)
        for rgb in (np.asarray(img), ui_page(img, seed)[0], jpeg(framed(img, 40, 40, 40, 40, (0, 0, 0)))):
            plain, variants = compute_variants(rgb, make_settings())
            assert best([plain.hex] + [v["pdq"] for v in variants], entry_all) > THRESHOLD + 20


# --- shape of the output --------------------------------------------------------------------------


def test_output_shape_and_dihedral_kinds(photo):
    plain, variants = compute_variants(np.asarray(photo), make_settings())
    assert plain == hash_rgb(np.asarray(photo), "reference")
    kinds = [v["kind"] for v in variants]
    assert set(kinds) >= DIHEDRAL and "original" not in kinds
    assert len(set(kinds)) == len(kinds)
    for v in variants:
        assert set(v) == {"kind", "pdq", "quality"}
        assert len(v["pdq"]) == 64 and int(v["pdq"], 16) >= 0 and v["pdq"] != plain.hex


def test_entry_variants_kinds(photo):
    rgb = np.asarray(photo)
    kinds = [v["kind"] for v in entry_variants(rgb, make_settings())]
    assert kinds == ["crop95", "crop90", "crop80"]
    bordered = jpeg(framed(photo, 50, 50, 50, 50, (255, 255, 255)))
    kinds = [v["kind"] for v in entry_variants(bordered, make_settings())]
    assert kinds == ["unbordered", "crop95", "crop90", "crop80", "unbordered-crop95", "unbordered-crop90",
                     "unbordered-crop80"]


def test_central_crop():
    rgb = np.zeros((100, 200, 3), np.uint8)
    assert central_crop(rgb, 0.9).shape == (90, 180, 3)
    assert central_crop(np.zeros((1, 1, 3), np.uint8), 0.8).shape == (1, 1, 3)


# --- degenerate pictures ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 7), (5, 1), (3, 3), (16, 16), (300, 200), (1200, 1600)])
@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_and_tiny_pictures(shape, value):
    rgb = np.full(shape + (3,), value, np.uint8)
    assert find_border(rgb) is None
    assert find_regions(rgb) == []
    plain, variants = compute_variants(rgb, make_settings())
    assert len(plain.hex) == 64
    assert variants == []  # every dihedral transform of a uniform picture is the same hash
    assert entry_variants(rgb, make_settings()) == []


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 9), (7, 3)])
def test_tiny_noisy_pictures(shape):
    rgb = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    plain, variants = compute_variants(rgb, make_settings())
    assert all(not v["kind"].startswith(("unbordered", "region")) for v in variants)
    entry_variants(rgb, make_settings())


def test_near_uniform_picture_with_jpeg_noise_gives_no_empty_crop():
    img = Image.new("RGB", (400, 300), (120, 130, 140))
    ImageDraw.Draw(img).rectangle([198, 148, 201, 151], fill=(125, 130, 140))
    rgb = jpeg(img, 60)
    box = find_border(rgb)
    assert box is None or (box.height >= 4 and box.width >= 4)
    compute_variants(rgb, make_settings())


# --- switches -------------------------------------------------------------------------------------------


def test_switching_kinds_off(photo):
    page, _ = ui_page(framed(photo, 0, 0, 0, 0, 0), 1)
    rgb = np.asarray(framed(Image.fromarray(page), 40, 40, 40, 40, (0, 0, 0)))
    kinds = {v["kind"] for v in compute_variants(rgb, make_settings())[1]}
    assert kinds >= DIHEDRAL and "unbordered" in kinds and "region" in kinds

    kinds = {v["kind"] for v in compute_variants(rgb, make_settings(dihedral=False))[1]}
    assert not kinds & DIHEDRAL and "unbordered" in kinds
    kinds = {v["kind"] for v in compute_variants(rgb, make_settings(variant_unbordered=False))[1]}
    assert "unbordered" not in kinds and "region" in kinds
    kinds = {v["kind"] for v in compute_variants(rgb, make_settings(variant_region=False))[1]}
    assert not any(k.startswith("region") for k in kinds) and "unbordered" in kinds
    off = make_settings(dihedral=False, variant_unbordered=False, variant_region=False)
    plain, variants = compute_variants(rgb, off)
    assert variants == [] and plain == hash_rgb(rgb, "reference")

    assert [v["kind"] for v in entry_variants(rgb, make_settings(variant_crops=False))] == ["unbordered"]
    assert [v["kind"] for v in entry_variants(rgb, make_settings(variant_unbordered=False))] == \
        ["crop95", "crop90", "crop80"]


def test_real_settings_object(settings):
    """The project's Settings (engine numba, falling back to the same bits while it is missing)."""
    rgb = np.asarray(photo_like(3, 320, 240))
    plain, variants = compute_variants(rgb, settings)
    assert plain == hash_rgb(rgb, "reference")
    assert {v["kind"] for v in variants} >= DIHEDRAL


def test_derived_dihedral_is_opt_in(photo, photo_entry):
    _, entry_all = photo_entry
    rgb = jpeg(framed(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 48, 48, 64, 64, (0, 0, 255)))
    plain, variants = compute_variants(rgb, make_settings())
    assert not any("-" in v["kind"] for v in variants)
    assert best([plain.hex] + [v["pdq"] for v in variants], entry_all) > THRESHOLD
    plain, variants = compute_variants(rgb, make_settings(variant_derived_dihedral=True))
    assert "unbordered-flipx" in {v["kind"] for v in variants}
    assert best([plain.hex] + [v["pdq"] for v in variants], entry_all) <= THRESHOLD
