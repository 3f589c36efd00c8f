"""Extra PDQ hashes of a picture, so that altered copies of a known picture still match.

Plain PDQ survives re-encoding, resizing, blur and colour changes, but not mirrors,
90-degree rotations, borders, crops of 5 % or more, or a photo pasted into a screenshot
or collage. Each variant here is one more PDQ hash with a kind; the matcher compares
every query variant with every entry variant and keeps the best distance.

Query side, `compute_variants`:

* `hma_compat`: HMA's own hash of the file, for the picture modes HMA hashes otherwise than
  Vigie (palette indices, raw CMYK channels, 1-bit...; `vigie.signals.hma_compat`), so that
  lists hashed by HMA or python-threatexchange match;
* the seven non-identity dihedral transforms (`rot90` ... `transverse`), from one decode;
* `unbordered`: the picture with near-uniform borders of any colour removed, each side on
  its own (letterbox, pillarbox, asymmetric frames, JPEG noise tolerated); `unbordered-outer`
  when several frames were peeled: only the outermost removed (the inner "frame" may be the
  photo's own dark edge);
* `region`, `region2` ... `region6`: the photographs inside a screenshot, page or collage,
  found from the picture's layout (a recursive XY-cut on flat gaps and straight seams),
  largest first.

Entry side, `entry_variants` (bank entries whose media Vigie holds): `unbordered` plus the
central crops `crop95`, `crop90` and `crop80` (fraction of each side kept).

A derived variant is added only when it differs from the plain picture (no border found:
no `unbordered`) and when its PDQ quality is at least 50; the dihedral variants are not
computed for derived variants (see docs/variants.md for the measurements behind both).
Detection (`vigie.signals.layout`) runs on one shared downscaled copy (`Shrunk`); the turned, mirrored
and cropped hashes come from the full-resolution pixels in one pass each (`vigie.signals.pdq_grid`: the
same bits as PDQ of the turned or cropped picture in practice), unless `settings.variant_one_pass` is off
(docs/variants.md, "Cost").
"""

from __future__ import annotations

import time

import numpy as np

from vigie.signals.layout import (  # noqa: F401 - Box, MAX_REGIONS, find_* are known by these names here too
    _REGION_MAX_AREA,
    MAX_REGIONS,
    Box,
    Shrunk,
    _flat_lines_colour,
    _jumps,
    _may_seam,
    central_crop,
    find_border,
    find_borders,
    find_regions,
)
from vigie.signals.pdq import DIHEDRAL_KINDS, PdqHash, dihedral_rgb, hash_rgb

try:  # compiled scans and one-pass hashing of turned and cropped copies; numpy/pixel fallbacks without numba
    from vigie.signals import layout_numba, pdq_grid
except ImportError:  # pragma: no cover - numba is a dependency
    layout_numba = pdq_grid = None

#: Central crops of a bank entry: kind -> fraction of each side kept.
ENTRY_CROPS: dict[str, float] = {"crop95": 0.95, "crop90": 0.90, "crop80": 0.80}
#: Variants under this PDQ quality are not added (Meta's suggested floor): the bits of a flat
#: or near-flat picture are rounding noise, and its transforms would be bogus extra hashes.
MIN_VARIANT_QUALITY = 50


# ---------------------------------------------------------------------------------------------
# helpers


def _engine(settings) -> str:
    """The configured PDQ engine; `reference` (same bits) while the numba one is not importable."""
    engine = getattr(settings, "pdq_engine", "numba")
    if engine == "numba":
        try:
            from vigie.signals import pdq_numba  # noqa: F401
        except ImportError:
            return "reference"
    return engine


# ---------------------------------------------------------------------------------------------
# public API


def _add(out: list[dict], seen: set[str], kind: str, h: PdqHash, *, min_quality: int = 0) -> None:
    if h.hex in seen or h.quality < min_quality:
        return
    seen.add(h.hex)
    out.append({"kind": kind, "pdq": h.hex, "quality": h.quality})


def _add_derived(out: list[dict], seen: set[str], kind: str, rgb: np.ndarray, box: Box, engine: str,
                 derived_dihedral: bool, one_pass: bool) -> None:
    if box.height < 1 or box.width < 1:
        return
    if one_pass:  # sampled from the picture itself: no crop copied, no filter run over it
        b = (box.y0, box.y1, box.x0, box.x1)
        if derived_dihedral:
            hashes = pdq_grid.dihedral_hashes(rgb, b)
            if hashes["original"].quality < MIN_VARIANT_QUALITY:
                return
            for k in DIHEDRAL_KINDS:
                _add(out, seen, kind if k == "original" else f"{kind}-{k}", hashes[k])
        else:
            _add(out, seen, kind, pdq_grid.crop_hash(rgb, b), min_quality=MIN_VARIANT_QUALITY)
        return
    crop = box.crop(rgb)
    if derived_dihedral:
        hexes, quality = dihedral_rgb(crop, engine)
        if quality < MIN_VARIANT_QUALITY:
            return
        for k in DIHEDRAL_KINDS:
            name = kind if k == "original" else f"{kind}-{k}"
            _add(out, seen, name, PdqHash(hexes[k], quality))
    else:
        _add(out, seen, kind, hash_rgb(crop, engine), min_quality=MIN_VARIANT_QUALITY)


#: The pixel transform behind each dihedral kind, named as Meta's code names them (checked against
#: Meta's derived hashes on the bridge test photo: rot90 is a quarter turn anticlockwise, flipy mirrors
#: left-right, flipx top-bottom).
PIXEL_DIHEDRAL = {
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flipx": lambda a: a[::-1],
    "flipy": lambda a: a[:, ::-1],
    "transpose": lambda a: a.swapaxes(0, 1),
    "transverse": lambda a: np.rot90(a, 2).swapaxes(0, 1),
}


#: The same transforms work on a 2-D (luma) plane: they turn the first two axes only.
LUMA_DIHEDRAL = PIXEL_DIHEDRAL


def hma_variant(data: bytes | None, settings) -> dict | None:
    """HMA's own PDQ of the picture file as the variant `hma_compat`, when HMA hashes this picture's mode
    otherwise than Vigie (palette, CMYK, 1-bit, 16-bit grey...: `vigie.signals.hma_compat`) and its quality
    reaches MIN_VARIANT_QUALITY (python-threatexchange drops lower ones too); None otherwise, or when
    `settings.variant_hma_compat` is off."""
    if data is None or not getattr(settings, "variant_hma_compat", True):
        return None
    from vigie.signals.hma_compat import KIND, hma_pdq_bytes

    h = hma_pdq_bytes(data, engine=_engine(settings), max_pixels=getattr(settings, "max_pixels", 100_000_000),
                      alpha=getattr(settings, "alpha", "ignore"))
    if h is None or h.quality < MIN_VARIANT_QUALITY:
        return None
    return {"kind": KIND, "pdq": h.hex, "quality": h.quality}


class _Clock:
    """Adds the seconds since the last call to `timings[stage]` (nothing when `timings` is None)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.t = time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.t
            self.t = now


def one_pass_enabled(settings) -> bool:
    """Whether variants are hashed in one pass over the picture (`vigie.signals.pdq_grid`, the default) rather
    than by turning or cropping the pixels and running PDQ again (`settings.variant_one_pass` off)."""
    return pdq_grid is not None and bool(getattr(settings, "variant_one_pass", True))


def compute_variants(rgb: np.ndarray, settings, *, derived_dihedral: bool | None = None,
                     data: bytes | None = None, timings: dict[str, float] | None = None
                     ) -> tuple[PdqHash, list[dict]]:
    """The plain PDQ of a query picture and its variants, [{"kind", "pdq", "quality"}, ...].

    Kinds: `hma_compat` (HMA's hash of the file, when `data`, the file's bytes, is given and HMA hashes
    its mode otherwise: `hma_variant`), the seven non-identity dihedral transforms (when `settings.dihedral`),
    `unbordered` (`settings.variant_unbordered`), `region`, `region2`... (`settings.variant_region`).
    A variant whose hash equals the plain one (or an earlier variant) is left out.
    `derived_dihedral` also adds the dihedral transforms of `unbordered` and `region*`
    (kinds like `unbordered-rot90`); default `settings.variant_derived_dihedral`, else off
    (2.6 times the hashes per query, for mirrored-and-framed copies: docs/variants.md).
    `timings`, when given, receives the seconds spent per stage (`pdq`, `hma_compat`, `dihedral`,
    `border`, `region`), added to what it holds.

    The plain hash is Meta's PDQ bit for bit (`settings.pdq_engine`). The variants are hashed in one pass
    over the picture each (`vigie.signals.pdq_grid`: PDQ's filter sampled where the turned or cropped
    picture would put it; the same bits in practice, docs/variants.md) unless `settings.variant_one_pass`
    is off; border and region detection share one downscaled copy (`Shrunk`).
    """
    engine = _engine(settings)
    clock = _Clock(timings)
    if derived_dihedral is None:
        derived_dihedral = bool(getattr(settings, "variant_derived_dihedral", False))
    one_pass = one_pass_enabled(settings)
    want_border = getattr(settings, "variant_unbordered", True)
    want_region = getattr(settings, "variant_region", True)
    out: list[dict] = []
    plain = hash_rgb(rgb, engine)
    seen = {plain.hex}
    clock("pdq")
    hma = hma_variant(data, settings)
    if hma is not None:
        _add(out, seen, hma["kind"], PdqHash(hma["pdq"], hma["quality"]))
    clock("hma_compat")
    # Hash the turned and mirrored pixels themselves (or, one pass, sample PDQ's filter exactly where the
    # turned picture puts it). Meta's dihedral hashes derived from the plain hash's DCT land 32-86 bits from
    # the real thing on finely textured photos (brick, grass, stars): on 145 real photographs that lost
    # 10-20 % of mirrors and rotations (bench/robustness.py).
    if getattr(settings, "dihedral", True) and plain.quality >= MIN_VARIANT_QUALITY:
        if one_pass:
            turned = pdq_grid.dihedral_hashes(rgb)
            for k in DIHEDRAL_KINDS[1:]:
                _add(out, seen, k, turned[k], min_quality=MIN_VARIANT_QUALITY)
        elif engine == "numba":  # turn the luma plane, not the colour picture: same hashes, less copying
            from vigie.signals import pdq_numba

            y = pdq_numba.luma(rgb)
            for k in DIHEDRAL_KINDS[1:]:
                _add(out, seen, k, pdq_numba.hash_luma(LUMA_DIHEDRAL[k](y)), min_quality=MIN_VARIANT_QUALITY)
        else:
            for k in DIHEDRAL_KINDS[1:]:
                _add(out, seen, k, hash_rgb(np.ascontiguousarray(PIXEL_DIHEDRAL[k](rgb)), engine),
                     min_quality=MIN_VARIANT_QUALITY)
    clock("dihedral")
    shrunk = Shrunk.of(rgb) if (want_border or want_region) and min(rgb.shape[:2]) >= 8 else None
    border = None
    if want_border and shrunk is not None:
        borders = find_borders(rgb, shrunk=shrunk)
        if borders:
            border = borders[-1]
            _add_derived(out, seen, "unbordered", rgb, border, engine, derived_dihedral, one_pass)
            if len(borders) > 1:  # peeled more than one frame: the outermost may be the photo itself
                _add_derived(out, seen, "unbordered-outer", rgb, borders[0], engine, derived_dihedral, one_pass)
    clock("border")
    if want_region and shrunk is not None:
        h, w = rgb.shape[:2]
        for i, box in enumerate(find_regions(rgb, shrunk=shrunk)):
            if border is not None and box.iou(border) > 0.95:
                continue  # the same picture as `unbordered`
            if box.area > _REGION_MAX_AREA * h * w:
                continue
            _add_derived(out, seen, "region" if i == 0 else f"region{i + 1}", rgb, box, engine,
                         derived_dihedral, one_pass)
    clock("region")
    return plain, out


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel `compute_variants` may call, on small generated
    pictures, so that the first real picture of a worker does not pay for it: the one-pass grids with and
    without the shared copy, the layout scans past the region gate, the crop hashes."""
    if pdq_grid is None or layout_numba is None:
        return
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    page = np.full((120, 160, 3), 240, dtype=np.uint8)
    page[40:88, 80:144] = photo  # a photo on a flat page: passes the gate, runs the XY-cut
    settings = type("S", (), {})()
    compute_variants(page, settings)
    compute_variants(photo, settings, derived_dihedral=True)
    layout_numba.shrink(page, 2)
    from vigie.signals import pdq_numba

    pdq_grid.dihedral_hashes(pdq_numba.luma(photo))
    _flat_lines_colour(page.astype(np.int16))
    _flat_lines_colour(page.astype(np.int16).transpose(1, 0, 2))
    _jumps(page.astype(np.int16)[:, :100])
    _may_seam(page.astype(np.int16))
    _may_seam(page.astype(np.int16).transpose(1, 0, 2))


def entry_variants(rgb: np.ndarray, settings, *, plain: str | None = None) -> list[dict]:
    """Variants of a bank entry whose media Vigie holds: `unbordered`, `crop95`, `crop90`, `crop80` (central
    crops of the picture) and, when a border was found, `unbordered-crop95`... (crops of the de-bordered picture).

    `settings.variant_unbordered` and `settings.variant_crops` switch them off. `plain`
    (the entry's own hash, when known) keeps a variant equal to it out of the list.
    """
    engine = _engine(settings)
    out: list[dict] = []
    seen = {plain} if plain else set()
    bases = [rgb]
    if getattr(settings, "variant_unbordered", True):
        border = find_border(rgb)
        if border is not None:
            # A flat strip (a sky, a dark edge) may be part of the photo, not a frame: crop both.
            bases = [rgb, border.crop(rgb)]
            _add(out, seen, "unbordered", hash_rgb(bases[1], engine), min_quality=MIN_VARIANT_QUALITY)
    if getattr(settings, "variant_crops", True):
        for i, base in enumerate(bases):
            for kind, frac in ENTRY_CROPS.items():
                crop = central_crop(base, frac)
                if crop.shape[0] >= 4 and crop.shape[1] >= 4:
                    name = kind if i == 0 else f"unbordered-{kind}"
                    _add(out, seen, name, hash_rgb(crop, engine), min_quality=MIN_VARIANT_QUALITY)
    return out
