"""Load on the match API: `POST /api/v1/match` driven from this process against a server in another.

A bank of N random PDQ hashes (default 1M), the app served by uvicorn in a child process on
127.0.0.1, an API key with the `match` scope; the client sends single-hash requests from C
concurrent threads (keep-alive), then 1,000-hash batches, and prints requests per second and
p50/p99 latency for each. The baseline in the same run is the same server's `/healthz`
(no auth, no store): what the HTTP stack alone costs.

    python bench/api_bench.py [--size 1000000] [--seconds 10] [--concurrency 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(data_dir: Path, n: int) -> tuple[list[str], str]:
    from vigie import accounts
    from vigie.banks import service
    from vigie.banks.records import EntryData
    from vigie.matching import Matcher
    from vigie.settings import Settings
    from vigie.store import Store

    rng = random.Random(5)
    st = Settings(data_dir=data_dir)
    store = Store.open(st)
    service.create_bank(store, "bench")
    hashes = [f"{rng.getrandbits(256):064x}" for _ in range(n)]
    service.import_entries(store, "bench", ((i + 1, EntryData("pdq", h)) for i, h in enumerate(hashes)))
    Matcher(store, st).refresh()  # build and save the index before the server starts
    _, secret = accounts.create_api_key(store, "bench", ["match"], "bench", rate_limit_per_minute=10_000_000)
    return hashes, secret


def drive(url: str, headers: dict, bodies, seconds: float, concurrency: int) -> dict:
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        with httpx.Client(headers=headers, timeout=30) as c:
            while time.perf_counter() < stop:
                body = bodies(rng)
                t = time.perf_counter()
                r = c.post(url, json=body) if body is not None else c.get(url)
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    errors += r.status_code != 200
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return {"requests": len(lat), "rps": round(len(lat) / wall, 1), "errors": errors,
            "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 2) if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--server-workers", type=int, default=2, help="Server processes (default: one per core).")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t = time.perf_counter()
        hashes, secret = build(d, a.size)
        build_s = time.perf_counter() - t
        port = free_port()
        code = ("import uvicorn; uvicorn.run('vigie.web.server:make_app', factory=True, host='127.0.0.1', "
                f"port={port}, workers={a.server_workers}, log_level='warning')")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VIGIE_DATA_DIR": str(d)}
        server = subprocess.Popen([sys.executable, "-c", code], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            hdr = {"Authorization": f"Bearer {secret}"}
            # warm up: the server loads the index on its first match
            httpx.post(base + "/api/v1/match", json={"hashes": [{"signal": "pdq", "value": hashes[0]}]},
                       headers=hdr, timeout=120)

            def single(rng):
                h = rng.choice(hashes) if rng.random() < 0.5 else f"{rng.getrandbits(256):064x}"
                return {"hashes": [{"signal": "pdq", "value": h}]}

            def batch(rng):
                return {"hashes": [{"signal": "pdq", "value": f"{rng.getrandbits(256):064x}"} for _ in range(1000)]}

            for _ in range(2 * a.server_workers):  # every server process loads the index once
                httpx.post(base + "/api/v1/match", json={"hashes": [{"signal": "pdq", "value": hashes[1]}]},
                           headers=hdr, timeout=120)
            res = {"n": a.size, "build_s": round(build_s, 1), "concurrency": a.concurrency, "cpus": os.cpu_count(),
                   "server_workers": a.server_workers,
                   "baseline_healthz": drive(base + "/healthz", {}, lambda rng: None, a.seconds / 2, a.concurrency),
                   "single": drive(base + "/api/v1/match", hdr, single, a.seconds, a.concurrency),
                   "batch_1000": drive(base + "/api/v1/match", hdr, batch, a.seconds, max(1, a.concurrency // 4))}
            res["single_vs_healthz"] = round(res["single"]["rps"] / max(res["baseline_healthz"]["rps"], 1e-9), 3)
            res["batch_hashes_per_s"] = round(res["batch_1000"]["rps"] * 1000)
        finally:
            server.terminate()
            server.wait(10)
    print(json.dumps(res) if a.json else json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
