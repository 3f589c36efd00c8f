"""PDQ conformance against Meta's published vectors in ../shared/conformance/pdq/conformance.json.

Bit-exact with every value python-threatexchange / HMA publish ("exact"), and within
10 bits of Meta's C++/Java reference tools where quality >= 80 ("reference"), for
both engines. The file list comes from the JSON, so a file added there is tested.
"""

from __future__ import annotations

import json

import pytest

from vigie.hashing import hash_file
from vigie.settings import Settings
from vigie.signals.base import hamming_hex

from conftest import CONFORMANCE

PDQ = CONFORMANCE / "pdq"
if not (PDQ / "conformance.json").exists():
    pytest.skip(f"conformance vectors not found at {PDQ}", allow_module_level=True)

CASES = json.loads((PDQ / "conformance.json").read_text())["files"]


@pytest.mark.parametrize("engine", ["numba", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_conformance(case, engine, tmp_path):
    rec = hash_file(PDQ / case["file"], Settings(data_dir=tmp_path, pdq_engine=engine))
    assert rec.ok, rec.error
    assert len(rec.pdq) == 64 and rec.pdq == rec.pdq.lower()
    for expected in case["exact"]:
        assert rec.pdq == expected, f"{case['file']}: {hamming_hex(rec.pdq, expected)} bits from HMA's value"
    if rec.pdq_quality >= 80:
        for ref in case["reference"]:
            assert hamming_hex(rec.pdq, ref) <= 10, f"{case['file']}: over 10 bits from the C++ reference"


def test_conformance_covers_published_values():
    exact = sum(len(c["exact"]) for c in CASES)
    ref = sum(len(c["reference"]) for c in CASES)
    print(f"\nPDQ conformance: {len(CASES)} files, {exact} bit-exact values, {ref} reference values")
    assert exact >= 18 and ref >= 17


def test_sixteen_bit_png_hashes_like_its_8bit_version(tmp_path):
    """pytx clips I16.png (quality 36); we scale, so it hashes with full quality."""
    rec = hash_file(PDQ / "pytx-resources" / "I16.png", Settings(data_dir=tmp_path))
    assert rec.ok and rec.pdq_quality >= 80


def test_dihedral_set_matches_java_reference():
    """The eight transforms from one decode agree, kind by kind, with Meta's Java --pdqdih output."""
    import numpy as np
    from PIL import Image

    from vigie.signals.pdq import dihedral_rgb

    ref = json.loads((PDQ / "expected.json").read_text())["_dih_transforms_of_bridge_1_original_java_reference"]
    names = {"orig": "original", "rot90": "rot90", "rot180": "rot180", "rot270": "rot270", "flipx": "flipx",
             "flipy": "flipy", "flipp": "transpose", "flipm": "transverse"}
    rgb = np.asarray(Image.open(PDQ / "dih" / "bridge-1-original.jpg").convert("RGB"))
    for engine in ("numba", "reference"):
        got, quality = dihedral_rgb(rgb, engine=engine)
        assert quality >= 80
        for theirs, ours in names.items():
            assert hamming_hex(ref["hashes"][theirs], got[ours]) <= 10, (engine, ours)
