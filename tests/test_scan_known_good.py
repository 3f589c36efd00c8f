"""Scans skip known-good files (NIST NSRL) by digest: recorded as skipped with flag `known_good`, never decoded,
never queued; an exact match in a match bank still wins."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from test_formats_nsrl import make_rds_v3

from vigie.banks import known_good
from vigie.banks import service as banks
from vigie.ingest import process
from vigie.ingest.scan import run_scan
from vigie.store.models import ScanFile

import factory


def jpeg(seed: int) -> bytes:
    return factory.save(factory.picture(seed, 160, 120), "JPEG", quality=85)


@pytest.fixture
def evidence(store, tmp_path):
    """An NSRL bank listing one picture (an application's icon, say); a folder with it and an unknown picture."""
    icon, photo = jpeg(11), jpeg(12)
    db = tmp_path / "rds.db"
    make_rds_v3(db, [icon, b"not in the evidence"])
    banks.create_bank(store, "nsrl", kind="known_good")
    with open(db, "rb") as f:
        banks.import_file(store, "nsrl", f, "nsrl")
    src = tmp_path / "evidence"
    src.mkdir()
    factory.write(src, "icon.jpg", icon)
    factory.write(src, "photo.jpg", photo)
    return store, src, icon


def rows(store) -> dict[str, ScanFile]:
    with store.sessions() as s:
        return {r.location.rsplit("/", 1)[-1]: r for r in s.scalars(select(ScanFile))}


def test_a_known_good_file_is_skipped_before_decoding(evidence, tmp_path, monkeypatch):
    store, src, icon = evidence
    real = process.decode_image
    decoded = []

    def watch(data, **kw):
        decoded.append(data)
        return real(data, **kw)

    monkeypatch.setattr(process, "decode_image", watch)
    run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=1)
    got = rows(store)
    assert icon not in decoded and len(decoded) == 1  # only the unknown photo was decoded
    kg = got["icon.jpg"]
    assert (kg.klass, kg.pdq, kg.error_code) == ("skipped", None, None)
    assert "known_good" in kg.flags and kg.sha1 and kg.detail["known_good"] == "sha1"
    assert got["photo.jpg"].klass == "unknown" and "known_good" not in got["photo.jpg"].flags


def test_an_exact_match_beats_known_good(evidence, tmp_path):
    store, src, icon = evidence
    banks.create_bank(store, "list")
    banks.add_entry(store, "list", "sha256", hashlib.sha256(icon).hexdigest())
    run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=1)
    got = rows(store)["icon.jpg"]
    assert got.klass == "exact" and [m["bank"] for m in got.matches] == ["list"]


def test_a_disabled_known_good_bank_skips_nothing(evidence, tmp_path):
    store, src, _ = evidence
    banks.update_bank(store, "nsrl", enabled=False)
    assert len(known_good.load(store)) == 0
    run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=1)
    assert rows(store)["icon.jpg"].klass == "unknown"


def test_worker_processes_skip_known_good_files_too(evidence, tmp_path):
    store, src, _ = evidence
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the pool path is the same on both stores; run once to spare the two shared cores")
    run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=2)
    got = rows(store)
    assert got["icon.jpg"].klass == "skipped" and got["icon.jpg"].pdq is None
    assert got["photo.jpg"].klass == "unknown"


def test_large_known_good_files_and_members_are_skipped_not_errors(store, tmp_path):
    import io
    import zipfile

    big = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 800  # over the limit below: never decodable anyway
    settings = store.settings.model_copy(update={"max_file_bytes": 50_000})
    db = tmp_path / "rds.db"
    make_rds_v3(db, [big])
    banks.create_bank(store, "nsrl", kind="known_good")
    with open(db, "rb") as f:
        banks.import_file(store, "nsrl", f, "nsrl")
    src = tmp_path / "evidence"
    src.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("setup/big.jpg", big)
    factory.write(src, "a.zip", buf.getvalue())
    factory.write(src, "plain.jpg", big)
    run_scan(store, settings, [str(src)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        got = {r.location.rsplit("/", 1)[-1]: r for r in s.scalars(select(ScanFile))}
    for loc in ("plain.jpg", "big.jpg"):
        r = got[loc]
        assert (r.klass, r.error_code, r.sha256) == ("skipped", None, hashlib.sha256(big).hexdigest()), loc
        assert "known_good" in r.flags, loc


def test_a_later_scan_uses_the_saved_set_and_each_scan_lets_go_of_it(evidence, tmp_path, monkeypatch):
    import fcntl
    import os

    store, src, icon = evidence
    reads = []
    real = known_good._read
    monkeypatch.setattr(known_good, "_read", lambda s: reads.append(1) or real(s))
    for n in range(2):
        run_scan(store, store.settings, [str(src)], str(tmp_path / f"out{n}"), workers=1)
    assert len(reads) == 1  # the second scan mapped the set the first one saved
    got = rows(store)
    assert got["icon.jpg"].klass == "skipped" and "known_good" in got["icon.jpg"].flags
    (path,) = (store.index_dir / known_good.FOLDER).iterdir()
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no scan holds it any more: a newer set may remove it
    finally:
        os.close(fd)
