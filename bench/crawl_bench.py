"""Crawler throughput: media fetched and hashed per second from a local benign site, against two naive crawlers.

A gallery of N generated JPEGs on pages of 10 (vigie.demo_site.gallery) is served by uvicorn in
a child process on 127.0.0.1; each answer waits `latency` seconds first, as a remote host would.
Every latency given is run in the same invocation, every crawler against the same site. All
pictures are planted in a bank as known, as most of what a hotline crawls is.

* **naive sequential**: one page after the other with httpx, each picture fetched in turn, then
  MD5 and one PDQ (pdqhash on the decoded picture). Nothing recorded.
* **naive 8 threads**: the same, eight pages at once in eight threads sharing one client.
* **vigie**: every page reported, then one round of `vigie.ingest.worker.crawl_pending`: concurrent
  downloads, hashing (MD5, SHA-1, SHA-256, PDQ and its variants) and matching while the next downloads
  run, and everything recorded in the store (sightings, audit). Three times: hashing in worker processes (the
  default, a decoder crash costs one file; the processes' start is counted), in threads, and in
  processes already started and warmed before the round (`vigie_started`: the worker of `vigie serve`
  keeps its hashing processes from round to round; their start is not counted).

For each: media/s, CPU milliseconds per media (this process, plus the hashing processes and their
forkserver for vigie; the site's own process is not counted) and media lost (pictures on the site that the
crawler did not bring back hashed: must be 0).

For vigie, the CPU milliseconds per media of each stage, so the next saving is visible:

* measured in the crawl itself (`vigie.ingest.stages.CLOCK`, thread CPU time where each stage runs):
  fetch (the crawler's event loop: scheduling, downloads, decoding of transfer encodings, page parsing,
  hand-offs), hash (in the hashing processes or threads, timed there), match, queue (the review queue,
  for unknown media; none here: all are known), record (sightings, crawl log, statuses);
  pool (the hashing processes' CPU beyond the hashing itself: start, imports, transfers) and other (the
  rest of the crawler's process: claims, loading the index, threads);
* the hashing split (digests, decode, PDQ, variants) timed apart in this process on the same pictures
  (`vigie.hashing.stage_times`, `--stage-sample` of them), since the pool hashes in other processes.

The crawler's politeness is set for one host here (no delay, `--concurrency` at once): on the open web the
per-host delay (0.5 s by default) bounds each host, and concurrency comes from many hosts.

    python bench/crawl_bench.py [--pictures 300] [--latencies 0,0.05] [--concurrency 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SERVER = """
import sys, uvicorn
from vigie.demo_site import gallery
site = gallery(int(sys.argv[1]))
for r in site.routes.values():
    r.delay = float(sys.argv[3])
uvicorn.run(site, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_site(n: int, latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(n), str(port), str(latency)],
                            env={"PYTHONPATH": str(ROOT / "src"), "PATH": os.environ.get("PATH", "")})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/page/0.html", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the benign site did not start")


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(pids) -> float:
    """CPU seconds of other processes, read from /proc (the hashing processes are not our children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def naive_hash(data: bytes) -> bool:
    """What a naive crawler does with a picture: MD5 and one PDQ."""
    import numpy as np
    import pdqhash
    from PIL import Image

    hashlib.md5(data).hexdigest()
    with Image.open(io.BytesIO(data)) as im:
        vec, _quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    return vec is not None


def naive_page(c: httpx.Client, base: str, p: int) -> int:
    from vigie.ingest.crawl import parse_page

    page = c.get(f"{base}/page/{p}.html")
    n = 0
    for u in parse_page(page.content, str(page.url)).media:
        r = c.get(u)
        if r.status_code == 200 and naive_hash(r.content):
            n += 1
    return n


def naive(base: str, pages: int, threads: int) -> dict:
    t0, c0 = time.perf_counter(), cpu_self()
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=max(threads, 1))) as c:
        if threads <= 1:
            n = sum(naive_page(c, base, p) for p in range(pages))
        else:
            with ThreadPoolExecutor(threads) as ex:
                n = sum(ex.map(lambda p: naive_page(c, base, p), range(pages)))
    dt, cpu = time.perf_counter() - t0, cpu_self() - c0
    return {"media": n, "seconds": dt, "per_s": n / dt, "cpu_ms_per_media": 1000 * cpu / max(n, 1)}


def forkserver_pid() -> int | None:
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def vigie_crawl(base: str, pages: int, n: int, data_dir: Path, concurrency: int, processes: bool,
                warm: bool = False) -> dict:
    from vigie.banks import service
    from vigie.demo import encode, photo_like
    from vigie.hashing import hash_bytes
    from vigie.ingest import reports, worker
    from vigie.ingest.stages import CLOCK
    from vigie.settings import Settings
    from vigie.store import Store

    st = Settings(data_dir=data_dir, crawl_allowed_networks=["127.0.0.1/32"], crawl_per_host_delay=0.0,
                  crawl_per_host_concurrency=concurrency, crawl_concurrency=concurrency, crawl_max_depth=0,
                  crawl_hash_processes=processes)
    store = Store.open(st)
    service.create_bank(store, "bench")
    for i in range(n):  # the same bytes the site serves: all known
        service.add_entry(store, "bench", "md5", hash_bytes(encode(photo_like(i, 480, 360), "JPEG", quality=90),
                                                            st).md5)
    urls = [f"{base}/page/{p}.html" for p in range(pages)]
    for i in range(0, len(urls), st.report_max_urls):
        reports.submit(store, urls[i:i + st.report_max_urls])
    hasher = worker.make_hasher(st)
    workers_cpu0 = 0.0
    if warm:  # started and warmed before the round, as the worker of `vigie serve` keeps them: not counted
        from vigie.ingest import crawl_hash

        pool = hasher._get()
        for f in [pool.submit(crawl_hash.warm, i) for i in range(hasher.workers)]:
            f.result()
        workers_cpu0 = cpu_of(list(pool._processes))
    fs = forkserver_pid()
    fs_cpu0 = cpu_of([fs]) if fs else 0.0
    CLOCK.reset()
    t0, c0 = time.perf_counter(), cpu_self()
    try:
        got = worker.crawl_pending(store, st, limit=len(urls), hasher=hasher)
        dt = time.perf_counter() - t0
        main_cpu = cpu_self() - c0
        pool = hasher._pool
        workers_cpu = cpu_of(list(getattr(pool, "_processes", None) or {})) - workers_cpu0 \
            if processes and pool else 0.0
        fs = forkserver_pid()
        workers_cpu += (cpu_of([fs]) - fs_cpu0) if processes and fs else 0.0
    finally:
        hasher.close()
    stages = {k: v["cpu_s"] for k, v in CLOCK.snapshot().items()}
    cpu = main_cpu + workers_cpu
    store.close()
    k = max(got["known"], 1)
    per = {name: 1000 * stages.get(name, 0.0) / k for name in ("fetch", "hash", "match", "queue", "record")}
    in_main = sum(v for name, v in per.items() if processes is False or name != "hash")
    per["pool"] = 1000 * workers_cpu / k - per["hash"] if processes else 0.0
    per["other"] = 1000 * main_cpu / k - in_main
    return {"media": got["media"], "known": got["known"], "seconds": dt, "per_s": got["known"] / dt,
            "cpu_ms_per_media": 1000 * cpu / k, "stages_ms": per}


def hash_stages(n: int, sample: int) -> dict:
    """Milliseconds per picture of each hashing stage, timed apart in this process on `sample` of the site's
    pictures (the crawl hashes them in other processes): digests, decode, PDQ (the plain hash), variants
    (hma_compat, dihedral, border, regions)."""
    import tempfile

    from vigie.demo import encode, photo_like
    from vigie.settings import Settings

    try:
        from vigie.hashing import stage_times
    except ImportError:
        return {}
    st = Settings(data_dir=Path(tempfile.gettempdir()))
    idx = range(0, n, max(1, n // sample))[:sample]
    pics = [encode(photo_like(i, 480, 360), "JPEG", quality=90) for i in idx]
    stage_times(pics[0], st)  # JIT and imports out of the way
    tot: dict[str, float] = {}
    for d in pics:
        for k, v in stage_times(d, st).items():
            tot[k] = tot.get(k, 0.0) + v
    m = {k: v / len(pics) for k, v in tot.items()}
    variants = sum(v for k, v in m.items() if k not in ("digests", "decode", "pdq", "total"))
    return {"pictures": len(pics), "digests": m.get("digests", 0.0), "decode": m.get("decode", 0.0),
            "pdq": m.get("pdq", 0.0), "variants": variants, "total": m.get("total", 0.0)}


def run_latency(images: int, latency: float, concurrency: int, sample: int) -> dict:
    pages = -(-images // 10)
    proc, base = start_site(images, latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            res = {"naive_sequential": naive(base, pages, 1), "naive_8_threads": naive(base, pages, 8),
                   "vigie_processes": vigie_crawl(base, pages, images, Path(tmp) / "v", concurrency, True),
                   "vigie_threads": vigie_crawl(base, pages, images, Path(tmp) / "t", concurrency, False),
                   "vigie_started": vigie_crawl(base, pages, images, Path(tmp) / "s", concurrency, True,
                                                warm=True)}
    finally:
        proc.terminate()
        proc.wait(10)
    for r in res.values():
        r["lost"] = images - r.get("known", r["media"])
    return {"latency_s": latency, "images": images, "pages": pages, "crawlers": res,
            "hash_stages_ms": hash_stages(images, sample)}


STAGE_NOTES = {
    "fetch": "event loop: scheduling, downloads, pages, hand-offs",
    "hash": "hashing, timed where it runs (processes or threads)",
    "pool": "hashing processes beyond hashing: start, imports, transfers",
    "match": "matching (batched)",
    "queue": "review queue (unknown media)",
    "record": "sightings, crawl log, statuses",
    "other": "rest of the crawler's process",
}


def print_run(run: dict) -> None:
    print(f"site: {run['images']} generated JPEGs (480x360) on {run['pages']} pages, "
          f"{run['latency_s'] * 1000:.0f} ms per answer, 127.0.0.1, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, r in run["crawlers"].items():
        print(f"  {name:17}: {r['per_s']:6.1f} media/s, {r['cpu_ms_per_media']:6.1f} CPU ms/media, "
              f"{r['lost']:3d} lost ({r['seconds']:.1f} s)")
    c = run["crawlers"]
    p, t, w = (c[k]["stages_ms"] for k in ("vigie_processes", "vigie_threads", "vigie_started"))
    print("  vigie, CPU ms per media by stage:     processes   threads   started")
    for k, note in STAGE_NOTES.items():
        print(f"    {k:8} {p[k]:27.2f} {t[k]:9.2f} {w[k]:9.2f}   {note}")
    h = run["hash_stages_ms"]
    if h:
        print(f"  hashing split, one process, {h['pictures']} of the same pictures (ms per picture): "
              + ", ".join(f"{k} {h[k]:.2f}" for k in ("digests", "decode", "pdq", "variants", "total")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", "--images", dest="images", type=int, default=300)
    ap.add_argument("--latencies", default="0,0.05", help="Seconds each answer of the site waits, comma-separated.")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--stage-sample", type=int, default=40, help="Pictures the hashing split is timed on.")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    runs = [run_latency(a.images, float(x), a.concurrency, a.stage_sample) for x in a.latencies.split(",")
            if x.strip()]
    if a.json:
        print(json.dumps(runs))
        return
    for run in runs:
        print_run(run)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
