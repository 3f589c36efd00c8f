"""The numba PDQ must equal Meta's C++ (the `pdqhash` package) bit for bit.

Every check computes the reference on the same pixels and compares; nothing is
hard-coded. Pictures are generated (noise, gradients, shapes) or the benign
conformance files under shared/conformance/pdq, read in place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vigie.signals import pdq_numba
from vigie.signals.pdq import DIHEDRAL_KINDS, bits_to_hex, luma_reference

CONFORMANCE_PDQ = Path(
    os.environ.get(
        "VIGIE_CONFORMANCE_PDQ",
        Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pdq",
    )
)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}


# ---------------------------------------------------------------- helpers


def reference(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return bits_to_hex(bits), int(quality)


def reference_dihedral(rgb: np.ndarray) -> tuple[dict[str, str], int]:
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return {k: bits_to_hex(v) for k, v in zip(DIHEDRAL_KINDS, vectors, strict=True)}, int(quality)


def assert_same(rgb: np.ndarray, dihedral: bool = True) -> None:
    ref_hex, ref_q = reference(rgb)
    got = pdq_numba.hash_rgb(rgb)
    assert (got.hex, got.quality) == (ref_hex, ref_q), f"hash_rgb differs on {rgb.shape}"
    if rgb.shape[0] > 0 and rgb.shape[1] > 0:
        got_l = pdq_numba.hash_luma(luma_reference(rgb))
        assert (got_l.hex, got_l.quality) == (ref_hex, ref_q), f"hash_luma differs on {rgb.shape}"
    if dihedral:
        ref_d, ref_dq = reference_dihedral(rgb)
        got_d, got_dq = pdq_numba.dihedral_rgb(rgb)
        assert list(got_d) == list(DIHEDRAL_KINDS)
        for kind in DIHEDRAL_KINDS:
            assert got_d[kind] == ref_d[kind], f"dihedral {kind} differs on {rgb.shape}"
        assert got_dq == ref_dq


def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def gradient(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    fx, fy, ph = rng.uniform(0.5, 6.0, 3), rng.uniform(0.5, 6.0, 3), rng.uniform(0, 6.3, 3)
    img = 127.5 + 120.0 * np.sin(fx * x + fy * y + ph)
    return np.clip(img, 0, 255).astype(np.uint8)


def shapes(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(6):
        colour = rng.integers(0, 256, 3)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.05, 0.4) * max(h, w)
        if rng.random() < 0.5:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        else:
            mask = (abs(yy - cy) < r / 2) & (abs(xx - cx) < r)
        img[mask] = colour
    return img


def photo_like(h: int, w: int, seed: int) -> np.ndarray:
    g = gradient(h, w, seed).astype(np.int16)
    s = shapes(h, w, seed + 1).astype(np.int16)
    n = np.random.default_rng(seed + 2).normal(0, 8, (h, w, 3))
    return np.clip((g + s) // 2 + n, 0, 255).astype(np.uint8)


GENERATORS = {"noise": noise, "gradient": gradient, "shapes": shapes, "photo": photo_like}

SIZES = [
    (1, 1), (2, 3), (1, 1000), (1000, 1), (4, 4), (4, 100), (100, 4), (5, 5), (5, 6), (6, 5),
    (7, 5000), (5000, 7), (16, 16), (63, 64), (64, 63), (64, 64), (65, 64), (64, 65), (100, 100),
    (127, 129), (128, 128), (129, 255), (256, 256), (257, 513), (300, 200), (480, 640), (1000, 1000),
    (1080, 1920),
]  # fmt: skip


# ---------------------------------------------------------------- generated pictures


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("kind", list(GENERATORS))
def test_generated_matches_reference(size: tuple[int, int], kind: str) -> None:
    h, w = size
    assert_same(GENERATORS[kind](h, w, seed=h * 7919 + w))


@pytest.mark.slow
@pytest.mark.parametrize("size", [(3000, 4000), (4000, 3000), (2999, 4001)])
def test_large_matches_reference(size: tuple[int, int]) -> None:
    h, w = size
    assert_same(photo_like(h, w, seed=h + w), dihedral=size == (3000, 4000))


def test_constant_and_extreme_pictures() -> None:
    for value in (0, 1, 128, 255):
        assert_same(np.full((50, 70, 3), value, dtype=np.uint8))
    img = np.zeros((200, 300, 3), dtype=np.uint8)
    img[::2, ::2] = 255  # checkerboard-like: large gradients everywhere
    assert_same(img)
    img = np.zeros((200, 300, 3), dtype=np.uint8)
    img[:, :, 1] = 255  # a single channel
    assert_same(img)


def test_non_contiguous_input() -> None:
    base = photo_like(301, 402, seed=5)
    for view in (base[::2, ::3], base[:, ::-1], base[10:200, 7:350], np.transpose(base, (1, 0, 2))):
        assert not view.flags["C_CONTIGUOUS"]
        assert_same(view, dihedral=False)


def test_dihedral_original_equals_plain_hash_except_64x64_shortcut() -> None:
    """pdqHash256FromFloatLuma takes a 64x64 picture as already downsampled; the dihedral
    entry point always filters. Both behaviours must be reproduced."""
    for size in ((64, 64), (64, 65), (200, 150)):
        img = noise(*size, seed=3)
        assert_same(img)
        ref_plain, _ = reference(img)
        ref_dih, _ = reference_dihedral(img)
        if size != (64, 64):
            assert ref_plain == ref_dih["original"]


def test_empty_picture_does_not_crash() -> None:
    """pdqhash raises IndexError on 0-pixel arrays; Meta's C++ would return the zero hash."""
    for shape in ((0, 0, 3), (0, 10, 3), (10, 0, 3)):
        got = pdq_numba.hash_rgb(np.zeros(shape, dtype=np.uint8))
        assert (got.hex, got.quality) == ("0" * 64, 0)
        hashes, quality = pdq_numba.dihedral_rgb(np.zeros(shape, dtype=np.uint8))
        assert set(hashes.values()) == {"0" * 64} and quality == 0


def test_tiny_pictures_match_reference_zero_hash() -> None:
    """Under 5 pixels in a dimension Meta returns the all-zero hash, quality 0; pdqhash
    does not crash on 1-pixel-high or -wide pictures."""
    for shape in ((1, 1), (1, 7), (7, 1), (4, 4), (4, 5000), (3000, 2)):
        img = noise(*shape, seed=1)
        assert reference(img) == ("0" * 64, 0)
        assert_same(img)


def test_rejects_wrong_input() -> None:
    with pytest.raises(ValueError):
        pdq_numba.hash_rgb(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError):
        pdq_numba.hash_rgb(np.zeros((10, 10, 4), dtype=np.uint8))
    with pytest.raises(ValueError):
        pdq_numba.hash_rgb(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        pdq_numba.hash_luma(np.zeros((10, 10, 3), dtype=np.float32))


# ---------------------------------------------------------------- property-based


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        dtype=np.uint8,
        shape=st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3)),
        elements=st.integers(0, 255),
    )
)
def test_hypothesis_small_arrays(rgb: np.ndarray) -> None:
    assert_same(rgb)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 700),
    w=st.integers(1, 700),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(sorted(GENERATORS)),
)
def test_hypothesis_generated_sizes(h: int, w: int, seed: int, kind: str) -> None:
    assert_same(GENERATORS[kind](h, w, seed))


# ---------------------------------------------------------------- conformance files


def _conformance_files() -> list[Path]:
    if not CONFORMANCE_PDQ.is_dir():
        return []
    return sorted(p for p in CONFORMANCE_PDQ.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def test_conformance_images() -> None:
    from PIL import Image

    files = _conformance_files()
    if not files:
        reason = f"no conformance pictures under {CONFORMANCE_PDQ}"
        print(reason)
        pytest.skip(reason)
    for path in files:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        try:
            assert_same(rgb)
        except AssertionError as exc:
            raise AssertionError(f"{path.relative_to(CONFORMANCE_PDQ)}: {exc}") from None


@pytest.mark.parametrize("shape", [(5, 5), (31, 200), (257, 129), (480, 640)])
def test_turning_the_luma_plane_gives_the_hash_of_the_turned_picture(shape):
    """compute_variants hashes rotations and mirrors from one luma plane: it must be bit-exact with hashing
    the turned colour picture."""
    from vigie.signals.variants import LUMA_DIHEDRAL, PIXEL_DIHEDRAL

    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape + (3,), dtype=np.uint8)
    y = pdq_numba.luma(rgb)
    for kind, turn in PIXEL_DIHEDRAL.items():
        want = pdq_numba.hash_rgb(np.ascontiguousarray(turn(rgb)))
        got = pdq_numba.hash_luma(LUMA_DIHEDRAL[kind](y))
        assert (got.hex, got.quality) == (want.hex, want.quality), kind
