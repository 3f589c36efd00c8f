"""PDQ parity with python-threatexchange (what HMA runs), bit for bit, on generated pictures of every mode.

python-threatexchange is installed in a separate venv (tests/parity_venv.py) and hashes the very
files Vigie hashes. For each file: Vigie's `hma_compat` computation equals python-threatexchange's
`pdq_from_bytes` (hash and quality), with both PDQ engines; and whatever HMA would put in a list
(its hash when the quality is >= 50) is one of the hashes Vigie queries with, at distance 0.
"""

from __future__ import annotations

import pytest
from parity_venv import parity_python, run_json
from picture_modes import mode_of, pictures

from vigie.hashing import hash_bytes
from vigie.signals.base import hamming_hex
from vigie.signals.hma_compat import KIND, differs_from_vigie, hma_pdq_bytes
from vigie.signals.variants import MIN_VARIANT_QUALITY

PYTX_SCRIPT = """
import json, sys
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes
from threatexchange.signal_type.pdq.signal import PdqSignal
out = {}
for name, path in json.load(sys.stdin):
    data = open(path, "rb").read()
    try:
        h, q = pdq_from_bytes(data)
    except Exception as exc:
        out[name] = {"error": type(exc).__name__}
        continue
    try:
        hma = PdqSignal.hash_from_bytes(data)
    except Exception as exc:
        hma = None
    out[name] = {"hex": h, "quality": int(q), "hma": hma}
print(json.dumps(out))
"""

EVERY_MODE = {"RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I;16B", "I", "F", "YCbCr", "LAB"}


@pytest.fixture(scope="module")
def pytx_python():
    return parity_python("threatexchange", "threatexchange.signal_type.pdq.pdq_hasher")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, pytx_python):
    d = tmp_path_factory.mktemp("modes")
    files = {}
    for seed in range(1, 9):
        for name, data in pictures(seed, 200 + 16 * seed, 150 + 8 * seed):
            key = f"{seed}-{name}"
            (d / key).write_bytes(data)
            files[key] = data
    theirs = run_json(pytx_python, PYTX_SCRIPT, [[k, str(d / k)] for k in files])
    return files, theirs


def test_every_mode_is_covered(corpus):
    files, _ = corpus
    assert {mode_of(d) for d in files.values()} >= EVERY_MODE


@pytest.mark.parametrize("engine", ["numba", "reference"])
def test_hma_compat_equals_python_threatexchange_bit_for_bit(corpus, engine):
    files, theirs = corpus
    same = hashed = 0
    for key, data in files.items():
        ours = hma_pdq_bytes(data, engine=engine, only_if_different=False)
        t = theirs[key]
        if "error" in t:  # pdqhash refuses the array (I;16B, I, F): HMA has no hash, nor has Vigie's variant
            assert ours is None, (key, mode_of(data), t)
            continue
        hashed += 1
        assert ours is not None, (key, mode_of(data))
        assert (ours.hex, ours.quality) == (t["hex"], t["quality"]), (key, mode_of(data))
        same += 1
    assert hashed == same and hashed >= 8 * 20


def test_what_hma_lists_is_among_vigies_query_hashes(corpus, settings):
    """The point of the variant: every hash HMA would put in a list (quality >= 50) is one of the hashes
    Vigie queries with for the same file, at distance 0, with or without the other variants."""
    files, theirs = corpus
    needed = far = 0
    by_mode: dict[str, list[int]] = {}
    for key, data in files.items():
        t = theirs[key]
        if "error" in t or not t["hma"]:
            continue
        assert t["hma"] == t["hex"] and t["quality"] >= 50
        for variants in (False, True):
            rec = hash_bytes(data, settings, variants=variants)
            mine = {"original": rec.pdq} | {v["kind"]: v["pdq"] for v in rec.pdq_variants or []
                                            if v["kind"] == KIND}
            assert t["hex"] in mine.values(), (key, mode_of(data), variants)
            if rec.pdq != t["hex"]:
                assert mine.get(KIND) == t["hex"]
                assert differs_from_vigie(mode_of(data))
        plain = hash_bytes(data, settings).pdq
        if plain != t["hex"]:
            needed += 1
            far += hamming_hex(plain, t["hex"]) > 31
            by_mode.setdefault(mode_of(data), []).append(hamming_hex(plain, t["hex"]))
    print(f"\nHMA hashes (quality >= 50) that Vigie's plain hash misses: {needed} "
          f"({far} by more than 31 bits), all found by hma_compat; distances by mode: "
          + "; ".join(f"{m}: {len(d)} files, {min(d)}-{max(d)} bits" for m, d in sorted(by_mode.items())))
    assert needed > 0 and far > 0  # the corpus has pictures where the variant matters


def test_variant_only_where_modes_differ(corpus, settings):
    files, theirs = corpus
    for key, data in files.items():
        rec = hash_bytes(data, settings)
        kinds = [v["kind"] for v in rec.pdq_variants or []]
        mode = mode_of(data)
        if not differs_from_vigie(mode):
            assert kinds == [], (key, mode)
        elif kinds:
            assert kinds == [KIND]
            assert rec.pdq_variants[0]["quality"] >= MIN_VARIANT_QUALITY
            assert rec.pdq_variants[0]["pdq"] == theirs[key]["hex"]
    off = settings.model_copy(update={"variant_hma_compat": False})
    for key in [k for k in files if "shuffled" in k or "cmyk" in k][:12]:
        assert KIND in [v["kind"] for v in hash_bytes(files[key], settings).pdq_variants or []], key
        assert hash_bytes(files[key], off).pdq_variants is None
        assert KIND not in [v["kind"] for v in hash_bytes(files[key], off, variants=True).pdq_variants]
