"""The web-facing commands: accounts and API keys from the CLI, the demo setup, scans queued for review."""

from __future__ import annotations

import base64
import os

import factory
from test_cli_hash import lines, vigie


def test_user_and_apikey_commands(tmp_path):
    dd = ["--data-dir", str(tmp_path / "d")]
    r = vigie("user", "add", "alice", "--role", "supervisor", "--json", *dd)
    assert r.returncode == 0, r.stderr
    assert len(lines(r.stdout)[0]["one_time_password"]) >= 12
    assert vigie("user", "add", "alice", *dd).returncode == 1  # taken: a clear error, no traceback
    users = {u["username"]: u for u in lines(vigie("user", "list", "--json", *dd).stdout)}
    assert users["alice"]["role"] == "supervisor"
    key = lines(vigie("apikey", "create", "platform", "--scope", "match", "--json", *dd).stdout)[0]
    assert key["secret"].startswith("vigie_")
    listed = lines(vigie("apikey", "list", "--json", *dd).stdout)
    assert listed[0]["prefix"] and key["secret"] not in str(listed)
    assert vigie("apikey", "revoke", str(key["id"]), *dd).returncode == 0
    assert lines(vigie("apikey", "list", "--json", *dd).stdout)[0]["revoked"] is True
    v = lines(vigie("audit", "verify", "--json", *dd).stdout)[0]
    assert v["ok"] and v["records"] >= 3


def test_demo_setup_fills_the_queue(tmp_path):
    r = vigie("demo", "serve", "--setup-only", "--data-dir", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert "analyst1" in r.stderr and "admin" in r.stderr
    from vigie.review.queue import list_queue
    from vigie.settings import Settings
    from vigie.store import Store

    store = Store.open(Settings(data_dir=tmp_path / "demo"))
    assert len(list_queue(store)) >= 10


def test_scan_queue_option(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        factory.write(src, f"p{i}.png", factory.save(factory.picture(950 + i), "PNG"))
    env = {"VIGIE_MEDIA_KEY": base64.b64encode(os.urandom(32)).decode()}
    r = vigie("scan", str(src), "--out", str(tmp_path / "o"), "--queue", "--json", "--data-dir",
              str(tmp_path / "d"), env=env)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0]["queued"]["items_added"] == 3
