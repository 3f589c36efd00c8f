"""One run of a scan at a time: the same `vigie scan` started while it runs is refused (`scan_running`), since
both would take up the walk at the same row and store every item twice; a SIGKILLed run's lock goes with its
process, so the command resumes at once. Real processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select
from test_evidence_formats import pic

from vigie.ingest.scan import scan_key
from vigie.store.db import lock_path
from vigie.store.models import ScanFile


def _scan(settings, ev, out, case):
    env = {**os.environ, "VIGIE_DATABASE_URL": settings.effective_database_url}
    return subprocess.Popen([sys.executable, "-m", "vigie", "scan", str(ev), "--out", str(out), "--workers", "1",
                             "--case", case, "--data-dir", str(settings.data_dir), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(store) -> int:
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(ScanFile)) or 0


def _wait_rows(store, proc, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while _rows(store) < at_least and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)


def test_a_second_run_of_a_running_scan_is_refused_and_a_killed_one_resumes(store, tmp_path):
    settings = store.settings
    ev = tmp_path / "ev"
    ev.mkdir()
    n = 400
    for i in range(n):
        (ev / f"p{i:03d}.jpg").write_bytes(pic(700 + i, size=(200 + i % 7, 150)))
    lock = f"scan-{scan_key([str(ev)], 'one')}"
    with store.exclusive(lock) as mine:  # a run holds the scan's lock (here: this process)
        assert mine
        if store.dialect == "sqlite":  # the lock's file, beside the database: 0600 as every file of Vigie
            assert lock_path(settings, lock).stat().st_mode & 0o777 == 0o600
        second = _scan(settings, ev, tmp_path / "out2", "one")  # the same command meanwhile
        out, err = second.communicate(timeout=120)
    assert second.returncode == 1, (out, err)
    assert json.loads(out)["error"]["code"] == "scan_running" and _rows(store) == 0

    first = _scan(settings, ev, tmp_path / "out", "one")
    _wait_rows(store, first, 1)
    with store.exclusive(lock) as mine:
        held = not mine  # by the running scan's process
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL and 0 < _rows(store) < n, \
        "the scan ended before it was killed: the test proves nothing"
    assert held
    with store.exclusive(lock) as mine:
        assert mine  # the lock went with the killed process
    again = _scan(settings, ev, tmp_path / "out", "one")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    summary = json.loads(out)
    assert summary["counts"]["locations"] == n == _rows(store)  # each picture once: no #dup2 copies
    assert [r["status"] for r in summary["runs"]] == ["killed", "done"]
