"""A scan resumed after its containers: what it costs to take up the walk (`vigie.ingest.resume`).

Generates benign evidence (a tar.gz and a raw disk image of random bytes, which the scan decompresses and carves,
then a folder of small generated pictures), scans it with `stop_after` just after the containers (as a kill
would leave it), and measures, in the same run:

- `resume_walk_s`: how long `resumed_items` takes to reach the first item left to hash (folders walked, rows
  read, nothing opened);
- `old_skip_walk_s`: how long skipping the finished items by walking them again took (what a resumed scan did
  before 2026-12-07: every container before the resume point opened, decompressed and carved again);
- `resumed_scan_s`: the whole resumed `run_scan` (the pictures left hashed, the report written).

    python bench/resume_bench.py [--mb 200] [--pictures 40] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import func, select  # noqa: E402

from vigie.demo import encode, photo_like  # noqa: E402
from vigie.ingest.containers import iter_items  # noqa: E402
from vigie.ingest.resume import resumed_items  # noqa: E402
from vigie.ingest.scan import run_scan  # noqa: E402
from vigie.settings import Settings  # noqa: E402
from vigie.store import Store  # noqa: E402
from vigie.store.models import ScanFile  # noqa: E402


def make(ev: Path, mb: int, pictures: int) -> None:
    ev.mkdir(parents=True)
    chunk = 4 << 20
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as t:
        for i in range(max(1, mb // 2 // 4)):
            data = os.urandom(chunk)
            info = tarfile.TarInfo(f"blobs/b{i:04d}.bin")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    (ev / "a-archive.tar.gz").write_bytes(buf.getvalue())
    n = max(1, mb // 2 // 4)
    mbr = bytearray(512)  # one partition of noise, no file system: carved
    struct.pack_into("<B3sB3sII", mbr, 446, 0x00, b"\x00\x02\x00", 0x83, b"\xfe\xff\xff", 2048,
                     n * chunk // 512)
    mbr[510:512] = b"\x55\xaa"
    with open(ev / "b-disk.dd", "wb") as f:
        f.write(mbr + bytes(2048 * 512 - 512))
        for _ in range(n):
            f.write(os.urandom(chunk))
    (ev / "c-pictures").mkdir()
    for i in range(pictures):
        (ev / "c-pictures" / f"p{i:03d}.jpg").write_bytes(encode(photo_like(i, 320, 240), "JPEG"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200, help="megabytes of containers before the resume point")
    ap.add_argument("--pictures", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigie-resume-bench-") as tmp:
        tmp = Path(tmp)
        ev = tmp / "ev"
        make(ev, a.mb, a.pictures)
        settings = Settings(data_dir=tmp / "data", workers=1)
        store = Store.open(settings)
        whole = [it.location for it in iter_items([str(ev)], settings)]
        stop = whole.index(str(ev / "c-pictures" / "p000.jpg")) + 1
        run_scan(store, settings, [str(ev)], str(tmp / "out"), workers=1, stop_after=stop)
        with store.sessions() as s:
            done = s.scalar(select(func.count()).select_from(ScanFile))
            stored = list(s.scalars(select(ScanFile.location).order_by(ScanFile.seq)))
        t0 = time.perf_counter()
        nxt = next(resumed_items([str(ev)], settings, done, iter(stored)), None)
        resume_walk = time.perf_counter() - t0
        t0 = time.perf_counter()
        items = iter_items([str(ev)], settings)
        for _ in range(done):
            next(items, None)
        old = next(items, None)
        old_walk = time.perf_counter() - t0
        assert nxt is not None and old is not None and nxt.location == old.location
        t0 = time.perf_counter()
        run_scan(store, settings, [str(ev)], str(tmp / "out"), workers=1)
        resumed = time.perf_counter() - t0
        store.close()
        out = {"container_mb": a.mb, "rows_stored": done, "rows_total": len(whole),
               "resume_walk_s": round(resume_walk, 3), "old_skip_walk_s": round(old_walk, 2),
               "resume_walk_speedup": round(old_walk / max(resume_walk, 1e-6), 1),
               "resumed_scan_s": round(resumed, 2)}
    if a.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k:24} {v}")


if __name__ == "__main__":
    main()
