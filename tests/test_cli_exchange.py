"""`vigie bank export` and `import` between the field's formats, and the one JSON error shape of the shell.

Run in process through `vigie.cli.main` (the same entry point as the `vigie` script) so that many
commands stay cheap; every hash is a digest of a harmless string or seeded random hex.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random

import pytest
from test_formats_iped import iped_load

from vigie.cli import main
from vigie.signals.vpdq import parse_features


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def hex64(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


VPDQ = ";".join(f"{n},{q},{hex64(n)},{n / 30:.3f}" for n, q in ((0, 100), (30, 90), (60, 80)))


@pytest.fixture
def vigie(tmp_path, capsys, monkeypatch):
    """Run `vigie ARGS --data-dir ...` in process: (exit status, stdout, stderr)."""
    monkeypatch.setenv("VIGIE_PDQ_ENGINE", "numba")
    data = str(tmp_path / "data")

    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--data-dir", data])
        got = capsys.readouterr()
        return exc.value.code, got.out, got.err

    return run


def objects(stdout: str) -> list[dict]:
    return [json.loads(x) for x in stdout.splitlines() if x.strip()]


def one_error(rc_out_err, rc: int, code: str) -> dict:
    status, out, err = rc_out_err
    assert status == rc and "Traceback" not in err, err
    got = objects(out)
    assert len(got) == 1 and got[0]["error"]["code"] == code, out
    return got[0]["error"]


def test_json_errors_are_one_object_with_a_code_on_stdout(vigie, tmp_path):
    f = tmp_path / "l.txt"
    f.write_text(md5("a") + "\n")
    one_error(vigie("bank", "import", "nosuch", str(f), "--json"), 1, "bank_not_found")
    one_error(vigie("bank", "import", "b", str(tmp_path / "missing.csv"), "--json"), 2, "bad_usage")
    one_error(vigie("bank", "create", "b", "--category", "uk:Z", "--json"), 2, "bad_category")
    assert vigie("bank", "create", "b", "--json")[0] == 0
    one_error(vigie("bank", "create", "b", "--json"), 1, "bank_exists")
    one_error(vigie("bank", "export", "b", str(tmp_path / "o.json"), "--format", "nope", "--json"), 2, "bad_usage")
    one_error(vigie("bank", "export", "b", str(tmp_path / "o.json"), "-f", "vics", "--shape", "tree", "--json"),
              2, "bad_usage")
    one_error(vigie("bank", "remove", "b", md5("zz"), "--json"), 1, "entry_not_found")
    one_error(vigie("bank", "no-such-command", "--json"), 2, "bad_usage")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "l.txt"]  # no file, no .part left
    # without --json the same error is one line on stderr and nothing on stdout
    status, out, err = vigie("bank", "create", "b")
    assert status == 1 and out == "" and "bank_exists" in err


def test_match_says_plainly_what_an_unreadable_argument_is(vigie):
    err = one_error(vigie("match", "zzzz", "--json"), 1, "invalid_hash")
    assert "not a file here, nor a hash" in err["message"] and "unknown" not in err["message"]
    status, _, stderr = vigie("match", "zzzz")
    assert status == 1 and "not a file here" in stderr


def _csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["signal", "value", "media_key", "category_scheme", "category"])
        w.writerows(rows)


def test_a_bank_with_videos_exports_to_vics_and_te_and_reads_back(vigie, tmp_path):
    src = tmp_path / "in.csv"
    _csv(src, [["md5", md5("video"), "v1", "vics_us", "1"], ["vpdq", VPDQ, "v1", "vics_us", "1"],
               ["md5", md5("pic"), "", "", ""],
               ["sha1", sha1("sha1 only"), "", "", ""], ["pdq", hex64(99), "", "", ""]])
    assert vigie("bank", "create", "b", "--category", "vics_us:2")[0] == 0
    assert vigie("bank", "import", "b", str(src))[0] == 0

    out = tmp_path / "b.json"
    status, stdout, stderr = vigie("bank", "export", "b", str(out), "-f", "vics", "--json")
    assert status == 0, stderr
    rep = objects(stdout)[0]
    assert rep["entries"] == 3 and rep["left_out"] == 2
    assert rep["left_out_by_reason"]["no_md5"]["count"] == 2
    assert "left out" in stderr and sha1("sha1 only") in stderr  # counted and named on stderr too
    assert not (tmp_path / "b.json.part").exists()
    doc = json.loads(out.read_text())
    video = next(m for m in doc["value"] if m["MD5"] == md5("video").upper())
    assert video["AlternativeHashes"] == [{"MD5": md5("video").upper(), "HashName": "vPDQ", "HashValue": VPDQ}]
    assert [m["Category"] for m in doc["value"]] == [1, 2]  # the bank's default on the picture
    assert len(iped_load(out.read_bytes())) == 2

    assert vigie("bank", "create", "copy")[0] == 0
    assert vigie("bank", "import", "copy", str(out))[0] == 0
    back = tmp_path / "back.csv"
    assert vigie("bank", "export", "copy", str(back), "-f", "csv")[0] == 0
    with open(back, newline="") as f:
        got = {(r["signal"], r["value"]) for r in csv.DictReader(f)}
    assert got == {("md5", md5("video")), ("vpdq", VPDQ), ("md5", md5("pic"))}

    te = tmp_path / "b.te"
    status, stdout, stderr = vigie("bank", "export", "b", str(te), "-f", "te", "--json")
    assert status == 0, stderr
    assert any("'sha1'" in w for w in objects(stdout)[0]["warnings"]) and "python-threatexchange" in stderr
    line = next(x for x in te.read_text().splitlines() if x.startswith("vpdq "))
    # python-threatexchange's own signal string: a JSON list of "hex,quality,timestamp", its {:.3} timestamps
    assert line.partition(" ")[2] == json.dumps([f"{h},{q},{float(t):.3}" for _, q, h, t in
                                                 (x.split(",") for x in VPDQ.split(";"))])
    assert vigie("bank", "create", "te")[0] == 0
    assert vigie("bank", "import", "te", str(te), "-f", "te")[0] == 0
    vpdq = tmp_path / "te.csv"
    vigie("bank", "export", "te", str(vpdq), "-f", "csv", "--signal", "vpdq")
    with open(vpdq, newline="") as f:
        value = next(r["value"] for r in csv.DictReader(f) if r["signal"] == "vpdq")
    frames = [(x.pdq_hex, x.quality, x.timestamp) for x in parse_features(value)]
    assert frames == [(x.pdq_hex, x.quality, x.timestamp) for x in parse_features(VPDQ)]


def test_export_options_version_profile_shape(vigie, tmp_path):
    src = tmp_path / "in.csv"
    _csv(src, [["md5", md5("a"), "", "uk", "A"], ["md5", md5("b"), "", "", ""]])
    vigie("bank", "create", "b")
    vigie("bank", "import", "b", str(src))
    cases = tmp_path / "cases.json"
    assert vigie("bank", "export", "b", str(cases), "-f", "vics", "--vics-version", "1.3", "--shape", "cases")[0] == 0
    doc = json.loads(cases.read_text())
    assert list(doc)[:2] == ["odata.metadata", "value"]
    assert doc["odata.metadata"] == "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Cases"
    assert [m["MD5"] for m in doc["value"][0]["Media"]] == [md5("a").upper(), md5("b").upper()]
    uk = tmp_path / "uk.json"
    assert vigie("bank", "export", "b", str(uk), "-f", "vics", "--profile", "UK")[0] == 0
    doc = json.loads(uk.read_text())
    assert doc["@odata.context"].endswith("/2.0.xml/UK/$metadata#Media") and doc["value"][0]["Category"] == "A"
    one_error(vigie("bank", "export", "b", str(tmp_path / "x.json"), "-f", "vics", "--vics-version", "1.3",
                    "--profile", "UK", "--json"), 2, "bad_usage")
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.json.part").exists()
    te = tmp_path / "b.csv"
    assert vigie("bank", "export", "b", str(te), "-f", "te", "--shape", "csv")[0] == 0
    assert te.read_text().splitlines()[0] == "collab,signal_type,signal_str,category,tags"


def test_flat_pictures_do_not_match_by_pdq_unless_a_bank_lowers_its_floor(vigie, tmp_path):
    from PIL import Image

    white, grey = tmp_path / "white.png", tmp_path / "white-larger.png"  # two files, one blank PDQ (quality 0)
    Image.new("RGB", (96, 96), (255, 255, 255)).save(white)
    Image.new("RGB", (128, 128), (255, 255, 255)).save(grey)
    assert vigie("bank", "create", "flat")[0] == 0
    assert vigie("bank", "add", "flat", str(white))[0] == 0
    status, out, _ = vigie("match", "--json", str(grey))
    res = objects(out)[0]
    assert status == 0 and res["matches"] == []  # HMA's floor, 50: a blank picture matches no blank picture
    status, out, _ = vigie("bank", "set", "flat", "--quality-floor", "0", "--json")
    assert objects(out)[0]["pdq_quality_floor"] == 0
    res = objects(vigie("match", "--json", str(grey))[1])[0]
    assert [(m["signal"], m["distance"]) for m in res["matches"]] == [("pdq", 0)]
    vigie("bank", "set", "flat", "--quality-floor", "-1")
    assert objects(vigie("match", "--json", str(grey))[1])[0]["matches"] == []


def test_an_iped_hash_database_csv_imports_and_exports_unchanged(vigie, tmp_path):
    from test_formats_iped_csv import FIXTURE, iped_csv_load

    src = tmp_path / "iped.csv"
    src.write_bytes(FIXTURE)
    vigie("bank", "create", "i")
    status, out, err = vigie("bank", "import", "i", str(src), "--json")
    assert status == 0 and objects(out)[0]["format"] == "iped", err
    back = tmp_path / "back.csv"
    assert vigie("bank", "export", "i", str(back), "-f", "iped")[0] == 0
    assert back.read_bytes() == FIXTURE and len(iped_csv_load(back.read_bytes())) == 3


def test_a_vics_file_goes_through_a_bank_and_out_unchanged(vigie, tmp_path):
    from test_formats_iped import IPED_FIXTURE

    src = tmp_path / "set.json"
    src.write_bytes(IPED_FIXTURE)
    vigie("bank", "create", "v", "--category", "vics_us:2")
    assert vigie("bank", "import", "v", str(src))[0] == 0
    out = tmp_path / "out.json"
    status, _, err = vigie("bank", "export", "v", str(out), "-f", "vics")
    assert status == 0 and "left out" not in err
    assert json.loads(out.read_text()) == json.loads(IPED_FIXTURE)  # no date invented, "true", null, [] kept
