"""NIST NSRL RDS v3 import: rows/s into a known-good bank and the store's disk size per million RDS rows.

Generates an RDS-shaped SQLite database (NIST's published FILE table: sha256, sha1, md5, crc32, file_name,
file_size, package_id; random digests, upper-case hex as NIST writes them, a share of rows repeated as
NIST lists one file in several packages), imports it with `vigie.banks.service.import_file(..., "nsrl")`
into a SQLite store, and prints rows/s, entries/s, the growth of the store's files per million RDS rows,
and the time and size of the per-scan known-good set (`vigie.banks.known_good.load`).

    python bench/nsrl_bench.py [--rows 1000000] [--repeat 0.1] [--signals sha1,md5,sha256] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vigie.banks import known_good, service  # noqa: E402
from vigie.banks.formats import get_format  # noqa: E402
from vigie.settings import Settings  # noqa: E402
from vigie.store import Store  # noqa: E402

FILE_TABLE = ("CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, "
              "crc32 VARCHAR NOT NULL, file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, "
              "package_id INTEGER NOT NULL)")


def make_rds(path: Path, rows: int, repeat: float, seed: int = 1) -> None:
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute(FILE_TABLE)
    recent: list[tuple[str, str, str, str]] = []

    def batch(n: int):
        for i in range(n):
            if recent and rng.random() < repeat:  # the same file in another package
                d = rng.choice(recent)
            else:
                d = (f"{rng.getrandbits(256):064X}", f"{rng.getrandbits(160):040X}", f"{rng.getrandbits(128):032X}",
                     f"{rng.getrandbits(32):08X}")
                if len(recent) < 10_000:
                    recent.append(d)
                else:
                    recent[rng.randrange(10_000)] = d
            yield (*d, f"file{i}.dll", rng.randrange(1, 1 << 24), rng.randrange(1, 200_000))

    done = 0
    while done < rows:
        n = min(100_000, rows - done)
        conn.executemany("INSERT INTO FILE VALUES (?, ?, ?, ?, ?, ?, ?)", batch(n))
        done += n
    conn.commit()
    conn.close()


def store_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and ".db" in p.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=float, default=0.1, help="share of rows that repeat an earlier file")
    ap.add_argument("--signals", default="sha1,md5,sha256")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigie-nsrl-bench-") as tmp:
        tmp = Path(tmp)
        rds = tmp / "rds.db"
        make_rds(rds, a.rows, a.repeat)
        data_dir = tmp / "data"
        store = Store.open(Settings(data_dir=data_dir, workers=1))
        service.create_bank(store, "nsrl", kind="known_good")
        before = store_bytes(data_dir)
        t0 = time.perf_counter()
        with open(rds, "rb") as f:  # import_file's reader with the chosen digests
            rep = service.import_entries(store, "nsrl", get_format("nsrl")(signals=a.signals).read(f))
        secs = time.perf_counter() - t0
        store.close()
        size = store_bytes(data_dir) - before
        store = Store.open(Settings(data_dir=data_dir, workers=1))
        t1 = time.perf_counter()
        kg = known_good.load(store)
        load_secs = time.perf_counter() - t1
        kg_bytes = kg.nbytes
        store.close()
        out = {"rows": a.rows, "signals": a.signals, "entries_read": rep.read, "entries_added": rep.added,
               "import_seconds": round(secs, 2), "rows_per_second": round(a.rows / secs),
               "entries_per_second": round(rep.read / secs),
               "rds_bytes": rds.stat().st_size, "store_bytes": size,
               "store_mb_per_million_rows": round(size / 1e6 / (a.rows / 1e6), 1),
               "known_good_load_seconds": round(load_secs, 2), "known_good_set_mb": round(kg_bytes / 1e6, 1)}
    if a.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
