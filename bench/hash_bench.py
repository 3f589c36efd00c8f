"""PDQ throughput on one core: Meta's C++ (pdqhash) against Vigie's numba engine.

Generates benign photo-like pictures (smooth random gradients, shapes and noise) in a
temporary folder: JPEG (Pillow quality 90) at about 1 MP and 12 MP, and PNG at 1 MP.
For each group it measures pictures per second, file read and decode included:

  reference  Image.open(path).convert("RGB") then pdqhash.compute
  vigie      vigie.media.decode.decode_image(bytes) then pdq_numba.hash_rgb
             (must give the reference's hashes: `mismatches` counts differences)
  fast       JPEG decoded at reduced scale in the DCT domain (Pillow draft, at least
             512 px a side) then hash_rgb; reports how many bits that moves

Usage: python bench/hash_bench.py [--quick] [--json] [--rounds N]
With --json, one JSON object per picture group is printed, one per line.
"""

from __future__ import annotations

import os

# One core: no numba threads, no BLAS threads. Must precede the numba/numpy imports.
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
from PIL import Image  # noqa: E402

from vigie.signals import pdq_numba  # noqa: E402
from vigie.signals.pdq import bits_to_hex  # noqa: E402

MAX_PIXELS = 200_000_000


def _decoder() -> tuple[Callable[[bytes], np.ndarray], Callable[[bytes], np.ndarray], str]:
    """Full and fast decoders: Vigie's decode_image when present, else plain Pillow."""
    try:
        from vigie.media.decode import decode_image

        def full(data: bytes) -> np.ndarray:
            return decode_image(data, max_pixels=MAX_PIXELS)

        def fast(data: bytes) -> np.ndarray:
            return decode_image(data, max_pixels=MAX_PIXELS, fast=True)

        try:
            fast(_tiny_jpeg())
        except TypeError:  # an older decode_image without `fast`
            fast = _pillow_fast
        return full, fast, "vigie.media.decode.decode_image"
    except ImportError:
        return _pillow_full, _pillow_fast, "PIL (vigie.media.decode.decode_image not available)"


def _pillow_full(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def _pillow_fast(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        if img.format == "JPEG":
            img.draft("RGB", (512, 512))
        return np.asarray(img.convert("RGB"))


def _tiny_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "JPEG")
    return buf.getvalue()


# ---------------------------------------------------------------- corpus


def photo_like(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A benign synthetic 'photo': smooth colour gradients, a few soft shapes, sensor-like noise."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):
        fx, fy, fxy = rng.uniform(0.5, 4.0, 3)
        ph = rng.uniform(0, 6.3)
        img[:, :, c] = 128 + 70 * np.sin(fx * x * 3 + ph) * np.cos(fy * y * 3) + 40 * np.sin(fxy * 5 * x * y)
    for _ in range(int(rng.integers(4, 9))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.03, 0.25) * h, rng.uniform(0.03, 0.25) * w
        y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
        x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
        if y1 <= y0 or x1 <= x0:
            continue
        yy = ((np.arange(y0, y1, dtype=np.float32) - cy) / ry)[:, None]
        xx = ((np.arange(x0, x1, dtype=np.float32) - cx) / rx)[None, :]
        inside = np.clip(1.5 - 1.5 * (yy * yy + xx * xx), 0.0, 1.0)[:, :, None]
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        region = img[y0:y1, x0:x1]
        region += inside * (colour - region)
    img += rng.normal(0.0, 4.0, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


GROUPS = {
    # name: (height, width, format)
    "1MP-jpeg": (864, 1152, "JPEG"),
    "12MP-jpeg": (3000, 4000, "JPEG"),
    "1MP-png": (864, 1152, "PNG"),
}


def make_corpus(folder: Path, counts: dict[str, int], seed: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(seed)
    corpus: dict[str, list[Path]] = {}
    for name, (h, w, fmt) in GROUPS.items():
        paths = []
        for i in range(counts[name]):
            # Vary the shape a little (portrait, odd sizes) around the nominal size.
            hh, ww = (h, w) if i % 3 else (w, h)
            hh += int(rng.integers(0, 9))
            ww += int(rng.integers(0, 9))
            img = Image.fromarray(photo_like(hh, ww, rng))
            path = folder / f"{name}-{i}.{'jpg' if fmt == 'JPEG' else 'png'}"
            if fmt == "JPEG":
                img.save(path, "JPEG", quality=90)
            else:
                img.save(path, "PNG")
            paths.append(path)
        corpus[name] = paths
    return corpus


# ---------------------------------------------------------------- measurement


def reference_hash(path: Path) -> str:
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    bits, _quality = pdqhash.compute(rgb)
    return bits_to_hex(bits)


def timed(fn: Callable[[Path], str], paths: list[Path], rounds: int) -> tuple[float, list[str]]:
    """Best-of-rounds seconds for one pass over `paths` (the machine may be shared)."""
    best = float("inf")
    out: list[str] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = [fn(p) for p in paths]
        best = min(best, time.perf_counter() - t0)
    return best, out


def stage_times(paths: list[Path], decode: Callable[[bytes], np.ndarray], rounds: int) -> dict[str, float]:
    """Mean milliseconds per picture of each stage, for the profile in the output."""
    ref_dec, ref_hash, vig_dec, vig_hash = [], [], [], []
    for _ in range(rounds):
        for p in paths:
            t0 = time.perf_counter()
            with Image.open(p) as img:
                rgb = np.asarray(img.convert("RGB"))
            t1 = time.perf_counter()
            pdqhash.compute(rgb)
            t2 = time.perf_counter()
            rgb2 = decode(p.read_bytes())
            t3 = time.perf_counter()
            pdq_numba.hash_rgb(rgb2)
            t4 = time.perf_counter()
            ref_dec.append(t1 - t0)
            ref_hash.append(t2 - t1)
            vig_dec.append(t3 - t2)
            vig_hash.append(t4 - t3)
    ms = lambda v: round(1e3 * min(v), 2)  # noqa: E731
    return {
        "reference_decode_ms": ms(ref_dec),
        "reference_hash_ms": ms(ref_hash),
        "vigie_decode_ms": ms(vig_dec),
        "vigie_hash_ms": ms(vig_hash),
    }


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def run_group(name: str, paths: list[Path], decode, decode_fast, rounds: int) -> dict:
    def vigie(p: Path) -> str:
        return pdq_numba.hash_rgb(decode(p.read_bytes())).hex

    def fast(p: Path) -> str:
        return pdq_numba.hash_rgb(decode_fast(p.read_bytes())).hex

    # Warm up: JIT compile (or load from cache), Pillow plugins, page cache.
    for fn in (reference_hash, vigie, fast):
        fn(paths[0])

    t_ref, ref = timed(reference_hash, paths, rounds)
    t_vig, got = timed(vigie, paths, rounds)
    t_fast, got_fast = timed(fast, paths, rounds)
    moved = [hamming(a, b) for a, b in zip(ref, got_fast, strict=True)]
    h, w, fmt = GROUPS[name]
    n = len(paths)
    result = {
        "size": name,
        "format": fmt,
        "nominal_pixels": h * w,
        "images": n,
        "rounds": rounds,
        "reference_images_per_s": round(n / t_ref, 2),
        "vigie_images_per_s": round(n / t_vig, 2),
        "ratio": round(t_ref / t_vig, 2),
        "mismatches": sum(a != b for a, b in zip(ref, got, strict=True)),
        "fast_images_per_s": round(n / t_fast, 2),
        "fast_ratio": round(t_ref / t_fast, 2),
        "fast_max_bits_moved": max(moved),
        "fast_mean_bits_moved": round(statistics.fmean(moved), 2),
    }
    result.update(stage_times(paths, decode, max(1, rounds // 2)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object per picture group")
    parser.add_argument("--quick", action="store_true", help="few pictures, one timing round")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (best one is kept)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed)")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {args.cpu if args.cpu is not None else allowed[0]})

    counts = (
        {"1MP-jpeg": 4, "12MP-jpeg": 2, "1MP-png": 3} if args.quick else {"1MP-jpeg": 24, "12MP-jpeg": 6, "1MP-png": 12}
    )
    rounds = args.rounds or (1 if args.quick else 3)
    decode, decode_fast, decoder_name = _decoder()
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    with tempfile.TemporaryDirectory(prefix="vigie-hash-bench-") as tmp:
        t0 = time.perf_counter()
        corpus = make_corpus(Path(tmp), counts, args.seed)
        log(f"corpus generated in {time.perf_counter() - t0:.1f}s; vigie decoder: {decoder_name}")
        for name, paths in corpus.items():
            result = run_group(name, paths, decode, decode_fast, rounds)
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(
                    f"{name:10s} ref {result['reference_images_per_s']:8.2f}/s  "
                    f"vigie {result['vigie_images_per_s']:8.2f}/s  x{result['ratio']:<5}  "
                    f"mismatches {result['mismatches']}  fast {result['fast_images_per_s']:8.2f}/s "
                    f"(max {result['fast_max_bits_moved']} bits, mean {result['fast_mean_bits_moved']})"
                )
                print(
                    f"{'':10s} per picture: reference decode {result['reference_decode_ms']} ms + hash "
                    f"{result['reference_hash_ms']} ms; vigie decode {result['vigie_decode_ms']} ms + hash "
                    f"{result['vigie_hash_ms']} ms"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
