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
