"""The first seconds of a scan with several workers, and the allocator of processes that hash.

While the pool starts (its forkserver imports the hashing code and loads the kernels), the scan's own
process hashes the first small pictures itself; the results must be those the pool gives, in order. Processes
that hash keep their picture buffers between pictures (`vigie.ingest.heap`)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import time

import pytest

from vigie.demo import encode, photo_like
from vigie.ingest import early, scan
from vigie.ingest.early import EARLY_MAX_BYTES, InProcess, early_ok, wait_for_workers, while_starting
from vigie.ingest.members import Item
from vigie.ingest.process import process_item
from vigie.ingest.scan import run_scan
from vigie.settings import Settings


def jpeg(seed: int, w: int = 96, h: int = 72) -> bytes:
    return encode(photo_like(seed, w, h), "JPEG")


def rows(out) -> list[dict]:
    with open(out / "files.csv", newline="") as f:
        return list(csv.DictReader(f))


def six_pictures(tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(6):
        (ev / f"{i:03d}.jpg").write_bytes(jpeg(i, 320, 240))
    return ev


def every_row(store, summary, ev, out) -> dict:
    """The rows of a scan of `six_pictures`, by name, checked: all six, the first one hashed right."""
    got = {r["location"].rsplit("/", 1)[-1]: r for r in rows(out)}
    assert summary["counts"]["locations"] == 6 and len(got) == 6
    want = process_item(Item("x", size=0, data=(ev / "000.jpg").read_bytes()), store.settings)
    assert got["000.jpg"]["pdq"] == want.pdq and not got["000.jpg"]["error"]
    return got


def test_the_first_pictures_are_hashed_here_until_the_workers_answer(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    items = [Item(f"m{i}.jpg", size=len(d), data=d) for i, d in enumerate(jpeg(i) for i in range(5))]
    up = {"workers": False}
    gen = while_starting(iter(items), lambda: up["workers"], settings, None, False)
    got = [next(gen), next(gen)]
    up["workers"] = True  # they answered: the next item is theirs
    with pytest.raises(StopIteration) as stop:
        next(gen)
    pending, left = stop.value.value
    assert pending is None  # no picture was being hashed here when they answered
    assert [i.location for i, _ in got] == ["m0.jpg", "m1.jpg"]
    assert [i.location for i in left] == ["m2.jpg", "m3.jpg", "m4.jpg"]  # the item that found them ready first
    for item, r in got:
        want = process_item(item, settings)
        assert (r.sha256, r.pdq, r.pdq_variants) == (want.sha256, want.pdq, want.pdq_variants)


def test_a_picture_still_hashed_here_when_the_workers_are_up_is_not_hashed_again(tmp_path, monkeypatch):
    """The workers answer while a picture is hashed here: it stays here, pending, and its result is the one the
    scan keeps (until 2026-12-07 it was hashed again by a worker, its CPU here spent for nothing)."""
    import threading

    settings = Settings(data_dir=tmp_path / "d")
    items = [Item(f"m{i}.jpg", size=len(d), data=d) for i, d in enumerate(jpeg(i) for i in range(4))]
    release, entered = threading.Event(), threading.Event()
    real = InProcess.hash
    hashed = []

    def slow(self, item):
        hashed.append(item.location)
        if item.location == "m1.jpg":
            entered.set()
            release.wait(30)  # a picture that takes a while, not one that hangs
        return real(self, item)

    monkeypatch.setattr(InProcess, "hash", slow)
    gen = while_starting(iter(items), entered.is_set, settings, None, False)
    first = next(gen)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    pending, left = stop.value.value
    assert first[0].location == "m0.jpg"
    assert pending.item.location == "m1.jpg" and not pending.future.done()
    assert [i.location for i in left] == ["m2.jpg", "m3.jpg"]  # the items after it: the workers'
    assert pending.result(0.01) is None  # not in yet: a caller waiting no longer gives it to a worker
    release.set()
    r = pending.result(30)
    assert r.sha256 == process_item(items[1], settings).sha256 and r.pdq
    assert hashed == ["m0.jpg", "m1.jpg"]  # hashed here once each


def test_a_picture_that_hangs_here_goes_to_the_workers_once_they_are_up(tmp_path, monkeypatch):
    """A decoder stuck in C code cannot be interrupted in the scan's own process: the picture stays pending here
    when the workers answer; the scan waits for it at most the workers' hard limit, then gives it to them
    (with their hard limit)."""
    import threading

    settings = Settings(data_dir=tmp_path / "d")
    items = [Item(f"m{i}.jpg", size=len(d), data=d) for i, d in enumerate(jpeg(i) for i in range(4))]
    release, entered = threading.Event(), threading.Event()
    real = InProcess.hash

    def hash_or_hang(self, item):
        if item.location == "m1.jpg":
            entered.set()
            release.wait(30)  # stands for a decoder stuck in C code
        return real(self, item)

    monkeypatch.setattr(InProcess, "hash", hash_or_hang)
    gen = while_starting(iter(items), entered.is_set, settings, None, False)
    try:
        first = next(gen)
        with pytest.raises(StopIteration) as stop:
            next(gen)  # m1 hangs here; the workers answer meanwhile
        pending, left = stop.value.value
        assert first[0].location == "m0.jpg" and first[1].pdq
        assert pending.item.location == "m1.jpg" and pending.result(0.2) is None
        assert [i.location for i in left] == ["m2.jpg", "m3.jpg"]
        assert not release.is_set()  # returned while the picture was still stuck
    finally:
        release.set()


@pytest.mark.parametrize("workers,cluster", [(1, None), (2, None), (1, "local:1")])
def test_a_scan_keeps_the_result_of_the_picture_hashed_here_when_the_workers_came_up(store, tmp_path, monkeypatch,
                                                                                       workers, cluster):
    import threading

    ev = six_pictures(tmp_path)
    entered = threading.Event()
    real = InProcess.hash

    def slow_first(self, item):
        r = real(self, item)
        if item.location.endswith("000.jpg"):
            entered.set()  # the workers are up from now on (below)
            time.sleep(0.5)  # still hashing here when they are
            r.flags.append("hashed_here")  # tells whose result the row holds
        return r

    monkeypatch.setattr(InProcess, "hash", slow_first)
    monkeypatch.setattr(scan, "_started", lambda ex, n: entered.is_set())
    monkeypatch.setattr(scan._ClientOpener, "done", lambda self: entered.is_set())  # a Dask cluster: likewise
    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), workers=workers, cluster=cluster)
    got = every_row(store, summary, ev, tmp_path / "out")
    assert "hashed_here" in got["000.jpg"]["flags"]  # not hashed a second time by a worker
    assert all("hashed_here" not in r["flags"] for k, r in got.items() if k != "000.jpg")


@pytest.mark.parametrize("cluster", [None, "local:1"])
def test_a_scan_whose_first_picture_hangs_here_finishes_with_every_row(store, tmp_path, monkeypatch, cluster):
    import threading

    ev = six_pictures(tmp_path)
    release = threading.Event()
    real = InProcess.hash

    def hang_first(self, item):
        if item.location.endswith("000.jpg"):
            release.wait(120)  # never released before the scan ends: only the pool can hash it
        return real(self, item)

    monkeypatch.setattr(InProcess, "hash", hang_first)
    monkeypatch.setattr(scan, "wait_for_workers", lambda started, n: False)  # hashed here even on a core a worker has
    monkeypatch.setattr("vigie.batch.STUCK_MARGIN", 1.0)
    settings = store.settings.model_copy(update={"file_timeout": 1.0})  # waited for here: 2 x 1 + 1 s at most
    try:
        summary = run_scan(store, settings, [str(ev)], str(tmp_path / "out"), workers=2, cluster=cluster)
        assert not release.is_set()
    finally:
        release.set()
    every_row(store, summary, ev, tmp_path / "out")


def test_with_fewer_workers_than_cores_the_scan_hashes_here_at_once(monkeypatch):
    monkeypatch.setattr(early, "cores", lambda: 2)
    asked = []
    assert not wait_for_workers(lambda: asked.append(1) or False, 1, grace=60)  # a core of its own: no wait
    assert asked == [1]


def test_with_a_worker_for_every_core_the_scan_waits_for_them_a_moment(monkeypatch):
    monkeypatch.setattr(early, "cores", lambda: 2)
    asked = []
    assert wait_for_workers(lambda: asked.append(1) or len(asked) == 3, 2, grace=60)  # up on the third look
    assert len(asked) == 3
    assert not wait_for_workers(lambda: False, 2, grace=0.02)  # still starting (a forkserver preloading): hash here
    assert not wait_for_workers(lambda: False, 4, grace=0.0)


def test_a_scan_with_a_worker_for_every_core_leaves_the_hashing_to_them_once_they_are_up(store, tmp_path,
                                                                                           monkeypatch):
    """Its own process hashing too would load every kernel there, out of the workers' cores."""
    ev = six_pictures(tmp_path)
    run_scan(store, store.settings, [str(ev)], str(tmp_path / "warm"), workers=2, case="warm")  # forkserver ready
    monkeypatch.setattr(early, "cores", lambda: 2)
    monkeypatch.setattr(early, "EARLY_GRACE", 120.0)  # a loaded machine may take its time to fork them
    here = []
    real = InProcess.hash
    monkeypatch.setattr(InProcess, "hash", lambda self, item: here.append(item.location) or real(self, item))
    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), workers=2, case="two")
    every_row(store, summary, ev, tmp_path / "out")
    assert here == []


def test_a_local_cluster_with_a_worker_for_every_core_starts_without_the_scan_hashing_beside_it(monkeypatch):
    monkeypatch.setattr(early, "cores", lambda: 2)
    assert not early.while_cluster_starts("local:2")  # its start is this process's work; then no core is idle
    assert not early.while_cluster_starts("local:3")
    assert early.while_cluster_starts("local:1")  # a core left to the scan
    assert early.while_cluster_starts("tcp://10.0.0.5:8786")  # a remote cluster: this machine's cores are free
    assert early.while_cluster_starts("nonsense")  # the cluster's own start reports it


def test_a_scan_on_a_local_cluster_that_fills_every_core_hashes_nothing_itself(store, tmp_path, monkeypatch):
    ev = six_pictures(tmp_path)
    monkeypatch.setattr(early, "cores", lambda: 2)
    here = []
    real = InProcess.hash
    monkeypatch.setattr(InProcess, "hash", lambda self, item: here.append(item.location) or real(self, item))
    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), cluster="local:2")
    every_row(store, summary, ev, tmp_path / "out")
    assert here == []


def test_only_small_pictures_are_hashed_before_the_workers(tmp_path):
    from vigie.errors import ErrorRecord

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    with open(big, "r+b") as f:
        f.truncate(EARLY_MAX_BYTES + 1)
    small = tmp_path / "small.jpg"
    small.write_bytes(jpeg(1))
    assert early_ok(Item(str(small), path=str(small), size=small.stat().st_size))
    assert not early_ok(Item(str(big), path=str(big), size=big.stat().st_size))  # could hold the pool up
    video = b"\0\0\0\x18ftypisom\0\0\0\0isomiso2" + b"\0" * 64
    assert not early_ok(Item("v.mp4", size=len(video), data=video))  # a video: seconds of decoding
    zipped = b"PK\x03\x04" + b"\0" * 64
    assert not early_ok(Item("a.zip", size=len(zipped), data=zipped))
    assert not early_ok(Item("c.jpg", size=10, data=jpeg(2), container=True))
    assert not early_ok(Item("e.jpg", error=ErrorRecord("unreadable", "x")))
    # A source that could not be read before the workers started goes to them, not here.
    gone = tmp_path / "gone.jpg"
    assert not early_ok(Item(str(gone), path=str(gone), size=10))


def test_a_fresh_scan_on_two_workers_gives_the_rows_of_one_worker(store, tmp_path, monkeypatch):
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(40):
        (ev / f"{i:03d}.jpg").write_bytes(jpeg(i, 320, 240))
    (ev / "dup.jpg").write_bytes(jpeg(3, 320, 240))
    (ev / "notes.txt").write_text("not a picture")
    hashed_here = []
    real = InProcess.hash

    def counted(self, item):
        hashed_here.append(item.location)
        return real(self, item)

    monkeypatch.setattr(InProcess, "hash", counted)
    one = run_scan(store, store.settings, [str(ev)], str(tmp_path / "one"), workers=1, case="one")
    n_one = len(hashed_here)
    two = run_scan(store, store.settings, [str(ev)], str(tmp_path / "two"), workers=2, case="two")
    assert n_one == 42  # one worker: everything here
    assert len(hashed_here) - n_one < 42  # two: the pool took the rest (how many were hashed here depends
    # on how fast it started)
    assert one["counts"] == two["counts"]
    strip = ("scan",)
    a = [{k: v for k, v in r.items() if k not in strip} for r in rows(tmp_path / "one")]
    b = [{k: v for k, v in r.items() if k not in strip} for r in rows(tmp_path / "two")]
    assert a == b


def test_processes_that_hash_keep_their_buffers(tmp_path):
    """After keep_heap, a freed 64 MB buffer stays with the process and comes back without page faults (glibc);
    without it, the buffer goes back to the system and faults in again (huge pages or not). Run in children
    so that this test process keeps glibc's defaults."""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    code = textwrap.dedent("""
        import resource, sys
        import numpy as np
        from vigie.ingest.heap import keep_heap
        tuned = keep_heap(512) if sys.argv[1] == "keep" else False
        def faults():
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        def rss_mb():
            return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
        start = rss_mb()
        a = np.ones(64 << 20, np.uint8); del a
        held = rss_mb() - start
        before = faults()
        a = np.ones(64 << 20, np.uint8); del a
        print(tuned, faults() - before, held)
    """)
    out = {}
    for mode in ("keep", "default"):
        r = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True)
        tuned, n, held = r.stdout.split()
        out[mode] = (tuned, int(n), int(held))
    if out["keep"][0] != "True":
        pytest.skip("not glibc: mallopt unavailable")
    assert out["default"][2] < 16 and out["keep"][2] >= 48  # freed: given back / kept for the next picture
    assert out["default"][1] > 0 and out["keep"][1] < max(1, out["default"][1] // 10)
    from vigie.ingest.heap import keep_heap

    assert keep_heap(0) is False  # 0: glibc's defaults are left alone


def test_a_cluster_that_cannot_start_fails_the_scan_with_its_reason(store, tmp_path):
    """The cluster is opened on a thread while the scan hashes its first pictures: its error still reaches the
    caller, and the scan is left `failed` (the same command resumes it), not `running`."""
    from sqlalchemy import select

    from vigie.store.models import Scan

    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(3):
        (ev / f"{i}.jpg").write_bytes(jpeg(i))
    with pytest.raises(ValueError, match="at least one worker"):
        run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), cluster="local:0")
    with store.session() as s:
        assert [sc.status for sc in s.scalars(select(Scan))] == ["failed"]


_FORKSERVER_FIRST = textwrap.dedent("""
    import json, sys
    from multiprocessing import forkserver

    from vigie.banks import known_good
    from vigie.ingest.scan import run_scan
    from vigie.settings import Settings
    from vigie.store import Store

    a = json.loads(sys.argv[1])
    store = Store.open(Settings(data_dir=a["data"], database_url=a["url"], hash_in_process=a["in_process"]))
    running = []
    _load = known_good.load

    def load(store):
        running.append(forkserver._forkserver._forkserver_pid is not None)
        return _load(store)

    known_good.load = load
    summary = run_scan(store, store.settings, [a["src"]], a["out"], workers=a["workers"])
    print(json.dumps({"running": running, "locations": summary["counts"]["locations"],
                      "forkserver": forkserver._forkserver._forkserver_pid is not None}))
""")


@pytest.mark.parametrize(("workers", "in_process"), [(2, False), (1, False), (1, True)])
def test_the_forkserver_starts_before_the_scan_reads_its_known_good_digests(store, tmp_path, workers, in_process):
    """Its preload (a second of one core) runs while the scan reads the store, an NSRL bank's millions of digests
    first, rather than after. A scan that hashes in its own process (one worker, `hash_in_process`, fresh)
    starts none. In a process of its own: a forkserver runs once per process."""
    import json

    src = tmp_path / "ev"
    src.mkdir()
    for i in range(3):
        (src / f"p{i}.jpg").write_bytes(jpeg(70 + i))
    arg = {"data": str(store.settings.data_dir), "url": store.settings.database_url, "src": str(src),
           "out": str(tmp_path / "out"), "workers": workers, "in_process": in_process}
    r = subprocess.run([sys.executable, "-c", _FORKSERVER_FIRST, json.dumps(arg)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["locations"] == 3
    assert got["running"] == [not in_process] and got["forkserver"] is (not in_process)


_BARE_FORKSERVER = textwrap.dedent("""
    import json, sys

    from vigie.ingest.scan import start_pool
    from vigie.procs import forkserver_context
    from vigie.settings import FAST_SCAN, Settings

    forkserver_context()  # started first by another user of this process (`vigie.batch`): nothing preloaded
    settings = Settings(data_dir=sys.argv[1])
    if sys.argv[2] == "fast":
        settings = settings.model_copy(update=FAST_SCAN)
    ex = start_pool(1, settings, 1)
    probe = "sorted(__import__('vigie.ingest.warming', fromlist=['WARMED']).WARMED)"
    print(json.dumps(ex.submit(eval, probe).result(timeout=300)))
    ex.shutdown()
""")


@pytest.mark.parametrize(("kind", "warmed"), [("full", [True]), ("fast", [False])])
def test_workers_of_a_forkserver_that_preloaded_nothing_load_their_kernels_before_their_first_file(tmp_path, kind,
                                                                                                   warmed):
    """Loaded during the first file, the kernels ate its time limit (a first picture reported `timeout`)."""
    out = subprocess.run([sys.executable, "-c", _BARE_FORKSERVER, str(tmp_path), kind], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == warmed  # by the pool's initializer, not a file
