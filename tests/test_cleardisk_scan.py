"""Nothing unknown in clear on disk after a scan (issue 16, item 3): no picture in the report folder, the
data folder or the temp folder unless asked, and then only blurred grey miniatures sealed with the media key;
folders 0700, files 0600. Generated benign pictures only."""

from __future__ import annotations

import io
import os
import re
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.errors import VigieError
from vigie.hashing import hash_bytes
from vigie.ingest.scan import run_scan
from vigie.report import thumbs

import factory

#: A JPEG's start with the marker that follows it (JFIF, Exif, or a quantisation table): the 3-byte SOI alone turns
#: up by chance about once in 16 MiB of ciphertext, which made this search fail now and then on sealed files.
MAGIC = {"jpeg": re.compile(rb"\xff\xd8\xff(?:\xe0..JFIF|\xe1..Exif|\xdb\x00)", re.S),
         "png": re.compile(re.escape(b"\x89PNG\r\n\x1a\n"))}


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch) -> Path:
    """A temp folder of this test's own, the way every library (and the worker processes) finds it."""
    t = tmp_path / "tmp"
    t.mkdir()
    monkeypatch.setenv("TMPDIR", str(t))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return t


@pytest.fixture
def evidence(store, tmp_path):
    """Two known pictures (in a bank), three unknown ones (JPEG and PNG) and a zip holding one more."""
    settings = store.settings
    src = tmp_path / "evidence"
    src.mkdir()
    known = [factory.save(factory.picture(10 + i), "JPEG", quality=90) for i in range(2)]
    banks.create_bank(store, "known")
    rows = []
    for data in known:
        rec = hash_bytes(data, settings)
        rows += [EntryData("md5", rec.md5), EntryData("pdq", rec.pdq)]
    banks.import_entries(store, "known", enumerate(rows, 1))
    unknown = [factory.save(factory.picture(40), "JPEG", quality=90), factory.save(factory.picture(41), "PNG"),
               factory.save(factory.picture(42, 480, 360), "JPEG", quality=80)]
    for i, data in enumerate(known):
        (src / f"k{i}.jpg").write_bytes(data)
    for i, data in enumerate(unknown):
        (src / f"u{i}.{'png' if i == 1 else 'jpg'}").write_bytes(data)
    import zipfile

    with zipfile.ZipFile(src / "bundle.zip", "w") as z:
        z.writestr("inner/u3.jpg", factory.save(factory.picture(43), "JPEG"))
    return src, known + unknown


def _clear_pictures(folders: list[Path], pictures: list[bytes]) -> list[str]:
    """Every file under `folders` holding a JPEG/PNG signature or 64 bytes of one of `pictures`."""
    probes = [p[len(p) // 2:len(p) // 2 + 64] for p in pictures] + [p[:256] for p in pictures]
    found = []
    for folder in folders:
        for root, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                data = Path(path).read_bytes()
                for what, magic in MAGIC.items():
                    if magic.search(data):
                        found.append(f"{path}: {what} signature")
                if any(p in data for p in probes):
                    found.append(f"{path}: a picture's bytes")
    return found


def _modes(folder: Path) -> dict[str, int]:
    out = {str(folder): stat.S_IMODE(folder.stat().st_mode)}
    for root, dirs, files in os.walk(folder):
        for n in dirs + files:
            p = os.path.join(root, n)
            out[p] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def _assert_private(folder: Path) -> None:
    for p, mode in _modes(folder).items():
        want = 0o700 if os.path.isdir(p) else 0o600
        assert mode == want, f"{p} is {oct(mode)}, not {oct(want)}"


def test_scan_writes_no_picture_by_default(store, evidence, tmp_path, tmpdir_env):
    src, pictures = evidence
    out = tmp_path / "report"
    out.mkdir(mode=0o755)
    (out / "old-notes.txt").write_text("left by someone")
    os.chmod(out / "old-notes.txt", 0o644)
    summary = run_scan(store, store.settings, [str(src)], str(out), workers=1)
    assert summary["counts"]["by_class"]["exact"] == 2 and summary["counts"]["by_class"]["unknown"] == 4
    assert not (out / "thumbs").exists()
    page = (out / "report.html").read_text()
    assert "<img" not in page and "data:image" not in page and "Reveal" not in page
    assert _clear_pictures([out, store.settings.data_dir, tmpdir_env], pictures) == []
    _assert_private(out)
    _assert_private(store.settings.data_dir)


def test_thumbnails_without_a_media_key_are_refused(store, evidence, tmp_path, monkeypatch):
    monkeypatch.delenv("VIGIE_MEDIA_KEY", raising=False)
    src, _ = evidence
    out = tmp_path / "report"
    with pytest.raises(VigieError) as e:
        run_scan(store, store.settings, [str(src)], str(out), workers=1, thumbnails=True)
    assert e.value.code == "no_media_key"
    assert not (out / "thumbs").exists() and not (out / "report.html").exists()


def test_thumbnails_are_blurred_grey_and_sealed(store, evidence, tmp_path, tmpdir_env, media_key, monkeypatch):
    src, pictures = evidence
    out = tmp_path / "report"
    run_scan(store, store.settings, [str(src)], str(out), workers=1, thumbnails=True)
    import csv

    with open(out / "files.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    unknown = {r["sha256"] for r in rows if r["class"] == "unknown"}
    known = {r["sha256"] for r in rows if r["class"] == "exact"}
    names = {p.name for p in (out / "thumbs").iterdir()}
    assert names == {f"{s}.bin" for s in unknown}  # unknown only, never known material
    assert not {n.removesuffix(".bin") for n in names} & known
    # sealed: no picture signature, no picture's bytes, anywhere on disk
    assert _clear_pictures([out, store.settings.data_dir, tmpdir_env], pictures) == []
    _assert_private(out)
    page = (out / "report.html").read_text()
    assert "<img" not in page and "data:image" not in page and f"{len(unknown)} blurred grey miniature" in page
    # opened with the key: small, greyscale, and blurred (far less detail than the same picture sharp)
    u0 = next(r["sha256"] for r in rows if r["location"].endswith("u0.jpg"))
    mini = Image.open(io.BytesIO(thumbs.read(str(out), store.settings, u0)))
    assert mini.mode == "L" and max(mini.size) <= thumbs.SIDE
    sharp = Image.open(io.BytesIO(pictures[2])).convert("L").resize(mini.size)

    def detail(img) -> float:
        a = np.asarray(img, dtype=float)
        return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())

    assert detail(mini) < detail(sharp) / 3
    # another key does not open it
    import base64

    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(VigieError) as e:
        thumbs.read(str(out), store.settings, u0)
    assert e.value.code == "media_key_mismatch"


def test_cli_scan_thumbnails_needs_the_key(tmp_path, monkeypatch):
    from test_cli_hash import lines, vigie

    monkeypatch.delenv("VIGIE_MEDIA_KEY", raising=False)
    src = tmp_path / "ev"
    src.mkdir()
    (src / "a.png").write_bytes(factory.save(factory.picture(5), "PNG"))
    dd = ["--data-dir", str(tmp_path / "data")]
    r = vigie("scan", str(src), "--out", str(tmp_path / "out"), "--thumbnails", "--json", "--workers", "1", *dd)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert lines(r.stdout)[0]["error"]["code"] == "no_media_key"
    r = vigie("scan", str(src), "--out", str(tmp_path / "out"), "--json", "--workers", "1", *dd)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "out" / "thumbs").exists()
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "vigie.db").stat().st_mode) == 0o600
