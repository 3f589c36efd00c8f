"""Crawler throughput: media fetched and hashed per second from a local benign site, against a naive crawler.

A gallery of N generated JPEGs on pages of 10 (vigie.demo_site.gallery) is served by uvicorn in
a child process on 127.0.0.1; each answer waits `--latency` seconds first, as a remote host
would. All pictures are planted in a bank as known, as most of what a hotline crawls is.

* **naive** (the baseline): one page after the other with httpx, each picture fetched in turn
  and hashed (MD5, SHA-1, SHA-256, PDQ) with `vigie.hashing.hash_bytes`.
* **vigie**: every page reported, then one round of `vigie.ingest.worker.crawl_pending`: concurrent
  downloads, hashing (with the PDQ variants) and matching while the next downloads run, and everything
  recorded in the store (sightings, audit). Twice: hashing in worker processes (the default, a decoder
  crash costs one file; the processes' start is counted) and in threads (`VIGIE_CRAWL_HASH_PROCESSES=false`).

The crawler's politeness is set for one host here (no delay, 8 at once): on the open web the
per-host delay (0.5 s by default) bounds each host, and concurrency comes from many hosts.

    python bench/crawl_bench.py [--images 300] [--latency 0.05] [--concurrency 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
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
                            env={"PYTHONPATH": str(ROOT / "src")})
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


def naive(base: str, pages: int, settings) -> dict:
    """Sequential: fetch a page, find its pictures, fetch and hash each, then the next page."""
    from vigie.hashing import hash_bytes
    from vigie.ingest.crawl import parse_page

    t0 = time.perf_counter()
    n = 0
    with httpx.Client(timeout=30) as c:
        for p in range(pages):
            page = c.get(f"{base}/page/{p}.html")
            for u in parse_page(page.content, str(page.url)).media:
                rec = hash_bytes(c.get(u).content, settings)
                n += rec.pdq is not None
    dt = time.perf_counter() - t0
    return {"media": n, "seconds": dt, "per_s": n / dt}


def vigie_crawl(base: str, pages: int, n: int, data_dir: Path, concurrency: int, processes: bool) -> dict:
    from vigie.banks import service
    from vigie.demo import encode, photo_like
    from vigie.hashing import hash_bytes
    from vigie.ingest import reports, worker
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
    t0 = time.perf_counter()
    got = worker.crawl_pending(store, st, limit=len(urls))
    dt = time.perf_counter() - t0
    store.close()
    return {"media": got["media"], "known": got["known"], "seconds": dt, "per_s": got["media"] / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--latency", type=float, default=0.05, help="Seconds each answer of the site waits.")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from vigie.settings import Settings

    pages = -(-a.images // 10)
    proc, base = start_site(a.images, a.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base_res = naive(base, pages, Settings(data_dir=Path(tmp) / "n", workers=1))
            v = vigie_crawl(base, pages, a.images, Path(tmp) / "v", a.concurrency, True)
            vt = vigie_crawl(base, pages, a.images, Path(tmp) / "t", a.concurrency, False)
    finally:
        proc.terminate()
        proc.wait(10)
    out = {"images": a.images, "pages": pages, "latency_s": a.latency, "naive": base_res, "vigie": v,
           "vigie_threads": vt, "ratio": v["per_s"] / base_res["per_s"],
           "ratio_threads": vt["per_s"] / base_res["per_s"]}
    if a.json:
        print(json.dumps(out))
        return
    print(f"site: {a.images} generated JPEGs (480x360) on {pages} pages, {a.latency * 1000:.0f} ms per answer, "
          f"127.0.0.1")
    print(f"naive sequential fetch + hash: {base_res['media']:5d} media in {base_res['seconds']:6.1f} s = "
          f"{base_res['per_s']:6.1f} media/s")
    for label, r in (("vigie, hashing in processes", v), ("vigie, hashing in threads  ", vt)):
        print(f"{label}: {r['media']:5d} media in {r['seconds']:6.1f} s = {r['per_s']:6.1f} media/s "
              f"({r['known']} known, recorded in the store)")
    print(f"ratio: {out['ratio']:.2f}x (processes), {out['ratio_threads']:.2f}x (threads)")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
