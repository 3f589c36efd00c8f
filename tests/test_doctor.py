"""`vigie doctor` says what is wrong in plain words, and fails only on real faults."""

from __future__ import annotations

import base64
import os

from test_cli_hash import lines, vigie


def test_doctor_reports_each_check(tmp_path):
    dd = ["--data-dir", str(tmp_path / "d")]
    assert vigie("bank", "create", "b", *dd).returncode == 0  # creates and migrates the store
    good = {"VIGIE_MEDIA_KEY": base64.b64encode(os.urandom(32)).decode()}
    r = vigie("doctor", "--json", *dd, env=good)
    checks = {c["check"]: c for c in lines(r.stdout)}
    assert r.returncode == 0, r.stdout
    assert checks["database"]["status"] == "ok" and checks["migrations"]["status"] == "ok"
    assert checks["media key"]["status"] == "ok"
    r = vigie("doctor", "--json", *dd, env={"VIGIE_MEDIA_KEY": "not-a-key"})
    assert r.returncode == 1
    assert {c["check"]: c["status"] for c in lines(r.stdout)}["media key"] == "fail"
    r = vigie("doctor", "--json", *dd, env={**good, "VIGIE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"})
    bad = {c["check"]: c for c in lines(r.stdout)}
    assert r.returncode == 1 and bad["database"]["status"] == "fail" and "cannot connect" in bad["database"]["message"]
