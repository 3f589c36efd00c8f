"""Takedown notices over a real SMTP server on loopback, the provider registry, the police export, web and CLI.

Every sighting here is made up (benign example.* hosts, hashes of nothing); no message leaves 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from vigie import audit
from vigie.accounts import aware
from vigie.actions import escalation, takedown
from vigie.errors import VigieError
from vigie.store.audit_models import AuditRecord
from vigie.store.intake_models import (
    Notice,
    NoticeItem,
    Report,
    ReportedUrl,
    ReportUrl,
    Sighting,
    SightingPage,
)

from servers import free_port, mail_server

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def smtp():
    with mail_server() as (inbox, port):
        yield inbox, port


def mail_settings(store, port: int | None, **kw):
    upd = {"smtp_host": "127.0.0.1" if port else None, "smtp_port": port or 25, "smtp_timeout": 5,
           "hotline_name": "Test Hotline", "notice_from": "notices@hotline.example", **kw}
    return store.settings.model_copy(update=upd)


def add_sighting(store, media_url: str, *, host: str | None = None, ip: str | None = None, outcome: str = "known",
                 state: str = "online", url_id: int | None = None, found_at: datetime | None = None, **kw) -> int:
    host = host or media_url.split("/")[2]
    digest = hashlib.sha256(media_url.encode()).hexdigest()
    with store.session() as s:
        fields = {"page_url": f"http://{host}/gallery", "sha256": digest, "md5": digest[:32], "pdq": "f" * 64,
                  "media_type": "image/jpeg", "category": "A1", "http_status": 200, **kw}
        x = Sighting(media_url=media_url, media_url_key=digest, host=host, ip=ip, outcome=outcome, state=state,
                     url_id=url_id, found_at=found_at or T0 - timedelta(hours=2), **fields)
        s.add(x)
        s.flush()
        return x.id


def get(store, sid: int) -> Sighting:
    with store.sessions() as s:
        return s.get(Sighting, sid)


def two_providers(store):
    takedown.add_provider(store, "Alpha Hosting", "abuse@alpha.example", domains=["alpha.example"],
                          networks=["192.0.2.0/24"], country="fr", by="tester")
    takedown.add_provider(store, "Beta Cloud", "abuse@beta.example", domains=["beta.example"],
                          networks=["198.51.100.0/24"], by="tester")


# ---------------------------------------------------------------------------------------------- registry


def test_provider_matching_by_domain_suffix_then_network(store):
    two_providers(store)
    takedown.add_provider(store, "Alpha CDN", "cdn@alpha.example", domains=["cdn.alpha.example"],
                          networks=["192.0.2.128/25"], by="tester")

    def name(host, ip=None):
        p = takedown.find_provider(store, host, ip)
        return p.name if p else None

    assert name("alpha.example") == "Alpha Hosting"
    assert name("www.alpha.example") == "Alpha Hosting"
    assert name("img.cdn.alpha.example") == "Alpha CDN"  # the longest suffix wins
    assert name("badalpha.example") is None
    assert name("ALPHA.EXAMPLE.:8080") == "Alpha Hosting"
    assert name("unknown.example", "192.0.2.7") == "Alpha Hosting"
    assert name("unknown.example", "192.0.2.200") == "Alpha CDN"  # the most specific network wins
    assert name("198.51.100.9") == "Beta Cloud"  # a bare IP host
    assert name("beta.example", "192.0.2.7") == "Beta Cloud"  # the domain beats the network
    assert name("unknown.example", "203.0.113.1") is None
    assert name("unknown.example", "not an ip") is None

    takedown.update_provider(store, "Alpha CDN", networks=["2001:db8::/32"], by="tester")
    assert name("unknown.example", "192.0.2.200") == "Alpha Hosting"
    assert name("unknown.example", "2001:db8::1") == "Alpha CDN"
    takedown.remove_provider(store, "Alpha CDN", by="tester")
    assert name("img.cdn.alpha.example") == "Alpha Hosting"  # an inactive provider is never matched

    listed = {p["name"]: p for p in takedown.list_providers(store)}
    assert listed["Alpha Hosting"]["country"] == "FR" and listed["Alpha CDN"]["active"] is False
    with store.sessions() as s:
        actions = [r.action for r in s.scalars(select(AuditRecord).where(AuditRecord.object_type == "provider"))]
    assert actions.count("provider.add") == 3 and "provider.update" in actions and "provider.remove" in actions


@pytest.mark.parametrize("kw, code", [
    ({"contact_email": "not-an-address"}, "bad_email"),
    ({"contact_email": "abuse@example.com\r\nBcc: x@example.com"}, "bad_email"),
    ({"networks": ["192.0.2.0/33"]}, "bad_network"),
    ({"networks": ["example.com"]}, "bad_network"),
    ({"country": "FRA"}, "bad_country"),
    ({"country": "1X"}, "bad_country"),
    ({"domains": ["bad domain.example"]}, "bad_domain"),
    ({"domains": ["-x.example"]}, "bad_domain"),
    ({"asns": ["ASX"]}, "bad_asn"),
    ({"language": "english!"}, "bad_language"),
    ({"name": ""}, "bad_name"),
])
def test_invalid_provider_input_is_refused_with_a_code(store, kw, code):
    args = {"name": "Gamma", "contact_email": "abuse@gamma.example", **kw}
    with pytest.raises(VigieError) as e:
        takedown.add_provider(store, args.pop("name"), args.pop("contact_email"), by="tester", **args)
    assert e.value.code == code
    assert takedown.list_providers(store) == []


def test_provider_conflicts_and_missing(store):
    two_providers(store)
    with pytest.raises(VigieError) as e:
        takedown.add_provider(store, "Alpha Hosting", "x@alpha.example", by="tester")
    assert e.value.code == "provider_exists" and e.value.http_status == 409
    with pytest.raises(VigieError) as e:
        takedown.remove_provider(store, "Nobody", by="tester")
    assert e.value.code == "provider_not_found"
    with pytest.raises(VigieError) as e:
        takedown.update_provider(store, "Alpha Hosting", name="Renamed", by="tester")
    assert e.value.code == "bad_field"
    p = takedown.update_provider(store, "Alpha Hosting", asns=["AS64500", 64501], language="fr-BE", by="tester")
    assert p["asns"] == [64500, 64501] and p["language"] == "fr-BE"


# ---------------------------------------------------------------------------------------------- sending


def test_notices_arrive_over_smtp_and_are_sent_again_until_removed(store, smtp):
    inbox, port = smtp
    settings = mail_settings(store, port)
    two_providers(store)
    a1 = add_sighting(store, "http://img.alpha.example/a/1.jpg")
    a2 = add_sighting(store, "http://files.example.net/a/2.jpg", ip="192.0.2.44")  # matched by its network
    b1 = add_sighting(store, "http://beta.example/b/1.jpg")
    gone = add_sighting(store, "http://alpha.example/gone.jpg", state="removed", removed_at=T0 - timedelta(hours=1))
    unknown = add_sighting(store, "http://alpha.example/unknown.jpg", outcome="unknown")
    orphan = add_sighting(store, "http://nobody.example/x.jpg")

    assert [x.id for x in takedown.due_sightings(store, T0, settings)] == [a1, a2, b1, orphan]
    res = takedown.send_notices(store, settings, T0, by="tester")
    assert (res["sent"], res["failed"], res["no_provider"], res["sightings"]) == (2, 0, 1, 3)

    mails = {to[0]: m for to, m in inbox.parsed()}
    assert set(mails) == {"abuse@alpha.example", "abuse@beta.example"}
    alpha = mails["abuse@alpha.example"]
    assert alpha["To"] == "abuse@alpha.example" and alpha["From"] == "notices@hotline.example"
    ref = next(n["reference"] for n in res["notices"] if n["provider"] == "Alpha Hosting")
    assert ref in alpha["Subject"]
    text = alpha.get_body(("plain",)).get_content()
    for needle in ("http://img.alpha.example/a/1.jpg", "http://files.example.net/a/2.jpg", ref, "Test Hotline",
                   "No image or video is attached", "every 24 hours", hashlib.sha256(
                       b"http://img.alpha.example/a/1.jpg").hexdigest(), "A1"):
        assert needle in text, needle
    assert "gone.jpg" not in text and "unknown.jpg" not in text
    [att] = list(alpha.iter_attachments())
    assert att.get_content_type() == "application/json"
    doc = json.loads(att.get_content())
    assert doc["schema"] == "vigie.notice/1" and doc["reference"] == ref and doc["kind"] == "first"
    assert doc["hotline"] == "Test Hotline" and doc["provider"]["name"] == "Alpha Hosting"
    assert [i["media_url"] for i in doc["items"]] == ["http://img.alpha.example/a/1.jpg",
                                                      "http://files.example.net/a/2.jpg"]
    assert {"media_url", "page_url", "first_seen", "sha256", "md5", "pdq", "category"} <= set(doc["items"][0])
    assert not [p for p in alpha.walk() if p.get_content_maintype() in ("image", "video")]

    with store.sessions() as s:
        notices = {n.reference: n for n in s.scalars(select(Notice))}
        items = set(s.execute(select(NoticeItem.notice_id, NoticeItem.sighting_id)).all())
    n = notices[ref]
    assert n.status == "sent" and n.kind == "first" and n.recipient == "abuse@alpha.example" and n.message_id
    assert n.body_json["reference"] == ref and ref in n.body_text
    assert {(n.id, a1), (n.id, a2)} <= items
    for sid in (a1, a2, b1):
        x = get(store, sid)
        assert aware(x.first_notice_at) == T0 and aware(x.last_notice_at) == T0 and x.notices == 1
        assert x.provider_id is not None
    for sid in (gone, unknown, orphan):
        assert get(store, sid).notices == 0

    # nothing is due again before the re-notice time; the removed one never is
    assert takedown.send_notices(store, settings, T0 + timedelta(hours=23), by="tester")["sent"] == 0
    assert len(inbox.messages) == 2
    with store.session() as s:
        s.get(Sighting, b1).state = "removed"
    res = takedown.send_notices(store, settings, T0 + timedelta(hours=24), by="tester")
    assert (res["sent"], res["sightings"]) == (1, 2)
    [(to, again)] = inbox.parsed()[2:]
    assert to == ["abuse@alpha.example"] and "Reminder" in again["Subject"]
    assert res["notices"][0]["kind"] == "renotice"
    x = get(store, a1)
    assert x.notices == 2 and aware(x.first_notice_at) == T0 and aware(x.last_notice_at) == T0 + timedelta(hours=24)
    with store.sessions() as s:
        sent = [r for r in s.scalars(select(AuditRecord).where(AuditRecord.action == "takedown.notice_sent"))]
    assert len(sent) == 3 and audit.verify(store).ok


def test_a_refusing_provider_never_stops_the_others(store, smtp):
    inbox, port = smtp
    inbox.refuse.add("abuse@alpha.example")
    settings = mail_settings(store, port)
    two_providers(store)
    a = add_sighting(store, "http://alpha.example/1.jpg")
    b = add_sighting(store, "http://beta.example/1.jpg")
    res = takedown.send_notices(store, settings, T0, by="tester")
    assert (res["sent"], res["failed"]) == (1, 1)
    failed = next(n for n in res["notices"] if n["status"] == "failed")
    assert failed["provider"] == "Alpha Hosting" and failed["error_code"] == "smtp_failed"
    assert [to for to, _ in inbox.messages] == [["abuse@beta.example"]]
    assert get(store, a).notices == 0 and get(store, a).last_notice_at is None and get(store, b).notices == 1
    with store.sessions() as s:
        row = s.scalar(select(Notice).where(Notice.status == "failed"))
    assert row.error.startswith("smtp_failed") and row.sent_at is None
    # a failed send is not a notice: the sighting is still due, and goes out once the provider accepts (the next
    # try waits RETRY_AFTER_FAILURE)
    inbox.refuse.clear()
    res = takedown.send_notices(store, settings, T0 + timedelta(minutes=20), by="tester")
    assert res["sent"] == 1 and res["notices"][0]["kind"] == "first" and get(store, a).notices == 1


def test_smtp_down_records_failed_notices(store):
    settings = mail_settings(store, free_port())  # nothing listens there
    two_providers(store)
    add_sighting(store, "http://alpha.example/1.jpg")
    add_sighting(store, "http://beta.example/1.jpg")
    res = takedown.send_notices(store, settings, T0, by="tester")
    assert (res["sent"], res["failed"]) == (0, 2)
    assert {n["error_code"] for n in res["notices"]} == {"smtp_failed"}
    with store.sessions() as s:
        assert {n.status for n in s.scalars(select(Notice))} == {"failed"}
        assert s.scalar(select(AuditRecord).where(AuditRecord.action == "takedown.notice_failed")) is not None


def test_after_a_failure_a_provider_waits_before_the_next_try(store):
    settings = mail_settings(store, None)
    two_providers(store)
    add_sighting(store, "http://alpha.example/1.jpg")
    assert takedown.send_notices(store, settings, T0, by="tester")["failed"] == 1
    again = takedown.send_notices(store, settings, T0 + timedelta(minutes=1), by="tester")
    assert (again["failed"], again["deferred"], again["notices"]) == (0, 1, [])
    later = takedown.send_notices(store, settings, T0 + timedelta(minutes=16), by="tester")
    assert later["failed"] == 1
    with store.sessions() as s:  # tried again in its own row, with the same reference: no pile of failures
        (n,) = s.scalars(select(Notice)).all()
        assert n.attempts == 2 and n.status == "failed"
    again = takedown.send_notices(store, settings, T0 + timedelta(minutes=17), by="tester")
    assert again["deferred"] == 1  # the wait counts from the latest try


def test_smtp_not_configured(store):
    settings = mail_settings(store, None)
    two_providers(store)
    sid = add_sighting(store, "http://alpha.example/1.jpg")
    res = takedown.send_notices(store, settings, T0, by="tester")
    assert res["failed"] == 1 and res["notices"][0]["error_code"] == "smtp_not_configured"
    with store.sessions() as s:
        n = s.scalar(select(Notice))
    assert n.status == "failed" and n.error.startswith("smtp_not_configured") and n.body_text
    assert get(store, sid).last_notice_at is None
    assert [x.id for x in takedown.due_sightings(store, T0, settings)] == [sid]


def two_due(store):
    """Two providers with one due sighting each; the settings of a mailer that tests replace."""
    two_providers(store)
    add_sighting(store, "http://alpha.example/1.jpg")
    add_sighting(store, "http://beta.example/1.jpg")
    return mail_settings(store, 2525)


def test_one_mailer_failure_is_isolated(store):
    settings = two_due(store)
    got = []

    def mailer(msg, _settings):
        if msg["To"] == "abuse@alpha.example":
            raise RuntimeError("boom")
        got.append(msg["To"])

    res = takedown.send_notices(store, settings, T0, by="tester", mailer=mailer)
    assert (res["sent"], res["failed"]) == (1, 1) and got == ["abuse@beta.example"]
    assert next(n for n in res["notices"] if n["status"] == "failed")["error"].startswith("smtp_failed")


def test_render_notice_is_plain_and_complete(store):
    two_providers(store)
    sid = add_sighting(store, "http://alpha.example/1.jpg")
    p = takedown.find_provider(store, "alpha.example")
    subject, text, doc = takedown.render_notice(p, [get(store, sid)], settings=mail_settings(store, None),
                                                kind="renotice", reference="VN-TEST", now=T0)
    assert "VN-TEST" in subject and "Reminder" in subject
    assert "REMINDER" in text and "http://alpha.example/gallery" in text and "2026-11-24T07:00:00Z" in text
    assert doc["kind"] == "renotice" and doc["sent_at"] == "2026-11-24T09:00:00Z"
    with pytest.raises(VigieError):
        takedown.render_notice(p, [], settings=mail_settings(store, None), kind="other", reference="x", now=T0)


# ---------------------------------------------------------------------------------------------- escalation


def make_report(store, reference: str = "VR-TEST1") -> dict:
    """A report of two URLs, three sightings under them (one only through SightingPage), and one elsewhere."""
    with store.session() as s:
        rep = Report(reference=reference, received_at=T0 - timedelta(days=1), channel="web",
                     description="benign test report", contact="reporter@example.org", status="founded")
        s.add(rep)
        s.flush()
        urls = []
        for u in ("http://alpha.example/page", "http://beta.example/page"):
            ru = ReportedUrl(url=u, url_key=hashlib.sha256(u.encode()).hexdigest(), host=u.split("/")[2],
                             crawl_state="done", outcome="known")
            s.add(ru)
            s.flush()
            s.add(ReportUrl(report_id=rep.id, url_id=ru.id))
            urls.append(ru.id)
    a = add_sighting(store, "http://alpha.example/e1.jpg", url_id=urls[0])
    b = add_sighting(store, "http://beta.example/e2.jpg", url_id=None)
    u = add_sighting(store, "http://alpha.example/unk.png", outcome="unknown", url_id=urls[0], review_item_id=1,
                     media_type="image/png")
    other = add_sighting(store, "http://alpha.example/other.jpg")
    with store.session() as s:
        s.add(SightingPage(sighting_id=b, url_id=urls[1], page_url="http://beta.example/page"))
    return {"urls": urls, "known": [a, b], "unknown": u, "other": other}


def test_escalation_zip_holds_the_whole_history(store, smtp, tmp_path):
    inbox, port = smtp
    settings = mail_settings(store, port)
    two_providers(store)
    ids = make_report(store)
    takedown.send_notices(store, settings, T0, by="tester")
    assert len(inbox.messages) == 2
    res = escalation.export_escalation(store, settings, "VR-TEST1", tmp_path / "out" / "esc.zip", by="officer")
    assert res["sightings"] == 3 and res["notices"] == 2 and res["media"] == 0
    z = zipfile.ZipFile(tmp_path / "out" / "esc.zip")
    names = set(z.namelist())
    assert names == {"report.json", "urls.csv", "sightings.csv", "notices.json", "audit.jsonl", "manifest.json"}
    manifest = json.loads(z.read("manifest.json"))
    assert manifest["schema"] == "vigie.escalation/1" and manifest["reference"] == "VR-TEST1"
    for f in manifest["files"]:
        assert hashlib.sha256(z.read(f["name"])).hexdigest() == f["sha256"], f["name"]
    assert {f["name"] for f in manifest["files"]} == names - {"manifest.json"}
    assert hashlib.sha256(z.read("manifest.json")).hexdigest() == res["manifest_sha256"]
    report = json.loads(z.read("report.json"))
    assert report["contact"] == "reporter@example.org" and report["reference"] == "VR-TEST1"
    urls = z.read("urls.csv").decode().splitlines()
    assert len(urls) == 3 and "http://beta.example/page" in urls[2]
    rows = z.read("sightings.csv").decode()
    assert "e1.jpg" in rows and "e2.jpg" in rows and "unk.png" in rows and "other.jpg" not in rows
    assert sorted(int(line.split(",")[0]) for line in rows.splitlines()[1:]) == sorted([*ids["known"], ids["unknown"]])
    assert rows.splitlines()[0].startswith("id,media_url,page_url")
    notices = json.loads(z.read("notices.json"))
    assert {n["recipient"] for n in notices} == {"abuse@alpha.example", "abuse@beta.example"}
    assert all(n["body_text"] and n["body_json"]["schema"] == "vigie.notice/1" for n in notices)
    audit_lines = [json.loads(x) for x in z.read("audit.jsonl").decode().splitlines()]
    assert {r["action"] for r in audit_lines} == {"takedown.notice_sent"}
    assert all(len(r["hash"]) == 64 for r in audit_lines)
    with store.sessions() as s:
        rec = s.scalar(select(AuditRecord).where(AuditRecord.action == "escalation.export"))
    assert rec.actor == "officer" and rec.object_id == "VR-TEST1"

    with pytest.raises(VigieError) as e:
        escalation.export_escalation(store, settings, "VR-NOPE", tmp_path / "x.zip", by="officer")
    assert e.value.code == "report_not_found" and not (tmp_path / "x.zip").exists()


def test_escalation_media_only_unknown_and_held(store, tmp_path, media_key):
    from vigie.review.media import store_media

    import factory

    settings = mail_settings(store, None)
    ids = make_report(store)
    res = escalation.export_escalation(store, settings, "VR-TEST1", tmp_path / "a.zip", include_media=True, by="o")
    assert res["media"] == 0 and [m["code"] for m in res["media_skipped"]] == ["media_purged"]
    assert json.loads(zipfile.ZipFile(tmp_path / "a.zip").read("manifest.json"))["media_skipped"]

    data = factory.save(factory.picture(7), "PNG")  # a generated, benign picture
    sha = get(store, ids["unknown"]).sha256
    store_media(store, settings, sha, data)
    res = escalation.export_escalation(store, settings, "VR-TEST1", tmp_path / "b.zip", include_media=True, by="o")
    z = zipfile.ZipFile(tmp_path / "b.zip")
    assert res["media"] == 1 and z.read(f"media/{sha}.png") == data
    manifest = json.loads(z.read("manifest.json"))
    assert any(f["name"] == f"media/{sha}.png" and f["sha256"] == hashlib.sha256(data).hexdigest()
               for f in manifest["files"])
    assert not [n for n in z.namelist() if n.startswith("media/") and sha not in n]  # never known material


# ---------------------------------------------------------------------------------------------- web


def test_web_routes(store, monkeypatch):
    from test_web_kit import make_kit, session_client

    app, clock, store = make_kit(store, monkeypatch)
    settings = mail_settings(store, None)
    two_providers(store)
    make_report(store)
    takedown.send_notices(store, settings, clock(), by="tester")

    analyst, acsrf = session_client(app, store, "analyst", clock)
    page = analyst.get("/takedown")
    assert page.status_code == 200 and "http://alpha.example/e1.jpg" in page.text and "Alpha Hosting" in page.text
    assert "style=" not in page.text and "<script>" not in page.text
    sightings = analyst.get("/api/v1/takedown/sightings").json()["sightings"]
    assert {s["media_url"] for s in sightings} >= {"http://alpha.example/e1.jpg", "http://beta.example/e2.jpg"}
    assert all(s["hours_online"] >= 2 for s in sightings)
    assert analyst.get("/api/v1/takedown/sightings?state=removed").json() == {"sightings": []}
    notices = analyst.get("/api/v1/notices").json()["notices"]
    assert notices and {n["status"] for n in notices} == {"failed"}
    assert {p["name"] for p in analyst.get("/api/v1/providers").json()["providers"]} == {"Alpha Hosting",
                                                                                        "Beta Cloud"}
    body = {"name": "Gamma", "contact_email": "abuse@gamma.example", "domains": ["gamma.example"]}
    assert analyst.post("/api/v1/providers", json=body, headers={"X-CSRF-Token": acsrf}).status_code == 403
    assert analyst.get("/api/v1/reports/VR-TEST1/escalation.zip").status_code == 403

    admin, csrf = session_client(app, store, "admin", clock)
    r = admin.post("/api/v1/providers", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["domains"] == ["gamma.example"]
    r = admin.post("/api/v1/providers", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 409 and r.json()["error"]["code"] == "provider_exists"
    r = admin.post("/api/v1/providers", json={**body, "name": "Delta", "contact_email": "nope"},
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_email"

    sup, _ = session_client(app, store, "supervisor", clock)
    r = sup.get("/api/v1/reports/VR-TEST1/escalation.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "report.json" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    r = sup.get("/api/v1/reports/VR-NOPE/escalation.zip")
    assert r.status_code == 404 and r.json()["error"]["code"] == "report_not_found"


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_provider_notices_escalate(tmp_path):
    from vigie.settings import Settings
    from vigie.store import Store

    from test_cli_hash import lines, vigie

    dd = ["--data-dir", str(tmp_path / "d")]
    r = vigie("provider", "add", "Alpha Hosting", "--email", "abuse@alpha.example", "--domain", "alpha.example",
              "--network", "192.0.2.0/24", "--country", "fr", "--json", *dd)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0]["country"] == "FR"
    r = vigie("provider", "add", "Bad", "--email", "nope", *dd)
    assert r.returncode == 1 and "bad_email" in r.stderr and "Traceback" not in r.stderr
    assert [p["name"] for p in lines(vigie("provider", "list", "--json", *dd).stdout)] == ["Alpha Hosting"]

    store = Store.open(Settings(data_dir=tmp_path / "d"))
    make_report(store)
    store.close()
    r = vigie("notices", "send", "--json", *dd)  # no SMTP server configured: recorded as failed
    assert r.returncode == 1
    res = lines(r.stdout)[0]
    assert res["failed"] == 1 and res["no_provider"] == 1 and res["notices"][0]["error_code"] == "smtp_not_configured"

    out = tmp_path / "esc.zip"
    r = vigie("escalate", "VR-TEST1", "--out", str(out), "--json", *dd)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0]["sightings"] == 3 and zipfile.is_zipfile(out)
    r = vigie("escalate", "VR-NOPE", "--out", str(tmp_path / "n.zip"), *dd)
    assert r.returncode == 1 and "report_not_found" in r.stderr

    assert vigie("provider", "remove", "Alpha Hosting", *dd).returncode == 0
    assert lines(vigie("provider", "list", "--json", *dd).stdout)[0]["active"] is False


def test_providers_known_by_as_number_are_found_through_the_operators_table(store, tmp_path):
    from vigie.actions.asn import AsnTable

    table = tmp_path / "asn.tsv"
    table.write_text("# first\tlast\tasn\tcountry\tname\n198.51.100.0\t198.51.100.255\t64500\tNL\tGAMMA\n"
                     "198.51.100.128\t198.51.100.191\t64501\tNL\tNESTED\n2001:db8::/32,64502\nnot a line\n"
                     "192.0.2.0\t192.0.2.255\t0\tNone\tNot routed\n")
    t = AsnTable.parse(table.read_text().splitlines())
    assert (t.lookup("198.51.100.7"), t.lookup("198.51.100.130"), t.lookup("2001:db8::1")) == (64500, 64501, 64502)
    assert t.lookup("192.0.2.1") is None and t.lookup("203.0.113.1") is None and t.skipped == 2
    takedown.add_provider(store, "Gamma", "abuse@gamma.example", asns=["AS64500"], by="t")
    assert takedown.find_provider(store, "gamma-cdn.example", "198.51.100.7") is None  # no table configured
    store.settings = store.settings.model_copy(update={"asn_table": table})
    assert takedown.find_provider(store, "gamma-cdn.example", "198.51.100.7").name == "Gamma"
    assert takedown.find_provider(store, "gamma-cdn.example", "198.51.100.130") is None  # AS 64501: nobody's


def test_two_senders_at_once_never_notice_twice(store, smtp):
    inbox, port = smtp
    settings = mail_settings(store, port)
    two_providers(store)
    add_sighting(store, "http://alpha.example/1.jpg")
    with store.exclusive("takedown-notices") as mine:  # another worker is sending
        assert mine
        busy = takedown.send_notices(store, settings, T0, by="tester")
        with store.exclusive("takedown-notices") as again:
            assert not again
    assert busy["busy"] and busy["sent"] == 0 and inbox.messages == []
    assert takedown.send_notices(store, settings, T0, by="tester")["sent"] == 1
    assert takedown.send_notices(store, settings, T0, by="tester")["sent"] == 0  # noticed: not due again
    assert len(inbox.messages) == 1
