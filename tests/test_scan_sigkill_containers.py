"""`vigie scan --workers 2` SIGKILLed in the middle of evidence holding this round's containers (RAR, a
CD image, a disk with a partition The Sleuth Kit cannot open and pictures between its partitions), then run
again: the same rows as an uninterrupted scan, nothing lost and nothing twice, on SQLite and on PostgreSQL.

The scans run as the command does, in processes of their own, against the store of the `store` fixture.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from test_archives_rar import rar5
from test_evidence_disc import XORRISO, burn
from test_evidence_formats import pic
from test_evidence_no_filesystem import MKFS, MTOOLS, two_partitions

from vigie.store.models import ScanFile

pytestmark = pytest.mark.skipif(not (MKFS and MTOOLS and XORRISO), reason="mkfs.vfat, mtools and xorriso needed")


def _evidence(tmp_path):
    ev = tmp_path / "ev"
    (ev / "pics").mkdir(parents=True)
    for i in range(120):  # enough small pictures for the kill to land mid-scan
        (ev / "pics" / f"p{i:03d}.jpg").write_bytes(pic(300 + i, size=(96 + i % 5, 72)))
    (ev / "pics" / "copy-of-p007.jpg").write_bytes((ev / "pics" / "p007.jpg").read_bytes())
    (ev / "x.rar").write_bytes(rar5([("a.jpg", pic(501)), ("sub/b.png", pic(502, "PNG"))]))
    work = tmp_path / "build"
    work.mkdir()
    (ev / "disc.iso").write_bytes(burn(work, {"DCIM/c.jpg": pic(503)}))
    disk, _live, _p2, _gaps = two_partitions(work)
    (ev / "disk.img").write_bytes(disk)
    shutil.rmtree(work)
    return ev


def _scan(env, ev, out, case, data):
    return subprocess.Popen([sys.executable, "-m", "vigie", "scan", str(ev), "--out", str(out), "--workers", "2",
                             "--case", case, "--data-dir", str(data), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _rows(out):
    with open(out / "files.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_sigkilled_scan_of_containers_resumes_to_the_same_rows(store, tmp_path):
    settings = store.settings
    env = {**os.environ, "VIGIE_DATABASE_URL": settings.effective_database_url}
    ev = _evidence(tmp_path)
    data = settings.data_dir
    full = _scan(env, ev, tmp_path / "full", "uninterrupted", data)
    assert full.wait(timeout=300) == 0, full.stderr.read().decode()
    with store.sessions() as s:
        n_full = s.scalar(select(func.count()).select_from(ScanFile))
    killed = _scan(env, ev, tmp_path / "resumed", "killed", data)
    deadline = time.monotonic() + 120
    with store.sessions() as s:
        while time.monotonic() < deadline:  # kill once some rows are acknowledged, not all
            n = s.scalar(select(func.count()).select_from(ScanFile)) or 0
            if n >= n_full + 10:  # some of the second scan's rows acknowledged, not all
                break
            s.rollback()
            time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, "the scan ended before it was killed: the test proves nothing"
    again = _scan(env, ev, tmp_path / "resumed", "killed", data)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    a, b = _rows(tmp_path / "full"), _rows(tmp_path / "resumed")
    assert len(b) == len({r["location"] for r in b})  # nothing twice
    assert a == b  # nothing lost, nothing different
    locs = {r["location"] for r in a}
    assert f"{ev / 'x.rar'}!sub/b.png" in locs and f"{ev / 'disc.iso'}!/DCIM/c.jpg" in locs
    assert any("!unpartitioned/@unallocated:" in loc for loc in locs) and any("!p2/@unallocated:" in loc
                                                                              for loc in locs)
    # The report says the scan ran twice: the killed run (no end recorded) and the run that finished it.
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    first, second = summary["runs"]
    assert first["status"] == "killed" and first["walk"] == "fresh" and "ended_at" not in first
    assert second["status"] == "done" and second["walk"] == "taken_up" and second["rows_before"] >= 10
    assert second["rows_after"] == len(b) and summary["evidence_changed"] is False
    uninterrupted = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert [r["status"] for r in uninterrupted["runs"]] == ["done"]
