"""Shared fixtures: settings on a temporary data folder, and a store on SQLite and PostgreSQL.

Every store test runs on both. The PostgreSQL run uses a fresh schema per test on the
server in VIGIE_TEST_POSTGRES_URL (default: 127.0.0.1:5432, database test) and is
skipped, with the reason printed, only where no server answers.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from vigie.settings import Settings

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
PG_URL = os.environ.get("VIGIE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", workers=1, hash_in_process=True)


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at {PG_URL}: {exc}"


_PG_REASON = _pg_available()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path):
    from sqlalchemy import create_engine, text

    from vigie.store import Store

    if request.param == "sqlite":
        s = Store.open(Settings(data_dir=tmp_path / "data", workers=1, hash_in_process=True))
        yield s
        s.close()
        return
    if _PG_REASON:
        print(f"\nskipping the PostgreSQL run: {_PG_REASON}")
        pytest.skip(_PG_REASON)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    s = Store.open(Settings(data_dir=tmp_path / "data", database_url=url, workers=1, hash_in_process=True))
    try:
        yield s
    finally:
        s.close()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def media_key(monkeypatch) -> str:
    """A fresh AES key for review media, given the way operators give it: VIGIE_MEDIA_KEY."""
    import base64

    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("VIGIE_MEDIA_KEY", key)
    return key


@pytest.fixture
def browser():
    """Debian's Chromium through Playwright, one per test (the review-room and accessibility tests)."""
    from playwright.sync_api import sync_playwright

    from test_web_browser import ARGS, CHROMIUM

    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()

