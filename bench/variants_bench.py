"""Recall and false matches of PDQ variants on altered copies of benign generated pictures.

    python bench/variants_bench.py [--n 200] [--json] [--derived-dihedral]

Makes N photo-like originals (vigie.demo.photo_like, varied sizes and aspect ratios; no
real pictures anywhere), altered copies of each (re-encoding, resize, mirror, rotation,
borders, letterbox, centred crops and one at a random position, screenshots on a
synthetic UI page, a 2x2 collage of the original and three pictures not in the bank,
two combined alterations) and reports per alteration the recall at distance 31 of plain
PDQ (query plain vs entry plain) and of Vigie's variants (best over query variants x entry
variants), then false matches: every query's variants against every OTHER original's
entry variants.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vigie.demo import photo_like
from vigie.settings import Settings
from vigie.signals.pdq import hash_rgb
from vigie.signals.variants import compute_variants, entry_variants

THRESHOLD = 31
SIZES = [(640, 480), (480, 640), (800, 450), (450, 800), (600, 600), (720, 480), (512, 768), (960, 540),
         (400, 300), (1024, 768)]
FILLER_SEED = 1_000_000  # collage fillers: other pictures, never in the bank


def original(i: int) -> Image.Image:
    w, h = SIZES[i % len(SIZES)]
    return photo_like(i, w, h)


def jpeg(img: Image.Image, quality: int = 85) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def bordered(img: Image.Image, rng: np.random.Generator, frac: float = 0.10) -> Image.Image:
    w, h = img.size
    bx, by = round(w * frac), round(h * frac)
    out = Image.new("RGB", (w + 2 * bx, h + 2 * by), colour(rng))
    out.paste(img, (bx, by))
    return jpeg(out)


def letterboxed(img: Image.Image) -> Image.Image:
    """Fit into a frame of a very different shape with black bars (letterbox or pillarbox)."""
    w, h = img.size
    if w / h > 1.2:
        fw, fh = w, round(w * 1.0)  # wide picture in a square frame: bars above and below
    else:
        fw, fh = round(h * 16 / 9), h  # square or tall picture in 16:9: bars left and right
    out = Image.new("RGB", (fw, fh), (0, 0, 0))
    out.paste(img, ((fw - w) // 2, (fh - h) // 2))
    return jpeg(out)


def cropped(img: Image.Image, rng: np.random.Generator | None, frac: float) -> Image.Image:
    """Remove `frac` of each side's length: centred (rng None) or at a random position."""
    w, h = img.size
    cw, ch = round(w * (1 - frac)), round(h * (1 - frac))
    if rng is None:
        x0, y0 = (w - cw) // 2, (h - ch) // 2
    else:
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return jpeg(img.crop((x0, y0, x0 + cw, y0 + ch)))


def text_block(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rng: np.random.Generator,
               ink: tuple[int, int, int]) -> None:
    """Text-like stripes: lines of word-sized bars."""
    x0, y0, x1, y1 = box
    line_h = int(rng.integers(12, 22))
    glyph_h = max(4, line_h // 2)
    y = y0 + 4
    while y + glyph_h < y1 - 2:
        x = x0 + 4
        end = x1 - int(rng.integers(4, max(5, (x1 - x0) // 3)))
        while x < end:
            ww = int(rng.integers(10, 60))
            draw.rectangle([x, y, min(x + ww, end), y + glyph_h], fill=ink)
            x += ww + int(rng.integers(5, 9))
        y += line_h


def icons(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rng: np.random.Generator, n: int) -> None:
    x0, y0, x1, y1 = box
    for _ in range(n):
        s = int(rng.integers(14, 40))
        if x1 - x0 <= s + 2 or y1 - y0 <= s + 2:
            return
        x, y = int(rng.integers(x0, x1 - s)), int(rng.integers(y0, y1 - s))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x, y, x + s, y + s], fill=colour(rng))


def screenshot(img: Image.Image, rng: np.random.Generator, area: float) -> tuple[Image.Image, tuple]:
    """`img` pasted so that it fills `area` of a synthetic UI page; returns the page and the photo box.

    The page has a top bar, a side panel, flat panels, text-like stripes, small icons and
    sometimes a caption bar glued under the photo (no gap: found by its seam).
    """
    w, h = img.size
    a = float(rng.uniform(1.05, 1.0 / area / 1.05))
    b = 1.0 / area / a
    pw, ph = w, h
    fw, fh = round(pw * a), round(ph * b)
    dark = rng.random() < 0.4
    bg = tuple(int(v) for v in (rng.integers(15, 50, 3) if dark else rng.integers(225, 256, 3)))
    ink = (230, 230, 230) if dark else (40, 40, 40)
    page = Image.new("RGB", (fw, fh), bg)
    d = ImageDraw.Draw(page)
    x, y = int(rng.integers(0, fw - pw + 1)), int(rng.integers(0, fh - ph + 1))
    panel = tuple(int(v) for v in np.clip(np.array(bg) + rng.integers(-25, 25, 3), 0, 255))
    # top bar, side panel, bottom bar: the free space around the photo
    if y >= 20:
        d.rectangle([0, 0, fw, min(y - 6, 60)], fill=panel)
        icons(d, (4, 4, fw - 4, min(y - 6, 60) - 2), rng, 4)
        text_block(d, (fw // 3, 2, fw // 3 + fw // 4, min(y - 6, 60)), rng, ink)
    if x >= 30:
        d.rectangle([0, y, x - 8, fh], fill=panel)
        text_block(d, (4, y + 4, x - 12, fh - 4), rng, ink)
    if fw - (x + pw) >= 30:
        text_block(d, (x + pw + 8, y, fw - 4, fh - 4), rng, ink)
        icons(d, (x + pw + 8, y, fw - 4, fh - 4), rng, 2)
    if fh - (y + ph) >= 24:
        text_block(d, (x, y + ph + 6, x + pw, fh - 2), rng, ink)
    page.paste(img, (x, y))
    if rng.random() < 0.5 and fh - (y + ph) >= 30:  # caption bar glued under the photo
        cap_h = min(fh - (y + ph) - 2, max(12, ph // 16))
        d.rectangle([x, y + ph, x + pw - 1, y + ph + cap_h], fill=colour(rng))
        text_block(d, (x, y + ph, x + pw // 2, y + ph + cap_h), rng, ink)
    return page, (y, y + ph, x, x + pw)


def collage(img: Image.Image, rng: np.random.Generator, i: int) -> Image.Image:
    w, h = img.size
    cw, ch = w // 2, h // 2
    gutter = 4 if rng.random() < 0.5 else 0
    out = Image.new("RGB", (2 * cw + gutter, 2 * ch + gutter), (255, 255, 255))
    slot = int(rng.integers(0, 4))
    for k in range(4):
        tile = img if k == slot else photo_like(FILLER_SEED + 4 * i + k, cw, ch)
        out.paste(tile.resize((cw, ch), Image.Resampling.BILINEAR),
                  ((k % 2) * (cw + gutter), (k // 2) * (ch + gutter)))
    return jpeg(out)


def alterations(img: Image.Image, i: int) -> dict[str, Image.Image]:
    rng = np.random.default_rng(10_000 + i)
    w, h = img.size
    return {
        "jpeg_q70": jpeg(img, 70),
        "resize_50": jpeg(img.resize((w // 2, h // 2), Image.Resampling.BILINEAR)),
        "mirror": jpeg(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "rot90": jpeg(img.transpose(Image.Transpose.ROTATE_90)),
        "border_10": bordered(img, rng),
        "letterbox": letterboxed(img),
        "crop_5": cropped(img, None, 0.05),
        "crop_10": cropped(img, None, 0.10),
        "crop_15": cropped(img, None, 0.15),
        "crop_20": cropped(img, None, 0.20),
        "crop_10_offset": cropped(img, rng, 0.10),
        "screenshot_60": screenshot(img, rng, 0.60)[0],
        "screenshot_40": screenshot(img, rng, 0.40)[0],
        "screenshot_60_jpeg": jpeg(screenshot(img, rng, 0.60)[0], 80),
        "collage_2x2": collage(img, rng, i),
        "mirror+border_10": bordered(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), rng),
        "rot90+screenshot_60": screenshot(img.transpose(Image.Transpose.ROTATE_90), rng, 0.60)[0],
    }


def to_bits(hexes: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), np.uint64).reshape(len(hexes), 4)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(-1)


@dataclass
class Query:
    original: int
    alteration: str
    plain: str
    variants: list[str]
    kinds: list[str]


def run(n: int, derived_dihedral: bool = False) -> dict:
    settings = Settings(_env_file=None)
    t0 = time.perf_counter()
    entries_plain: list[str] = []
    entries_all: list[list[str]] = []
    queries: list[Query] = []
    t_entry = t_query = 0.0
    n_query = 0
    stages: dict[str, float] = {}  # seconds per stage of compute_variants, summed over the queries
    for i in range(n):
        img = original(i)
        rgb = np.asarray(img)
        t = time.perf_counter()
        p = hash_rgb(rgb, "reference").hex
        ev = entry_variants(rgb, settings, plain=p)
        t_entry += time.perf_counter() - t
        entries_plain.append(p)
        entries_all.append([p] + [v["pdq"] for v in ev])
        for name, alt in alterations(img, i).items():
            t = time.perf_counter()
            plain, qv = compute_variants(np.asarray(alt), settings, derived_dihedral=derived_dihedral,
                                         timings=stages)
            t_query += time.perf_counter() - t
            n_query += 1
            queries.append(Query(i, name, plain.hex, [plain.hex] + [v["pdq"] for v in qv],
                                 [v["kind"] for v in qv]))
    plain_bits = to_bits(entries_plain)
    d = distances(plain_bits, plain_bits)
    np.fill_diagonal(d, 999)
    closest_pair = int(d.min())

    # entry variant table: one row per (entry, variant)
    owner = np.concatenate([np.full(len(v), k) for k, v in enumerate(entries_all)])
    ebits = to_bits([h for v in entries_all for h in v])
    rows: dict[str, dict] = {}
    fm_plain = fm_var = 0
    min_other_plain = min_other_var = 256
    kind_hits: dict[str, int] = {}
    for q in queries:
        r = rows.setdefault(q.alteration, {"n": 0, "plain": 0, "variants": 0})
        r["n"] += 1
        qp = to_bits([q.plain])
        dp = distances(qp, plain_bits)[0]
        own_plain = dp[q.original]
        r["plain"] += int(own_plain <= THRESHOLD)
        other = np.delete(dp, q.original)
        min_other_plain = min(min_other_plain, int(other.min()))
        fm_plain += int((other <= THRESHOLD).sum())
        qb = to_bits(q.variants)
        dv = distances(qb, ebits)  # query variant x entry variant
        best_per_owner = np.full(n, 256)
        np.minimum.at(best_per_owner, owner, dv.min(axis=0))
        r["variants"] += int(best_per_owner[q.original] <= THRESHOLD)
        if best_per_owner[q.original] <= THRESHOLD and own_plain > THRESHOLD:
            mine = dv[:, owner == q.original]
            qi = int(np.unravel_index(np.argmin(mine), mine.shape)[0])
            k = "plain(query)" if qi == 0 else q.kinds[qi - 1]
            kind_hits[k.rstrip("0123456789") if k.startswith("region") else k] = \
                kind_hits.get(k.rstrip("0123456789") if k.startswith("region") else k, 0) + 1
        others = np.delete(best_per_owner, q.original)
        min_other_var = min(min_other_var, int(others.min()))
        fm_var += int((others <= THRESHOLD).sum())
    table = {k: {"n": v["n"], "plain_recall": v["plain"] / v["n"], "variant_recall": v["variants"] / v["n"]}
             for k, v in rows.items()}
    n_variants = [len(q.variants) - 1 for q in queries]
    return {
        "n_originals": n,
        "threshold": THRESHOLD,
        "derived_dihedral": derived_dihedral,
        "closest_distinct_originals": closest_pair,
        "alterations": table,
        "false_matches_plain": fm_plain,
        "false_matches_variants": fm_var,
        "min_distance_other_plain": min_other_plain,
        "min_distance_other_variants": min_other_var,
        "query_variants_mean": float(np.mean(n_variants)),
        "entry_variants_mean": float(np.mean([len(v) - 1 for v in entries_all])),
        "matched_by_kind": dict(sorted(kind_hits.items())),
        "ms_per_query": 1000 * t_query / max(1, n_query),
        "ms_per_query_by_stage": {k: 1000 * v / max(1, n_query) for k, v in stages.items()},
        "ms_per_entry": 1000 * t_entry / max(1, n),
        "seconds": time.perf_counter() - t0,
    }


def print_table(res: dict) -> None:
    print(f"{res['n_originals']} originals, threshold {res['threshold']}, "
          f"closest distinct originals: {res['closest_distinct_originals']} bits"
          + (" (derived dihedral on)" if res["derived_dihedral"] else ""))
    print(f"{'alteration':<22}{'n':>5}{'plain':>9}{'variants':>10}")
    for k, v in res["alterations"].items():
        print(f"{k:<22}{v['n']:>5}{v['plain_recall']:>9.1%}{v['variant_recall']:>10.1%}")
    print(f"false matches (query x other originals): plain {res['false_matches_plain']}, "
          f"variants {res['false_matches_variants']}")
    print(f"closest non-matching original: plain {res['min_distance_other_plain']} bits, "
          f"variants {res['min_distance_other_variants']} bits")
    print(f"variants per query {res['query_variants_mean']:.1f}, per entry {res['entry_variants_mean']:.1f}; "
          f"{res['ms_per_query']:.1f} ms per query, {res['ms_per_entry']:.1f} ms per entry "
          f"(reference engine where numba is missing); {res['seconds']:.0f} s")
    print("ms per query by stage:", {k: round(v, 2) for k, v in res["ms_per_query_by_stage"].items()})
    print("matches won by each kind (where plain missed):", res["matched_by_kind"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--derived-dihedral", action="store_true",
                    help="also hash the dihedral transforms of unbordered and region variants")
    args = ap.parse_args(argv)
    res = run(args.n, args.derived_dihedral)
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        print()
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
