"""A real `vigie serve --workers N` in a child process on 127.0.0.1, on SQLite or PostgreSQL, for tests that
need several server processes, parallel clients and SIGKILL.

The store is opened by the test too (the same file or schema), so a test prepares data with the library and
checks the outcome in the database after the clients are done or the server was killed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx

from servers import free_port

VIGIE = str(Path(sys.executable).with_name("vigie"))


def pg_url_for(schema: str) -> str:
    from conftest import PG_URL

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema():
    """A fresh PostgreSQL schema; yields its URL; dropped on exit."""
    from sqlalchemy import create_engine, text

    from conftest import PG_URL

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_url_for(schema)
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def live_store(kind: str, data: Path, env: dict[str, str]):
    """The store a live test and its servers share: SQLite in `data`, or a fresh PostgreSQL schema whose URL
    is put in `env` for the servers (`kind`: "sqlite" or "postgresql"). Closed (and the schema dropped) on exit."""
    from vigie.settings import Settings
    from vigie.store.db import Store

    if kind == "postgresql":
        with pg_schema() as url:
            env["VIGIE_DATABASE_URL"] = url
            store = Store.open(Settings(data_dir=data, database_url=url, workers=1))
            try:
                yield store
            finally:
                store.close()
        return
    store = Store.open(Settings(data_dir=data, workers=1))
    try:
        yield store
    finally:
        store.close()


class LiveServer:
    #: Whether `vigie serve` runs its intake worker (crawls, re-checks, notices); off unless a test needs it.
    intake_worker = False

    def __init__(self, data_dir: Path, env: dict[str, str], workers: int = 2):
        self.data_dir, self.env, self.workers = data_dir, env, workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / f"server-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "VIGIE_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            worker = [] if self.intake_worker else ["--no-intake-worker"]
            self.proc = subprocess.Popen([VIGIE, "serve", "--workers", str(self.workers), *worker,
                                          "--host", "127.0.0.1", "--port", str(self.port)],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vigie serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base + "/login", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"vigie serve did not answer in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server and every process it started (its process group): no cleanup runs."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()


@contextmanager
def live(data_dir: Path, env: dict[str, str], workers: int = 2):
    srv = LiveServer(data_dir, env, workers).start()
    try:
        yield srv
    finally:
        srv.stop()


def session_headers(store, username: str) -> tuple[dict, dict]:
    """(cookies, headers) of a fresh session of `username`, made in the store (no password round trip)."""
    from vigie import accounts
    from vigie.web.access import COOKIE

    token, ws = accounts.new_session(store, accounts.get_user(store, username))
    return {COOKIE: token}, {"X-CSRF-Token": ws.csrf_token}


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/login")
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": m.group(1) if m else ""}, follow_redirects=False)
