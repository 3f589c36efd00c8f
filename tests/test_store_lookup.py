"""The hashing workers' look-up of earlier content (`vigie.store.lookup`), on both stores: compiled in the scan's
process, run on a plain DB-API connection in the worker, with the same answer as the ORM and without SQLAlchemy
in the worker."""

from __future__ import annotations

import pickle
import subprocess
import sys

from vigie.ingest import scan_worker
from vigie.store.lookup import earlier_content
from vigie.store.models import Scan, ScanFile


def _row(scan_id: int, seq: int, sha: str, **kw) -> ScanFile:
    return ScanFile(scan_id=scan_id, seq=seq, location=f"/ev/{seq}.jpg", sha256=sha, klass="unknown", **kw)


def test_a_worker_finds_earlier_content_committed_before_and_after_it_connected(store):
    with store.sessions() as s:
        scan = Scan(key="lookup-test", sources=["/ev"])
        other = Scan(key="other-scan", sources=["/ev"])
        s.add_all([scan, other])
        s.flush()
        s.add_all([
            _row(scan.id, 0, "a" * 64, media_type="image/jpeg", pdq="f" * 64, pdq_quality=88,
                 flags=["pdq_reduced", "gps"], detail={"pdq_variants": [{"kind": "rot90", "pdq": "0" * 64}],
                                                       "width": 640}),
            _row(scan.id, 1, "b" * 64, media_type=None, flags=[]),  # not hashed (an error): not reused
            _row(other.id, 0, "c" * 64, media_type="image/png", flags=[]),  # another scan's
        ])
        s.commit()
        scan_id = scan.id
    query = earlier_content(store.settings.effective_database_url)
    scan_worker.init(store.settings, scan_id, lookup=query)
    try:
        r = scan_worker.known_in_store("a" * 64)
        assert r.location == "/ev/0.jpg" and r.media_type == "image/jpeg" and r.pdq == "f" * 64
        assert r.pdq_quality == 88 and r.flags == ["pdq_reduced"]  # JSON decoded on both drivers
        assert r.pdq_variants == [{"kind": "rot90", "pdq": "0" * 64}] and r.detail == {"width": 640}
        assert scan_worker.known_in_store("b" * 64) is None
        assert scan_worker.known_in_store("c" * 64) is None
        assert scan_worker.known_in_store("d" * 64) is None
        with store.sessions() as s:  # committed by the scan's process after the worker's connection opened
            s.add(_row(scan_id, 2, "d" * 64, media_type="image/gif", flags=[]))
            s.commit()
        assert scan_worker.known_in_store("d" * 64).location == "/ev/2.jpg"
    finally:
        scan_worker._reader.close()
        scan_worker._reader = None


def test_a_worker_imports_no_sqlalchemy(store, tmp_path):
    """What a worker imports, in a fresh process given the compiled query as the pool gives it (pickled)."""
    with store.sessions() as s:
        scan = Scan(key="lookup-import", sources=["/ev"])
        s.add(scan)
        s.flush()
        s.add(_row(scan.id, 0, "e" * 64, media_type="image/jpeg", flags=[]))
        s.commit()
        scan_id = scan.id
    args = tmp_path / "args.pickle"
    args.write_bytes(pickle.dumps((store.settings, scan_id, earlier_content(store.settings.effective_database_url))))
    probe = ("import pickle, sys; from vigie.ingest import scan_worker; "
             f"settings, scan, q = pickle.loads(open({str(args)!r}, 'rb').read()); "
             "scan_worker.init(settings, scan, lookup=q); r = scan_worker.known_in_store('e' * 64); "
             "print(r.location, 'sqlalchemy' in sys.modules, 'vigie.store.models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["/ev/0.jpg", "False", "False"]
