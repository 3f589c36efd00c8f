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


def test_doctor_names_the_scans_stopped_before_the_end(store, tmp_path):
    """A killed scan is left `running`; doctor tells it from one running now by the scan's lock, on both stores."""
    from sqlalchemy import update
    from test_evidence_formats import pic

    from vigie import doctor
    from vigie.ingest.scan import run_scan, scan_key
    from vigie.store.models import Scan

    def scans():
        return {c.name: c for c in doctor.run(store.settings)}.get("scans")

    assert scans().status == "ok" and scans().message == "no unfinished scan"
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(6):
        (ev / f"p{i}.jpg").write_bytes(pic(800 + i))
    out = str(tmp_path / "out")
    run_scan(store, store.settings, [str(ev)], out, workers=1, case="c-17", stop_after=2)
    got = scans()
    assert got.status == "warn" and "scan 1 (interrupted; case c-17;" in got.message and str(ev) in got.message
    with store.session() as s:  # as a SIGKILLed run leaves it
        s.execute(update(Scan).values(status="running"))
    assert "scan 1 (killed or crashed; case c-17;" in scans().message
    with store.exclusive(f"scan-{scan_key([str(ev)], 'c-17')}") as mine:  # as a run going on holds it
        assert mine
        assert (scans().status, scans().message) == ("ok", "1 scan(s) running now")
    run_scan(store, store.settings, [str(ev)], out, workers=1, case="c-17")
    assert scans().message == "no unfinished scan"
