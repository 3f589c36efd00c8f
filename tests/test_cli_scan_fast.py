"""`vigie scan --fast`: digests and the plain PDQ only, so a mirrored copy of a known picture is not found, while
the default scan finds it. Generated pictures only."""

from __future__ import annotations

import csv
import io

from PIL import ImageOps

from vigie.demo import encode, photo_like

from test_cli_hash import vigie


def _klass(out_dir) -> dict[str, str]:
    rows = csv.DictReader(io.StringIO((out_dir / "files.csv").read_text()))
    return {r["location"].rsplit("/", 1)[-1]: r["class"] for r in rows}


def test_fast_scan_leaves_out_the_variants(tmp_path):
    data = tmp_path / "data"
    pic = photo_like(71, 320, 240)
    known = tmp_path / "known.jpg"
    known.write_bytes(encode(pic, "JPEG"))
    src = tmp_path / "evidence"
    src.mkdir()
    (src / "same.jpg").write_bytes(known.read_bytes())
    (src / "mirrored.jpg").write_bytes(encode(ImageOps.mirror(pic), "JPEG"))
    assert vigie("bank", "create", "k", "--data-dir", str(data)).returncode == 0
    assert vigie("bank", "add", "k", str(known), "--data-dir", str(data)).returncode == 0
    full = vigie("scan", str(src), "--out", str(tmp_path / "r1"), "--json", "--data-dir", str(data))
    fast = vigie("scan", str(src), "--out", str(tmp_path / "r2"), "--case", "fast", "--fast", "--json",
                 "--data-dir", str(data))
    assert full.returncode == 0 and fast.returncode == 0, (full.stderr, fast.stderr)
    k1, k2 = _klass(tmp_path / "r1"), _klass(tmp_path / "r2")
    assert k1["same.jpg"] == k2["same.jpg"] == "exact"
    assert k1["mirrored.jpg"] == "near" and k2["mirrored.jpg"] == "unknown"


def _rows(out_dir) -> dict[str, dict]:
    rows = csv.DictReader(io.StringIO((out_dir / "files.csv").read_text()))
    return {r["location"].rsplit("/", 1)[-1]: r for r in rows}


def test_fast_scan_flags_reduced_decodes_and_the_full_scan_stays_exact(tmp_path, settings):
    """--fast decodes a large JPEG at reduced scale: its row says so (pdq_reduced) and its PDQ stays within a
    few bits of the full decode's; a small JPEG and a PNG are decoded in full. The default scan is bit-exact."""
    from vigie.media.decode import decode_image
    from vigie.signals.pdq import hash_rgb

    src = tmp_path / "evidence"
    src.mkdir()
    big = encode(photo_like(5, 2048, 1536), "JPEG")
    (src / "big.jpg").write_bytes(big)
    (src / "small.jpg").write_bytes(encode(photo_like(6, 640, 480), "JPEG"))
    (src / "big.png").write_bytes(encode(photo_like(7, 1200, 1100), "PNG"))
    data = tmp_path / "data"
    full = vigie("scan", str(src), "--out", str(tmp_path / "r1"), "--json", "--data-dir", str(data))
    fast = vigie("scan", str(src), "--out", str(tmp_path / "r2"), "--case", "fast", "--fast", "--json",
                 "--data-dir", str(data))
    assert full.returncode == 0 and fast.returncode == 0, (full.stderr, fast.stderr)
    r1, r2 = _rows(tmp_path / "r1"), _rows(tmp_path / "r2")
    exact = hash_rgb(decode_image(big), settings.pdq_engine).hex
    assert r1["big.jpg"]["pdq"] == exact
    assert not any("pdq_reduced" in r["flags"] for r in r1.values())
    assert "pdq_reduced" in r2["big.jpg"]["flags"]
    assert "pdq_reduced" not in r2["small.jpg"]["flags"] and "pdq_reduced" not in r2["big.png"]["flags"]
    assert r2["small.jpg"]["pdq"] == r1["small.jpg"]["pdq"] and r2["big.png"]["pdq"] == r1["big.png"]["pdq"]
    bits = bin(int(r2["big.jpg"]["pdq"], 16) ^ int(exact, 16)).count("1")
    assert bits <= 16  # a few bits: still a near copy of itself (Meta's threshold is 31)
