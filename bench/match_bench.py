"""Benchmark PDQ matching: MIHIndex against exact brute force and FAISS IndexBinaryFlat, in one run.

    .venv/bin/python bench/match_bench.py --size 1000000 [--queries 2048] [--flat-queries 64] [--json]

Bank: N random 256-bit hashes. Queries: `--queries` planted ones, spread evenly over
distances 0..31 (exactly d random bits of a random bank entry flipped), plus a quarter
as many random ones (no neighbour within 31, with overwhelming probability).

Reports build time, bytes per hash in memory (`nbytes`) and on disk, single-query
p50/p99 latency (each query searched alone), batch throughput (all queries in one call,
threads over queries), recall of the planted entry per distance band, recall of every
brute-force match, false matches (a result beyond the threshold or absent from brute
force), and FAISS IndexBinaryFlat's single-query latency on the first `--flat-queries`
queries (its results are checked against brute force too). Ground truth is a numba
brute force over the whole bank computed in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vigie.index import FlatIndex, MIHIndex
from vigie.index import _kernels as K


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_queries(rng, bank: np.ndarray, n_planted: int, n_random: int):
    dist = np.arange(n_planted) % 32
    src = rng.integers(0, bank.shape[0], size=n_planted)
    bits = np.unpackbits(bank[src], axis=1)
    for i, d in enumerate(dist):
        bits[i, rng.choice(256, size=d, replace=False)] ^= 1
    planted = np.packbits(bits, axis=1)
    noise = rng.integers(0, 256, size=(n_random, 32), dtype=np.uint8)
    return np.concatenate([planted, noise]), src, dist


def ground_truth(bank: np.ndarray, queries: np.ndarray, threshold: int) -> list[dict[int, int]]:
    words, qw = bank.view(np.uint64), queries.view(np.uint64)
    threads = os.cpu_count() or 1
    bounds = np.linspace(0, queries.shape[0], threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as ex:
        parts = list(
            ex.map(lambda ab: (ab[0], K.brute_batch(words, qw[ab[0] : ab[1]], threshold)), zip(bounds, bounds[1:]))
        )
    truth: list[dict[int, int]] = [{} for _ in range(queries.shape[0])]
    for start, (qi, rows, d) in parts:
        for q, r, dd in zip((qi + start).tolist(), rows.tolist(), d.tolist(), strict=True):
            truth[q][r] = dd
    return truth


def latencies(index, queries: np.ndarray, threshold: int) -> tuple[np.ndarray, list]:
    times, results = [], []
    for i in range(queries.shape[0]):
        t = time.perf_counter()
        results.append(index.search(queries[i : i + 1], threshold)[0])
        times.append(time.perf_counter() - t)
    return np.array(times) * 1e3, results


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2048, help="planted queries (random ones: a quarter more)")
    ap.add_argument("--flat-queries", type=int, default=64)
    ap.add_argument("--threshold", type=int, default=31)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    rng = np.random.default_rng(args.seed)
    n, thr = args.size, args.threshold

    bank = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    ids = np.arange(n, dtype=np.int64)
    queries, src, dist = make_queries(rng, bank, args.queries, max(1, args.queries // 4))
    n_planted = args.queries

    rss0 = rss_mb()
    t = time.perf_counter()
    index = MIHIndex()
    index.add(ids, bank)
    build_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"N={n:,}  build {build_s:.1f} s  nbytes {index.nbytes / n:.1f} B/hash  "
        f"RSS +{rss_mb() - rss0:.0f} MB  peak RSS {peak:.0f} MB")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index.save(Path(tmp) / "ix")
        save_s = time.perf_counter() - t
        disk = dir_bytes(Path(tmp) / "ix")
        t = time.perf_counter()
        mapped = MIHIndex.load(Path(tmp) / "ix", mmap=True)
        load_s = time.perf_counter() - t
        mapped_ok = mapped.search(queries[:64], thr) == index.search(queries[:64], thr)
        del mapped
    log(f"disk {disk / n:.1f} B/hash, save {save_s:.1f} s, mmap load {load_s * 1e3:.1f} ms, mapped same: {mapped_ok}")

    index.search(queries[:8], thr)  # warm-up
    lat, results = latencies(index, queries, thr)
    t = time.perf_counter()
    batch = index.search(queries, thr)
    batch_s = time.perf_counter() - t
    assert batch == results, "batch and single-query results differ"
    log(f"single query p50 {np.percentile(lat, 50):.3f} ms  p99 {np.percentile(lat, 99):.3f} ms  "
        f"batch {queries.shape[0] / batch_s:,.0f} queries/s")  # fmt: skip

    t = time.perf_counter()
    truth = ground_truth(bank, queries, thr)
    log(f"brute force ground truth: {time.perf_counter() - t:.1f} s")

    false = sum(1 for q, res in enumerate(results) for e, d in res if d > thr or truth[q].get(e) != d)
    found_pairs = sum(1 for q, res in enumerate(results) for e, _ in res if e in truth[q])
    all_pairs = sum(len(t_) for t_ in truth)
    hit = np.array([int(src[q]) in dict(results[q]) for q in range(n_planted)])
    bands = {"0_15": (0, 15), "16_24": (16, 24), "25_31": (25, 31)}
    recall = {k: float(hit[(dist >= a) & (dist <= b)].mean()) for k, (a, b) in bands.items()}
    log("recall of planted entries: " + "  ".join(f"{k}: {v:.4f}" for k, v in recall.items())
        + f"  all brute-force pairs: {found_pairs}/{all_pairs}  false matches: {false}")  # fmt: skip

    flat = FlatIndex()
    flat.add(ids, bank)
    nf = min(args.flat_queries, queries.shape[0])
    fsel = np.concatenate([np.arange(min(nf, n_planted)), np.arange(n_planted, n_planted + nf - min(nf, n_planted))])
    flat.search(queries[:1], thr)
    flat_lat, flat_res = latencies(flat, queries[fsel], thr)
    flat_ok = all(dict(r) == truth[q] for r, q in zip(flat_res, fsel.tolist(), strict=True))
    mih_same = float(np.percentile(lat[fsel], 50))
    log(f"FAISS IndexBinaryFlat on {nf} queries: p50 {np.percentile(flat_lat, 50):.2f} ms "
        f"(MIH on the same queries {mih_same:.3f} ms), flat exact: {flat_ok}")  # fmt: skip

    out = {
        "n": n,
        "threshold": thr,
        "queries_planted": n_planted,
        "queries_random": int(queries.shape[0] - n_planted),
        "build_s": round(build_s, 2),
        "ram_bytes_per_hash": round(index.nbytes / n, 2),
        "disk_bytes_per_hash": round(disk / n, 2),
        "mmap_load_ms": round(load_s * 1e3, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 4),
        "p99_ms": round(float(np.percentile(lat, 99)), 4),
        "batch_qps": round(queries.shape[0] / batch_s, 1),
        "recall_0_15": recall["0_15"],
        "recall_16_24": recall["16_24"],
        "recall_25_31": recall["25_31"],
        "recall_all_pairs": found_pairs / all_pairs if all_pairs else 1.0,
        "false_matches": false,
        "flat_queries": nf,
        "flat_p50_ms": round(float(np.percentile(flat_lat, 50)), 4),
        "flat_exact": flat_ok,
        "speedup_vs_flat": round(float(np.percentile(flat_lat, 50)) / mih_same, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "threads": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        log(f"speed-up vs flat (p50 on the same {nf} queries): {out['speedup_vs_flat']}x")
    return out


if __name__ == "__main__":
    main()
