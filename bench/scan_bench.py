"""Scan speed on a generated benign "seized" tree, against a naive baseline measured in the same run.

The tree: N pictures of mixed sizes (mostly small JPEGs, some 2 MP photos and PNGs), about
5 % duplicated, 10 % inside nested archives (zip in tar.gz), and a few short videos.
The baseline is what a simple script does: one process, for every file Pillow's full
decode + `pdqhash`, MD5 and SHA-256 (archives and videos are not opened, so it does less
work than the scan). `vigie scan` runs with 1 and 2 workers, and with `--cluster` once more
hashing on Dask (`local:N` starts a local cluster; its start-up time is counted).

    python bench/scan_bench.py [--n 10000] [--json] [--cluster local:2]
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


def make_tree(root: Path, n: int, seed: int = 7) -> tuple[int, int]:
    rng = random.Random(seed)
    pics: list[bytes] = []
    base = [photo_like(i, 320, 240) for i in range(64)]
    for i in range(n):
        b = base[i % 64]
        kind = rng.random()
        if kind < 0.05:
            img = photo_like(1000 + i, 1600, 1200)  # ~2 MP photo
            data = encode(img, "JPEG")
        elif kind < 0.15:
            data = encode(b.rotate(rng.uniform(-10, 10)), "PNG")
        else:
            arr = np.asarray(b, np.int16) + rng.randint(-40, 40)
            data = encode(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).resize(
                (rng.choice([160, 320, 480]), rng.choice([120, 240, 360]))), "JPEG")
        pics.append(data)
    files = 0
    nbytes = 0
    archived: dict[str, bytes] = {}
    for i, data in enumerate(pics):
        if i % 10 == 3:
            archived[f"a/{i}.jpg"] = data
            continue
        d = root / f"d{i % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.jpg").write_bytes(data)
        files += 1
        nbytes += len(data)
        if i % 20 == 0:  # a duplicate
            (d / f"{i}-copy.jpg").write_bytes(data)
            files += 1
            nbytes += len(data)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for name, data in archived.items():
            z.writestr(name, data)
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as t:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(zbuf.getvalue())
        t.addfile(info, io.BytesIO(zbuf.getvalue()))
    (root / "bundle.tar.gz").write_bytes(tbuf.getvalue())
    files += 1
    nbytes += len(tbuf.getvalue())
    try:
        from vigie.signals.vpdq import write_test_video  # type: ignore[attr-defined]
    except ImportError:
        write_test_video = None
    if write_test_video is not None:
        for i in range(3):
            write_test_video(root / f"clip{i}.mp4", seed=i)
            files += 1
    return files, nbytes


def naive(root: Path) -> int:
    import pdqhash

    n = 0
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
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


def vigie_scan(root: Path, workers: int, work: Path, cluster: str | None = None) -> dict:
    from vigie.ingest.scan import run_scan
    from vigie.settings import Settings
    from vigie.store import Store

    tag = "dask" if cluster else str(workers)
    st = Settings(data_dir=work / f"data{tag}", workers=workers)
    store = Store.open(st)
    return run_scan(store, st, [str(root)], str(work / f"out{tag}"), workers=workers, cluster=cluster)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cluster", help="also scan hashing on Dask: local:N or tcp://HOST:8786")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        root = d / "seized"
        t = time.perf_counter()
        files, nbytes = make_tree(root, a.n)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        naive_files = naive(root)
        naive_s = time.perf_counter() - t
        res = {"n_pictures": a.n, "files_on_disk": files, "mb_on_disk": round(nbytes / 1e6, 1),
               "generate_s": round(gen_s, 1), "baseline_files": naive_files, "baseline_s": round(naive_s, 2),
               "baseline_files_per_s": round(naive_files / naive_s, 1),
               "baseline_mb_per_s": round(nbytes / 1e6 / naive_s, 2)}
        for w in (1, 2):
            t = time.perf_counter()
            summary = vigie_scan(root, w, d)
            s = time.perf_counter() - t
            locs = summary["counts"]["locations"]
            res[f"vigie_{w}w_s"] = round(s, 2)
            res[f"vigie_{w}w_locations"] = locs
            res[f"vigie_{w}w_files_per_s"] = round(locs / s, 1)
            res[f"vigie_{w}w_mb_per_s"] = round(nbytes / 1e6 / s, 2)
            res[f"ratio_{w}w_vs_baseline"] = round((locs / s) / (naive_files / naive_s), 2)
        if a.cluster:
            t = time.perf_counter()
            summary = vigie_scan(root, 1, d, cluster=a.cluster)
            s = time.perf_counter() - t
            locs = summary["counts"]["locations"]
            res["dask_cluster"] = a.cluster
            res["vigie_dask_s"] = round(s, 2)
            res["vigie_dask_locations"] = locs
            res["vigie_dask_files_per_s"] = round(locs / s, 1)
            res["vigie_dask_mb_per_s"] = round(nbytes / 1e6 / s, 2)
            res["ratio_dask_vs_baseline"] = round((locs / s) / (naive_files / naive_s), 2)
            res["ratio_dask_vs_2w"] = round(res["vigie_dask_files_per_s"] / res["vigie_2w_files_per_s"], 2)
        res["cpus"] = os.cpu_count()
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
