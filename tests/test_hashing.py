"""Hashing files: digests streamed, PDQ from pixels, and every awkward file a record, never a crash."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from vigie.batch import hash_many
from vigie.errors import InvalidHash
from vigie.hashing import hash_bytes, hash_file
from vigie.ingest.files import Skipped, iter_files
from vigie.signals import Md5Signal, PdqSignal, get_signal, infer_signal
from vigie.signals._digest import digests
from vigie.signals.base import hamming_hex
from vigie.signals.pdq import bits_to_hex

import factory


def test_digests_match_hashlib(tmp_path, settings):
    data = os.urandom(3 * 1024 * 1024 + 17)
    p = factory.write(tmp_path, "blob.bin", data)
    rec = hash_file(p, settings)
    assert rec.md5 == hashlib.md5(data).hexdigest()
    assert rec.sha1 == hashlib.sha1(data).hexdigest()
    assert rec.sha256 == hashlib.sha256(data).hexdigest()
    assert rec.size == len(data)
    assert rec.error.code == "not_media"


def test_picture_gets_every_hash(tmp_path, settings):
    p = factory.write(tmp_path, "x.dat", factory.save(factory.picture(3), "JPEG"))
    rec = hash_file(p, settings)
    assert rec.ok and rec.media_type == "image/jpeg"
    assert len(rec.pdq) == 64 and 0 <= rec.pdq_quality <= 100
    assert set(rec.as_dict()) == {"path", "media_type", "size", "md5", "sha1", "sha256", "pdq", "pdq_quality"}


def test_hash_bytes_equals_hash_file(tmp_path, settings):
    data = factory.save(factory.picture(4), "PNG")
    a = hash_bytes(data, settings)
    b = hash_file(factory.write(tmp_path, "a.png", data), settings)
    assert (a.pdq, a.md5, a.sha256) == (b.pdq, b.md5, b.sha256)


def test_oversized_file_keeps_digests(tmp_path, settings):
    data = factory.save(factory.picture(4), "PNG")
    small = settings.model_copy(update={"max_file_bytes": 100})
    rec = hash_file(factory.write(tmp_path, "a.png", data), small)
    assert rec.error.code == "too_large" and rec.md5 == hashlib.md5(data).hexdigest()


def test_special_files_and_loops_never_hang(tmp_path, settings):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    os.symlink("self", tmp_path / "self")  # a link to itself
    factory.write(tmp_path / "sub", "ok.jpg", factory.save(factory.picture(1), "JPEG"))
    odd = os.fsdecode(b"odd-\xff\xfe name \xe2\x98\x83.jpg")
    factory.write(tmp_path, odd, factory.save(factory.picture(2), "JPEG"))
    items = list(iter_files([str(tmp_path)], recursive=True))
    recs = {os.path.basename(r.path): r for r in hash_many(items, settings, workers=1)}
    assert recs["fifo"].error.code == "special_file"
    assert recs["loop"].error.code == "symlink_loop"
    assert recs["self"].error.code == "symlink_loop"
    assert recs["ok.jpg"].ok and recs[odd].ok
    assert any(isinstance(i, Skipped) for i in items)


def test_direct_fifo_argument_is_skipped(tmp_path, settings):
    os.mkfifo(tmp_path / "fifo")
    rec = hash_file(tmp_path / "fifo", settings)
    assert rec.error.code == "special_file"


def test_pool_gives_same_results_in_order(tmp_path, settings):
    paths = []
    for i in range(10):
        data = factory.save(factory.picture(i), "JPEG") if i % 3 else b"not a picture %d" % i
        paths.append(str(factory.write(tmp_path, f"f{i}.jpg", data)))
    one = [r.as_dict() for r in hash_many(paths, settings, workers=1)]
    two = [r.as_dict() for r in hash_many(paths, settings, workers=2)]
    assert one == two
    assert [r["path"] for r in two] == paths


def crashing_hasher(path, settings, variants=False):
    """Stands in for a C decoder that kills its process on one hostile file."""
    if path.endswith("crash.png"):
        os._exit(139)
    return hash_file(path, settings, variants=variants)


def test_crash_in_a_worker_is_pinned_on_its_file(tmp_path, settings):
    """A decoder that kills its process must cost one record, not the batch."""
    paths = [str(factory.write(tmp_path, f"f{i}.png", factory.save(factory.picture(i), "PNG"))) for i in range(4)]
    bomb = tmp_path / "crash.png"
    bomb.write_bytes(factory.save(factory.picture(9), "PNG"))
    recs = list(hash_many(paths[:2] + [str(bomb)] + paths[2:], settings, workers=2, fn=crashing_hasher))
    codes = [r.error.code if r.error else "ok" for r in recs]
    assert codes == ["ok", "ok", "decoder_crash", "ok", "ok"]
    # its digests are still given (read again in this process, not decoded): a bank may know it by them
    assert recs[2].sha256 == hashlib.sha256(bomb.read_bytes()).hexdigest() and recs[2].media_type == "image/png"
    assert recs[2].md5 == hashlib.md5(bomb.read_bytes()).hexdigest() and recs[2].pdq is None


def stuck_hasher(path, settings, variants=False):
    """Stands in for a C decoder stuck in a loop on one hostile file: deaf to the SIGALRM of `file_timeout`."""
    if path.endswith("stuck.png"):
        import signal
        import time

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    return hash_file(path, settings, variants=variants)


def test_a_decoder_stuck_in_c_is_stopped_and_pinned_on_its_file(tmp_path, settings, monkeypatch):
    """`vigie hash`'s pool: the worker held past twice `file_timeout` plus a margin is killed, its file gets
    `timeout`, the others are hashed."""
    import vigie.batch

    monkeypatch.setattr(vigie.batch, "STUCK_MARGIN", 1.0)
    paths = [str(factory.write(tmp_path, f"f{i}.png", factory.save(factory.picture(i), "PNG"))) for i in range(4)]
    stuck = tmp_path / "stuck.png"
    stuck.write_bytes(factory.save(factory.picture(9), "PNG"))
    fast = settings.model_copy(update={"file_timeout": 2.0})
    recs = list(hash_many(paths[:2] + [str(stuck)] + paths[2:], fast, workers=2, fn=stuck_hasher))
    codes = [r.error.code if r.error else "ok" for r in recs]
    assert codes == ["ok", "ok", "timeout", "ok", "ok"]
    assert "stopped after 5 s" in recs[2].error.message
    assert recs[2].sha1 == hashlib.sha1(stuck.read_bytes()).hexdigest() and recs[2].size == stuck.stat().st_size


@given(st.binary(min_size=32, max_size=32))
def test_hex_round_trip(raw):
    h = raw.hex()
    assert PdqSignal.normalise(h.upper()) == h
    assert PdqSignal.normalise("0x" + h) == h
    assert bytes.fromhex(PdqSignal.normalise(h)) == raw


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
@hsettings(max_examples=200)
def test_hamming_is_a_metric(a, b):
    ha, hb = a.hex(), b.hex()
    d = hamming_hex(ha, hb)
    assert d == sum(bin(x ^ y).count("1") for x, y in zip(a, b))
    assert d == hamming_hex(hb, ha) and hamming_hex(ha, ha) == 0 and 0 <= d <= 256


@given(st.lists(st.integers(0, 1), min_size=256, max_size=256))
def test_bits_to_hex_is_pytx_layout(bits):
    assert bits_to_hex(bits) == format(int("".join(map(str, bits)), 2), "064x")


def test_signal_registry():
    assert get_signal("MD5") is Md5Signal and get_signal("photo_pdq") is PdqSignal
    assert infer_signal("a" * 40).name == "sha1"
    with pytest.raises(Exception) as e:
        infer_signal("a" * 64)
    assert e.value.code == "ambiguous_signal"
    with pytest.raises(InvalidHash):
        Md5Signal.normalise("xyz")


def test_digest_helper_streams(tmp_path):
    p = factory.write(tmp_path, "b", b"abc" * 1000)
    with open(p, "rb") as f:
        d, n = digests(f)
    assert n == 3000 and d["md5"] == hashlib.md5(b"abc" * 1000).hexdigest()
