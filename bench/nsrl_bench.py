"""NIST NSRL RDS v3 import: rows/s into a known-good bank and the store's disk size per million RDS rows.

Generates an RDS-shaped SQLite database (NIST's published FILE table: sha256, sha1, md5, crc32, file_name,
file_size, package_id; random digests, upper-case hex as NIST writes them, a share of rows repeated as
NIST lists one file in several packages), imports it with `vigie.banks.service.import_file(..., "nsrl")`
into a SQLite store (or, with `--database-url`, a PostgreSQL database: a schema of its own, dropped after), and
prints rows/s, entries/s, the growth of the store per million RDS rows (SQLite: its files; PostgreSQL:
`pg_total_relation_size` of the entries table, indexes included), and the time and size of the per-scan
known-good set (`vigie.banks.known_good.load`): the first scan's (read from the store and saved), a later
scan's (the saved set, mapped), the same set read from the store alone (as every scan did before the set was
saved), and what a worker process is sent. A known-good bank imports through the bulk path
(`vigie.banks.known_good.bulk_import`).

    python bench/nsrl_bench.py [--rows 1000000] [--repeat 0.1] [--signals sha1,md5,sha256] [--json]
                               [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sqlite3
import sys
import tempfile
import time
import uuid
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


class _Pg:
    """A schema of its own in the given PostgreSQL database, for one run."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine, text

        self.schema = f"nsrl_bench_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(url)
        with self.admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        self.url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{self.schema}"

    def size(self) -> int:
        from sqlalchemy import text

        with self.admin.begin() as c:
            return int(c.execute(text(f"SELECT pg_total_relation_size('\"{self.schema}\".entries')")).scalar() or 0)

    def drop(self) -> None:
        from sqlalchemy import text

        with self.admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=float, default=0.1, help="share of rows that repeat an earlier file")
    ap.add_argument("--signals", default="sha1,md5,sha256")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--database-url", default=None, help="a PostgreSQL URL (default: a SQLite store)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigie-nsrl-bench-") as tmp:
        tmp = Path(tmp)
        rds = tmp / "rds.db"
        make_rds(rds, a.rows, a.repeat)
        data_dir = tmp / "data"
        pg = _Pg(a.database_url) if a.database_url else None
        settings = Settings(data_dir=data_dir, workers=1, **({"database_url": pg.url} if pg else {}))
        store = Store.open(settings)
        service.create_bank(store, "nsrl", kind="known_good")
        before = pg.size() if pg else store_bytes(data_dir)
        t0 = time.perf_counter()
        with open(rds, "rb") as f:  # import_file's reader with the chosen digests
            rep = service.import_entries(store, "nsrl", get_format("nsrl")(signals=a.signals).read(f))
        secs = time.perf_counter() - t0
        store.close()
        size = (pg.size() if pg else store_bytes(data_dir)) - before
        store = Store.open(settings)
        t1 = time.perf_counter()
        kg = known_good.load(store)
        load_secs = time.perf_counter() - t1
        kg_bytes = kg.nbytes
        kg.release()
        t2 = time.perf_counter()
        kg = known_good.load(store)  # a later scan: the saved set
        saved_secs = time.perf_counter() - t2
        sent = len(pickle.dumps(kg))
        kg.release()
        t3 = time.perf_counter()
        unsaved = known_good.read(store)
        read_secs = time.perf_counter() - t3
        sent_unsaved = len(pickle.dumps(unsaved))
        del unsaved
        store.close()
        if pg:
            pg.drop()
        out = {"store": "postgresql" if pg else "sqlite", "rows": a.rows, "signals": a.signals,
               "entries_read": rep.read, "entries_added": rep.added,
               "import_seconds": round(secs, 2), "rows_per_second": round(a.rows / secs),
               "entries_per_second": round(rep.read / secs),
               "rds_bytes": rds.stat().st_size, "store_bytes": size,
               "store_mb_per_million_rows": round(size / 1e6 / (a.rows / 1e6), 1),
               "known_good_load_seconds": round(load_secs, 2), "known_good_set_mb": round(kg_bytes / 1e6, 1),
               "known_good_saved_load_seconds": round(saved_secs, 3),
               "known_good_read_only_seconds": round(read_secs, 2),
               "known_good_sent_per_worker_bytes": sent, "known_good_unsaved_sent_per_worker_bytes": sent_unsaved,
               "known_good_saved_vs_read_speedup": round(read_secs / max(saved_secs, 1e-6), 1)}
    if a.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
