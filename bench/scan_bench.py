"""Scan speed with everything on, against a naive baseline measured in the same run, and where the time goes.

The corpus (generated, benign): camera photos of 8-12 MP, web pictures of 0.05-0.5 MP (JPEG, some
PNG), ~5 % exact duplicates, 10 % of the web pictures inside nested archives (zip in tar.gz), a few
short H.264 videos. Run back to back on the same files, each run in a process of its own (as a command
runs: its own forkserver, Dask cluster and loaded kernels; nothing left warm by an earlier run):

- **baseline**: what a simple script does: one process of its own, for every file read, MD5 + SHA-256,
  Pillow full decode, `pdqhash` (archives and videos are not opened: it does less than the scan);
  `baseline_kept_heap_s` is the same script with glibc's allocator set as Vigie's scanning processes set
  theirs (`vigie.ingest.heap`): what that setting alone would give a simple script;
- **Vigie 1 worker**, **Vigie 2 workers**: `run_scan` with every feature on (dihedral variants,
  de-bordered and region variants, HMA-compatible hash, provenance, carving, EXIF thumbnails), hashing in
  worker processes as `vigie scan` does (one or two). As `vigie scan` does since 2026-12-07, each run's
  process starts its workers' forkserver first, before its imports (`vigie.procs.early_scan_forkserver`):
  the forkserver's preload (imports, kernels loaded) overlaps the run's imports and store creation, which
  the clock leaves out; what remains of it when the scan starts is counted (the scan hashes its first
  pictures itself meanwhile). `<run>_process_s` is the whole process, as typed: Python's start, imports,
  the store's creation, the scan, the report, the exit; `2w_vs_1w_process` compares those;
- **Vigie 1 worker in process** (`1w_in_process`): the setting `hash_in_process`, the scan hashing in its own
  process (no crash isolation): what the worker process costs or gains;
- **Vigie --fast** (`fast`): 1 worker with the settings of `vigie scan --fast` (`vigie.cli.scan.FAST`: query
  variants off, JPEGs of 1024 px a side or more decoded at reduced scale, flagged `pdq_reduced`);
- **Vigie --fast as typed** (`fast_default`): `vigie scan --fast` with its default worker count (one per
  core), the pool's start-up counted;
- **Dask local:2**: `run_scan(cluster="local:2")`, the cluster's start-up and close counted
  (`dask_cluster_start_close_s`, which the scan's own hashing overlaps: `dask_vs_2w_after_start`, which leaves
  them out, is an upper bound of what a case of hours would see).

Each Vigie run gets a store created and migrated before its clock starts (a real scan opens an existing
store); the numba kernels are compiled into their on-disk cache by a small warm-up scan first.
Then **stages**: one process, the same pictures, each stage timed on its own (`vigie.hashing.stage_times`
where it exists: digests, decode, plain PDQ, HMA-compatible hash, dihedral, border, region; plus
walk, read and provenance), so the share of each is visible. `<run>_outside_hashing_s` is the time a run spends
outside its hashing (matching, writing rows, the report).
`<run>_hash_cpu_s` adds up the CPU each item took where it was hashed (in-process, pool or Dask worker):
independent of the machine's load, equal across runs when no work is repeated.
Where a run's CPU went (Linux: `/proc/stat`): `<run>_busy_cores` is the machine's busy CPU over the run's
wall time (2.0: both cores busy throughout); for 1w and 2w, `<run>_machine_cpu_s` is that CPU,
`<run>_main_cpu_s` the scan's own process outside hashing (walking and sniffing the sources, matching,
writing rows, the report, the pool's bookkeeping), and `<run>_other_cpu_s` the rest: the forkserver's
start-up, each worker's own start and its traffic with the scan, and any other process on the machine.
One worker leaves the scan's own work to the second core; two workers share both cores with it, so that
work, not idle time, bounds the 2-worker ratio: `2w_ceiling_vs_1w` is the 1-worker time over the
2-worker run's machine CPU spread over every core, none idle (the most those two runs' work allows).
On a machine shared with others (Linux's autogroup gives each session one share), a second worker gains
little wall time: the 2-worker and Dask ratios need a quiet machine.
**fast_pdq_bits**: distance between the PDQ of each large JPEG decoded at reduced scale (what --fast
hashes) and at full scale (bit-exact with Meta's tools), median and max.

    python bench/scan_bench.py [--camera 8] [--web 300] [--videos 2] [--json] [--skip-dask] [--rounds 1]

`--rounds N` runs the baselines and every Vigie run N times, round after round (each round back to back, as
above), and reports each figure's median over the rounds, ratios from the median times, and each target's
ratio in each round (`1w_vs_baseline_rounds`, `2w_vs_1w_rounds`, `fast_default_vs_baseline_rounds`,
`dask_vs_2w_rounds`): a machine whose speed drifts by 10 % within minutes decides a target on one round.

Figures are files/s and MB/s of the files on disk (the same for every run; Vigie also lists archive members
and EXIF thumbnails: `<run>_locations_per_s`), and each run's speed against the baseline's on the same files.
The load average is printed at the start and the end: on a shared machine times vary by more than ±15 %:
compare ratios from one run on a quiet machine. `cpu` names the processor and its widest vector unit: the
ratios against the baseline depend on it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import statistics
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from vigie.cli.scan import FAST  # noqa: E402 - what `vigie scan --fast` runs
from vigie.demo import encode, photo_like  # noqa: E402


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


def naive_process(root: Path, *, kept_heap: bool = False) -> tuple[int, float]:
    """`naive` in a process of its own, as a simple script runs (glibc's allocator as it comes; this process's
    may have been tuned by a Vigie run), or with `kept_heap`: the allocator set as Vigie's scanning processes
    set theirs (`vigie.ingest.heap`), to show how much of Vigie's lead that alone would give the baseline.
    Files and seconds, timed inside the child (its start-up left out)."""
    import subprocess

    env = dict(os.environ)
    if kept_heap:
        env["MALLOC_MMAP_THRESHOLD_"] = env["MALLOC_TRIM_THRESHOLD_"] = str(512 * 1024 * 1024)
    else:
        for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
            env.pop(k, None)
    out = subprocess.run([sys.executable, __file__, "--naive", str(root)], env=env, check=True,
                         capture_output=True, text=True).stdout
    files, seconds = json.loads(out.strip().splitlines()[-1])
    return files, seconds


def machine_cpu() -> float | None:
    """CPU seconds the whole machine has been busy (every core, every process: /proc/stat), or None off Linux.
    Over a run, what the scan's processes (this one, the forkserver, the workers) and anything else running used."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def vigie_scan(root: Path, work: Path, tag: str, workers: int, cluster: str | None = None, **settings
               ) -> tuple[dict, float, float, float | None]:
    """The summary, the seconds `run_scan` took (store already created), this process's CPU seconds and the
    machine's (`machine_cpu`, None off Linux) over the same time."""
    from vigie.ingest.scan import run_scan
    from vigie.settings import Settings
    from vigie.store import Store

    st = Settings(data_dir=work / f"data-{tag}", workers=workers, **settings)  # 0: one per core, as by default
    store = Store.open(st)
    try:
        t, c, m = time.perf_counter(), time.process_time(), machine_cpu()
        summary = run_scan(store, st, [str(root)], str(work / f"out-{tag}"), workers=workers or None,
                           cluster=cluster)
        m1 = machine_cpu()
        return summary, time.perf_counter() - t, time.process_time() - c, None if m is None else m1 - m
    finally:
        store.close()


def run_process(root: Path, work: Path, tag: str, workers: int, cluster: str | None, extra: dict) -> dict:
    """One Vigie run in a process of its own, as `vigie scan` runs: its own forkserver and Dask cluster started,
    its kernels loaded from numba's cache (compiled by the warm-up scan). Timed inside the child from the call
    of `run_scan` (imports and the store's creation left out, as for every run)."""
    import subprocess

    arg = json.dumps({"root": str(root), "work": str(work), "tag": tag, "workers": workers, "cluster": cluster,
                      "extra": extra})
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--run", arg], check=True, capture_output=True, text=True).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "process_s": time.perf_counter() - t}


def _child_run(arg: str) -> None:
    a = json.loads(arg)
    # As `vigie scan` does (vigie.cli.scan): the workers' forkserver first, its preload overlapping the imports.
    from vigie.procs import early_scan_forkserver
    from vigie.settings import Settings

    early_scan_forkserver(Settings(data_dir=Path(a["work"]) / f"data-{a['tag']}", workers=a["workers"], **a["extra"]),
                          a["workers"] or None, a["cluster"])
    with HashClock() as clock, ClusterClock() as cc:
        summary, s, cpu, machine = vigie_scan(Path(a["root"]), Path(a["work"]), a["tag"], a["workers"],
                                              a["cluster"], **a["extra"])
    print(json.dumps({"s": s, "cpu_s": cpu, "machine_cpu_s": machine, "hash_wait_s": clock.seconds,
                      "hash_cpu_s": clock.cpu, "here_cpu_s": clock.here,
                      "cluster_s": cc.seconds, "locations": summary["counts"]["locations"]}))


class ClusterClock:
    """Seconds spent starting and closing the Dask cluster (`open_client`, `close_client`): fixed per scan."""

    def __init__(self) -> None:
        from vigie.ingest import distributed

        self.mod, self.saved, self.seconds = distributed, (distributed.open_client, distributed.close_client), 0.0

    def _timed(self, fn):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t

        return run

    def __enter__(self) -> ClusterClock:
        self.mod.open_client, self.mod.close_client = (self._timed(f) for f in self.saved)
        return self

    def __exit__(self, *exc) -> None:
        self.mod.open_client, self.mod.close_client = self.saved


class HashClock:
    """Seconds `run_scan` waits on its hashing (walking the sources, hashing, on workers or in-process): the
    rest of a run's time is the scan's own work (matching, writing rows, the report)."""

    def __init__(self) -> None:
        import vigie.ingest.early as early
        import vigie.ingest.scan as scan

        self.scan, self.original, self.seconds, self.cpu = scan, scan._hashed, 0.0, 0.0
        self.here = 0.0  # CPU of the items hashed in the scan's own process (`InProcess`: early or in-process)
        self.early, self.in_process = early, early.InProcess.hash

    def __enter__(self) -> HashClock:
        def hash_here(local, item):
            r = self.in_process(local, item)
            self.here += r.cpu
            return r

        self.early.InProcess.hash = hash_here
        def timed(*args, **kwargs):
            gen = self.original(*args, **kwargs)
            while True:
                t = time.perf_counter()
                try:
                    x = next(gen)
                except StopIteration:
                    self.seconds += time.perf_counter() - t
                    return
                self.seconds += time.perf_counter() - t
                self.cpu += getattr(x[1], "cpu", 0.0)  # CPU the item took where it was hashed
                yield x

        self.scan._hashed = timed
        return self

    def __exit__(self, *exc) -> None:
        self.scan._hashed = self.original
        self.early.InProcess.hash = self.in_process


def stages(root: Path) -> dict:
    """Seconds per stage over every picture of the corpus, one process."""
    from vigie import hashing
    from vigie.ingest.containers import iter_items
    from vigie.media.decode import decode_image
    from vigie.media.provenance import read_provenance
    from vigie.media.sniff import sniff
    from vigie.settings import Settings
    from vigie.signals.pdq import hash_rgb
    from vigie.signals.variants import compute_variants

    s = Settings()
    warm = np.asarray(photo_like(1, 320, 240))
    compute_variants(warm, s)  # the numba kernels loaded before timing
    stage_times = getattr(hashing, "stage_times", None)  # per-stage timer of the hashing code, where it exists
    t: dict[str, float] = dict.fromkeys(("walk", "read", "provenance"), 0.0)
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
        if stage_times is not None:
            for k, ms in stage_times(data, s).items():
                if k != "total":
                    t[k] = t.get(k, 0.0) + ms / 1000.0
        else:
            t0 = time.perf_counter()
            for name in ("md5", "sha1", "sha256"):
                hashlib.new(name, data).hexdigest()
            t["digests"] = t.get("digests", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            rgb = decode_image(data, max_pixels=s.max_pixels)
            t["decode"] = t.get("decode", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            hash_rgb(rgb, s.pdq_engine)
            plain = time.perf_counter() - t0
            t["pdq"] = t.get("pdq", 0.0) + plain
            t0 = time.perf_counter()
            compute_variants(rgb, s, data=data)  # hashes the plain picture too
            t["variants"] = t.get("variants", 0.0) + max(0.0, time.perf_counter() - t0 - plain)
        t0 = time.perf_counter()
        read_provenance(data, mt)
        t["provenance"] += time.perf_counter() - t0
    out = {f"stage_{k}_s": round(v, 2) for k, v in t.items()}
    out["stage_pictures"] = n
    total = sum(t.values())
    out["stage_total_s"] = round(total, 2)
    out.update({f"stage_{k}_share": round(v / total, 3) for k, v in t.items()})
    return out


def reduced_pdq_bits(root: Path) -> dict:
    """Bits between the PDQ of each JPEG that --fast decodes at reduced scale and the full decode's."""
    from vigie.media.decode import decode_image
    from vigie.signals.pdq import hash_rgb

    dists = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        data = p.read_bytes()
        small = decode_image(data, fast=True)
        full = decode_image(data)
        if small.shape == full.shape:
            continue  # under 1024 px a side: decoded in full by --fast too
        a, b = hash_rgb(full, "numba").hex, hash_rgb(small, "numba").hex
        dists.append(bin(int(a, 16) ^ int(b, 16)).count("1"))
    if not dists:
        return {"fast_reduced_jpegs": 0}
    return {"fast_reduced_jpegs": len(dists), "fast_pdq_bits_median": statistics.median(dists),
            "fast_pdq_bits_max": max(dists)}


def one_round(root: Path, work: Path, runs: list, n: int) -> dict:
    """The baseline, the baseline with kept buffers and every Vigie run of `runs`, once each, back to back."""
    out = {"baseline": naive_process(root), "baseline_kept_heap": naive_process(root, kept_heap=True)}
    for tag, workers, cluster, extra in runs:
        out[tag] = run_process(root, work, f"{tag}-{n}", workers, cluster, extra)
    return out


def median_of(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else statistics.median(values)


def per_round(rounds: list[dict]) -> dict:
    """Each target's ratio in each round (`--rounds`): the spread that one round's figure hides."""
    out: dict[str, list[float]] = {"baseline_s_rounds": [round(r["baseline"][1], 2) for r in rounds]}
    for r in rounds:
        base = r["baseline"][1]
        pairs = {"1w_vs_baseline": base / r["1w"]["s"], "2w_vs_1w": r["1w"]["s"] / r["2w"]["s"],
                 "2w_vs_1w_process": r["1w"]["process_s"] / r["2w"]["process_s"],
                 "fast_default_vs_baseline": base / r["fast_default"]["s"]}
        if "dask" in r:
            pairs["dask_vs_2w"] = r["2w"]["s"] / r["dask"]["s"]
        for k, v in pairs.items():
            out.setdefault(f"{k}_rounds", []).append(round(v, 2))
    return out


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    """The processor's name and widest vector unit (Linux): ratios against the baseline differ between processors
    (the baseline ran as fast on the fifth and sixth development machines, Vigie 1.35 times slower on the sixth:
    docs/scanning.md, sixth round)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "unknown")
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    vector = next((v for v in ("avx512f", "avx2", "avx", "sse4_2") if v in flags), "none")
    return f"{name} ({vector})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--camera", type=int, default=8, help="camera photos, 8-12 MP")
    ap.add_argument("--web", type=int, default=300, help="web pictures, 0.05-0.5 MP")
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the baselines and every Vigie run this many times, round after round; report medians "
                         "and each target's ratio per round (`*_rounds`)")
    ap.add_argument("--naive", metavar="ROOT", help=argparse.SUPPRESS)  # naive_process's child
    ap.add_argument("--run", metavar="JSON", help=argparse.SUPPRESS)  # run_process's child
    a = ap.parse_args()
    if a.run:
        _child_run(a.run)
        return
    if a.naive:
        t = time.perf_counter()
        n = naive(Path(a.naive))
        print(json.dumps([n, time.perf_counter() - t]))
        return
    res: dict = {"load_start": _load(), "cpus": os.cpu_count(), "cpu": cpu_model()}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        root = d / "seized"
        t = time.perf_counter()
        files, nbytes = make_tree(root, a.camera, a.web, a.videos)
        res.update({"files_on_disk": files, "mb_on_disk": round(nbytes / 1e6, 1),
                    "generate_s": round(time.perf_counter() - t, 1)})
        warm = d / "warm"
        make_tree(warm, 0, 4, 0)
        vigie_scan(warm, d, "warm", 1)  # numba kernels compiled into their on-disk cache once, before any timing
        # fast: --fast on one worker; fast_default: `vigie scan --fast` as typed (workers 0: one per core)
        runs = [("1w", 1, None, {}), ("1w_in_process", 1, None, {"hash_in_process": True}), ("2w", 2, None, {}),
                ("fast", 1, None, FAST), ("fast_default", 0, None, FAST)]
        if not a.skip_dask:
            runs.append(("dask", 2, "local:2", {}))
        rounds = [one_round(root, d, runs, r) for r in range(max(1, a.rounds))]
        base_files = rounds[0]["baseline"][0]
        base_s = statistics.median(r["baseline"][1] for r in rounds)
        base_rate = base_files / base_s
        res.update({"baseline_s": round(base_s, 2), "baseline_files_per_s": round(base_rate, 2),
                    "baseline_mb_per_s": round(nbytes / 1e6 / base_s, 2)})
        heap_s = statistics.median(r["baseline_kept_heap"][1] for r in rounds)
        res["baseline_kept_heap_s"] = round(heap_s, 2)
        if len(rounds) > 1:
            res.update(per_round(rounds))
        for tag, _, cluster, _ in runs:
            run = {k: median_of(r[tag][k] for r in rounds) for k in rounds[0][tag]}
            s, locs = run["s"], run["locations"]
            res[f"{tag}_outside_hashing_s"] = round(s - run["hash_wait_s"], 2)
            res[f"{tag}_hash_cpu_s"] = round(run["hash_cpu_s"], 2)
            if cluster:
                res[f"{tag}_cluster_start_close_s"] = round(run["cluster_s"], 2)
            res.update({f"{tag}_s": round(s, 2), f"{tag}_locations": locs,
                        f"{tag}_files_per_s": round(files / s, 2), f"{tag}_locations_per_s": round(locs / s, 2),
                        f"{tag}_mb_per_s": round(nbytes / 1e6 / s, 2),
                        f"{tag}_vs_baseline": round(base_s / s, 2)})
            res[f"{tag}_process_s"] = round(run["process_s"], 2)
            if run["machine_cpu_s"] is not None:
                res[f"{tag}_busy_cores"] = round(run["machine_cpu_s"] / s, 2)
            if tag in ("1w", "2w"):
                res[f"{tag}_main_cpu_s"] = round(run["cpu_s"] - run["here_cpu_s"], 2)
                if run["machine_cpu_s"] is not None:
                    res[f"{tag}_machine_cpu_s"] = round(run["machine_cpu_s"], 2)
                    res[f"{tag}_other_cpu_s"] = round(run["machine_cpu_s"] - run["cpu_s"] + run["here_cpu_s"]
                                                      - run["hash_cpu_s"], 2)
        res["1w_vs_baseline_kept_heap"] = round(heap_s / res["1w_s"], 2)
        res["2w_vs_1w"] = round(res["2w_files_per_s"] / res["1w_files_per_s"], 2)
        res["2w_vs_1w_process"] = round(res["1w_process_s"] / res["2w_process_s"], 2)
        if "2w_machine_cpu_s" in res:  # the 2-worker run's CPU spread over every core, none idle
            res["2w_ceiling_vs_1w"] = round(res["1w_s"] / (res["2w_machine_cpu_s"] / os.cpu_count()), 2)
        if "dask_s" in res:
            res["dask_vs_2w"] = round(res["dask_files_per_s"] / res["2w_files_per_s"], 2)
            res["dask_vs_2w_after_start"] = round(res["2w_s"] / (res["dask_s"] - res["dask_cluster_start_close_s"]), 2)
        res.update(reduced_pdq_bits(root))
        res.update(stages(root))
    res["load_end"] = _load()
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
