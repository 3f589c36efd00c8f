"""What the scan's hashing workers make and carry back: no miniature unless asked, the same hashes either way."""

from __future__ import annotations

import pytest

from vigie.demo import encode, photo_like
from vigie.ingest.members import Item
from vigie.ingest.process import process_item


def test_miniatures_only_when_asked(settings):
    data = encode(photo_like(3, 320, 240), "JPEG")
    plain = process_item(Item("a.jpg", size=len(data), data=data), settings)
    asked = process_item(Item("a.jpg", size=len(data), data=data), settings, miniatures=True)
    assert plain.thumb is None and plain.keyframes == []
    assert asked.thumb and asked.thumb[:2] == b"\xff\xd8"
    assert (plain.pdq, plain.pdq_variants, plain.sha256) == (asked.pdq, asked.pdq_variants, asked.sha256)


def test_reduced_decode_only_for_large_jpegs_and_carried_to_duplicates(settings):
    fast = settings.model_copy(update={"fast_decode": True})
    big = encode(photo_like(4, 1600, 1200), "JPEG")
    seen: dict = {}
    first = process_item(Item("big.jpg", size=len(big), data=big), fast, seen.get)
    seen[first.sha256] = first
    again = process_item(Item("copy.jpg", size=len(big), data=big), fast, seen.get)
    small = encode(photo_like(5, 800, 600), "JPEG")
    assert "pdq_reduced" in first.flags
    assert again.reused and "pdq_reduced" in again.flags and again.pdq == first.pdq
    assert "pdq_reduced" not in process_item(Item("s.jpg", size=len(small), data=small), fast).flags
    assert "pdq_reduced" not in process_item(Item("big.jpg", size=len(big), data=big), settings).flags


def test_the_forkserver_preload_warms_without_raising_and_leaves_its_objects_to_the_permanent_generation():
    import gc

    from vigie.ingest import preload

    try:
        preload.warm()
        assert gc.get_freeze_count() > 10_000  # what its workers inherit is never walked by the collector
    finally:
        gc.unfreeze()  # this test process is not a forkserver


def test_a_scan_leaves_what_existed_before_it_out_of_the_collector_while_it_runs(store, tmp_path):
    import gc

    from vigie.demo import make_demo_folder
    from vigie.ingest import scan
    from vigie.ingest.heap import frozen_gc

    src = tmp_path / "src"
    make_demo_folder(src, 3)
    during: list[int] = []
    assert gc.get_freeze_count() == 0
    with frozen_gc():
        with frozen_gc():
            pass
        assert gc.get_freeze_count() > 0  # the inner block's end does not lift the outer one's freeze
    assert gc.get_freeze_count() == 0
    scan.run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=1,
                  on_item=lambda p: during.append(gc.get_freeze_count()))
    assert during and min(during) > 0
    assert gc.get_freeze_count() == 0  # lifted: nothing is kept for good


@pytest.mark.parametrize(("module", "variants"), [("preload", True), ("preload_plain", False)])
def test_the_plain_preload_loads_plain_pdq_only(module, variants):
    """`vigie scan --fast` workers fork from a forkserver that loaded plain PDQ's kernels and not the variants'
    (a third of the preload's time); a full scan's from one that loaded both. Each in a fresh process: the
    kernels a module leaves loaded are the test."""
    import subprocess
    import sys

    probe = (f"import vigie.ingest.{module}; from vigie.signals import pdq_numba, pdq_grid, layout_numba; "
             "print(len(pdq_numba._hash_kernel.signatures), len(pdq_grid._grids.signatures), "
             "len(layout_numba._shrink.signatures))")
    got = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    plain, grids, shrink = (int(x) for x in got)
    assert plain >= 1
    assert (grids >= 1 and shrink >= 1) if variants else (grids == 0 and shrink == 0)


def test_a_copy_in_flight_with_its_original_is_hashed_once_on_two_workers(store, tmp_path, monkeypatch):
    """`IMG_1.jpg` and `IMG_1 (1).jpg` side by side reach two workers at once, before either row is in the
    store: the copy waits for its original's result and reuses it. A file of the same size with other content
    is hashed for itself."""
    import vigie.ingest.scan as scan

    src = tmp_path / "ev"
    src.mkdir()
    (src / "0-readme.txt").write_text("not a picture: the scan's own process hashes no picture before it\n")
    pics = [encode(photo_like(60 + i, 480, 360), "JPEG") for i in range(4)]
    for i, data in enumerate(pics):
        (src / f"IMG_{i}.jpg").write_bytes(data)
        (src / f"IMG_{i} (1).jpg").write_bytes(data)
    other = encode(photo_like(70, 480, 360), "JPEG", quality=60)
    assert len(other) < len(pics[0])
    (src / "IMG_0 x.jpg").write_bytes(other + b"\0" * (len(pics[0]) - len(other)))  # same size, other content
    assert all(len(p) >= scan.FOLLOW_MIN_BYTES for p in pics)
    seen: dict[str, object] = {}
    original = scan._hashed

    def recording(*args, **kwargs):
        for item, r in original(*args, **kwargs):
            seen[item.location.rsplit("/", 1)[-1]] = r
            yield item, r

    monkeypatch.setattr(scan, "_hashed", recording)
    scan.run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=2)
    for i in range(4):
        a, b = seen[f"IMG_{i}.jpg"], seen[f"IMG_{i} (1).jpg"]
        assert (a.sha256, a.pdq, a.pdq_variants) == (b.sha256, b.pdq, b.pdq_variants) and a.pdq
        assert [a.reused, b.reused].count(True) == 1, i  # whichever of the two came first was hashed
    x = seen["IMG_0 x.jpg"]
    assert not x.reused and x.pdq and x.sha256 != seen["IMG_0.jpg"].sha256
    with open(tmp_path / "out" / "files.csv") as f:
        assert sum(1 for _ in f) == 1 + 10  # every location a row


def test_small_files_travel_several_to_a_task_in_order(store, tmp_path, monkeypatch):
    """Each task costs the scan and a worker about half a millisecond: small files go several to a task (at most
    `TASK_ITEMS`, each at most `TASK_SMALL_BYTES`), a large file or a copy waiting for its original alone. The
    results still come back in input order, each item hashed once, as one at a time would hash it."""
    import vigie.ingest.scan as scan
    from vigie.ingest.containers import iter_items

    src = tmp_path / "ev"
    src.mkdir()
    for i in range(19):
        (src / f"a{i:02d}.jpg").write_bytes(encode(photo_like(80 + i, 96, 72), "JPEG"))
    big = encode(photo_like(99, 480, 360), "JPEG")
    (src / "b-copy1.jpg").write_bytes(big)
    (src / "b-copy2.jpg").write_bytes(big)  # same size, in flight with it: waits for its result, sent alone
    (src / "c-large.bin").write_bytes(bytes(range(256)) * (scan.TASK_SMALL_BYTES // 256 + 1))
    for i in range(5):
        (src / f"d{i}.png").write_bytes(encode(photo_like(120 + i, 64, 48), "PNG"))
    sizes = {p.name: p.stat().st_size for p in src.iterdir()}
    assert scan.FOLLOW_MIN_BYTES <= sizes["b-copy1.jpg"] <= scan.TASK_SMALL_BYTES < sizes["c-large.bin"]

    pool = scan.start_pool(2, store.settings, 1)
    tasks: list[tuple[list[str], bool]] = []

    class Recording:  # the real pool, its tasks written down
        vigie_probes = pool.vigie_probes

        def submit(self, fn, *args):
            if fn is scan.scan_worker.work_many:
                tasks.append(([i.location.rsplit("/", 1)[-1] for i in args[0]], args[1] is not None))
            return pool.submit(fn, *args)

        def shutdown(self, *a, **kw):
            return pool.shutdown(*a, **kw)

    order = [i.location.rsplit("/", 1)[-1] for i in iter_items([str(src)], store.settings)]
    got = list(scan._hashed(iter_items([str(src)], store.settings), store.settings, 1, 2, ready=Recording()))
    assert [i.location.rsplit("/", 1)[-1] for i, _ in got] == order  # input order
    sent = [name for names, _ in tasks for name in names]
    assert sorted(sent) == sorted(order)  # each item sent once
    assert all(len(names) <= scan.TASK_ITEMS for names, _ in tasks)
    for names, with_like in tasks:
        if len(names) > 1:  # only small files share a task, in input order, never a copy awaiting its original
            assert not with_like and all(sizes[n] <= scan.TASK_SMALL_BYTES for n in names)
            assert [order.index(n) for n in names] == sorted(order.index(n) for n in names)
    assert (["c-large.bin"], False) in tasks and (["b-copy2.jpg"], True) in tasks
    assert len(tasks) <= len(order) // 2  # 27 items: 19 + 5 small ones in tasks of up to 8
    results = {i.location.rsplit("/", 1)[-1]: r for i, r in got}
    assert results["b-copy2.jpg"].reused and results["b-copy2.jpg"].pdq == results["b-copy1.jpg"].pdq
    for name in ("a00.jpg", "a13.jpg", "d4.png"):  # as one at a time hashes them
        data = (src / name).read_bytes()
        alone = process_item(Item(name, size=len(data), data=data), store.settings)
        assert (results[name].sha256, results[name].pdq, results[name].pdq_variants) == (
            alone.sha256, alone.pdq, alone.pdq_variants)


_MAIN_SCRIPT = """
import os, sys
with open(os.environ["RUNS_OF_MAIN"], "a") as f:
    f.write(f"{__name__} {os.getpid()}\\n")
if __name__ == "__main__":
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    if sys.argv[1] == "vigie":
        from vigie.procs import forkserver_context
        ctx = forkserver_context()
    else:
        ctx = mp.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        pids = {ex.submit(os.getpid).result() for _ in range(4)}
    print(" ".join(map(str, sorted(pids))))
"""


@pytest.mark.parametrize("context", ["vigie", "plain"])
def test_processes_of_the_forkserver_do_not_run_the_main_script_again(tmp_path, context):
    """multiprocessing runs the parent's main script again in every process it starts (CPython's forkserver never
    preloads it before 3.13.8, gh-126631): for `vigie scan` the whole command line, before each worker's first
    file. Vigie's forkserver leaves it out; a plain one, the control, runs it in each worker."""
    import os
    import subprocess
    import sys

    script, runs = tmp_path / "main_script.py", tmp_path / "runs.txt"
    script.write_text(_MAIN_SCRIPT)
    out = subprocess.run([sys.executable, str(script), context], check=True, capture_output=True, text=True,
                         env={**os.environ, "RUNS_OF_MAIN": str(runs)}, timeout=120).stdout.split()
    workers = {int(p) for p in out}
    ran = [line.split() for line in runs.read_text().splitlines()]
    assert workers and all(pid > 0 for pid in workers)
    assert [name for name, _ in ran if name == "__main__"] == ["__main__"]
    children = {int(pid) for name, pid in ran if name == "__mp_main__"}
    if context == "vigie":
        assert children == set()
    else:
        assert workers <= children
