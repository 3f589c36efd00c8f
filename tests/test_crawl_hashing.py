"""The crawler's hashing processes: a slow cold start is given its time again, a file that hangs costs only
itself (`hash_timeout`), and SIGTERM ends the hashing processes with the crawler."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from vigie.ingest.worker import HashPool
from vigie.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def slow_once(url: str, data: bytes) -> str:
    """The first time (a cold start: imports, JIT), answers at the wall-clock time `url` names; then at once."""
    marker = Path(data.decode())
    if not marker.exists():
        marker.write_text("started")
        time.sleep(max(0.0, float(url) - time.time()))
        return "cold"
    return "warm"


def sleep_for(url: str, data: bytes) -> str:
    time.sleep(float(url))
    return "slept"


def hang(url: str, data: bytes) -> str:
    Path(data.decode(), str(os.getpid())).write_text("")
    time.sleep(120)
    return "never"


def test_a_timeout_on_a_cold_start_is_given_its_time_again_and_a_warm_one_is_final(tmp_path):
    st = Settings(data_dir=tmp_path / "d", crawl_hash_seconds=3.0)
    pool = HashPool(st, 1, fn=slow_once)
    try:
        async def go():
            # Past one period of crawl_hash_seconds, within two.
            first = await pool.process(str(time.time() + 4.5), str(tmp_path / "marker").encode())
            second = await pool.process("0", str(tmp_path / "marker").encode())
            return first, second
        assert asyncio.run(go()) == ("cold", "warm")
        pool.fn = sleep_for
        r = asyncio.run(pool.process("4", b""))
        assert r.error[0] == "hash_timeout" and "crawl_hash_seconds" in r.error[1]
    finally:
        pool.close(kill=True)


def hang_or_answer(url: str, data: bytes) -> str:
    """Hangs (a decoder stuck in C code: given up, its process must not keep the slot) on `hang`; else answers."""
    if url == "hang":
        Path(data.decode(), str(os.getpid())).write_text("")
        time.sleep(120)
    return "answered"


def test_a_file_given_up_does_not_keep_its_process_and_the_next_files_are_hashed(tmp_path):
    """One hashing process: after a file that hangs is given up (`hash_timeout`), the next file is hashed, not
    given up in turn behind it; the stuck process is ended."""
    st = Settings(data_dir=tmp_path / "d", crawl_hash_seconds=2.0)
    pool = HashPool(st, 1, fn=hang_or_answer)
    pids = tmp_path / "pids"
    pids.mkdir()
    try:
        async def go():
            warm = await pool.process("warm", b"")  # a cold start is given its time twice: warm up first
            stuck = await pool.process("hang", str(pids).encode())
            after = [await pool.process(f"next-{i}", b"") for i in range(2)]
            return warm, stuck, after
        warm, stuck, after = asyncio.run(go())
        assert warm == "answered" and after == ["answered", "answered"]
        assert stuck.error[0] == "hash_timeout"
        # its digests all the same (computed here from the bytes in hand): a bank may know the file by them
        assert stuck.sha256 == hashlib.sha256(str(pids).encode()).hexdigest() and stuck.pdq is None
        from test_orphans import alive

        (pid,) = [int(p.name) for p in pids.iterdir()]
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid), "the process stuck on the file given up is still there"
    finally:
        pool.close(kill=True)


SCRIPT = """
import asyncio, sys
sys.path[:0] = [{here!r}, {src!r}]
from test_crawl_hashing import hang
from vigie.ingest.stopping import stop_on_signals
from vigie.ingest.worker import HashPool
from vigie.settings import Settings

pool = HashPool(Settings(data_dir={data!r}), 2, fn=hang)

async def main():
    await asyncio.gather(pool.process("a", {pids!r}.encode()), pool.process("b", {pids!r}.encode()))

with stop_on_signals():
    try:
        asyncio.run(main())
    except BaseException:
        pool.close(kill=True)
        raise
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def test_sigterm_ends_the_hashing_processes(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = textwrap.dedent(SCRIPT).format(here=str(HERE), src=str(ROOT / "src"), data=str(tmp_path / "d"),
                                            pids=str(pids))
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in pids.iterdir():
            if _alive(int(p.name)):
                os.kill(int(p.name), signal.SIGKILL)
