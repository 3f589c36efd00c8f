"""Hashing processes leave with the process that made their pool: a crawler or a `vigie hash` that is
SIGKILLed (or killed by the kernel for memory) leaves no worker behind. The pools' workers are children of
a forkserver, not of that process, and nothing else would tell them (the scan's pool and Dask:
tests/test_evidence_reports.py; a scan left unreaped: tests/test_scan_crash.py), and under `vigie serve` when the
server or its intake worker is killed (the last test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (children, their children...), read from /proc."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    parent[int(d)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except OSError:
                pass
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p and c not in found}
        found |= kids
        todo.extend(kids)
    return {p for p in found if alive(p)}


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["server", "intake"])
def test_a_killed_server_leaves_no_intake_or_hashing_process(tmp_path, media_key, victim):
    """`vigie serve` as deployed: its intake worker (a process of its own) crawls a reported page on loopback
    with its hashing processes (children of a forkserver). SIGKILL of one process alone (not its process group,
    as the kernel's OOM killer does):
    - the server: the intake worker, its forkserver and its hashing processes all leave (the intake worker sees
      the server gone and closes its pool);
    - the intake worker itself (the OOM killer's likely pick: it holds the pictures): nothing closes its pool,
      and its forkserver and hashing processes must still leave (`vigie.lifeline`); the server starts a new one."""
    from test_invariants_live_crawl import CrawlServer

    from vigie.demo import encode, photo_like
    from vigie.demo_site import Site
    from vigie.ingest import reports
    from vigie.settings import Settings
    from vigie.store.db import Store
    from vigie.store.intake_models import Sighting

    from servers import serving

    env = {"VIGIE_CRAWL_INTERVAL_SECONDS": "0.3", "VIGIE_CRAWL_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
           "VIGIE_CRAWL_PER_HOST_DELAY": "0", "VIGIE_CRAWL_MAX_DEPTH": "0", "VIGIE_CRAWL_RENDER_AUTO": "false",
           "VIGIE_CRAWL_HASH_PROCESSES": "true", "VIGIE_WORKERS": "2"}
    data = tmp_path / "data"
    site = Site()
    site.page("/", '<img src="/a.jpg"><img src="/b.jpg">')
    site.file("/a.jpg", encode(photo_like(70, 160, 120), "JPEG")).file("/b.jpg", encode(photo_like(71, 160, 120),
                                                                                         "JPEG"))
    store = Store.open(Settings(data_dir=data))
    srv = CrawlServer(data, env, workers=1)
    try:
        with serving(site) as base:
            srv.start()
            reports.submit(store, [base + "/"])
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with store.session() as s:
                    if s.query(Sighting).count() >= 2:
                        break
                time.sleep(0.2)
            else:
                raise AssertionError(f"the server's crawler did not record the pictures: {srv.log.read_text()[-3000:]}")
            below = descendants(srv.proc.pid)  # the intake worker, its forkserver, the hashing processes
            forked = [p for p in below if b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert len(forked) >= 3, below  # the forkserver and the two hashing processes (VIGIE_WORKERS=2)
            if victim == "server":
                os.kill(srv.proc.pid, signal.SIGKILL)
                srv.proc.wait(10)
            else:
                (intake,) = [p for p in below if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
                os.kill(intake, signal.SIGKILL)
                below = set(forked)
            deadline = time.monotonic() + 30
            while any(alive(p) for p in below) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert not any(alive(p) for p in below), f"outlived the {victim}: {[p for p in below if alive(p)]}"
    finally:
        srv.kill()
        store.close()
