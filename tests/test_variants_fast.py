"""The cheap query variants: one-pass hashes of turned and cropped copies (vigie.signals.pdq_grid), the
compiled layout scans (vigie.signals.layout_numba), the region gate, and the per-stage timing.

Behaviour only (no timing): the one-pass hashes land where PDQ of the really turned or cropped picture
lands, the compiled scans decide as the numpy ones, and altered copies still match through compute_variants.
Only benign generated pictures.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vigie.demo import encode, photo_like
from vigie.signals import layout as G
from vigie.signals import layout_numba, pdq_grid, pdq_numba
from vigie.signals import variants as V
from vigie.signals.pdq import PdqSignal, hash_rgb

THRESHOLD = 31
DIHEDRAL = ("rot90", "rot180", "rot270", "flipx", "flipy", "transpose", "transverse")


def settings(**kw) -> SimpleNamespace:
    base = {"pdq_engine": "numba", "dihedral": True, "variant_unbordered": True, "variant_region": True,
            "variant_crops": True, "variant_one_pass": True}
    return SimpleNamespace(**(base | kw))


def jpeg(img: Image.Image | np.ndarray, quality: int = 85) -> np.ndarray:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def smooth_photo(seed: int, w: int = 480, h: int = 360) -> np.ndarray:
    """A photo-like picture with no straight edge and no flat line: colour waves, round blobs, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy = rng.uniform(0.5, 3.0, 2)
        img[:, :, c] = 128 + 80 * np.sin(xx / w * fx * 6.28 + c) * np.cos(yy / h * fy * 6.28 + 2 * c)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)
    for _ in range(6):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(10, 60))
        d.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return np.clip(np.asarray(pil, np.float32) + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def noise(seed: int, w: int, h: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


PICTURES = [
    ("photo", lambda: np.asarray(photo_like(1, 640, 480))),
    ("photo-tall", lambda: np.asarray(photo_like(2, 333, 517))),
    ("noise", lambda: noise(3, 300, 211)),  # the finest texture there is: where Meta's derived hashes fail
    ("blocks", lambda: noise(4, 86, 64).repeat(3, 0).repeat(3, 1)),
    ("64x64", lambda: noise(5, 64, 64)),
    ("tiny", lambda: noise(6, 7, 5)),
]


# --- one-pass hashes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name,make", PICTURES, ids=[p[0] for p in PICTURES])
def test_one_pass_turns_land_on_pdq_of_the_turned_picture(name, make):
    rgb = np.ascontiguousarray(make())
    got = pdq_grid.dihedral_hashes(rgb)
    for kind, turn in [("original", lambda a: a)] + [(k, V.PIXEL_DIHEDRAL[k]) for k in DIHEDRAL]:
        want = pdq_numba.hash_rgb(np.ascontiguousarray(turn(rgb)))
        assert PdqSignal.distance(got[kind].hex, want.hex) <= 2, (name, kind)
        assert abs(got[kind].quality - want.quality) <= 1, (name, kind)


def test_one_pass_turns_are_not_metas_derived_hashes():
    """On fine texture Meta's DCT-derived hashes are far from the turned picture's; ours are not."""
    rgb = noise(7, 512, 512)
    derived, _ = pdq_numba.dihedral_rgb(rgb)
    ours = pdq_grid.dihedral_hashes(rgb)
    want = pdq_numba.hash_rgb(np.ascontiguousarray(rgb[:, ::-1]))
    assert PdqSignal.distance(ours["flipy"].hex, want.hex) <= 2
    assert PdqSignal.distance(derived["flipy"], want.hex) > 20


@pytest.mark.parametrize("box", [(0, 480, 0, 640), (40, 440, 64, 600), (13, 200, 7, 333), (100, 164, 100, 164),
                                 (5, 11, 5, 12)])
def test_one_pass_crop_is_pdq_of_the_crop(box):
    rgb = np.asarray(photo_like(11, 640, 480))
    y0, y1, x0, x1 = box
    want = pdq_numba.hash_rgb(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    got = pdq_grid.crop_hash(rgb, box)
    assert PdqSignal.distance(got.hex, want.hex) <= 2
    assert abs(got.quality - want.quality) <= 1


def test_one_pass_works_on_a_luma_plane_too():
    rgb = np.asarray(photo_like(12, 320, 240))
    a = pdq_grid.dihedral_hashes(rgb)
    b = pdq_grid.dihedral_hashes(pdq_numba.luma(rgb))
    assert all(PdqSignal.distance(a[k].hex, b[k].hex) <= 2 for k in a)


def test_crops_too_small_to_hash_give_metas_zero_hash():
    rgb = noise(13, 50, 50)
    assert pdq_grid.crop_hash(rgb, (0, 4, 0, 50)).quality == 0
    assert pdq_grid.dihedral_hashes(rgb, (0, 50, 0, 3))["rot90"].hex == "0" * 64


# --- compute_variants with the one-pass hashes --------------------------------------------------


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_mirrored_and_rotated_photos_still_match(seed):
    img = photo_like(seed, 720, 480)
    original = hash_rgb(np.asarray(img)).hex
    for t in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_90,
              Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
              Image.Transpose.TRANSVERSE):
        plain, variants = V.compute_variants(jpeg(img.transpose(t)), settings())
        best = min(PdqSignal.distance(h, original) for h in [plain.hex] + [v["pdq"] for v in variants])
        assert best <= THRESHOLD, t


def test_one_pass_and_pixel_paths_give_the_same_variants():
    rgb = jpeg(photo_like(24, 640, 480))
    framed = np.asarray(Image.fromarray(rgb).crop((-40, -30, 680, 510)))  # black frame around it
    for pic in (rgb, np.ascontiguousarray(framed)):
        plain_a, fast = V.compute_variants(pic, settings())
        plain_b, slow = V.compute_variants(pic, settings(variant_one_pass=False))
        assert plain_a == plain_b  # the plain hash never changes: Meta's PDQ bit for bit
        slow_by_kind = {v["kind"]: v["pdq"] for v in slow}
        for v in fast:
            if v["kind"] in slow_by_kind:
                assert PdqSignal.distance(v["pdq"], slow_by_kind[v["kind"]]) <= 2, v["kind"]
        assert {v["kind"] for v in fast} >= {k for k in slow_by_kind if k in DIHEDRAL}


def test_framed_photo_still_gives_an_unbordered_variant_that_matches():
    img = photo_like(25, 640, 480)
    original = hash_rgb(np.asarray(img)).hex
    framed = Image.new("RGB", (760, 560), (250, 250, 250))
    framed.paste(img, (60, 40))
    _, variants = V.compute_variants(jpeg(framed), settings())
    unb = [v for v in variants if v["kind"] == "unbordered"]
    assert unb and PdqSignal.distance(unb[0]["pdq"], original) <= THRESHOLD


def screenshot(photo: Image.Image, seed: int) -> np.ndarray:
    """`photo` on a synthetic UI page about twice its area: a top bar, a side panel with text-like stripes."""
    rng = np.random.default_rng(seed)
    pw, ph = photo.size
    fw, fh = int(pw * 1.5), int(ph * 1.35)
    page = Image.new("RGB", (fw, fh), (246, 246, 248))
    d = ImageDraw.Draw(page)
    d.rectangle([0, 0, fw, 50], fill=(40, 60, 120))
    x, y = fw - pw - 24, fh - ph - 16
    d.rectangle([0, 60, x - 16, fh], fill=(228, 230, 236))
    for row in range(70, fh - 20, 20):
        cx = 10
        while cx < x - 60:
            ww = int(rng.integers(12, 50))
            d.rectangle([cx, row, min(cx + ww, x - 30), row + 9], fill=(50, 50, 50))
            cx += ww + 7
    page.paste(photo, (x, y))
    return np.asarray(page)


@pytest.mark.parametrize("size", [(560, 420), (1400, 1050)])  # the second: downscaled copies of 1/2 and 1/4
def test_screenshot_with_a_pasted_photo_yields_a_matching_region(size):
    photo = photo_like(26, *size)
    original = hash_rgb(np.asarray(photo)).hex
    _, variants = V.compute_variants(screenshot(photo, 1), settings())
    regions = [v for v in variants if v["kind"].startswith("region")]
    assert regions
    assert min(PdqSignal.distance(v["pdq"], original) for v in regions) <= THRESHOLD


# --- the region gate --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_gate_skips_region_detection_on_a_plain_photo(seed, monkeypatch):
    rgb = jpeg(smooth_photo(seed))
    small = G.Shrunk.of(rgb).region_copy(rgb)
    assert not G.may_hold_regions(small)

    def no_cut(*args, **kw):
        raise AssertionError("the XY-cut ran on a plain photo")

    monkeypatch.setattr(G, "_xy_cut", no_cut)
    assert G.find_regions(rgb) == []
    _, variants = V.compute_variants(rgb, settings())
    assert not any(v["kind"].startswith("region") for v in variants)


def test_gate_lets_screenshots_and_collages_through():
    shot = screenshot(photo_like(27, 400, 300), 2)
    assert G.may_hold_regions(G.Shrunk.of(shot).region_copy(shot))
    tiles = [smooth_photo(30 + k, 240, 180) for k in range(4)]
    collage = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])  # no gutter: only the seams
    collage = jpeg(collage)
    assert G.may_hold_regions(G.Shrunk.of(collage).region_copy(collage))
    assert G.find_regions(collage)


# --- compiled scans decide as the numpy ones ------------------------------------------------------


def layout_pictures() -> list[np.ndarray]:
    out = []
    for seed in range(3):
        a = np.asarray(photo_like(40 + seed, 200, 150)).astype(np.int16)
        a = a.copy()
        a[20:30] = (200, 200, 200)          # flat rows
        a[:, 50:53] = (10, 20, 30)          # flat columns
        a[100, 5:7] = 0                     # a flat row with strays
        a[100] = (90, 90, 90)
        a[100, 3] = 255
        out.append(a)
        out.append(a[7:120, 9:181])         # a box of it (a view, as the XY-cut passes)
    out.append(np.asarray(screenshot(photo_like(43, 200, 150), 3)).astype(np.int16))
    return out


def test_compiled_flat_lines_decide_as_numpy():
    for a in layout_pictures():
        for lines in (a, a.transpose(1, 0, 2)):
            want_flat, want_col = G._flat_lines_colour_np(lines)
            got_flat, got_col = G._flat_lines_colour(lines)
            assert np.array_equal(got_flat, want_flat)
            assert np.array_equal(got_col[want_flat], want_col[want_flat])


def test_compiled_jumps_and_photo_test_decide_as_numpy():
    for a in layout_pictures():
        for lines in (a, a.transpose(1, 0, 2)):
            assert np.allclose(G._jumps(lines), G._jumps_np(lines))
        assert G._photo_like(a) == G._photo_like_np(a)


def test_early_stopping_scans_answer_as_the_full_ones():
    """The gate's shortcuts (a line given up once it cannot reach the threshold; the gradient count stopped once
    settled) give the answers of the full counts, at every threshold around the ones the gate uses."""
    rng = np.random.default_rng(5)
    pictures = layout_pictures()
    for k in range(6):  # lines that jump on a chosen share of their length, the rest smooth
        a = np.full((60, 90, 3), 100, np.int16)
        a[30, : 15 * k] = 250
        a[:, 7] = rng.integers(0, 256, (60, 3))
        pictures += [a, a.transpose(1, 0, 2).copy()]
    for a in pictures:
        for lines in (a, a.transpose(1, 0, 2)):
            full = G._jumps_np(lines)
            for fill in (0.1, 0.25, 0.5, 0.75, 0.9):
                want = bool(full.size and (full >= fill).any())
                if G._transposed(lines):
                    got = layout_numba.any_jump_col(lines.transpose(1, 0, 2), G._SEAM_DIFF, fill)
                else:
                    got = layout_numba.any_jump_line(lines, G._SEAM_DIFF, fill)
                assert got == want, (lines.shape, fill)
        for dominant in (0.2, 0.5, 0.9):
            for busy in (0.05, 0.2, 0.6):
                G_dom, G_busy = G._REGION_MAX_DOMINANT, G._REGION_MIN_BUSY
                try:
                    G._REGION_MAX_DOMINANT, G._REGION_MIN_BUSY = dominant, busy
                    assert G._photo_like(a) == G._photo_like_np(a)
                finally:
                    G._REGION_MAX_DOMINANT, G._REGION_MIN_BUSY = G_dom, G_busy


def test_compiled_seam_scores_as_numpy():
    rng = np.random.default_rng(9)
    for n in (22, 23, 40, 97, 300):
        for _ in range(40):
            jump = rng.random(n) ** rng.choice([0.2, 1.0, 4.0])   # from mostly-jumping to mostly-smooth lines
            jump[rng.integers(0, n, 3)] = rng.choice([0.75, 1.0])  # seams, some exactly at the fill threshold
            glob = rng.random(n) if rng.random() < 0.5 else jump
            want = G._seam_np(n + 2, jump, glob)
            got = layout_numba.seam(jump, glob, n + 2, G._SEAM_FILL, G._SEAM_CONTRAST, G._SEAM_BALANCE,
                                    G._SEAM_GLOBAL, G._MIN_SEG // 2)
            assert (float(got[0]), int(got[1])) == want


def test_shrink_is_a_box_average():
    rgb = np.asarray(photo_like(44, 301, 203))
    for f in (2, 3, 5):
        got = layout_numba.shrink(rgb, f).astype(int)
        want = np.asarray(Image.fromarray(rgb).reduce(f)).astype(int)  # what the detectors used before
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (101, 7), (250, 333)])
def test_shrink_rounds_each_block_mean_half_up(shape):
    a = np.random.default_rng(sum(shape)).integers(0, 256, shape + (3,), dtype=np.uint8)
    for f in (1, 2, 3, 4, 13):
        h, w = shape
        want = np.empty((-(-h // f), -(-w // f), 3), np.int64)
        for by in range(want.shape[0]):
            for bx in range(want.shape[1]):
                blk = a[by * f:(by + 1) * f, bx * f:(bx + 1) * f].astype(np.int64)
                n = blk.shape[0] * blk.shape[1]
                want[by, bx] = (blk.sum(axis=(0, 1)) + n // 2) // n
        assert np.array_equal(layout_numba.shrink(a, f), want)
        assert np.array_equal(layout_numba.shrink(a.astype(np.int16), f), want)


# --- per-stage timing ---------------------------------------------------------------------------------


def test_compute_variants_reports_its_stages():
    t: dict[str, float] = {}
    V.compute_variants(np.asarray(photo_like(45, 320, 240)), settings(), timings=t)
    assert set(t) == {"pdq", "hma_compat", "dihedral", "border", "region"}
    assert all(v >= 0 for v in t.values())


def test_stage_times_covers_every_stage():
    from vigie.hashing import STAGES, stage_times
    from vigie.settings import Settings

    data = encode(photo_like(46, 320, 240), "JPEG")
    ms = stage_times(data, Settings(_env_file=None))
    assert set(ms) == set(STAGES) | {"total"}
    assert all(v >= 0 for v in ms.values())
    assert ms["total"] >= max(v for k, v in ms.items() if k != "total")
    plain_only = stage_times(data, Settings(_env_file=None), variants=False)
    assert plain_only["dihedral"] == plain_only["region"] == 0


def test_running_counts_answer_every_box_as_numpy():
    """The XY-cut asks each box for its flat lines and jumps from counts made once per picture."""
    rng = np.random.default_rng(0)
    for a in layout_pictures():
        a = np.ascontiguousarray(a)
        maps = G._Maps(a)
        h, w = a.shape[:2]
        boxes = [G.Box(0, h, 0, w), G.Box(20, 30, 0, w), G.Box(3, h - 2, 50, 53)]
        for _ in range(12):
            y0, x0 = int(rng.integers(0, h - 5)), int(rng.integers(0, w - 5))
            boxes.append(G.Box(y0, int(rng.integers(y0 + 3, h + 1)), x0, int(rng.integers(x0 + 3, w + 1))))
        for box in boxes:
            crop = box.crop(a)
            for axis, lines in ((0, crop), (1, crop.transpose(1, 0, 2))):
                want_flat, want_col = G._flat_lines_colour_np(lines)
                got_flat, got_col = maps.flat(box, axis)
                assert np.array_equal(got_flat, want_flat), (box, axis)
                assert np.array_equal(got_col[want_flat], want_col[want_flat])
                assert np.allclose(maps.jumps(box, axis), G._jumps_np(lines)), (box, axis)


def test_shared_copy_is_made_once_and_given_to_both_detectors(monkeypatch):
    """Border and region detection read one downscaled copy; the full picture is box-averaged once (here the
    region copy's factor, 4, is a multiple of the shared copy's, 2: it is made from the shared copy)."""
    img = photo_like(47, 1800, 1300)
    framed = Image.new("RGB", (2000, 1500), (255, 255, 255))
    framed.paste(img, (100, 100))
    rgb = jpeg(framed)
    calls = []
    real = layout_numba.shrink

    def counting(a, f):
        calls.append((a.shape, f))
        return real(a, f)

    monkeypatch.setattr(layout_numba, "shrink", counting)
    _, variants = V.compute_variants(rgb, settings())
    assert sum(1 for shape, _ in calls if shape[:2] == rgb.shape[:2]) == 1
    assert "unbordered" in {v["kind"] for v in variants}
    assert G.border_factor(rgb.shape) == 2 and G.border_factor((1024, 700, 3)) == 1


def test_warm_up_runs_and_leaves_results_unchanged():
    rgb = np.asarray(photo_like(48, 320, 240))
    before = V.compute_variants(rgb, settings())
    V.warm_up()
    assert V.compute_variants(rgb, settings()) == before


def test_compiled_border_depth_decides_as_numpy():
    rng = np.random.default_rng(1)
    pictures = [np.asarray(Image.fromarray(jpeg(photo_like(49, 300, 200))).crop((-30, -12, 345, 212)))]
    pictures.append(np.asarray(Image.fromarray(jpeg(photo_like(50, 240, 320))).crop((0, -40, 240, 320))))
    pictures.append(smooth_photo(51, 200, 150))
    for rgb in pictures:
        a = rgb.astype(np.int16)
        views = G._side_views(a)
        for side, view in views.items():
            n = view.shape[1]
            spans = [slice(0, n), slice(int(0.2 * n), int(0.8 * n)), slice(9, 4)]
            spans += [slice(int(x), int(x) + int(y)) for x, y in rng.integers(0, n // 2, (4, 2))]
            for span in spans:
                limit = view.shape[0] - 1
                assert G._depth(a, side, view, span, limit) == G._border_depth(view, span, limit), (side, span)


def test_compiled_border_depth_reads_pictures_in_place_as_their_int16_copy():
    """`find_border` of a small uint8 picture (a region's snap) reads it in place: the same depths and boxes as
    through the int16 copy, on views that are not contiguous (a crop) too."""
    framed = np.asarray(Image.fromarray(jpeg(photo_like(52, 300, 200))).crop((-30, -12, 345, 212)))
    page = np.full((400, 500, 3), 236, np.uint8)
    page[60:284, 80:420] = framed[:224, :340]
    for rgb in (framed, page, page[50:310, 70:430], page[::-1, ::-1]):
        a = rgb.astype(np.int16)
        for side, view in G._side_views(rgb).items():
            n = view.shape[1]
            for span in (slice(0, n), slice(int(0.2 * n), int(0.8 * n))):
                limit = view.shape[0] - 1
                assert G._depth(rgb, side, view, span, limit) == G._depth(a, side, G._side_views(a)[side], span,
                                                                          limit)
        assert G.find_borders(rgb) == G._peel(a, 1.0, 1.0, *rgb.shape[:2])
    assert G.find_border(page) is not None


@pytest.mark.parametrize("n", [5, 6, 63, 64, 65, 127, 128, 129, 300, 333, 449, 450, 511, 512, 640, 1000, 4032, 6000])
def test_compiled_kernels_are_numpys_to_the_last_bit(n):
    """The one-pass kernels and their inverse, built compiled for each new crop size, equal the numpy ones."""
    for got, want in zip(pdq_grid._kernels(n, False), pdq_grid._kernels_np(n, False)):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    for got, want in zip(pdq_grid._feeds(n, False), pdq_grid._feeds_np(n, False)):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_compiled_qualities_are_numpys():
    rng = np.random.default_rng(54)
    for scale in (1.0, 30.0, 255.0, 4000.0):
        g = (rng.random((2, 2, 64, 64)) * scale).astype(np.float32)
        got = pdq_grid._qualities(g.reshape(4, 64, 64))
        assert got.tolist() == [pdq_grid._quality(g[i, j]) for i in range(2) for j in range(2)]
