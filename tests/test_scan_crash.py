"""A file that kills the decoder's process costs that file, never the scan, whatever the worker count.

The scan runs as `vigie scan` does, in a process of its own (a script below), whose decoder dies (`os._exit`,
as a segfaulting C decoder does) on the one picture that carries a marker. A `sitecustomize` on the scan's
PYTHONPATH patches the decoder in every process of the scan: its own, the forkserver that the hashing workers
fork from, the workers (which do not run the scan's main script: `vigie.forked`), Dask's. Every picture is
generated; the "hostile" one is an ordinary JPEG with a comment.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from vigie.demo import encode, photo_like

MARK = b"vigie-test-crash-the-decoder"
HANG = b"vigie-test-hang-the-decoder"

# Imported by every process of the scan (its own, the forkserver and the workers forked from it, Dask's) as the
# `sitecustomize` of the scan's PYTHONPATH: Vigie's workers do not run the scan's main script (`vigie.forked`).
PATCH = textwrap.dedent(f"""
    import os

    import vigie.ingest.process as process

    _decode = process.decode_image

    def dying_decoder(data, *args, **kwargs):
        if {MARK!r} in bytes(data):
            os._exit(139)  # what a segfault in a C decoder does to its process
        if {HANG!r} in bytes(data):  # a decoder stuck in C: deaf to the worker's own SIGALRM time limit
            import signal, time
            signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGALRM}})
            time.sleep(3600)
        return _decode(data, *args, **kwargs)

    process.decode_image = dying_decoder

    import vigie.batch
    vigie.batch.STUCK_MARGIN = 2.0  # the hard limit: 2 x file_timeout + this
""")

SCRIPT = textwrap.dedent("""
    import json, os, sys

    if __name__ == "__main__":
        from vigie.ingest.scan import run_scan
        from vigie.settings import Settings
        from vigie.store import Store

        a = json.loads(sys.argv[1])
        settings = Settings(data_dir=a["data_dir"], database_url=a["url"], workers=a["workers"],
                            hash_in_process=a["in_process"], file_timeout=a.get("file_timeout", 60))
        store = Store.open(settings)
        import vigie.ingest.scan as scan

        solo = []  # the items hashed in pools of one worker (the reruns after a crash or a hang)
        _start_pool = scan.start_pool

        def start_pool(n, *args, **kwargs):
            ex = _start_pool(n, *args, **kwargs)
            if n == 1 and not a["in_process"] and a["workers"] > 1:
                _submit = ex.submit
                def submit(fn, *fargs, **fkw):
                    if fn is scan.scan_worker.work:
                        solo.append(fargs[0].location.rsplit("/", 1)[-1])
                    return _submit(fn, *fargs, **fkw)
                ex.submit = submit
            return ex

        scan.start_pool = start_pool
        if a.get("cluster"):  # Dask's lost-worker timer, short: it fires while a crashed worker restarts
            import dask
            dask.config.set({"distributed.deploy.lost-worker-timeout": "0.2s"})
        summary = run_scan(store, settings, [a["src"]], a["out"], workers=a["workers"], case="crash",
                           cluster=a.get("cluster"))
        print(json.dumps({**summary["counts"], "solo": solo}))
""")


@pytest.fixture
def evidence(tmp_path):
    """Four ordinary pictures, a text file, and the picture that kills its decoder after the text file (the
    scan's own process hashes the first pictures while its workers start, up to the first non-picture)."""
    src = tmp_path / "evidence"
    src.mkdir()
    for i, name in enumerate(("a.jpg", "b.png", "p.jpg", "q.jpg")):
        (src / name).write_bytes(encode(photo_like(40 + i, 96, 72), "PNG" if name.endswith("png") else "JPEG"))
    (src / "m-notes.txt").write_text("not a picture\n")
    (src / "n-hostile.jpg").write_bytes(encode(photo_like(50, 96, 72), "JPEG", comment=MARK))
    return src


def scan(store, tmp_path, src, workers: int, in_process: bool = False, file_timeout: float = 60,
         cluster: str | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / "scan_with_a_dying_decoder.py"
    script.write_text(SCRIPT)
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(PATCH)
    arg = {"data_dir": str(store.settings.data_dir), "url": store.settings.database_url, "workers": workers,
           "in_process": in_process, "src": str(src), "out": str(tmp_path / "out"), "file_timeout": file_timeout,
           "cluster": cluster}
    path = os.pathsep.join(x for x in (str(site), os.environ.get("PYTHONPATH")) if x)
    return subprocess.run([sys.executable, str(script), json.dumps(arg)], capture_output=True, text=True,
                          timeout=120 if cluster else 60, env={**os.environ, "PYTHONPATH": path})


def plant_known(store, evidence, marker: bytes, name: str) -> str:
    """Another hostile picture, whose MD5 is in a bank: its worker dies or hangs on it all the same, and the scan
    must still find it known by its digests (read again in the scan's own process, never decoded there)."""
    from vigie.banks import service as banks
    from vigie.banks.records import EntryData

    data = encode(photo_like(60, 96, 72), "JPEG", comment=marker)
    (evidence / name).write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    banks.create_bank(store, "known", default_verdict=None)
    banks.import_entries(store, "known", enumerate([EntryData("md5", md5)], 1))
    return md5


def assert_known(tmp_path, name: str, md5: str, code: str) -> None:
    row = rows(tmp_path)[name]
    assert row["class"] == "exact" and row["md5"] == md5 and row["sha256"], row
    assert row["error"].startswith(code), row


def rows(tmp_path) -> dict[str, dict]:
    with open(tmp_path / "out" / "files.csv", newline="") as f:
        return {r["location"].rsplit("/", 1)[-1]: r for r in csv.DictReader(f)}


def assert_pinned(tmp_path) -> None:
    got = rows(tmp_path)
    assert got["n-hostile.jpg"]["error"].startswith("decoder_crash"), got["n-hostile.jpg"]
    assert got["n-hostile.jpg"]["class"] == "error"
    for name in ("a.jpg", "b.png", "p.jpg", "q.jpg"):
        assert got[name]["class"] == "unknown" and got[name]["pdq"], got[name]
    assert got["m-notes.txt"]["class"] == "skipped"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_dying_decoder_costs_its_file_not_the_scan(store, tmp_path, evidence, workers):
    """One worker as well as two: a one-worker scan hashes in a worker process too (`hash_in_process` off). A
    hostile file that a bank knows is still matched by its digests."""
    md5 = plant_known(store, evidence, MARK, "o-known.jpg")
    r = scan(store, tmp_path, evidence, workers)
    assert r.returncode == 0, r.stderr[-3000:]
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert counts["locations"] == 7 and counts["by_class"]["error"] == 1 and counts["by_class"]["exact"] == 1
    assert_pinned(tmp_path)
    assert_known(tmp_path, "o-known.jpg", md5, "decoder_crash")


def test_hashing_in_process_dies_once_then_the_rerun_pins_the_file(store, tmp_path, evidence):
    """`hash_in_process`: the scan's own process dies with its decoder; the same command resumes in a worker
    process, pins the crash on the file and finishes."""
    first = scan(store, tmp_path, evidence, 1, in_process=True)
    assert first.returncode == 139, (first.returncode, first.stderr[-3000:])
    again = scan(store, tmp_path, evidence, 1, in_process=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_pinned(tmp_path)


def test_a_dying_decoder_among_the_first_pictures_is_pinned_by_the_rerun(store, tmp_path, evidence):
    """The first pictures of a fresh scan may be hashed in the scan's own process while its workers start: if
    the hostile one is among them the scan dies, and the same command, even though the dead run wrote no row,
    resumes with every picture in worker processes and pins it. Whether the workers were up in time decides
    which; both orders end the same."""
    (evidence / "n-hostile.jpg").rename(evidence / "0-hostile.jpg")  # the very first item
    first = scan(store, tmp_path, evidence, 2)
    assert first.returncode in (0, 139), first.stderr[-3000:]
    if first.returncode == 139:
        again = scan(store, tmp_path, evidence, 2)
        assert again.returncode == 0, again.stderr[-3000:]
    got = rows(tmp_path)
    assert got["0-hostile.jpg"]["error"].startswith("decoder_crash")
    assert sum(r["class"] == "unknown" for r in got.values()) == 4


def zombie() -> subprocess.Popen:
    """A process that has exited and that nobody has reaped yet."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(200):
        with open(f"/proc/{p.pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return p
        time.sleep(0.05)
    raise AssertionError("the child never exited")


@pytest.mark.parametrize("pidfd", [True, False])
def test_a_worker_leaves_when_its_scan_has_exited_even_unreaped(pidfd):
    """A scan killed while its own parent waits on the pipes its workers hold (`subprocess.run`) is a zombie:
    its workers must still leave (Linux's pidfd; elsewhere the polled pid and its state)."""
    from vigie.lifeline import _alive

    me = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _alive(me.pid)
    finally:
        me.kill()
        me.wait()
    gone = zombie()
    try:
        assert not _alive(gone.pid)
        code = textwrap.dedent(f"""
            import os, time
            {"" if pidfd else "del os.pidfd_open"}
            from vigie.lifeline import watch_parent
            watch_parent({gone.pid}, every=0.1)
            time.sleep(60)
            raise SystemExit(3)
        """)
        worker = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert worker.returncode == 0, worker.stderr
    finally:
        gone.wait()


def test_after_a_crash_only_the_files_up_to_the_culprit_are_hashed_one_by_one(store, tmp_path):
    """Two workers, small files several to a task: when a decoder kills a worker, every task in flight fails with
    the pool. They are hashed again one by one in a pool of one until the culprit crashes it again; the files
    after it go back to a fresh pool of two (before, the whole window, up to 16 tasks of 8 files a worker, was
    hashed one by one on one core for each crash). A second culprit among them costs a second round."""
    src = tmp_path / "evidence"
    src.mkdir()
    (src / "0-notes.txt").write_text("not a picture: every picture goes to the workers\n")
    (src / "b-hostile.jpg").write_bytes(encode(photo_like(50, 96, 72), "JPEG", comment=MARK))
    for i in range(40):
        (src / f"c{i:02d}.jpg").write_bytes(encode(photo_like(100 + i, 96, 72), "JPEG"))
    (src / "d-hostile.jpg").write_bytes(encode(photo_like(51, 96, 72), "JPEG", comment=MARK))
    for i in range(20):
        (src / f"e{i:02d}.jpg").write_bytes(encode(photo_like(150 + i, 96, 72), "JPEG"))
    r = scan(store, tmp_path, src, 2)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    got = rows(tmp_path)
    assert [n for n, row in got.items() if row["class"] == "error"] == ["b-hostile.jpg", "d-hostile.jpg"]
    assert all(got[n]["error"].startswith("decoder_crash") for n in ("b-hostile.jpg", "d-hostile.jpg"))
    assert sum(row["class"] == "unknown" for row in got.values()) == 60
    # each round ends at its culprit: the files of its window before it one by one, none after it
    solo = out["solo"]
    assert solo[:2] == ["0-notes.txt", "b-hostile.jpg"] and solo[-1] == "d-hostile.jpg", solo
    assert all(n.startswith("c") for n in solo[2:-1]) and len(solo) <= 2 + 16, solo


@pytest.mark.parametrize("workers", [1, 2])
def test_a_decoder_stuck_in_c_is_stopped_and_costs_its_file(store, tmp_path, evidence, workers):
    """A decoder that never returns and ignores the worker's SIGALRM (`file_timeout`): the scan kills its
    worker after twice that plus a margin, records `timeout` on the file and goes on."""
    (evidence / "n-hostile.jpg").unlink()
    (evidence / "m-notes.txt").rename(evidence / "0-notes.txt")  # every picture to the workers (kernels loaded)
    (evidence / "n-stuck.jpg").write_bytes(encode(photo_like(51, 96, 72), "JPEG", comment=HANG))
    md5 = plant_known(store, evidence, HANG, "o-known.jpg") if workers == 2 else None
    r = scan(store, tmp_path, evidence, workers, file_timeout=3)
    assert r.returncode == 0, r.stderr[-3000:]
    got = rows(tmp_path)
    assert got["n-stuck.jpg"]["error"].startswith("timeout") and "stopped after 8 s" in got["n-stuck.jpg"]["error"]
    assert got["n-stuck.jpg"]["class"] == "error" and got["n-stuck.jpg"]["sha256"]
    assert sum(r["class"] == "unknown" for r in got.values()) == 4
    if md5:
        assert_known(tmp_path, "o-known.jpg", md5, "timeout")


def test_a_dying_decoder_on_dask_costs_its_file_not_the_scan(store, tmp_path, evidence):
    """On a Dask cluster the worker process dies with its decoder: the nanny restarts it, the scheduler gives the
    batch up after its allowed failures, and the scan runs its items again one per task.

    The cluster never gives its worker up: Dask's lost-worker timer (15 s by default, 0.2 s in the script, so
    that it fires during a restart on any machine) used to close the nanny of a worker that was restarting,
    after which every task waited for the hard limit and ordinary pictures were recorded `timeout` (seen on a
    slower machine: 383 s for this scan, 2 of its 4 ordinary pictures `timeout`)."""
    pytest.importorskip("distributed")
    md5 = plant_known(store, evidence, MARK, "o-known.jpg")
    r = scan(store, tmp_path, evidence, 1, cluster="local:1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_pinned(tmp_path)
    assert_known(tmp_path, "o-known.jpg", md5, "decoder_crash")


def test_a_decoder_stuck_in_c_on_dask_is_stopped_and_costs_its_file(store, tmp_path, evidence):
    """Dask runs tasks on threads, where `file_timeout` (a SIGALRM) does not reach: the scan gives the task up
    after the hard limit, restarts the worker that holds it, and hashes the batch's items again one per task.
    Before the limit such a scan never ended."""
    pytest.importorskip("distributed")
    (evidence / "n-hostile.jpg").unlink()
    (evidence / "m-notes.txt").rename(evidence / "0-notes.txt")  # every picture to the cluster
    (evidence / "n-stuck.jpg").write_bytes(encode(photo_like(51, 96, 72), "JPEG", comment=HANG))
    r = scan(store, tmp_path, evidence, 1, file_timeout=3, cluster="local:1")
    assert r.returncode == 0, r.stderr[-3000:]
    got = rows(tmp_path)
    stuck = got["n-stuck.jpg"]["error"]
    assert stuck.startswith("timeout") and "Dask worker restarted after 8 s" in stuck, stuck
    assert sum(r["class"] == "unknown" for r in got.values()) == 4


def test_a_pool_broken_before_a_submit_gives_a_failed_future_not_an_exception(tmp_path):
    """A worker that dies between two submits breaks the pool: the executor then raises at the next submit, where
    the scan and `vigie hash` did not recover (the scan ended with BrokenProcessPool). `vigie.batch.submit` gives a
    future already failed instead, met where the callers wait and recover."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from vigie.batch import submit
    from vigie.procs import forkserver_context

    pool = ProcessPoolExecutor(1, mp_context=forkserver_context())
    try:
        with pytest.raises(BrokenProcessPool):
            pool.submit(os._exit, 1).result(timeout=60)
        with pytest.raises(BrokenProcessPool):
            pool.submit(os.getpid)  # the executor's own behaviour: it raises at once
        fut = submit(pool, os.getpid)
        assert fut.done() and isinstance(fut.exception(), BrokenProcessPool)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class _BreaksOnce:
    """A pool whose third submit finds it broken (as when a worker died just before), once per test."""

    broke = False

    def __init__(self, ex) -> None:
        self._ex, self._n = ex, 0

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures.process import BrokenProcessPool

        self._n += 1
        if self._n == 3 and not _BreaksOnce.broke:
            _BreaksOnce.broke = True
            raise BrokenProcessPool("a child process terminated abruptly")
        return self._ex.submit(fn, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ex, name)


def test_a_scan_whose_pool_breaks_between_two_submits_gives_every_row(store, tmp_path, monkeypatch):
    """The race behind an occasional failure of the test above (`..._hashed_one_by_one`): the tasks in flight are
    run again, one by one then in a fresh pool, and every row comes back hashed."""
    from vigie.ingest import scan

    src = tmp_path / "evidence"
    src.mkdir()
    (src / "0-notes.txt").write_text("not a picture: every picture goes to the workers\n")
    for i in range(30):
        (src / f"c{i:02d}.jpg").write_bytes(encode(photo_like(200 + i, 96, 72), "JPEG"))
    start = scan.start_pool
    monkeypatch.setattr(_BreaksOnce, "broke", False)
    monkeypatch.setattr(scan, "start_pool", lambda *a, **k: _BreaksOnce(start(*a, **k)))
    summary = scan.run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=2)
    assert _BreaksOnce.broke
    got = rows(tmp_path)
    assert summary["counts"]["locations"] == 31
    assert [n for n, r in got.items() if r["class"] == "unknown" and r["pdq"]] == [f"c{i:02d}.jpg" for i in range(30)]
    assert got["0-notes.txt"]["class"] == "skipped"


def test_vigie_hash_whose_pool_breaks_between_two_submits_gives_every_record(tmp_path, monkeypatch):
    from vigie import batch
    from vigie.settings import Settings

    paths = []
    for i in range(12):
        p = tmp_path / f"p{i:02d}.jpg"
        p.write_bytes(encode(photo_like(300 + i, 96, 72), "JPEG"))
        paths.append(str(p))
    new_pool = batch._new_pool
    monkeypatch.setattr(_BreaksOnce, "broke", False)
    monkeypatch.setattr(batch, "_new_pool", lambda *a: _BreaksOnce(new_pool(*a)))
    recs = list(batch.hash_many(paths, Settings(data_dir=tmp_path / "d"), workers=2))
    assert _BreaksOnce.broke
    assert [r.path for r in recs] == paths and all(r.error is None and r.md5 for r in recs)
