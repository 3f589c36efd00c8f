"""Scan speed with everything on, against a naive baseline measured in the same run, and where the time goes.

The corpus (generated, benign): camera photos of 8-12 MP, web pictures of 0.05-0.5 MP (JPEG, some
PNG), ~5 % exact duplicates, 10 % of the web pictures inside nested archives (zip in tar.gz), a few
short H.264 videos. Run back to back, in one process tree, on the same files:

- **baseline**: what a simple script does: one process, for every file read, MD5 + SHA-256, Pillow
  full decode, `pdqhash` (archives and videos are not opened: it does less than the scan);
- **Vigie 1 worker**, **Vigie 2 workers**: `run_scan` with every feature on (dihedral variants,
  de-bordered and region variants, HMA-compatible hash, provenance, carving, EXIF thumbnails);
- **Vigie --fast**: 1 worker with the query variants off (`dihedral`, `variant_unbordered`,
  `variant_region`, `variant_hma_compat` false): digests, plain PDQ, provenance, matching;
- **Dask local:2**: `run_scan(cluster="local:2")`, the cluster's start-up counted.

Then **stages**: one process, the same pictures, each stage timed on its own (walk and sniff, read,
digests, decode, plain PDQ, variants, thumbnail, provenance), so the share of each is visible; what the
scan spends beyond their sum is the pool, matching, the store and the report.

    python bench/scan_bench.py [--camera 12] [--web 400] [--videos 3] [--json] [--skip-dask]

Figures are files/s (locations/s for Vigie, which also lists archive members) and MB/s of the files on
disk. Times on a shared machine vary by ±15 %: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from vigie.demo import encode, photo_like  # noqa: E402

FAST = {"dihedral": False, "variant_unbordered": False, "variant_region": False, "variant_hma_compat": False}


def _camera(seed: int) -> bytes:
    w, h = random.Random(seed).choice([(3264, 2448), (4000, 3000), (4032, 3024)])  # 8, 12, 12.2 MP
    small = photo_like(seed, w // 8, h // 8).resize((w, h), Image.BICUBIC)
    rng = np.random.default_rng(seed)
    arr = np.asarray(small, np.int16) + rng.integers(-12, 12, (h, w, 1), dtype=np.int16)  # sensor-like grain
    return encode(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), "JPEG")


def _video(path: Path, seed: int, seconds: int = 4) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i in range(seconds * 10):
            fr = np.asarray(photo_like(seed * 100 + i // 10, 320, 240))
            for p in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def make_tree(root: Path, camera: int, web: int, videos: int, seed: int = 7) -> tuple[int, int]:
    rng = random.Random(seed)
    files = nbytes = 0
    archived: dict[str, bytes] = {}

    def put(rel: str, data: bytes) -> None:
        nonlocal files, nbytes
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        files += 1
        nbytes += len(data)

    for i in range(camera):
        put(f"DCIM/100CAM/IMG_{i:04d}.JPG", _camera(i))
    base = [photo_like(500 + i, 640, 480) for i in range(32)]
    for i in range(web):
        mp = rng.uniform(0.05, 0.5)
        w = int((mp * 1e6 * 4 / 3) ** 0.5)
        img = base[i % 32].resize((w, w * 3 // 4))
        arr = np.asarray(img, np.int16) + rng.randint(-30, 30)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        data = encode(img, "PNG") if i % 10 == 1 else encode(img, "JPEG")
        if i % 10 == 3:
            archived[f"saved/{i}.jpg"] = data
            continue
        put(f"web/d{i % 20:02d}/{i}.{'png' if i % 10 == 1 else 'jpg'}", data)
        if i % 20 == 0:
            put(f"web/d{i % 20:02d}/{i}-copy.jpg", data)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for name, data in archived.items():
            z.writestr(name, data)
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as t:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(zbuf.getvalue())
        t.addfile(info, io.BytesIO(zbuf.getvalue()))
    put("bundle.tar.gz", tbuf.getvalue())
    for i in range(videos):
        p = root / "videos" / f"clip{i}.mp4"
        p.parent.mkdir(parents=True, exist_ok=True)
        _video(p, i)
        files += 1
        nbytes += p.stat().st_size
    return files, nbytes


def naive(root: Path) -> int:
    import pdqhash

    n = 0
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read()
            hashlib.md5(data).hexdigest()
            hashlib.sha256(data).hexdigest()
            try:
                rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                pdqhash.compute(rgb)
            except Exception:  # noqa: BLE001 - archives and videos are not pictures
                pass
            n += 1
    return n


def vigie_scan(root: Path, work: Path, tag: str, workers: int, cluster: str | None = None, **settings) -> dict:
    from vigie.ingest.scan import run_scan
    from vigie.settings import Settings
    from vigie.store import Store

    st = Settings(data_dir=work / f"data-{tag}", workers=workers, **settings)
    store = Store.open(st)
    return run_scan(store, st, [str(root)], str(work / f"out-{tag}"), workers=workers, cluster=cluster)


def stages(root: Path) -> dict:
    """Seconds per stage over every picture of the corpus, one process."""
    from vigie.ingest.containers import iter_items
    from vigie.ingest.process import _thumb
    from vigie.media.decode import decode_image
    from vigie.media.provenance import read_provenance
    from vigie.media.sniff import sniff
    from vigie.settings import Settings
    from vigie.signals.pdq import hash_rgb
    from vigie.signals.variants import compute_variants

    s = Settings()
    warm = np.asarray(photo_like(1, 320, 240))
    compute_variants(warm, s)  # compile the numba kernels before timing
    _thumb(warm)
    t: dict[str, float] = dict.fromkeys(("walk", "read", "digests", "decode", "pdq", "variants", "thumbnail",
                                         "provenance"), 0.0)
    t0 = time.perf_counter()
    items = list(iter_items([str(root)], s))
    t["walk"] = time.perf_counter() - t0
    n = 0
    for it in items:
        t0 = time.perf_counter()
        data = it.data
        if data is None:
            if it.path is None or it.container:
                continue
            with open(it.path, "rb") as f:
                data = f.read()
        t["read"] += time.perf_counter() - t0
        mt = sniff(data[:64])
        if not mt or not mt.startswith("image/"):
            continue
        n += 1
        t0 = time.perf_counter()
        for name in ("md5", "sha1", "sha256"):
            hashlib.new(name, data).hexdigest()
        t["digests"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        rgb = decode_image(data, max_pixels=s.max_pixels)
        t["decode"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        hash_rgb(rgb, s.pdq_engine)
        t["pdq"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        compute_variants(rgb, s, data=data)
        t["variants"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        _thumb(rgb)
        t["thumbnail"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        read_provenance(data, mt)
        t["provenance"] += time.perf_counter() - t0
    t["variants"] = max(0.0, t["variants"] - t["pdq"])  # compute_variants hashes the plain picture too
    out = {f"stage_{k}_s": round(v, 2) for k, v in t.items()}
    out["stage_pictures"] = n
    total = sum(t.values())
    out.update({f"stage_{k}_share": round(v / total, 3) for k, v in t.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camera", type=int, default=12, help="camera photos, 8-12 MP")
    ap.add_argument("--web", type=int, default=400, help="web pictures, 0.05-0.5 MP")
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        root = d / "seized"
        t = time.perf_counter()
        files, nbytes = make_tree(root, a.camera, a.web, a.videos)
        res: dict = {"files_on_disk": files, "mb_on_disk": round(nbytes / 1e6, 1),
                     "generate_s": round(time.perf_counter() - t, 1), "cpus": os.cpu_count()}
        warm = d / "warm"
        make_tree(warm, 0, 4, 0)
        vigie_scan(warm, d, "warm", 1)  # numba kernels compiled and cached once, before any timing
        t = time.perf_counter()
        base_files = naive(root)
        base_s = time.perf_counter() - t
        base_rate = base_files / base_s
        res.update({"baseline_s": round(base_s, 2), "baseline_files_per_s": round(base_rate, 2),
                    "baseline_mb_per_s": round(nbytes / 1e6 / base_s, 2)})
        runs = [("1w", 1, None, {}), ("2w", 2, None, {}), ("fast", 1, None, FAST)]
        if not a.skip_dask:
            runs.append(("dask", 2, "local:2", {}))
        for tag, workers, cluster, extra in runs:
            t = time.perf_counter()
            summary = vigie_scan(root, d, tag, workers, cluster, **extra)
            s = time.perf_counter() - t
            locs = summary["counts"]["locations"]
            res.update({f"{tag}_s": round(s, 2), f"{tag}_locations": locs,
                        f"{tag}_files_per_s": round(locs / s, 2), f"{tag}_mb_per_s": round(nbytes / 1e6 / s, 2),
                        f"{tag}_vs_baseline": round((locs / s) / base_rate, 2)})
        res["2w_vs_1w"] = round(res["2w_files_per_s"] / res["1w_files_per_s"], 2)
        if "dask_s" in res:
            res["dask_vs_2w"] = round(res["dask_files_per_s"] / res["2w_files_per_s"], 2)
        res.update(stages(root))
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
