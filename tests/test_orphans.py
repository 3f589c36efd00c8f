"""Hashing processes leave with the process that made their pool: a crawler or a `vigie hash` that is
SIGKILLed (or killed by the kernel for memory) leaves no worker behind. The pools' workers are children of
a forkserver, not of that process, and nothing else would tell them (the scan's pool and Dask:
tests/test_evidence_reports.py; a scan left unreaped: tests/test_scan_crash.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, sys, time

    from vigie.settings import Settings

    if __name__ == "__main__":
        settings = Settings(data_dir=sys.argv[2])
        if sys.argv[1] == "crawl":
            from vigie.ingest.crawl_hash import new_pool
            pool = new_pool(settings, 2)
        else:
            from vigie.batch import _new_pool
            pool = _new_pool(settings, 2)
        pids = set()
        for _ in range(50):  # until both workers have answered
            pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(4)]}
            if len(pids) == 2:
                break
            time.sleep(0.05)
        print(json.dumps(sorted(pids)), flush=True)
        time.sleep(600)
""")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.parametrize("pool", ["crawl", "hash"])
def test_workers_leave_when_the_process_that_made_the_pool_is_killed(tmp_path, pool):
    import json

    script = tmp_path / "make_a_pool.py"
    script.write_text(SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), pool, str(tmp_path / "data")], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        workers = json.loads(p.stdout.readline())
        assert len(workers) == 2 and os.getpid() not in workers and p.pid not in workers
        assert all(alive(w) for w in workers)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a hashing process outlived the process that made its pool"
