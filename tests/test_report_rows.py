"""How the scan report reads a scan's rows (`vigie.report.scan_report._rows`), on both stores: in scan order, in
chunks, through the (scan_id, seq) index, so that a scan of 50 million locations is read in linear time.

Before the index every chunk of 5,000 rows sorted all of the scan's rows again (SQLite's plan said "USE TEMP B-TREE
FOR ORDER BY"): a million rows took 32.6 s to read instead of 7.2 s, and the cost grew with the square of the
scan's size."""

from __future__ import annotations

from sqlalchemy import insert, inspect, select

from vigie.report.scan_report import _rows, errors_list
from vigie.store.models import Scan, ScanFile


def _scan_with_rows(store, n: int, error_every: int = 0) -> tuple[int, int]:
    with store.sessions() as s:
        scan, other = Scan(key="rows-test", sources=["/ev"]), Scan(key="rows-other", sources=["/ev"])
        s.add_all([scan, other])
        s.flush()
        scan_id, other_id = scan.id, other.id
        rows = []
        for i in range(n):  # written out of order: the report must still read them in scan order
            seq = n - i
            err = error_every and seq % error_every == 0
            rows.append(dict(scan_id=scan_id, seq=seq, location=f"/ev/{seq:05d}.jpg", klass="error" if err else
                             "unknown", flags=[], sha256=f"{seq:064x}", pdq="f" * 64 if seq % 2 else None,
                             error_code="decoder_crash" if err else None, error_message="died" if err else None))
        rows.append(dict(scan_id=other_id, seq=1, location="/ev/other.jpg", klass="unknown", flags=[]))
        s.execute(insert(ScanFile), rows)
        s.commit()
    return scan_id, other_id


def test_rows_come_in_scan_order_across_chunks_and_only_the_scans_own(store):
    scan_id, _ = _scan_with_rows(store, 23)
    rows = list(_rows(store, scan_id, chunk=5))
    assert [r.seq for r in rows] == list(range(1, 24))
    assert rows[0].location == "/ev/00001.jpg" and rows[0].klass == "unknown" and rows[0].flags == []
    narrow = list(_rows(store, scan_id, ScanFile.pdq.is_not(None), chunk=4,
                        columns=(ScanFile.seq, ScanFile.sha256, ScanFile.pdq)))
    assert [r.seq for r in narrow] == list(range(1, 24, 2))  # the filter and the chunking together
    assert narrow[0].sha256 == f"{1:064x}" and narrow[0].pdq == "f" * 64


def test_errors_list_gives_the_first_errors_in_scan_order_up_to_its_limit(store):
    scan_id, _ = _scan_with_rows(store, 40, error_every=3)
    errs = errors_list(store, scan_id, limit=5)
    assert [e["location"] for e in errs] == [f"/ev/{s:05d}.jpg" for s in (3, 6, 9, 12, 15)]
    assert errs[0] == {"location": "/ev/00003.jpg", "code": "decoder_crash", "message": "died", "class": "error"}
    assert len(errors_list(store, scan_id)) == 13


def test_the_scan_order_index_exists_and_the_chunked_read_uses_it(store):
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(store.engine).get_indexes("scan_files")}
    assert indexes.get("ix_scan_files_seq") == ["scan_id", "seq"]
    if store.engine.dialect.name == "sqlite":
        q = select(ScanFile.seq, ScanFile.location).where(ScanFile.scan_id == 1, ScanFile.seq > 0) \
            .order_by(ScanFile.seq).limit(5000)
        sql = str(q.compile(store.engine, compile_kwargs={"literal_binds": True}))
        with store.engine.connect() as c:
            plan = " ".join(str(row[-1]) for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "ix_scan_files_seq" in plan and "TEMP B-TREE" not in plan, plan
