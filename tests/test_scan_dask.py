"""A scan hashed on a local Dask cluster gives exactly the report of a scan hashed in-process."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

pytest.importorskip("distributed")

from vigie.banks import service as banks  # noqa: E402
from vigie.banks.records import EntryData  # noqa: E402
from vigie.demo import encode, photo_like  # noqa: E402
from vigie.hashing import hash_bytes  # noqa: E402
from vigie.ingest.containers import Item  # noqa: E402
from vigie.ingest.distributed import close_client, hash_on_cluster, open_client, parse_cluster  # noqa: E402
from vigie.ingest.scan import run_scan  # noqa: E402
from vigie.store import Store  # noqa: E402


def read_files(out):
    with open(out / "files.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def source(tmp_path, settings):
    store = Store.open(settings)
    src = tmp_path / "evidence"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    pics = [encode(photo_like(i, 160 + 8 * (i % 3), 120), "JPEG" if i % 4 else "PNG") for i in range(20)]
    for i, data in enumerate(pics):
        (src / ("a" if i % 2 else "b") / f"p{i:02d}.{'jpg' if i % 4 else 'png'}").write_bytes(data)
    (src / "copy-of-p05.jpg").write_bytes(pics[5])  # a duplicate
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner/m0.jpg", encode(photo_like(50, 200, 150), "JPEG"))
        z.writestr("inner/m1.jpg", pics[7])
    (src / "bundle.zip").write_bytes(buf.getvalue())
    (src / "notes.txt").write_text("not a picture\n")
    banks.create_bank(store, "known", default_verdict=None)
    md5 = hash_bytes(pics[7], settings).md5
    banks.import_entries(store, "known", enumerate([EntryData("md5", md5)], 1))
    yield store, src
    store.close()


def test_dask_scan_matches_local_scan(source, settings, tmp_path, media_key):
    store, src = source
    local = run_scan(store, settings, [str(src)], str(tmp_path / "local"), workers=1, case="local",
                     thumbnails=True)
    dask = run_scan(store, settings, [str(src)], str(tmp_path / "dask"), case="dask", cluster="local:2",
                    thumbnails=True)
    a, b = read_files(tmp_path / "local"), read_files(tmp_path / "dask")
    assert len(a) == 25  # 21 pictures on disk, the zip and its 2 members, the text file
    assert a == b
    assert local["counts"] == dask["counts"]
    assert local["counts"]["by_class"]["exact"] == 2  # p07 on disk and inside the zip
    assert {p.name for p in (tmp_path / "local" / "thumbs").iterdir()} == \
        {p.name for p in (tmp_path / "dask" / "thumbs").iterdir()}


def test_hash_on_cluster_keeps_order_and_turns_failures_into_errors(settings):
    items = [Item(f"mem{i}", data=encode(photo_like(i, 64, 48), "PNG")) for i in range(6)]
    items.insert(3, Item("broken", meta=None))  # process_item raises on it: the task fails
    client = open_client("local:1")
    try:
        out = list(hash_on_cluster(client, iter(items), settings, window=2, batch=3))  # 3 tasks, one broken
    finally:
        close_client(client)
    assert [i.location for i, _ in out] == [i.location for i in items]
    assert [r.location for _, r in out] == [i.location for i in items]
    broken = out[3][1]
    assert broken.error[0] == "internal_error" and "AttributeError" in broken.error[1]
    assert all(r.pdq and r.error is None for _, r in out if r.location != "broken")


def test_a_batch_of_large_members_is_sent_without_dask_warning_of_a_large_graph(settings):
    """Members travel in their task, up to BATCH_BYTES a batch: Dask's "Sending large graph" warning (past 10 MB)
    said nothing the scan did not mean, on the scan's own output."""
    import os
    import warnings

    big = [Item(f"blob{i}", data=os.urandom(6 * 1024 * 1024)) for i in range(2)]  # 12 MB in one batch
    client = open_client("local:1")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = list(hash_on_cluster(client, iter(big), settings))
    finally:
        close_client(client)
    assert [r.location for _, r in out] == ["blob0", "blob1"]
    assert all(r.sha256 for _, r in out)
    assert not [w for w in seen if "large graph" in str(w.message)]


def test_parse_cluster():
    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("local")[0] == "local"
    assert parse_cluster("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert parse_cluster("sched.example:8786") == ("address", "tcp://sched.example:8786")
    for bad in ("", "local:0", "local:x", "nonsense"):
        with pytest.raises(ValueError):
            parse_cluster(bad)


def test_a_local_cluster_runs_without_dask_monitoring():
    """The workers of a local cluster run no statistical profiler and the scan's process no GIL monitor or fast
    tick (`vigie.ingest.distributed.QUIET`): on the scan's two cores they took about 0.8 s of CPU from a 6 s
    bench run (docs/scanning.md, seventh round)."""
    import dask

    client = open_client("local:1")
    try:
        got = client.run(lambda: (dask.config.get("distributed.worker.profile.enabled"),
                                  dask.config.get("distributed.admin.tick.interval")))
        assert list(got.values()) == [(False, "500ms")]
        assert dask.config.get("distributed.worker.profile.enabled") is True  # the process's own config untouched
    finally:
        close_client(client)


def test_a_local_cluster_starts_while_the_matcher_loads_and_closes_when_that_fails(source, settings, tmp_path,
                                                                                   monkeypatch):
    """The local cluster starts before the scan loads its banks (seconds for large ones), not after: its start
    overlaps theirs. When loading them fails, the scan raises that error and the cluster it started is closed,
    its workers gone."""
    from vigie import matching
    from vigie.ingest import distributed

    store, src = source
    opened, seen = [], {}

    def open_recording(spec):
        client = open_client(spec)
        opened.append(client)
        return client

    def refresh_failing(self):
        import time

        for _ in range(600):  # the cluster is opening (or open) while the banks load
            if opened:
                break
            time.sleep(0.05)
        seen["cluster_open_during_load"] = bool(opened)
        raise RuntimeError("the bank index is unreadable")

    monkeypatch.setattr(distributed, "open_client", open_recording)
    monkeypatch.setattr(matching.Matcher, "refresh", refresh_failing)
    with pytest.raises(RuntimeError, match="unreadable"):
        run_scan(store, settings, [str(src)], str(tmp_path / "out"), case="fails", cluster="local:1")
    assert seen["cluster_open_during_load"]
    assert opened[0].status == "closed"
    assert opened[0].cluster.status.name == "closed"
