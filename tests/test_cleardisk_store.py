"""Nothing in clear in the store (issue 16, items 3 and 6): data folder 0700, database 0600 from the start;
partners' API keys and reporters' contacts sealed with the media key (and migration 0014 sealing older ones);
match API keys narrowed to the hotline's own banks by default. Both stores."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from sqlalchemy import text

from vigie import accounts, sealed
from vigie.banks import service as banks
from vigie.errors import VigieError
from vigie.ingest import reports
from vigie.settings import Settings
from vigie.sharing import feed, subscriber
from vigie.store import Store

CONTACT = "reporter-7f3a@example.org"
PARTNER_KEY = "vigie_0badcafe_partnerSecretThatMustNotBeOnDisk123"


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def pub_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()  # any 32 bytes are an Ed25519 public key


def raw_dump(store: Store) -> bytes:
    """Every byte the database holds: the SQLite files, or every column of the tables as PostgreSQL returns them."""
    if store.dialect == "sqlite":
        db = store.engine.url.database
        store.engine.dispose()  # checkpoint nothing away: read the main file and the WAL as they lie
        return b"".join(open(p, "rb").read() for p in (db, f"{db}-wal") if os.path.exists(p))
    with store.engine.connect() as c:
        rows = [c.execute(text(f"SELECT CAST(t AS text) FROM {tb} t")).scalars().all()
                for tb in ("reports", "subscriptions", "audit_log")]
    return "\n".join(str(x) for r in rows for x in r).encode()


def test_data_folder_and_database_private_from_the_start(tmp_path):
    s = Store.open(Settings(data_dir=tmp_path / "fresh", workers=1))
    banks.create_bank(s, "b")
    d = tmp_path / "fresh"
    assert mode(d) == 0o700 and mode(d / "index") == 0o700
    for n in ("vigie.db", "vigie.db-wal", "vigie.db-shm"):
        assert mode(d / n) == 0o600, n
    s.close()
    # a folder and database left loose by an earlier version are tightened on open
    os.chmod(d, 0o755)
    os.chmod(d / "vigie.db", 0o644)
    os.chmod(d / "index", 0o755)
    Store.open(Settings(data_dir=d, workers=1)).close()
    assert mode(d) == 0o700 and mode(d / "vigie.db") == 0o600 and mode(d / "index") == 0o700


def test_folders_private_on_postgresql_too(store):
    d = store.settings.data_dir
    assert mode(d) == 0o700 and mode(d / "index") == 0o700


def test_contacts_sealed_and_read_back(store, media_key):
    got = reports.submit(store, ["http://reported.example/page"], contact=CONTACT, description="benign test")
    with store.sessions() as s:
        stored = s.execute(text("SELECT contact FROM reports")).scalar()
    assert sealed.is_sealed(stored) and CONTACT not in stored
    assert reports.report_detail(store, got["reference"])["contact"] == CONTACT
    from vigie.actions import escalation

    blob, _ = escalation.escalation_zip(store, store.settings, got["reference"], by="officer")
    import io
    import json
    import zipfile

    assert json.loads(zipfile.ZipFile(io.BytesIO(blob)).read("report.json"))["contact"] == CONTACT
    assert CONTACT.encode() not in raw_dump(store)


def test_contact_without_a_key_is_kept_and_a_sealed_one_needs_it(store, monkeypatch):
    monkeypatch.delenv("VIGIE_MEDIA_KEY", raising=False)
    plain = reports.submit(store, ["http://a.example/x"], contact="plain@example.org")  # never refused
    assert reports.report_detail(store, plain["reference"])["contact"] == "plain@example.org"
    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    ref = reports.submit(store, ["http://b.example/x"], contact=CONTACT)["reference"]
    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())  # another key
    assert reports.report_detail(store, ref)["contact"] == "(sealed: media_key_mismatch)"


def test_partner_api_key_sealed(store, media_key, monkeypatch):
    subscriber.subscribe(store, "partner", "http://127.0.0.1:9", "their-bank", "from-partner", PARTNER_KEY,
                         pub_key(), by="admin")
    with store.sessions() as s:
        stored = s.execute(text("SELECT api_key FROM subscriptions")).scalar()
    assert sealed.is_sealed(stored) and PARTNER_KEY not in stored
    assert sealed.unseal(store.settings, stored, subscriber.SEALED_AT) == PARTNER_KEY
    assert PARTNER_KEY.encode() not in raw_dump(store)
    # a sealed value moved to another column does not open there
    with pytest.raises(VigieError) as e:
        sealed.unseal(store.settings, stored, reports.CONTACT_AT)
    assert e.value.code == "media_key_mismatch"
    monkeypatch.delenv("VIGIE_MEDIA_KEY")
    with pytest.raises(VigieError) as e:
        subscriber.subscribe(store, "p2", "http://127.0.0.1:9", "b", "l2", "k", pub_key())
    assert e.value.code == "no_media_key"
    assert [x["name"] for x in subscriber.list_subscriptions(store)] == ["partner"]


def _alembic(store: Store):
    from alembic.config import Config

    from vigie.store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = store.engine
    cfg.attributes["settings"] = store.settings
    return cfg


def test_migration_0014_seals_older_values_and_narrows_older_keys(store, monkeypatch):
    from alembic import command

    monkeypatch.delenv("VIGIE_MEDIA_KEY", raising=False)
    banks.create_bank(store, "own")
    banks.create_bank(store, "offered")
    banks.create_bank(store, "partner")  # before the downgrade: today's Bank has columns the old schema lacks
    feed.publish(store, "offered", by="admin")
    command.downgrade(_alembic(store), "0014-1")
    with store.session() as s:  # as an older version wrote them: in clear, keys seeing every bank
        s.execute(text("INSERT INTO reports (reference, received_at, channel, seen, contact, status) "
                       "VALUES ('VR-OLD1', CURRENT_TIMESTAMP, 'web', '[]', :c, 'received')"), {"c": CONTACT})
        s.execute(text("INSERT INTO subscriptions (name, url, remote_bank, local_bank, api_key, publisher_key, "
                       "cursor, created_at) VALUES ('old', 'http://127.0.0.1:9', 'r', 'partner', :k, :p, 0, "
                       "CURRENT_TIMESTAMP)"), {"k": PARTNER_KEY, "p": pub_key()})
        s.execute(text("INSERT INTO api_keys (name, prefix, key_hash, scopes, created_by, created_at) VALUES "
                       "('legacy', 'abcdef01', :h, '[\"match\"]', 'admin', CURRENT_TIMESTAMP)"), {"h": "0" * 64})
    monkeypatch.setenv("VIGIE_MEDIA_KEY", base64.b64encode(os.urandom(32)).decode())
    store.migrate()
    with store.sessions() as s:
        contact = s.execute(text("SELECT contact FROM reports WHERE reference = 'VR-OLD1'")).scalar()
        key = s.execute(text("SELECT api_key FROM subscriptions WHERE name = 'old'")).scalar()
    assert sealed.is_sealed(contact) and sealed.is_sealed(key)
    assert reports.report_detail(store, "VR-OLD1")["contact"] == CONTACT
    assert sealed.unseal(store.settings, key, subscriber.SEALED_AT) == PARTNER_KEY
    assert CONTACT.encode() not in raw_dump(store) and PARTNER_KEY.encode() not in raw_dump(store)
    legacy = next(k for k in accounts.list_api_keys(store) if k.name == "legacy")
    assert accounts.key_banks(legacy) == ["own"]  # not the partner's bank, not the published one


def test_match_keys_see_named_banks_by_default(store, media_key):
    k, _ = accounts.create_api_key(store, "nothing yet", ["match"], "admin")
    assert accounts.key_banks(k) == [""]  # no bank: matches nothing, never everything
    banks.create_bank(store, "own-a")
    banks.create_bank(store, "own-b")
    banks.create_bank(store, "offered")
    feed.publish(store, "offered", by="admin")
    subscriber.subscribe(store, "partner", "http://127.0.0.1:9", "theirs", "from-partner", PARTNER_KEY, pub_key())
    k, _ = accounts.create_api_key(store, "platform", ["match"], "admin")
    assert k.scopes == ["match", "banks:own-a", "banks:own-b"] and accounts.key_banks(k) == ["own-a", "own-b"]
    k, _ = accounts.create_api_key(store, "named", ["match", "banks:from-partner"], "admin")
    assert accounts.key_banks(k) == ["from-partner"]  # naming a partner's bank is a choice, recorded
    k, _ = accounts.create_api_key(store, "feed", ["banks:offered"], "admin")
    assert k.scopes == ["banks:offered"]
