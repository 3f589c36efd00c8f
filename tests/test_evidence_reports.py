"""Clean reports: records that are not errors, whole VICS file names with SHA-256 and times, a hash for
every source, no scratch left behind, no worker left alive after a kill."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile

import pytest

from vigie.demo import encode, photo_like
from vigie.ingest.scan import run_scan


def jpeg(seed: int) -> bytes:
    return encode(photo_like(seed, 64, 48), "JPEG")


def media_files(out) -> dict[str, dict]:
    vics = json.loads((out / "media.vics.json").read_text())
    files = {}
    for case in vics["value"]:
        for m in case["Media"]:
            for f in m["MediaFiles"]:
                files[f["FilePath"]] = f
    return files


def test_vics_has_whole_names_sha256_and_times(store, tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    a, b, c = jpeg(1), jpeg(2), jpeg(3)
    (ev / "we!rd.jpg").write_bytes(a)
    os.utime(ev / "we!rd.jpg", (1_500_000_000, 1_600_000_000))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("dir/x!y.jpg", (2021, 5, 6, 7, 8, 10)), b)
    (ev / "p.zip").write_bytes(buf.getvalue())
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as t:
        info = tarfile.TarInfo("t!1.jpg")
        info.size, info.mtime = len(c), 1_700_000_000
        t.addfile(info, io.BytesIO(c))
    (ev / "t.tar").write_bytes(tbuf.getvalue())
    out = tmp_path / "out"
    run_scan(store, store.settings, [str(ev)], str(out), workers=1)
    files = media_files(out)
    plain = files[f"{ev}/we!rd.jpg"]
    assert plain["FileName"] == "we!rd.jpg" and plain["Written"] == "2020-09-13T12:26:40.0000000Z"
    assert plain["Accessed"] == "2017-07-14T02:40:00.0000000Z"
    assert plain["SHA256"] == hashlib.sha256(a).hexdigest().upper()
    member = files[f"{ev}/p.zip!dir/x!y.jpg"]
    assert member["FileName"] == "x!y.jpg" and member["Written"].startswith("2021-05-06T07:08:10")
    assert files[f"{ev}/t.tar!t!1.jpg"]["FileName"] == "t!1.jpg"
    assert files[f"{ev}/t.tar!t!1.jpg"]["Written"] == "2023-11-14T22:13:20.0000000Z"
    vics = json.loads((out / "media.vics.json").read_text())
    media = vics["value"][0]["Media"]
    assert all(m.get("SHA256") or any(h.get("HashName") == "SHA256" for h in m.get("AlternativeHashes", []))
               for m in media)


def test_source_hashes_for_relative_paths_and_folders(store, tmp_path, monkeypatch):
    (tmp_path / "case" / "ev" / "sub").mkdir(parents=True)
    (tmp_path / "case" / "ev" / "a.jpg").write_bytes(jpeg(4))
    (tmp_path / "case" / "ev" / "sub" / "b.bin").write_bytes(b"benign")
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("in.jpg", jpeg(5))
    (tmp_path / "case" / "ev" / "c.zip").write_bytes(z.getvalue())
    (tmp_path / "case" / "single.jpg").write_bytes(jpeg(6))
    monkeypatch.chdir(tmp_path / "case")
    out = tmp_path / "out"
    summary = run_scan(store, store.settings, ["ev", "single.jpg"], str(out), workers=1)
    hashes = {s["location"]: s for s in summary["source_hashes"]}
    assert hashes["single.jpg"]["sha256"] == hashlib.sha256(jpeg(6)).hexdigest()
    assert hashes["single.jpg"]["path"] == str(tmp_path / "case" / "single.jpg")
    folder = hashes["ev"]
    assert folder["kind"] == "folder" and folder["files"] == 3  # a.jpg, c.zip, sub/b.bin (not the member)
    manifest = (out / folder["manifest"]).read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == folder["sha256"]
    check = subprocess.run(["sha256sum", "-c", str(out / folder["manifest"])], cwd=tmp_path / "case" / "ev",
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == 3, check.stdout + check.stderr


def test_fat_volume_label_is_a_record_not_an_error(store, tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_containers import fat12_image

    vol = bytearray(fat12_image(jpeg(7), jpeg(8), b"benign"))
    root = 512 * 5  # boot sector, two FATs of two sectors
    struct.pack_into("<11sBBBHHHHHHHI", vol, root + 32 * 3, b"EVIDENCE   ", 0x08, 0, 0, 0, 0x5021, 0x5021, 0, 0x6000,
                     0x5021, 0, 0)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "fat.raw").write_bytes(bytes(vol))
    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with open(tmp_path / "out" / "files.csv", newline="") as f:
        rows = {r["location"]: r for r in csv.DictReader(f)}
    label = [r for loc, r in rows.items() if "Volume Label" in loc]
    assert len(label) == 1 and label[0]["class"] == "skipped" and label[0]["error"].startswith("fs_metadata")
    assert "empty" not in summary["counts"]["errors"] and summary["counts"]["records"] == {"fs_metadata": 1}
    assert summary["counts"]["by_class"]["error"] == 0


def test_dask_leaves_no_scratch(store, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import tempfile

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch_root))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "a.jpg").write_bytes(jpeg(9))
    summary = run_scan(store, store.settings, [str(ev)], str(tmp_path / "out"), cluster="local:1")
    assert summary["counts"]["locations"] == 1
    assert not any(p.name.startswith(("dask-scratch-space", "vigie-dask-")) for p in scratch_root.iterdir()), \
        list(scratch_root.iterdir())


@pytest.mark.parametrize("cluster", [None, "local:2"])
def test_workers_leave_when_the_scan_is_killed(tmp_path, cluster):
    """The pool's workers and a local Dask cluster's (both forked from the scan's forkserver) leave with it."""
    psutil = pytest.importorskip("psutil")
    if cluster:
        pytest.importorskip("distributed")
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(200):  # enough work to be killed in the middle of it, after the scan's own process has
        # hashed the first pictures while its pool started
        (ev / f"{i:04d}.jpg").write_bytes(encode(photo_like(i, 480, 360).resize((1600, 1200)), "JPEG"))
    script = textwrap.dedent(f"""
        from vigie.settings import Settings
        from vigie.store import Store
        from vigie.ingest.scan import run_scan
        s = Settings(data_dir={str(tmp_path / 'data')!r})
        run_scan(Store.open(s), s, [{str(ev)!r}], {str(tmp_path / 'out')!r}, workers=2, cluster={cluster!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        me = psutil.Process(proc.pid)
        workers = []
        for _ in range(600):  # wait (up to a minute) for the pool to start: forkserver + 2 workers
            try:
                workers = [p for p in me.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            if len(workers) >= 3:
                break
            time.sleep(0.1)
        assert len(workers) >= 3, "the scan's worker pool never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, [p.pid for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
