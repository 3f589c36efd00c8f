"""`vigie hash` as a user runs it: JSON lines, exit codes, no tracebacks, awkward files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import factory


def vigie(*args, env=None, cwd=None):
    e = {**os.environ, "VIGIE_PDQ_ENGINE": os.environ.get("VIGIE_PDQ_ENGINE", "numba"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "vigie", *args], capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=120)


def lines(stdout: str) -> list[dict]:
    return [json.loads(x) for x in stdout.splitlines() if x.strip()]


def test_hash_json_fields(tmp_path):
    p = factory.write(tmp_path, "a.jpg", factory.save(factory.picture(1), "JPEG"))
    r = vigie("hash", "--json", str(p))
    assert r.returncode == 0, r.stderr
    [rec] = lines(r.stdout)
    assert set(rec) == {"path", "media_type", "size", "md5", "sha1", "sha256", "pdq", "pdq_quality"}
    assert rec["media_type"] == "image/jpeg" and len(rec["pdq"]) == 64


def test_awkward_batch_finishes_with_codes(tmp_path):
    good = factory.save(factory.picture(2), "PNG")
    files = {
        "empty.jpg": b"",
        "text.jpg": b"just some text, named like a picture",
        "truncated.jpg": factory.save(factory.picture(3), "JPEG")[:500],
        "crc.png": factory.corrupt_png_crc(good),
        "bomb.png": factory.png_header_only(50000, 50000),
        "screen.gif": factory.gif_huge_screen(),
        "one.png": factory.save(factory.picture(4, 1, 1), "PNG"),
        "anim.gif": factory.animated_gif(),
        "cmyk.jpg": factory.save(factory.picture(5).convert("CMYK"), "JPEG"),
        "sixteen.png": factory.png_16bit_grey(__import__("numpy").asarray(factory.picture(6).convert("L"))),
        "spaces and ünïcode ☃.png": good,
        "-leading-dash.png": good,
    }
    for name, data in files.items():
        factory.write(tmp_path, name, data)
    os.mkfifo(tmp_path / "pipe")
    r = vigie("hash", "--json", "--recursive", "--workers", "2", str(tmp_path))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    got = {os.path.basename(x["path"]): x for x in lines(r.stdout)}
    assert set(got) == set(files) | {"pipe"}
    codes = {k: (v["error"]["code"] if "error" in v else "ok") for k, v in got.items()}
    assert codes == {"empty.jpg": "empty", "text.jpg": "not_media", "truncated.jpg": "truncated",
                     "crc.png": "corrupt", "bomb.png": "too_large", "screen.gif": "too_large", "one.png": "ok",
                     "anim.gif": "ok", "cmyk.jpg": "ok", "sixteen.png": "ok", "spaces and ünïcode ☃.png": "ok",
                     "-leading-dash.png": "ok", "pipe": "special_file"}
    for v in got.values():
        if "error" in v:
            assert v["error"]["message"]
    assert got["text.jpg"]["md5"]  # digests survive a decode failure


def test_all_good_exits_zero_and_table(tmp_path):
    factory.write(tmp_path, "a.png", factory.save(factory.picture(1), "PNG"))
    r = vigie("hash", "-r", str(tmp_path))
    assert r.returncode == 0 and "a.png" in r.stdout and "image/png" in r.stdout


def test_bad_usage_exits_two_without_traceback():
    r = vigie("hash", "--no-such-flag", "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = vigie("hash", "--workers", "-3", "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_bad_setting_is_usage_error(tmp_path):
    r = vigie("hash", str(tmp_path), env={"VIGIE_PDQ_ENGINE": "nope"})
    assert r.returncode == 2 and "pdq_engine" in r.stderr and "Traceback" not in r.stderr


def test_demo_images_then_hash(tmp_path):
    r = vigie("demo", "images", str(tmp_path / "d"), "--count", "6", "--json")
    assert r.returncode == 0 and len(lines(r.stdout)) == 6
    r = vigie("hash", "--json", "-r", str(tmp_path / "d"))
    recs = lines(r.stdout)
    assert r.returncode == 0 and len(recs) == 6 and len({x["pdq"] for x in recs}) == 6
