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


def test_doctor_on_intake_settings(tmp_path):
    dd = ["--data-dir", str(tmp_path / "d")]
    r = vigie("doctor", "--json", *dd)
    checks = {c["check"]: c for c in lines(r.stdout)}
    assert checks["smtp"]["status"] == "warn" and checks["crawler"]["status"] == "ok"
    r = vigie("doctor", "--json", *dd, env={"VIGIE_SMTP_HOST": "mail.example", "VIGIE_SMTP_PORT": "587",
                                             "VIGIE_CRAWL_ALLOWED_NETWORKS": '["10.0.0.0/8"]',
                                             "VIGIE_ASN_TABLE": str(tmp_path / "missing.tsv")})
    checks = {c["check"]: c for c in lines(r.stdout)}
    assert checks["smtp"]["status"] == "ok" and "mail.example:587" in checks["smtp"]["message"]
    assert checks["crawler"]["status"] == "warn" and "10.0.0.0/8" in checks["crawler"]["message"]
    assert checks["asn table"]["status"] == "fail" and r.returncode == 1
    r = vigie("doctor", "--json", *dd, env={"VIGIE_CRAWL_ALLOWED_NETWORKS": '["not a network"]'})
    assert {c["check"]: c["status"] for c in lines(r.stdout)}["crawler"] == "fail"


def test_doctor_warns_when_the_bank_revision_triggers_are_missing(tmp_path):
    import sqlite3

    dd = ["--data-dir", str(tmp_path / "d")]
    assert vigie("bank", "create", "b", *dd).returncode == 0
    good = {"VIGIE_MEDIA_KEY": base64.b64encode(os.urandom(32)).decode()}
    checks = {c["check"]: c for c in lines(vigie("doctor", "--json", *dd, env=good).stdout)}
    assert "bank revisions" not in checks
    db = sqlite3.connect(tmp_path / "d" / "vigie.db")
    db.execute("DROP TRIGGER vigie_entries_revision_update")
    db.commit()
    db.close()
    r = vigie("doctor", "--json", *dd, env=good)
    checks = {c["check"]: c for c in lines(r.stdout)}
    assert r.returncode == 0 and checks["bank revisions"]["status"] == "warn"
    assert "known-good set" in checks["bank revisions"]["message"]
