"""Import speed: a generated N-line CSV into a new bank, against a baseline measured in the same run.

The baseline is the floor: the same rows written with SQLite's executemany straight from
csv.reader into a bare table (no validation, no merging, no JSON). The ratio says what
Vigie's atomic, validating, merging import costs on top.

    python bench/import_bench.py --size 1000000 [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vigie.banks import service  # noqa: E402
from vigie.settings import Settings  # noqa: E402
from vigie.store import Store  # noqa: E402


def make_csv(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["signal", "value", "category_scheme", "category", "tags"])
        for i in range(n):
            if i % 2:
                w.writerow(["pdq", f"{rng.getrandbits(256):064x}", "vics_us", "1", "bench"])
            else:
                w.writerow(["md5", f"{rng.getrandbits(128):032x}", "", "", ""])


def baseline(path: Path, db: Path) -> float:
    t = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE e (signal TEXT, value TEXT, scheme TEXT, cat TEXT, tags TEXT, UNIQUE(signal, value))")
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        con.executemany("INSERT INTO e VALUES (?,?,?,?,?)", r)
    con.commit()
    con.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = d / "bank.csv"
        make_csv(src, a.size)
        mb = src.stat().st_size / 1e6
        base_s = baseline(src, d / "base.db")
        store = Store.open(Settings(data_dir=d / "data"))
        service.create_bank(store, "bench")
        t = time.perf_counter()
        with open(src, "rb") as f:
            rep = service.import_file(store, "bench", f, "csv")
        vigie_s = time.perf_counter() - t
        assert rep.added == a.size, rep.as_dict()
        out = {"n": a.size, "csv_mb": round(mb, 1), "vigie_s": round(vigie_s, 2),
               "vigie_rows_per_s": round(a.size / vigie_s), "baseline_s": round(base_s, 2),
               "baseline_rows_per_s": round(a.size / base_s), "ratio_vs_baseline": round(vigie_s / base_s, 2),
               "projected_10m_s": round(vigie_s * 10_000_000 / a.size), "db_mb": round(
                   sum(p.stat().st_size for p in (d / "data").glob("vigie.db*")) / 1e6, 1), "cpus": os.cpu_count()}
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
